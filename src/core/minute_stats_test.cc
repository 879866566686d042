#include "core/minute_stats.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/baselines.h"

namespace resonance {
namespace {

constexpr Micros kMs = 1000;

TEST(DurationHistogramTest, BoundsAreEightPerDecadeFromOneMillisecondToAnHour) {
  EXPECT_EQ(DurationHistogram::Bound(0), 1000);           // 1 ms
  EXPECT_EQ(DurationHistogram::Bound(8), 10000);          // 10 ms
  EXPECT_EQ(DurationHistogram::Bound(16), 100000);        // 100 ms
  EXPECT_EQ(DurationHistogram::Bound(24), 1000000);       // 1 s
  EXPECT_EQ(DurationHistogram::Bound(4), 3162);           // 10^0.5 ms
  EXPECT_EQ(DurationHistogram::Bound(52), 3600000000LL);  // 1 h
  for (int i = 1; i < DurationHistogram::kBuckets - 1; ++i) {
    EXPECT_LT(DurationHistogram::Bound(i - 1), DurationHistogram::Bound(i)) << i;
  }
  EXPECT_EQ(DurationHistogram::BucketOf(0), 0);
  EXPECT_EQ(DurationHistogram::BucketOf(1000), 0);  // bounds are inclusive
  EXPECT_EQ(DurationHistogram::BucketOf(1001), 1);
  EXPECT_EQ(DurationHistogram::BucketOf(3600000001LL), 53);  // overflow
}

TEST(DurationHistogramTest, QuantilesInterpolateWithinTheBucketOfTheRank) {
  // Ten values in (100 ms, 133.352 ms], ten in (1 s, 1.333521 s], one of 5 s (in
  // (4.216965 s, 5.623413 s]): 21 values.
  DurationHistogram h;
  for (int i = 0; i < 10; ++i) h.Add(120 * kMs);
  for (int i = 0; i < 10; ++i) h.Add(1200 * kMs);
  h.Add(5000 * kMs);
  ASSERT_EQ(h.count, 21);
  // p50: rank ceil(10.5) = 11, the 1st of 10 in (1 s, 1.333521 s]: 1 + 0.1 * 0.333521.
  EXPECT_NEAR(*h.Quantile(0.5), 1.0333521, 1e-6);
  // p95: rank ceil(19.95) = 20, the 10th of 10 there: the bucket's upper bound.
  EXPECT_NEAR(*h.Quantile(0.95), 1.333521, 1e-6);
  // p99: rank 21, the 5 s value's bucket, whose bound 5.623 s is capped at the max, 5 s.
  EXPECT_NEAR(*h.Quantile(0.99), 5.0, 1e-9);
  // p25: rank 6 of the first bucket: 0.1 + 0.6 * 0.033352.
  EXPECT_NEAR(*h.Quantile(0.25), 0.1 + 0.6 * 0.033352, 1e-6);
  EXPECT_NEAR(*h.Mean(), (1.2 + 12 + 5) / 21, 1e-9);
  EXPECT_FALSE(DurationHistogram{}.Quantile(0.5));
}

TEST(DurationHistogramTest, OverflowBucketEndsAtTheLargestValue) {
  // Two values past 1 h: the overflow bucket spans (1 h, 2 h], 2 h being the largest.
  DurationHistogram h;
  h.Add(5400LL * kMicrosPerSecond);
  h.Add(7200LL * kMicrosPerSecond);
  EXPECT_DOUBLE_EQ(*h.Quantile(0.5), 5400.0);  // rank 1 of 2: halfway through
  EXPECT_DOUBLE_EQ(*h.Quantile(1.0), 7200.0);
}

TEST(MinuteStatsTest, RecordCountsOutcomesClassesDurationsAndWaits) {
  MinuteStats s;
  s.Record(StatsOutcome::kLeased, std::nullopt, -1, 5 * kMs);
  s.Record(StatsOutcome::kSucceeded, std::nullopt, 20 * kMs, -1);
  s.Record(StatsOutcome::kRetried, ErrorClass::kTemporary, 30 * kMs, -1);
  s.Record(StatsOutcome::kDead, ErrorClass::kValidation, 40 * kMs, -1);
  s.Record(StatsOutcome::kCancelled, std::nullopt, -1, -1);
  EXPECT_EQ(s.succeeded, 1);
  EXPECT_EQ(s.retried, 1);
  EXPECT_EQ(s.dead, 1);
  EXPECT_EQ(s.cancelled, 1);
  EXPECT_EQ(s.finished(), 3);
  EXPECT_EQ(s.failures[static_cast<size_t>(ErrorClass::kTemporary)], 1);
  EXPECT_EQ(s.failures[static_cast<size_t>(ErrorClass::kValidation)], 1);
  EXPECT_EQ(s.retries[static_cast<size_t>(ErrorClass::kTemporary)], 1);
  EXPECT_EQ(s.retries[static_cast<size_t>(ErrorClass::kValidation)], 0);
  EXPECT_EQ(s.duration.count, 3);
  EXPECT_EQ(s.duration.sum_us, 90 * kMs);
  EXPECT_EQ(s.wait.count, 1);
  EXPECT_DOUBLE_EQ(*s.success_rate(), 0.5);
  EXPECT_DOUBLE_EQ(*s.failure_rate(), 2.0 / 3.0);
  EXPECT_FALSE(MinuteStats{}.success_rate());
  EXPECT_TRUE(MinuteStats{}.empty());
}

TEST(MinuteStatsTest, EncodeDecodeRoundTripsAndMergeAdds) {
  MinuteStats a;
  a.Record(StatsOutcome::kSucceeded, std::nullopt, 20 * kMs, 3 * kMs);
  a.Record(StatsOutcome::kRetried, ErrorClass::kRateLimited, 70 * kMs, -1);
  auto back = MinuteStats::Decode(a.Encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->Encode(), a.Encode());
  EXPECT_EQ(back->retries[static_cast<size_t>(ErrorClass::kRateLimited)], 1);
  MinuteStats b = *back;
  b.Merge(a);
  EXPECT_EQ(b.succeeded, 2);
  EXPECT_EQ(b.duration.count, 4);
  EXPECT_EQ(b.duration.sum_us, 180 * kMs);
  EXPECT_EQ(b.duration.max_us, 70 * kMs);
  for (const std::string& bad :
       std::vector<std::string>{"", "v2 1", "v1", "v1 1 2", "v1 x", a.Encode() + " 1"}) {
    EXPECT_FALSE(MinuteStats::Decode(bad)) << bad;
  }
}

MinuteStats Hour(int succeeded, int dead, int64_t duration_ms, int attempts_with_duration) {
  MinuteStats s;
  s.succeeded = succeeded;
  s.dead = dead;
  for (int i = 0; i < attempts_with_duration; ++i) s.duration.Add(duration_ms * kMs);
  return s;
}

TEST(BaselineTest, MatchesHandComputedMeanAndTwoSigmaAboveTheFloor) {
  // Four hours: success rates 0.9, 1.0, 0.8, 0.9 (10 tasks each).
  // mean 0.9; deviations 0, 0.1, -0.1, 0 -> variance 0.005, sigma 0.0707107;
  // threshold 0.9 - 0.1414214 = 0.7585786 (above the 0.70 floor).
  // Durations: every attempt of an hour takes the same time, 1 s, 1 s, 1 s, 10 s; a
  // lone bucket's p95 is capped at its value, so the hourly p95s are 1, 1, 1, 10:
  // mean 3.25, sigma sqrt((3 * 2.25^2 + 6.75^2) / 4) = 3.8971143; threshold 11.044229.
  std::vector<MinuteStats> hours = {Hour(9, 1, 1000, 10), Hour(10, 0, 1000, 10),
                                    Hour(8, 2, 1000, 10), Hour(9, 1, 10000, 10)};
  BaselineOptions o;
  o.min_hours = 4;
  Baseline b = ComputeBaseline(hours, o);
  EXPECT_EQ(b.success_hours, 4);
  EXPECT_TRUE(b.success_learned);
  EXPECT_NEAR(*b.success_mean, 0.9, 1e-12);
  EXPECT_NEAR(*b.success_stddev, 0.0707107, 1e-6);
  EXPECT_NEAR(b.success_threshold, 0.7585786, 1e-6);
  EXPECT_EQ(b.duration_hours, 4);
  EXPECT_NEAR(*b.p95_mean, 3.25, 1e-9);
  EXPECT_NEAR(*b.p95_stddev, 3.8971143, 1e-6);
  EXPECT_NEAR(*b.p95_threshold, 11.044229, 1e-5);
}

TEST(BaselineTest, FloorHoldsUntilThereIsEnoughHistoryAndBelowIt) {
  BaselineOptions o;
  o.min_hours = 3;
  // Two sample hours: not learned yet: the floor, no duration threshold.
  Baseline young = ComputeBaseline({Hour(10, 0, 50, 10), Hour(10, 0, 50, 10)}, o);
  EXPECT_FALSE(young.success_learned);
  EXPECT_DOUBLE_EQ(young.success_threshold, 0.70);
  EXPECT_NEAR(*young.success_mean, 1.0, 1e-12);
  EXPECT_FALSE(young.p95_threshold);
  // Hours with fewer than min_samples tasks are not samples.
  Baseline sparse = ComputeBaseline({Hour(2, 2, 50, 4), Hour(3, 1, 50, 4), Hour(1, 0, 50, 1)}, o);
  EXPECT_EQ(sparse.success_hours, 0);
  EXPECT_EQ(sparse.duration_hours, 0);
  EXPECT_FALSE(sparse.success_mean);
  // A learned but poor history: mean - 2 sigma below the floor gives the floor.
  Baseline poor = ComputeBaseline({Hour(5, 5, 50, 10), Hour(6, 4, 50, 10), Hour(4, 6, 50, 10)}, o);
  EXPECT_TRUE(poor.success_learned);
  EXPECT_DOUBLE_EQ(poor.success_threshold, 0.70);
}

}  // namespace
}  // namespace resonance
