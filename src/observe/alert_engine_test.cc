#include "observe/alert_engine.h"

#include <gtest/gtest.h>

namespace resonance::alerts {
namespace {

constexpr Micros kS = kMicrosPerSecond;

class RecordingSink : public Sink {
 public:
  void Deliver(const Alert& a) override { got.push_back(a); }
  void Refresh(const std::vector<Alert>& firing) override { refreshed = firing; }
  std::string name() const override { return "recording"; }
  std::vector<Alert> got;
  std::vector<Alert> refreshed;
};

Observation Obs(bool active, std::string severity = "warning", double value = 1,
                std::string queue = "q") {
  Observation o;
  o.rule = "QueueDepth";
  o.labels = {{"queue", std::move(queue)}};
  o.active = active;
  o.severity = std::move(severity);
  o.value = value;
  o.threshold = 6;
  o.annotations = {{"summary", "deep"}};
  return o;
}

class AlertEngineTest : public ::testing::Test {
 protected:
  AlertEngineTest()
      : engine_({&sink_}, [this](const Alert& a, const std::string& kind) {
          transitions_.push_back(kind + " " + a.severity);
        }) {}
  void Round(Micros t, std::vector<Observation> obs) {
    engine_.Evaluate(t, obs, {{"QueueDepth", Timing{10 * kS, 30 * kS}}});
  }
  RecordingSink sink_;
  std::vector<std::string> transitions_;
  AlertEngine engine_;
};

TEST_F(AlertEngineTest, PendingThenFiringAfterForThenResolvedAfterHold) {
  Round(0, {Obs(true)});
  EXPECT_EQ(transitions_, std::vector<std::string>{"pending warning"});
  ASSERT_EQ(engine_.Active().size(), 1u);
  EXPECT_EQ(engine_.Active()[0].state, AlertState::kPending);
  EXPECT_TRUE(sink_.got.empty());  // pending is not delivered
  Round(9 * kS, {Obs(true)});
  EXPECT_EQ(transitions_.size(), 1u);
  Round(10 * kS, {Obs(true)});
  EXPECT_EQ(transitions_.back(), "firing warning");
  ASSERT_EQ(sink_.got.size(), 1u);
  EXPECT_EQ(sink_.got[0].state, AlertState::kFiring);
  EXPECT_EQ(sink_.got[0].firing_since, 10 * kS);
  EXPECT_EQ(sink_.got[0].active_since, 0);
  EXPECT_EQ(engine_.FiringCount("QueueDepth", "warning"), 1);
  // Clear, but not for the hold time: still firing, nothing sent.
  Round(20 * kS, {Obs(false)});
  Round(49 * kS, {});
  EXPECT_EQ(sink_.got.size(), 1u);
  EXPECT_EQ(engine_.Active()[0].state, AlertState::kFiring);
  Round(50 * kS, {});
  ASSERT_EQ(sink_.got.size(), 2u);
  EXPECT_EQ(sink_.got[1].state, AlertState::kResolved);
  EXPECT_EQ(sink_.got[1].resolved_at, 50 * kS);
  EXPECT_TRUE(engine_.Active().empty());
  EXPECT_EQ(transitions_.back(), "resolved warning");
  // History: newest first.
  auto h = engine_.History();
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].state, AlertState::kResolved);
  EXPECT_EQ(h[2].state, AlertState::kPending);
}

TEST_F(AlertEngineTest, AConditionThatReturnsWithinTheHoldDoesNotFlap) {
  Round(0, {Obs(true)});
  Round(10 * kS, {Obs(true)});  // firing
  Round(15 * kS, {Obs(false)});
  Round(30 * kS, {Obs(true)});   // back within 30 s: still the same firing alert
  Round(55 * kS, {Obs(false)});  // clear again: the hold starts over
  Round(80 * kS, {Obs(false)});
  EXPECT_EQ(sink_.got.size(), 1u);
  Round(85 * kS, {Obs(false)});
  EXPECT_EQ(sink_.got.size(), 2u);
  EXPECT_EQ(sink_.got[1].state, AlertState::kResolved);
}

TEST_F(AlertEngineTest, PendingThatClearsIsForgottenWithoutNotification) {
  Round(0, {Obs(true)});
  Round(5 * kS, {Obs(false)});
  EXPECT_TRUE(engine_.Active().empty());
  EXPECT_TRUE(sink_.got.empty());
  Round(20 * kS, {Obs(true)});  // a new episode starts pending again
  EXPECT_EQ(engine_.Active()[0].active_since, 20 * kS);
}

TEST_F(AlertEngineTest, SeverityChangesWhileFiringAreDeliveredAgain) {
  Round(0, {Obs(true, "warning", 8)});
  Round(10 * kS, {Obs(true, "warning", 12)});
  Round(11 * kS, {Obs(true, "critical", 40)});
  Round(12 * kS, {Obs(true, "critical", 39)});  // same band: nothing new
  Round(13 * kS, {Obs(true, "warning", 10)});
  ASSERT_EQ(sink_.got.size(), 3u);
  EXPECT_EQ(sink_.got[0].severity, "warning");
  EXPECT_EQ(sink_.got[1].severity, "critical");
  EXPECT_EQ(sink_.got[1].value, 40);
  EXPECT_EQ(sink_.got[2].severity, "warning");
  EXPECT_EQ(engine_.FiringByNameAndSeverity(),
            (std::map<std::pair<std::string, std::string>, int>{{{"QueueDepth", "warning"}, 1}}));
}

TEST_F(AlertEngineTest, SubjectsAreSeparateAlertsWithStableFingerprints) {
  Round(0, {Obs(true, "warning", 7, "a"), Obs(true, "warning", 7, "b")});
  auto active = engine_.Active();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_NE(active[0].fingerprint, active[1].fingerprint);
  EXPECT_EQ(active[0].fingerprint, Fingerprint("QueueDepth", {{"queue", "a"}}));
  EXPECT_EQ(active[0].fingerprint.size(), 16u);
  Round(10 * kS, {Obs(true, "warning", 7, "a")});  // b cleared while pending: gone
  active = engine_.Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].labels, (Labels{{"queue", "a"}}));
  EXPECT_EQ(active[0].state, AlertState::kFiring);
  engine_.Refresh();
  ASSERT_EQ(sink_.refreshed.size(), 1u);
  EXPECT_EQ(sink_.refreshed[0].fingerprint, active[0].fingerprint);
}

TEST(FingerprintTest, DependsOnNameAndEveryLabel) {
  const std::string f = Fingerprint("X", {{"queue", "a"}});
  EXPECT_EQ(f, Fingerprint("X", {{"queue", "a"}}));
  EXPECT_NE(f, Fingerprint("Y", {{"queue", "a"}}));
  EXPECT_NE(f, Fingerprint("X", {{"queue", "b"}}));
  EXPECT_NE(f, Fingerprint("X", {{"queu", "ea"}}));  // separators count
  EXPECT_NE(f, Fingerprint("X", {}));
}

}  // namespace
}  // namespace resonance::alerts
