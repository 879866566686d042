#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace resonance::worker {

// Exponential backoff for reconnecting and retrying: the n-th consecutive failure waits
// min(initial * factor^(n-1), cap), spread by ±jitter (a fraction, 0 = none) so many
// workers do not retry in step. Reset() after a success. Value type, not thread-safe;
// the seed makes the jitter reproducible in tests.
class Backoff {
 public:
  Backoff(Micros initial, Micros cap, double factor = 2.0, double jitter = 0.0, uint64_t seed = 0);

  // The wait before the next try; counts one more failure.
  Micros Next();
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  Micros initial_;
  Micros cap_;
  double factor_;
  double jitter_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

// The schedules the worker uses (docs/workers.md), each spread by ±20 % jitter.
// Leasing and registering while the server cannot be reached: 0.1 s doubling to 5 s.
Backoff LeaseRetryBackoff(uint64_t seed);
// Delivering results while the server cannot be reached: 0.1 s doubling to 2 s (short,
// because a lease may be as short as 1 s).
Backoff ReportRetryBackoff(uint64_t seed);
// Restarting a persistent handler that keeps dying: 0.5 s doubling to 30 s.
Backoff HandlerRestartBackoff(uint64_t seed);

// Logs an outage once when it starts and once when it ends, not once per try: "server
// unreachable" then "server reachable again after 12.3 s". Not thread-safe: one per loop.
class OutageLog {
 public:
  OutageLog(const Clock& clock, std::string what) : clock_(clock), what_(std::move(what)) {}
  // A try failed. Logs (warn) only the first failure of an outage.
  void Failed(const Status& why);
  // A try succeeded. Logs (info) only when it ends an outage.
  void Succeeded();
  bool in_outage() const { return since_ != 0; }

 private:
  const Clock& clock_;
  std::string what_;
  Micros since_ = 0;  // start of the current outage, 0 when none
  int tries_ = 0;
};

}  // namespace resonance::worker
