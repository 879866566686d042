#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace resonance {

// Time in the domain is microseconds since the Unix epoch (UTC). It is what the store
// persists and what RFC 3339 strings are made from.
using Micros = int64_t;
constexpr Micros kMicrosPerSecond = 1'000'000;
constexpr Micros kMicrosPerMilli = 1'000;

inline Micros SecondsToMicros(double s) { return static_cast<Micros>(s * 1e6); }

// Abstract so tests can drive time. SystemClock is the real one. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Micros Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Micros Now() const override;
};

// A clock that only moves when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Micros start = 1'700'000'000LL * kMicrosPerSecond) : now_(start) {}
  Micros Now() const override { return now_.load(); }
  void Advance(Micros d) { now_ += d; }
  void Set(Micros t) { now_ = t; }

 private:
  std::atomic<Micros> now_;
};

}  // namespace resonance
