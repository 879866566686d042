#include "worker/backoff.h"

#include <gtest/gtest.h>

namespace resonance::worker {
namespace {

constexpr Micros kMs = kMicrosPerMilli;

TEST(BackoffTest, DoublesUpToTheCap) {
  // Given 100 ms doubling to 1 s, then the waits are 100, 200, 400, 800, 1000, 1000 ms.
  Backoff b(100 * kMs, 1000 * kMs);
  std::vector<Micros> got;
  for (int i = 0; i < 6; ++i) got.push_back(b.Next());
  EXPECT_EQ(got, (std::vector<Micros>{100 * kMs, 200 * kMs, 400 * kMs, 800 * kMs, 1000 * kMs,
                                      1000 * kMs}));
  EXPECT_EQ(b.failures(), 6);
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff b(100 * kMs, 1000 * kMs, 3.0);
  EXPECT_EQ(b.Next(), 100 * kMs);
  EXPECT_EQ(b.Next(), 300 * kMs);
  b.Reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_EQ(b.Next(), 100 * kMs);
}

TEST(BackoffTest, JitterStaysWithinItsBandAndIsReproducible) {
  Backoff a(1000 * kMs, 8000 * kMs, 2.0, 0.2, 7);
  Backoff b(1000 * kMs, 8000 * kMs, 2.0, 0.2, 7);
  Micros base = 1000 * kMs;
  bool differs = false;
  for (int i = 0; i < 5; ++i) {
    Micros x = a.Next();
    EXPECT_EQ(x, b.Next());
    EXPECT_GE(x, static_cast<Micros>(base * 0.8));
    EXPECT_LE(x, static_cast<Micros>(base * 1.2));
    differs |= x != base;
    base = std::min<Micros>(base * 2, 8000 * kMs);
  }
  EXPECT_TRUE(differs);
}

// Each of the worker's schedules follows its documented base within ±20 %.
void ExpectSchedule(Backoff b, std::vector<Micros> base) {
  for (size_t i = 0; i < base.size(); ++i) {
    Micros got = b.Next();
    EXPECT_GE(got, static_cast<Micros>(base[i] * 0.8)) << "try " << i;
    EXPECT_LE(got, static_cast<Micros>(base[i] * 1.2)) << "try " << i;
  }
}

TEST(BackoffTest, WorkerSchedulesMatchTheDocs) {
  ExpectSchedule(LeaseRetryBackoff(1), {100 * kMs, 200 * kMs, 400 * kMs, 800 * kMs, 1600 * kMs,
                                        3200 * kMs, 5000 * kMs, 5000 * kMs});
  ExpectSchedule(ReportRetryBackoff(1),
                 {100 * kMs, 200 * kMs, 400 * kMs, 800 * kMs, 1600 * kMs, 2000 * kMs, 2000 * kMs});
  ExpectSchedule(HandlerRestartBackoff(1), {500 * kMs, 1000 * kMs, 2000 * kMs, 4000 * kMs,
                                            8000 * kMs, 16000 * kMs, 30000 * kMs, 30000 * kMs});
}

}  // namespace
}  // namespace resonance::worker
