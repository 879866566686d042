#include "engine/flow_control.h"

#include <gtest/gtest.h>

namespace resonance {
namespace {

constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;
constexpr Micros kSec = kMicrosPerSecond;

TEST(ParseRateTest, ReadsCountsAndUnits) {
  EXPECT_DOUBLE_EQ(*ParseRate("20/s"), 20);
  EXPECT_DOUBLE_EQ(*ParseRate("1000/min"), 1000.0 / 60);
  EXPECT_DOUBLE_EQ(*ParseRate("3600/h"), 1);
  EXPECT_DOUBLE_EQ(*ParseRate("0.5/second"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseRate("86400/day"), 1);
  for (const char* bad : {"20", "/s", "x/s", "0/s", "-1/s", "20/week", "20/", "1e999/s"}) {
    EXPECT_FALSE(ParseRate(bad).ok()) << bad;
  }
}

TEST(KeyFromPayloadTest, StringsAndNumbersGiveKeys) {
  EXPECT_EQ(KeyFromPayload(R"({"account":"a-1"})", "account"), "a-1");
  EXPECT_EQ(KeyFromPayload(R"({"account":42})", "account"), "42");
  EXPECT_EQ(KeyFromPayload(R"({"account":{"id":1}})", "account"), "");
  EXPECT_EQ(KeyFromPayload(R"({"other":"x"})", "account"), "");
  EXPECT_EQ(KeyFromPayload("not json", "account"), "");
}

class FlowControlTest : public ::testing::Test {
 protected:
  // Queue 1 "q", actions 1 "a" and 2 "b".
  uint32_t Lane(FlowControl& f, uint32_t action, const std::string& key) {
    return f.Attach(1, "q", action, action == 1 ? "a" : "b", key);
  }
  void Ready(FlowControl& f, uint32_t lane, TaskId id, float cost = 1) {
    f.AddReady(lane, {0, kT0, id}, cost);
  }
  std::optional<TaskId> Take(FlowControl& f, Micros now) { return f.Take({1}, {}, now); }
};

TEST_F(FlowControlTest, WithoutLimitsTakesInQueueOrderAcrossLanes) {
  // Given tasks of two actions and keys interleaved by id, then Take gives id order.
  FlowControl f(FlowOptions{});
  EXPECT_FALSE(f.configured());
  uint32_t a = Lane(f, 1, ""), b = Lane(f, 2, "k");
  Ready(f, b, 3);
  Ready(f, a, 1);
  Ready(f, b, 2);
  EXPECT_EQ(f.ReadyCount(1), 3);
  EXPECT_EQ(*Take(f, kT0), 1u);
  EXPECT_EQ(*Take(f, kT0), 2u);
  EXPECT_EQ(*Take(f, kT0), 3u);
  EXPECT_FALSE(Take(f, kT0));
  EXPECT_EQ(f.ReadyCount(1), 0);
}

TEST_F(FlowControlTest, KeyRateHoldsOnlyItsKey) {
  // Given 1/s per key, hot key's tasks first, when taking, then the hot key gives one
  // task a second while the cold key's task is not blocked behind it.
  FlowOptions o;
  o.actions["a"].key_rate = {1, 1};
  FlowControl f(o);
  EXPECT_TRUE(f.configured());
  uint32_t hot = Lane(f, 1, "hot"), cold = Lane(f, 1, "cold");
  Ready(f, hot, 1);
  Ready(f, hot, 2);
  Ready(f, cold, 3);
  EXPECT_EQ(*Take(f, kT0), 1u);
  EXPECT_EQ(*Take(f, kT0), 3u);
  EXPECT_FALSE(Take(f, kT0));
  ASSERT_TRUE(f.NextWake());
  EXPECT_EQ(*f.NextWake(), kT0 + kSec);
  EXPECT_FALSE(f.Wake(kT0 + kSec - 1));
  EXPECT_TRUE(f.Wake(kT0 + kSec));
  EXPECT_EQ(*Take(f, kT0 + kSec), 2u);
  EXPECT_EQ(f.Snapshot(kT0 + kSec, {"", "q"}, [](uint32_t) -> const std::string& {
              static const std::string a = "a";
              return a;
            }).held[FlowControl::kRate],
            1u);
}

TEST_F(FlowControlTest, CostTakesThatManyTokensAndABigCostWaitsForAFullBucket) {
  FlowOptions o;
  o.actions["a"].rate = {10, 10};
  FlowControl f(o);
  uint32_t l = Lane(f, 1, "");
  Ready(f, l, 1, 8);
  Ready(f, l, 2, 50);  // more than the burst: runs once the bucket is full
  Ready(f, l, 3, 1);
  EXPECT_EQ(*Take(f, kT0), 1u);
  EXPECT_FALSE(Take(f, kT0));  // 2 tokens left, needs a full bucket of 10
  ASSERT_TRUE(f.NextWake());
  EXPECT_EQ(*f.NextWake(), kT0 + 800'000);  // 8 tokens at 10/s
  EXPECT_TRUE(f.Wake(kT0 + 800'000));
  EXPECT_EQ(*Take(f, kT0 + 800'000), 2u);  // the bucket owes 40 tokens now
  EXPECT_FALSE(Take(f, kT0 + 800'000));
  EXPECT_EQ(*f.NextWake(), kT0 + 800'000 + 4'100'000);  // back to 1 token: 4.1 s
}

TEST_F(FlowControlTest, ConcurrencySlotFreesOnRelease) {
  FlowOptions o;
  o.queues["q"].concurrency = 1;
  FlowControl f(o);
  uint32_t a = Lane(f, 1, ""), b = Lane(f, 2, "");
  Ready(f, a, 1);
  Ready(f, b, 2);
  EXPECT_EQ(*Take(f, kT0), 1u);
  EXPECT_FALSE(Take(f, kT0));
  EXPECT_FALSE(f.NextWake()) << "a slot wait is not a timed wait";
  f.Release(a, 1);
  EXPECT_EQ(*Take(f, kT0), 2u);
}

TEST_F(FlowControlTest, RecoveredRunningTasksHoldSlots) {
  FlowOptions o;
  o.actions["a"].concurrency = 1;
  FlowControl f(o);
  uint32_t a = Lane(f, 1, "");
  f.AddRunning(a);
  Ready(f, a, 2);
  EXPECT_FALSE(Take(f, kT0));
  f.Release(a, 1);
  EXPECT_EQ(*Take(f, kT0), 2u);
}

TEST_F(FlowControlTest, PauseHoldsTheKeyUntilItEnds) {
  FlowControl f(FlowOptions{});
  uint32_t k = Lane(f, 1, "acct"), other = Lane(f, 1, "x");
  Ready(f, k, 1);
  Ready(f, other, 2);
  f.Pause(k, kT0 + 2 * kSec, kT0);
  auto events = f.TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first, "flow.paused");
  EXPECT_NE(events[0].second.find("\"key\":\"acct\""), std::string::npos);
  EXPECT_EQ(*Take(f, kT0), 2u);
  EXPECT_FALSE(Take(f, kT0 + kSec));
  f.Wake(kT0 + 2 * kSec);
  EXPECT_EQ(*Take(f, kT0 + 2 * kSec), 1u);
}

TEST_F(FlowControlTest, PauseOutlivesTheLastTaskOfItsKey) {
  // Given a paused key whose only task leaves (it retries later), when a task of that
  // key comes back before the pause ends, then it is still held.
  FlowControl f(FlowOptions{});
  uint32_t k = Lane(f, 1, "acct");
  f.Pause(k, kT0 + 5 * kSec, kT0);
  f.Detach(k);
  uint32_t again = Lane(f, 1, "acct");
  Ready(f, again, 7);
  EXPECT_FALSE(Take(f, kT0 + kSec));
  f.Wake(kT0 + 5 * kSec);
  EXPECT_EQ(*Take(f, kT0 + 5 * kSec), 7u);
}

TEST_F(FlowControlTest, LanesAndKeyGatesGoWithTheirLastTask) {
  FlowOptions o;
  o.actions["a"].key_concurrency = 1;
  FlowControl f(o);
  for (int i = 0; i < 1000; ++i) {
    uint32_t l = Lane(f, 1, "user-" + std::to_string(i));
    Ready(f, l, static_cast<TaskId>(i + 1));
    ASSERT_TRUE(Take(f, kT0));
    f.Release(l, static_cast<TaskId>(i + 1));
    f.Detach(l);
  }
  auto s = f.Snapshot(kT0, {"", "q"}, [](uint32_t) -> const std::string& {
    static const std::string a = "a";
    return a;
  });
  EXPECT_TRUE(s.gates.empty()) << s.gates.size() << " key gates left behind";
  EXPECT_EQ(Lane(f, 1, "new"), 1u) << "lane slots are reused";
}

TEST_F(FlowControlTest, BreakerOpensProbesAndCloses) {
  FlowOptions o;
  o.breakers["a"] = {true, 60 * kSec, 4, 0.5, 10 * kSec};
  FlowControl f(o);
  uint32_t a = Lane(f, 1, "");
  uint32_t b = Lane(f, 2, "");
  for (TaskId id = 1; id <= 4; ++id) Ready(f, a, id);
  for (TaskId id = 1; id <= 4; ++id) {
    ASSERT_EQ(*Take(f, kT0), id);
    f.RecordOutcome(a, id, id != 1, kT0);  // 1 ok, 3 failed: 75 % of 4
    f.Release(a, id);
  }
  auto ev = f.TakeEvents();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].first, "breaker.opened");
  Ready(f, a, 10);
  Ready(f, a, 11);
  Ready(f, b, 12);
  EXPECT_EQ(*Take(f, kT0 + kSec), 12u) << "other actions run";
  EXPECT_FALSE(Take(f, kT0 + kSec));
  f.Wake(kT0 + 10 * kSec);
  EXPECT_EQ(*Take(f, kT0 + 10 * kSec), 10u);  // the probe
  EXPECT_FALSE(Take(f, kT0 + 10 * kSec)) << "one probe at a time";
  f.RecordOutcome(a, 10, false, kT0 + 11 * kSec);
  f.Release(a, 10);
  EXPECT_EQ(*Take(f, kT0 + 11 * kSec), 11u);
  ev = f.TakeEvents();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].first, "breaker.half_open");
  EXPECT_EQ(ev[1].first, "breaker.closed");
}

TEST_F(FlowControlTest, BreakerProbeWithoutOutcomeLetsAnotherProbe) {
  FlowOptions o;
  o.breakers["a"] = {true, 60 * kSec, 1, 0.5, kSec};
  FlowControl f(o);
  uint32_t a = Lane(f, 1, "");
  Ready(f, a, 1);
  ASSERT_TRUE(Take(f, kT0));
  f.RecordOutcome(a, 1, true, kT0);
  f.Release(a, 1);
  Ready(f, a, 2);
  Ready(f, a, 3);
  f.Wake(kT0 + kSec);
  EXPECT_EQ(*Take(f, kT0 + kSec), 2u);
  f.Release(a, 2);  // cancelled: no outcome counts
  EXPECT_EQ(*Take(f, kT0 + kSec), 3u) << "the next task probes";
}

TEST_F(FlowControlTest, BreakerNeedsMinAttemptsAndForgetsOldOutcomes) {
  FlowOptions o;
  o.breakers["a"] = {true, 10 * kSec, 3, 0.5, kSec};
  FlowControl f(o);
  uint32_t a = Lane(f, 1, "");
  f.RecordOutcome(a, 1, true, kT0);
  f.RecordOutcome(a, 2, true, kT0 + kSec);
  EXPECT_TRUE(f.TakeEvents().empty()) << "2 attempts < min_attempts 3";
  f.RecordOutcome(a, 3, true, kT0 + 20 * kSec);  // the first two left the window
  EXPECT_TRUE(f.TakeEvents().empty());
}

}  // namespace
}  // namespace resonance
