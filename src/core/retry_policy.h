#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/task.h"

namespace resonance {

// How one error class is retried: the n-th retry of the class waits
// min(base_s * factor^(n-1), cap_s); after max_retries the task goes dead.
// For rate_limited the producer's retry_after_s, when given, replaces the computed wait.
struct ClassPolicy {
  double base_s = 1;
  double factor = 5;
  double cap_s = 125;
  int max_retries = 4;
};

// One policy per error class (DESIGN.md §2 table). Value type.
struct RetryPolicy {
  std::array<ClassPolicy, kErrorClassCount> by_class;

  // temporary, timeout: 1 s, 5 s, 25 s, 125 s, 4 retries; rate_limited: 60 s or
  // retry_after_s, 10 retries that do not use up attempts; validation: none.
  static RetryPolicy Defaults();
  ClassPolicy& For(ErrorClass c) { return by_class[static_cast<size_t>(c)]; }
  const ClassPolicy& For(ErrorClass c) const { return by_class[static_cast<size_t>(c)]; }
};

// What to do with a failed attempt.
struct RetryDecision {
  enum Outcome { kRetry, kDead, kCancelled } outcome;
  Micros delay = 0;        // for kRetry: wait before the task is ready again
  bool throttled = false;  // for kRetry: a rate_limited retry, does not use up an attempt
};

// The failure facts about a task as its attempt fails.
struct FailedAttempt {
  ErrorClass error_class;
  int attempt;       // attempts started, this one included
  int max_attempts;  // all attempts allowed, the first included
  int throttled;     // rate_limited retries before this failure
  std::optional<double> retry_after_s;
};

RetryDecision DecideRetry(const RetryPolicy& policy, const FailedAttempt& f);

// Policies per action, falling back to the server-wide default. Value type, read-only
// after configuration, so safe to share between threads.
class RetryPolicies {
 public:
  RetryPolicies() : default_(RetryPolicy::Defaults()) {}
  explicit RetryPolicies(RetryPolicy def) : default_(def) {}
  void SetForAction(const std::string& action, RetryPolicy p) { per_action_[action] = p; }
  const RetryPolicy& For(const std::string& action) const;
  RetryPolicy& Default() { return default_; }

 private:
  RetryPolicy default_;
  std::map<std::string, RetryPolicy, std::less<>> per_action_;
};

}  // namespace resonance
