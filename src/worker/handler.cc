#include "worker/handler.h"

#include <algorithm>
#include <chrono>

namespace resonance::worker {

Outcome Outcome::Success(std::string result) {
  Outcome o;
  o.ok = true;
  o.result = std::move(result);
  return o;
}

Outcome Outcome::Failure(ErrorClass c, std::string message, std::optional<double> retry_after_s) {
  Outcome o;
  o.error_class = c;
  o.message = std::move(message);
  o.retry_after_s = retry_after_s;
  return o;
}

TaskContext::TaskContext(const Clock& clock, double timeout_s)
    : clock_(clock), timeout_s_(timeout_s), deadline_(clock.Now() + SecondsToMicros(timeout_s)) {}

void TaskContext::RequestStop(StopReason reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    StopReason none = StopReason::kNone;
    stop_.compare_exchange_strong(none, reason);
    stop_flag_ = true;
  }
  cv_.notify_all();
}

bool TaskContext::SleepUntil(Micros until) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!StopRequested()) {
    const Micros left = until - clock_.Now();
    if (left <= 0) return true;
    // Slices, so a fake clock moved by a test is noticed.
    cv_.wait_for(lock, std::chrono::microseconds(std::min<Micros>(left, 20 * kMicrosPerMilli)));
  }
  return false;
}

void TaskContext::SetProgress(std::string json) {
  std::lock_guard<std::mutex> lock(mu_);
  progress_ = std::move(json);
}

std::optional<std::string> TaskContext::TakeProgress() {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<std::string> out = std::move(progress_);
  progress_.reset();
  return out;
}

bool TaskContext::HasProgress() const {
  std::lock_guard<std::mutex> lock(mu_);
  return progress_.has_value();
}

}  // namespace resonance::worker
