#include "worker/reporter.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "observe/log.h"

namespace resonance::worker {
namespace {
constexpr size_t kMaxBatchItems = 500;
constexpr size_t kMaxBatchBytes = 512 * 1024;  // stays under the server's default body limit
}  // namespace

Reporter::Reporter(ServerApi& api, const Clock& clock, DoneFn done)
    : api_(api),
      clock_(clock),
      done_(std::move(done)),
      backoff_(ReportRetryBackoff(std::random_device{}())),
      outage_(clock, "reporting results to the server") {
  thread_ = std::thread([this] { Loop(); });
}

Reporter::~Reporter() { Close(clock_.Now()); }

void Reporter::Submit(Finish finish, std::shared_ptr<LeaseState> lease) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Item{std::move(finish), std::move(lease)});
  }
  cv_.notify_all();
}

size_t Reporter::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + in_flight_;
}

size_t Reporter::Close(Micros until) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closing_) {
      closing_ = true;
      close_until_ = until;
    }
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return given_up_;
}

void Reporter::Hasten(Micros until) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    hasten_until_ = std::min(hasten_until_, until);
  }
  cv_.notify_all();
}

void Reporter::GiveUp(const Item& item, const std::string& why) {
  log::Error("worker", "task " + item.finish.id + ": its result was not recorded (" + why +
                           "); the server will retry the task when its lease lapses");
  done_(item.finish.id, Status(Code::kUnavailable, why));
}

bool Reporter::Answered(Item& item, const FinishAnswer& answer, std::deque<Item>& again) {
  const Status& s = answer.status;
  const std::string& id = item.finish.id;
  switch (s.code()) {
    case Code::kOk:
      done_(id, s);
      return false;
    case Code::kUnavailable:
      if (clock_.Now() >= item.lease->deadline.load()) {
        GiveUp(item, "the lease lapsed while the server could not be reached: " + s.message());
        std::lock_guard<std::mutex> lock(mu_);
        ++given_up_;
        return false;
      }
      again.push_back(std::move(item));
      return true;
    case Code::kConflict:
    case Code::kNotFound:
      log::Warn("worker", "task " + id + ": the server did not take the outcome (" + s.message() +
                              "); the lease is no longer ours");
      item.lease->lost = true;
      done_(id, s);
      return false;
    default:
      if (item.finish.outcome.ok) {
        log::Warn("worker", "task " + id + ": the server refused the result (" + s.message() +
                                "); failing the task as validation instead");
        item.finish.outcome = Outcome::Failure(ErrorClass::kValidation,
                                               "the server refused the result: " + s.message());
        again.push_back(std::move(item));
        return false;
      }
      log::Error("worker",
                 "task " + id + ": the server refused the failure report: " + s.message());
      done_(id, s);
      return false;
  }
}

void Reporter::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const Micros now = clock_.Now();
    if (queue_.empty()) {
      if (closing_) return;
      cv_.wait(lock);
      continue;
    }
    const Micros give_up_at = std::min(close_until_, hasten_until_);
    if (closing_ && now >= give_up_at) {
      std::deque<Item> rest = std::move(queue_);
      queue_.clear();
      given_up_ += rest.size();
      lock.unlock();
      for (const Item& item : rest)
        GiveUp(item, "the worker is exiting and the server could not be reached");
      lock.lock();
      continue;
    }
    if (now < retry_at_) {
      Micros wait = std::min(retry_at_ - now, 20 * kMicrosPerMilli);
      if (closing_) wait = std::min(wait, std::max<Micros>(give_up_at - now, 0));
      cv_.wait_for(lock, std::chrono::microseconds(std::max<Micros>(wait, 1000)));
      continue;
    }
    std::vector<Item> batch;
    size_t bytes = 0;
    while (!queue_.empty() && batch.size() < kMaxBatchItems &&
           (batch.empty() || bytes < kMaxBatchBytes)) {
      Item item = std::move(queue_.front());
      queue_.pop_front();
      bytes += item.finish.outcome.result.size() + item.finish.outcome.message.size() + 128;
      batch.push_back(std::move(item));
    }
    in_flight_ = batch.size();
    lock.unlock();

    std::vector<Finish> finishes;
    finishes.reserve(batch.size());
    for (const Item& item : batch) finishes.push_back(item.finish);
    std::vector<FinishAnswer> answers = api_.FinishTasks(finishes);
    std::deque<Item> again;
    bool unreachable = false;
    Status why;
    for (size_t i = 0; i < batch.size(); ++i) {
      const FinishAnswer answer =
          i < answers.size()
              ? answers[i]
              : FinishAnswer{batch[i].finish.id, Status(Code::kUnavailable, "no answer")};
      if (Answered(batch[i], answer, again)) {
        unreachable = true;
        why = answer.status;
      }
    }
    if (unreachable) {
      outage_.Failed(why);
    } else {
      outage_.Succeeded();
      backoff_.Reset();
    }
    const Micros delay = unreachable ? backoff_.Next() : 0;

    lock.lock();
    in_flight_ = 0;
    while (!again.empty()) {  // back to the front, in their order
      queue_.push_front(std::move(again.back()));
      again.pop_back();
    }
    if (unreachable) retry_at_ = clock_.Now() + delay;
  }
}

}  // namespace resonance::worker
