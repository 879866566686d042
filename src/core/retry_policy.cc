#include "core/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace resonance {

RetryPolicy RetryPolicy::Defaults() {
  RetryPolicy p;
  p.For(ErrorClass::kTemporary) = {1, 5, 125, 4};
  p.For(ErrorClass::kTimeout) = {1, 5, 125, 4};
  p.For(ErrorClass::kRateLimited) = {60, 1, 3600, 10};
  p.For(ErrorClass::kValidation) = {1, 5, 125, 0};
  p.For(ErrorClass::kCancelled) = {1, 5, 125, 0};
  return p;
}

RetryDecision DecideRetry(const RetryPolicy& policy, const FailedAttempt& f) {
  if (f.error_class == ErrorClass::kCancelled) return {RetryDecision::kCancelled};
  const ClassPolicy& cp = policy.For(f.error_class);
  if (f.error_class == ErrorClass::kRateLimited) {
    if (f.throttled >= cp.max_retries) return {RetryDecision::kDead};
    double wait = f.retry_after_s && *f.retry_after_s >= 0 ? *f.retry_after_s
                                                            : cp.base_s;
    wait = std::min(wait, cp.cap_s);
    return {RetryDecision::kRetry, SecondsToMicros(wait), true};
  }
  // Failures that use up attempts, this one included.
  const int used = f.attempt - f.throttled;
  const int retry_no = used;  // the retry this failure would start: 1 for the first
  if (used >= f.max_attempts || retry_no > cp.max_retries) return {RetryDecision::kDead};
  double wait = cp.base_s * std::pow(cp.factor, retry_no - 1);
  wait = std::min(wait, cp.cap_s);
  return {RetryDecision::kRetry, SecondsToMicros(wait), false};
}

const RetryPolicy& RetryPolicies::For(const std::string& action) const {
  auto it = per_action_.find(action);
  return it == per_action_.end() ? default_ : it->second;
}

}  // namespace resonance
