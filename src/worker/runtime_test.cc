#include "worker/runtime.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "worker/fake_server_api.h"

namespace resonance::worker {
namespace {

using testing::FakeServerApi;

WorkerConfig Handlers() {
  auto c = ParseWorkerConfig(R"(
[handlers.noop]
type = "noop"
[handlers.sleep]
type = "sleep"
[handlers.fail]
type = "fail"
)",
                             "t.toml");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

LeasedTask Task(const std::string& id, const std::string& action, const std::string& payload,
                const Clock& clock, int timeout_s = 30) {
  LeasedTask t;
  t.id = id;
  t.queue = "default";
  t.action = action;
  t.payload = payload;
  t.attempt = 1;
  t.timeout_s = timeout_s;
  t.lease = "lease-" + id;
  t.lease_expires_at = clock.Now() + timeout_s * kMicrosPerSecond;
  return t;
}

class RuntimeTest : public ::testing::Test {
 protected:
  // The server hands out `tasks` on the first lease call, then nothing.
  void Serve(std::vector<LeasedTask> tasks) {
    auto pending = std::make_shared<std::vector<LeasedTask>>(std::move(tasks));
    auto mu = std::make_shared<std::mutex>();
    api_.lease = [pending, mu](const LeaseRequest& req,
                               const std::atomic<bool>& abort) -> Result<std::vector<LeasedTask>> {
      std::vector<LeasedTask> out;
      {
        std::lock_guard<std::mutex> lock(*mu);
        while (!pending->empty() && static_cast<int>(out.size()) < req.max) {
          out.push_back(pending->front());
          pending->erase(pending->begin());
        }
      }
      if (out.empty()) {
        for (int i = 0; i < 20 && !abort; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return out;
    };
  }
  // Runs the worker until `until` holds (or 10 s pass), then stops it; returns Run's code.
  int RunUntil(WorkerRuntime& w, const std::function<bool()>& until) {
    int code = -1;
    std::thread t([&] { code = w.Run(); });
    for (int i = 0; i < 1000 && !until(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    w.Stop();
    t.join();
    return code;
  }
  std::optional<Finish> DeliveredFor(const std::string& id) {
    for (auto& f : api_.delivered()) {
      if (f.id == id) return f;
    }
    return std::nullopt;
  }

  SystemClock clock_;
  FakeServerApi api_;
  PosixSpawner spawner_;
  WorkerConfig config_ = Handlers();
  RuntimeOptions options_ = [] {
    RuntimeOptions o;
    o.worker_id = "w1";
    o.concurrency = 2;
    o.drain_grace = 200 * kMicrosPerMilli;
    return o;
  }();
};

TEST_F(RuntimeTest, RunsLeasedTasksAndReportsEachOutcome) {
  Serve({Task("a", "noop", "{}", clock_),
         Task("b", "fail", R"({"class":"rate_limited","retry_after_s":3})", clock_),
         Task("c", "unknown", "{}", clock_)});
  WorkerRuntime w(options_, config_, api_, spawner_, clock_);
  EXPECT_EQ(RunUntil(w, [&] { return api_.delivered().size() == 3; }), 0);
  ASSERT_TRUE(DeliveredFor("a"));
  EXPECT_TRUE(DeliveredFor("a")->outcome.ok);
  EXPECT_EQ(DeliveredFor("a")->lease, "lease-a");
  EXPECT_EQ(DeliveredFor("b")->outcome.error_class, ErrorClass::kRateLimited);
  EXPECT_EQ(DeliveredFor("b")->outcome.retry_after_s.value_or(0), 3);
  EXPECT_EQ(DeliveredFor("c")->outcome.error_class, ErrorClass::kValidation);
  EXPECT_NE(DeliveredFor("c")->outcome.message.find("no handler for action 'unknown'"),
            std::string::npos);
}

TEST_F(RuntimeTest, LeasesNoMoreThanTheFreeSlots) {
  std::mutex mu;
  std::vector<int> maxes;
  std::atomic<int> handed{0};
  api_.lease = [&](const LeaseRequest& req,
                   const std::atomic<bool>& abort) -> Result<std::vector<LeasedTask>> {
    {
      std::lock_guard<std::mutex> lock(mu);
      maxes.push_back(req.max);
    }
    if (handed.fetch_add(1) == 0)
      return std::vector<LeasedTask>{Task("s", "sleep", R"({"seconds":0.3})", clock_)};
    for (int i = 0; i < 10 && !abort; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return std::vector<LeasedTask>{};
  };
  WorkerRuntime w(options_, config_, api_, spawner_, clock_);
  RunUntil(w, [&] { return api_.delivered().size() == 1; });
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(maxes.size(), 2u);
  EXPECT_EQ(maxes[0], 2);  // both slots free
  EXPECT_EQ(maxes[1], 1);  // one busy with the sleep
}

TEST_F(RuntimeTest, DrainHandsBackWhatDoesNotFinishInTheGrace) {
  // Given a 10 s sleep running and a 0.2 s drain grace, then Stop hands it back as
  // temporary "worker stopping" at once and Run returns 0.
  Serve({Task("long", "sleep", R"({"seconds":10})", clock_),
         Task("short", "sleep", R"({"seconds":0.05})", clock_)});
  WorkerRuntime w(options_, config_, api_, spawner_, clock_);
  const Micros start = clock_.Now();
  EXPECT_EQ(RunUntil(w, [&] { return DeliveredFor("short").has_value(); }), 0);
  EXPECT_LT(clock_.Now() - start, 3 * kMicrosPerSecond);
  auto handed = DeliveredFor("long");
  ASSERT_TRUE(handed);
  EXPECT_FALSE(handed->outcome.ok);
  EXPECT_EQ(handed->outcome.error_class, ErrorClass::kTemporary);
  EXPECT_EQ(handed->outcome.message, "worker stopping");
  EXPECT_TRUE(DeliveredFor("short")->outcome.ok);
}

TEST_F(RuntimeTest, HeartbeatCancelStopsTheHandlerAndReportsCancelled) {
  // Given a 1.2 s lease (heartbeat due after 0.4 s) whose heartbeat answers cancel:
  // true, then the sleep is stopped and the task fails as cancelled.
  Serve({Task("c", "sleep", R"({"seconds":10})", clock_, 1)});
  api_.heartbeat = [&](const std::string&, const std::string&,
                       const std::string&) -> Result<HeartbeatReply> {
    return HeartbeatReply{clock_.Now() + kMicrosPerSecond, true};
  };
  WorkerRuntime w(options_, config_, api_, spawner_, clock_);
  RunUntil(w, [&] { return DeliveredFor("c").has_value(); });
  auto f = DeliveredFor("c");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->outcome.error_class, ErrorClass::kCancelled);
  EXPECT_FALSE(api_.heartbeats().empty());
}

TEST_F(RuntimeTest, StaleLeaseOnHeartbeatDropsTheOutcome) {
  Serve({Task("x", "sleep", R"({"seconds":10})", clock_, 1)});
  std::atomic<int> beats{0};
  api_.heartbeat = [&](const std::string&, const std::string&,
                       const std::string&) -> Result<HeartbeatReply> {
    ++beats;
    return Status(Code::kConflict, "lease expired");
  };
  WorkerRuntime w(options_, config_, api_, spawner_, clock_);
  RunUntil(w, [&] { return beats.load() > 0; });
  EXPECT_FALSE(DeliveredFor("x"));  // nobody wants it: the server has moved on
}

TEST_F(RuntimeTest, RegisteredWorkersDeregisterAndARefusedIdExits3) {
  std::atomic<bool> registered{false};
  api_.register_worker = [&](const Registration& r) -> Result<RegisterReply> {
    EXPECT_EQ(r.worker, "w1");
    EXPECT_EQ(r.concurrency, 2);
    registered = true;
    return RegisterReply{100, 300};
  };
  {
    WorkerRuntime w(options_, config_, api_, spawner_, clock_);
    EXPECT_EQ(RunUntil(w, [&] { return registered.load(); }), 0);
  }
  EXPECT_EQ(api_.deregistered(), (std::vector<std::string>{"w1"}));
  api_.register_worker = [](const Registration&) -> Result<RegisterReply> {
    return Status(Code::kConflict, "worker w1 is live");
  };
  WorkerRuntime dup(options_, config_, api_, spawner_, clock_);
  EXPECT_EQ(dup.Run(), kExitIdentityInUse);
}

}  // namespace
}  // namespace resonance::worker
