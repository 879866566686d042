#pragma once
// A stand-in for the server in the worker's unit tests (not part of the library): each
// call runs a replaceable function and is recorded. Thread-safe.

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "worker/server_api.h"

namespace resonance::worker::testing {

class FakeServerApi final : public ServerApi {
 public:
  std::function<Result<std::vector<LeasedTask>>(const LeaseRequest&, const std::atomic<bool>&)>
      lease = [](const LeaseRequest&,
                 const std::atomic<bool>& abort) -> Result<std::vector<LeasedTask>> {
    for (int i = 0; i < 10 && !abort; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return std::vector<LeasedTask>{};
  };
  std::function<Result<HeartbeatReply>(const std::string&, const std::string&, const std::string&)>
      heartbeat = [](const std::string&, const std::string&,
                     const std::string&) -> Result<HeartbeatReply> { return HeartbeatReply{}; };
  std::function<std::vector<FinishAnswer>(const std::vector<Finish>&)> finish =
      [](const std::vector<Finish>& items) {
        std::vector<FinishAnswer> out;
        for (const auto& f : items) out.push_back(FinishAnswer{f.id, Status::Ok()});
        return out;
      };
  std::function<Result<RegisterReply>(const Registration&)> register_worker =
      [](const Registration&) -> Result<RegisterReply> {
    return Status(Code::kNotFound, "no registry");
  };

  Result<std::vector<LeasedTask>> Lease(const LeaseRequest& req,
                                        const std::atomic<bool>& abort) override {
    return lease(req, abort);
  }
  Result<HeartbeatReply> Heartbeat(const std::string& id, const std::string& lease_token,
                                   const std::string& progress) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      heartbeats_.push_back(id + " " + progress);
    }
    return heartbeat(id, lease_token, progress);
  }
  std::vector<FinishAnswer> FinishTasks(const std::vector<Finish>& items) override {
    auto answers = finish(items);
    std::lock_guard<std::mutex> l(mu_);
    finish_calls_.push_back(items);
    for (size_t i = 0; i < items.size(); ++i) {
      if (i < answers.size() && answers[i].status.ok()) delivered_.push_back(items[i]);
    }
    return answers;
  }
  Result<RegisterReply> Register(const Registration& r) override { return register_worker(r); }
  Status WorkerHeartbeat(const std::string&, const std::vector<std::string>&) override {
    return Status::Ok();
  }
  Status Deregister(const std::string& worker) override {
    std::lock_guard<std::mutex> l(mu_);
    deregistered_.push_back(worker);
    return Status::Ok();
  }

  std::vector<Finish> delivered() {
    std::lock_guard<std::mutex> l(mu_);
    return delivered_;
  }
  std::vector<std::vector<Finish>> finish_calls() {
    std::lock_guard<std::mutex> l(mu_);
    return finish_calls_;
  }
  std::vector<std::string> heartbeats() {
    std::lock_guard<std::mutex> l(mu_);
    return heartbeats_;
  }
  std::vector<std::string> deregistered() {
    std::lock_guard<std::mutex> l(mu_);
    return deregistered_;
  }

 private:
  std::mutex mu_;
  std::vector<Finish> delivered_;
  std::vector<std::vector<Finish>> finish_calls_;
  std::vector<std::string> heartbeats_;
  std::vector<std::string> deregistered_;
};

}  // namespace resonance::worker::testing
