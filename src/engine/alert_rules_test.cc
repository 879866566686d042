#include "engine/alert_rules.h"

#include <gtest/gtest.h>

#include <set>

namespace resonance {
namespace {

TEST(AlertRulesTest, BuiltinRulesAreValidAndNamedOnce) {
  std::set<std::string> names;
  for (const RuleSpec& r : BuiltinRules()) {
    EXPECT_TRUE(ValidateRule(r).ok()) << r.name << ": " << ValidateRule(r).ToString();
    EXPECT_TRUE(names.insert(r.name).second) << r.name;
    EXPECT_FALSE(r.annotations.empty()) << r.name;
  }
  for (const char* expected : {"SuccessRateBelowBaseline", "DurationAboveBaseline", "QueueDepth",
                               "WorkersOffTarget", "DeadLettersGrowing", "FailureRateHigh",
                               "RateLimitedSpike", "WorkerRestartLimit", "StoreLatencyHigh",
                               "CanaryFailing", "BreakerOpen", "ScheduleGaps", "CredentialExpired"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
}

TEST(AlertRulesTest, ValidateNamesTheFieldThatIsWrong) {
  RuleSpec r;
  r.name = "X";
  r.signal = "queue_length";
  EXPECT_NE(ValidateRule(r).message().find("alerts.rules.X.signal"), std::string::npos);
  r.signal = "queue_depth";
  r.op = "=";
  EXPECT_NE(ValidateRule(r).message().find("alerts.rules.X.op"), std::string::npos);
  r.op = ">";
  r.severity = "page";
  EXPECT_NE(ValidateRule(r).message().find("alerts.rules.X.severity"), std::string::npos);
  r.severity = "critical";
  r.warning_at = 30;
  r.critical_at = 20;
  EXPECT_NE(ValidateRule(r).message().find("warning_at"), std::string::npos);
  r.warning_at = 0;
  r.use_baseline = true;
  EXPECT_NE(ValidateRule(r).message().find("baseline"), std::string::npos);
  r.signal = "success_rate";
  EXPECT_TRUE(ValidateRule(r).ok());
  r.per_action = false;
  EXPECT_FALSE(ValidateRule(r).ok());
}

TEST(AlertRulesTest, RenderTemplateReplacesEveryKnownToken) {
  EXPECT_EQ(RenderTemplate("{{value}} ready in {{queue}} ({{value}}; {{nope}})",
                           {{"value", "25"}, {"queue", "rpa"}}),
            "25 ready in rpa (25; {{nope}})");
  EXPECT_EQ(RenderTemplate("{{queue}}", {{"queue", "{{queue}}"}}), "{{queue}}");  // no loops
}

}  // namespace
}  // namespace resonance
