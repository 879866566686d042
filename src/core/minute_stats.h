#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/task.h"

namespace resonance {

// How one attempt (or a cancellation before any attempt) ended, as task history counts it.
enum class StatsOutcome : uint8_t {
  kSucceeded,  // completed
  kRetried,    // failed, will run again
  kDead,       // failed, to the dead-letter queue
  kCancelled,  // cancelled (queued, or running and then finished)
  kLeased,     // not an end: an attempt started (carries the wait)
};

// A histogram of durations on fixed log-scale buckets: 8 per decade from 1 ms to 1 h
// (bucket i holds values <= Bound(i); the last one holds everything above 1 h). Plain
// value type.
struct DurationHistogram {
  static constexpr int kBuckets = 54;  // 53 bounds (1 ms .. 1 h) + overflow
  // Upper bound of bucket i in microseconds (overflow: INT64_MAX).
  static int64_t Bound(int i);
  static int BucketOf(int64_t micros);

  int64_t count = 0;
  int64_t sum_us = 0;
  int64_t max_us = 0;
  std::array<int64_t, kBuckets> buckets{};

  void Add(int64_t micros);
  void Merge(const DurationHistogram& o);
  // The q-quantile (0 < q <= 1) in seconds, nullopt when empty: the bucket holding the
  // rank ceil(q * count) and linear interpolation between its lower and upper bound
  // (bucket 0 starts at 0; the overflow bucket ends at max_us), capped at max_us.
  std::optional<double> Quantile(double q) const;
  std::optional<double> Mean() const;
};

// Task history for one (minute, queue, action): what ended how, failures and retries
// by error class, attempt durations and waits. Summable: Merge adds another one.
// Stored by the store (one row per key), written in the same transaction as the state
// changes it counts, so it is exactly as durable as they are.
struct MinuteStats {
  int64_t succeeded = 0;
  int64_t retried = 0;
  int64_t dead = 0;
  int64_t cancelled = 0;
  std::array<int64_t, kErrorClassCount> failures{};  // every failed attempt, by class
  std::array<int64_t, kErrorClassCount> retries{};   // failed attempts that run again
  DurationHistogram duration;  // attempts, lease to end
  DurationHistogram wait;      // due to leased

  // Adds one observation. duration/wait < 0 means "none".
  void Record(StatsOutcome outcome, std::optional<ErrorClass> cls, Micros duration, Micros wait);
  void Merge(const MinuteStats& o);
  bool empty() const;

  // Tasks that reached an end state (succeeded, dead or cancelled).
  int64_t finished() const { return succeeded + dead + cancelled; }
  // succeeded / (succeeded + dead); nullopt without either.
  std::optional<double> success_rate() const;
  // (retried + dead) / (succeeded + retried + dead): the share of attempts that failed.
  std::optional<double> failure_rate() const;

  // A compact text form ("v1 n n n ...") for storage, and its reader (nullopt when the
  // text is not one).
  std::string Encode() const;
  static std::optional<MinuteStats> Decode(std::string_view text);
};

// The minute a time falls in (Unix minutes).
inline int64_t MinuteOf(Micros t) { return t / (60 * kMicrosPerSecond); }

}  // namespace resonance
