#include "worker/backoff.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "observe/log.h"

namespace resonance::worker {

Backoff::Backoff(Micros initial, Micros cap, double factor, double jitter, uint64_t seed)
    : initial_(initial), cap_(cap), factor_(factor), jitter_(jitter), rng_(seed) {}

Micros Backoff::Next() {
  double d = static_cast<double>(initial_) * std::pow(factor_, failures_);
  d = std::min(d, static_cast<double>(cap_));
  ++failures_;
  if (jitter_ > 0) {
    std::uniform_real_distribution<double> spread(1.0 - jitter_, 1.0 + jitter_);
    d *= spread(rng_);
  }
  return static_cast<Micros>(d);
}

Backoff LeaseRetryBackoff(uint64_t seed) {
  return Backoff(100 * kMicrosPerMilli, 5 * kMicrosPerSecond, 2.0, 0.2, seed);
}
Backoff ReportRetryBackoff(uint64_t seed) {
  return Backoff(100 * kMicrosPerMilli, 2 * kMicrosPerSecond, 2.0, 0.2, seed);
}
Backoff HandlerRestartBackoff(uint64_t seed) {
  return Backoff(500 * kMicrosPerMilli, 30 * kMicrosPerSecond, 2.0, 0.2, seed);
}

void OutageLog::Failed(const Status& why) {
  ++tries_;
  if (since_ != 0) return;
  since_ = clock_.Now();
  log::Warn("worker", what_ + " failed: " + why.message() + "; retrying with backoff");
}

void OutageLog::Succeeded() {
  if (since_ == 0) return;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", static_cast<double>(clock_.Now() - since_) / 1e6);
  log::Info("worker", what_ + " works again after " + secs + " s and " + std::to_string(tries_) +
                          " failed tries");
  since_ = 0;
  tries_ = 0;
}

}  // namespace resonance::worker
