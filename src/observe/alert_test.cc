#include "observe/alert.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace resonance::alerts {
namespace {

constexpr Micros kT0 = 1795370400000000;  // 2026-11-22T18:00:00Z
constexpr Micros kT1 = 1795370460000000;  // 2026-11-22T18:01:00Z
constexpr Micros kT2 = 1795370850000000;  // 2026-11-22T18:07:30Z

Alert QueueDepthCritical() {
  Alert a;
  a.name = "QueueDepthCritical";
  a.severity = "critical";
  a.labels = {{"queue", "rpa"}};
  a.annotations = {{"description", "Ready tasks in rpa: 25"},
                   {"summary", "25 ready tasks in queue rpa (critical at 21 or more)"}};
  a.state = AlertState::kFiring;
  a.value = 25;
  a.threshold = 21;
  a.active_since = kT0;
  a.firing_since = kT1;
  a.fingerprint = Fingerprint(a.name, a.labels);
  return a;
}

TEST(AlertTest, StateNames) {
  EXPECT_STREQ(AlertStateName(AlertState::kPending), "pending");
  EXPECT_STREQ(AlertStateName(AlertState::kFiring), "firing");
  EXPECT_STREQ(AlertStateName(AlertState::kResolved), "resolved");
}

TEST(AlertTest, FingerprintIsFnv1a64OverNameAndLabelsAsHex) {
  // Given known inputs, then the fingerprint is FNV-1a 64 of name, 0xff, key, 0xff,
  // value..., as 16 lowercase hex digits (values computed independently).
  EXPECT_EQ(Fingerprint("", {}), "cbf29ce484222325");  // the FNV-1a offset basis
  EXPECT_EQ(Fingerprint("QueueDepthCritical", {{"queue", "rpa"}}), "16802cc81ace4792");
  EXPECT_EQ(Fingerprint("SuccessRateLow", {{"action", "send"}, {"queue", "mail"}}),
            "ca39425fd9ec0890");
}

TEST(AlertTest, FingerprintIsStableAndSensitive) {
  // Given the same name and labels in any order, then the same fingerprint; given a
  // change to the name, a key or a value, or bytes moved across a separator, then
  // another one.
  const std::string base = Fingerprint("QueueDepthCritical", {{"queue", "rpa"}});
  EXPECT_EQ(Fingerprint("QueueDepthCritical", {{"queue", "rpa"}}), base);
  EXPECT_EQ(Fingerprint("X", {{"a", "1"}, {"b", "2"}}), Fingerprint("X", {{"b", "2"}, {"a", "1"}}));
  std::set<std::string> seen = {
      base,
      Fingerprint("QueueDepthWarning", {{"queue", "rpa"}}),
      Fingerprint("QueueDepthCritical", {{"queue", "rpb"}}),
      Fingerprint("QueueDepthCritical", {{"queues", "rpa"}}),
      Fingerprint("QueueDepthCritical", {}),
      Fingerprint("QueueDepthCritical", {{"queue", "rpa"}, {"severity", "critical"}}),
      Fingerprint("a", {{"b", "c"}}),
      Fingerprint("ab", {{"", "c"}}),
      Fingerprint("a", {{"bc", ""}}),
  };
  EXPECT_EQ(seen.size(), 9u);
  for (const std::string& f : seen) {
    ASSERT_EQ(f.size(), 16u);
    EXPECT_EQ(f.find_first_not_of("0123456789abcdef"), std::string::npos) << f;
  }
}

TEST(AlertTest, JsonOfAFiringAlertIsExact) {
  EXPECT_EQ(AlertJson(QueueDepthCritical()),
            R"j({"name":"QueueDepthCritical","state":"firing","severity":"critical",)j"
            R"j("labels":{"queue":"rpa"},"annotations":{"description":"Ready tasks in rpa: 25",)j"
            R"j("summary":"25 ready tasks in queue rpa (critical at 21 or more)"},)j"
            R"j("value":25,"threshold":21,"active_since":"2026-11-22T18:00:00.000000Z",)j"
            R"j("firing_since":"2026-11-22T18:01:00.000000Z","resolved_at":null,)j"
            R"j("fingerprint":"16802cc81ace4792"})j");
}

TEST(AlertTest, JsonOfPendingAndResolvedAlertsIsExact) {
  // Given a pending alert without a fingerprint, then firing_since and resolved_at are
  // null and the fingerprint is computed; given a resolved one, then all times show.
  Alert a;
  a.name = "SuccessRateLow";
  a.severity = "warning";
  a.labels = {{"action", "send"}, {"queue", "mail"}};
  a.value = 0.625;
  a.threshold = 0.7;
  a.active_since = kT0;
  EXPECT_EQ(AlertJson(a),
            R"j({"name":"SuccessRateLow","state":"pending","severity":"warning",)j"
            R"j("labels":{"action":"send","queue":"mail"},"annotations":{},)j"
            R"j("value":0.625,"threshold":0.7,"active_since":"2026-11-22T18:00:00.000000Z",)j"
            R"j("firing_since":null,"resolved_at":null,"fingerprint":"ca39425fd9ec0890"})j");

  Alert r = QueueDepthCritical();
  r.state = AlertState::kResolved;
  r.resolved_at = kT2;
  r.value = 4;
  r.annotations = {{"summary", "say \"hi\"\n"}};
  EXPECT_EQ(AlertJson(r),
            R"j({"name":"QueueDepthCritical","state":"resolved","severity":"critical",)j"
            R"j("labels":{"queue":"rpa"},"annotations":{"summary":"say \"hi\"\n"},)j"
            R"j("value":4,"threshold":21,"active_since":"2026-11-22T18:00:00.000000Z",)j"
            R"j("firing_since":"2026-11-22T18:01:00.000000Z",)j"
            R"j("resolved_at":"2026-11-22T18:07:30.000000Z","fingerprint":"16802cc81ace4792"})j");
}

TEST(AlertTest, TextIsOneLineWithStateNameSeverityLabelsAndSummary) {
  Alert a = QueueDepthCritical();
  EXPECT_EQ(AlertText(a),
            "[FIRING] QueueDepthCritical (critical) queue=rpa: 25 ready tasks in queue rpa "
            "(critical at 21 or more)");

  // alertname and severity labels are not repeated; other labels keep their order.
  a.labels = {{"alertname", "QueueDepthCritical"},
              {"pool", "p1"},
              {"queue", "rpa"},
              {"severity", "critical"}};
  a.state = AlertState::kResolved;
  EXPECT_EQ(AlertText(a),
            "[RESOLVED] QueueDepthCritical (critical) pool=p1 queue=rpa: 25 ready tasks in "
            "queue rpa (critical at 21 or more)");

  // No summary: no colon. Control characters become spaces.
  Alert p;
  p.name = "WorkersOffTarget";
  p.severity = "warning";
  p.labels = {{"pool", "a\nb"}};
  p.annotations = {{"description", "not shown"}};
  EXPECT_EQ(AlertText(p), "[PENDING] WorkersOffTarget (warning) pool=a b");
  p.labels = {};
  p.annotations = {{"summary", "two\r\nlines"}};
  EXPECT_EQ(AlertText(p), "[PENDING] WorkersOffTarget (warning): two  lines");
}

}  // namespace
}  // namespace resonance::alerts
