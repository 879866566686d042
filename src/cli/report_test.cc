#include "cli/report.h"

#include <gtest/gtest.h>

#include "core/time_format.h"

namespace resonance::cli {
namespace {

// 2026-11-22T10:00:00Z
const Micros kT0 = *ParseRfc3339("2026-11-22T10:00:00Z");
constexpr Micros kSec = kMicrosPerSecond;

LedgerRecord Rec(Micros ts, std::string kind, std::string data) {
  static int64_t seq = 0;
  LedgerRecord r;
  r.seq = ++seq;
  r.ts = ts;
  r.kind = std::move(kind);
  r.data = std::move(data);
  return r;
}

// A two-hour window: hour 0 has 3 successes (100 ms, waits 10 ms) and a retry, hour 1
// a dead task (validation); one queue depth series; ledger events for every section.
Report MakeReport() {
  Report r;
  r.hours = 2;
  r.from = kT0;
  r.to = kT0 + 2 * kMicrosPerHour;
  MinuteStats h0, h1;
  for (int i = 0; i < 3; ++i) h0.Record(StatsOutcome::kSucceeded, std::nullopt, 100'000, 10'000);
  h0.Record(StatsOutcome::kRetried, ErrorClass::kTemporary, 100'000, 10'000);
  h1.Record(StatsOutcome::kDead, ErrorClass::kValidation, 100'000, 10'000);
  r.hourly = {h0, h1};
  r.total.Merge(h0);
  r.total.Merge(h1);
  MinuteStats mail = h0, push = h1;
  r.actions = {{"default", "mail", mail}, {"jobs", "push|x", push}};
  r.depth_queues = {"default"};
  r.depth = {{0, 4, 1}};

  std::vector<LedgerRecord> ledger = {
      Rec(kT0 - kSec, "task.dead", R"({"attempt":1,"class":"validation","message":"before window"})"),
      Rec(kT0 + 10 * kSec, "worker.registered", R"({"worker":"w1","pool":"p","pid":1,"host":"h"})"),
      Rec(kT0 + 20 * kSec, "task.failed", R"({"attempt":1,"class":"temporary","message":"flaky","retry_at":null})"),
      Rec(kT0 + 30 * kSec, "worker.deregistered", R"({"worker":"w1"})"),
      Rec(kT0 + 33 * kSec, "worker.registered", R"({"worker":"w1","pool":"p","pid":2,"host":"h"})"),
      Rec(kT0 + 40 * kSec, "worker.lost", R"({"worker":"w1"})"),
      Rec(kT0 + 50 * kSec, "worker.registered", R"({"worker":"w1","pool":"p","pid":3,"host":"h"})"),
      Rec(kT0 + 60 * kSec, "alert.pending",
          R"({"name":"QueueDepth","state":"pending","severity":"warning","labels":{"queue":"default"},"fingerprint":"f1"})"),
      Rec(kT0 + 61 * kSec, "alert.firing",
          R"({"name":"QueueDepth","state":"firing","severity":"warning","labels":{"queue":"default"},"fingerprint":"f1","firing_since":"2026-11-22T10:01:01Z"})"),
      Rec(kT0 + 91 * kSec, "alert.resolved",
          R"({"name":"QueueDepth","state":"resolved","severity":"warning","labels":{"queue":"default"},"fingerprint":"f1"})"),
      Rec(kT0 + 100 * kSec, "alert.firing",
          R"({"name":"DeadLetters","state":"firing","severity":"critical","labels":{"queue":"jobs","team":"ops"},"fingerprint":"f2"})"),
      Rec(kT0 + 110 * kSec, "canary.result", R"({"queue":"default","task_id":"c1","outcome":"ok","latency_s":0.5})"),
      Rec(kT0 + 120 * kSec, "canary.result", R"({"queue":"default","task_id":"c2","outcome":"ok","latency_s":1.5})"),
      Rec(kT0 + 130 * kSec, "canary.result", R"({"queue":"default","task_id":"c3","outcome":"missing"})"),
      Rec(kT0 + 3700 * kSec, "task.dead", R"({"attempt":3,"class":"validation","message":"bad | input"})"),
      Rec(kT0 + 3800 * kSec, "task.dead", R"({"attempt":3,"class":"validation","message":"bad | input"})"),
      Rec(kT0 + 3900 * kSec, "task.dead", R"({"attempt":1,"class":"timeout","message":"slow"})"),
  };
  AddLedger(r, ledger);
  return r;
}

bool Has(const std::string& text, const std::string& want) { return text.find(want) != std::string::npos; }

TEST(ReportTest, MarkdownShowsEverySectionsNumbers) {
  // Given a hand-built report, then the Markdown has the exact numbers of each section.
  const std::string md = RenderMarkdown(MakeReport());
  // 1. Summary
  EXPECT_TRUE(Has(md, "Window: 2026-11-22 10:00:00Z to 2026-11-22 12:00:00Z (2 h)")) << md;
  EXPECT_TRUE(Has(md, "| Success rate | 75.0% |"));
  EXPECT_TRUE(Has(md, "| Finished | 4 |"));
  EXPECT_TRUE(Has(md, "| Succeeded | 3 |"));
  EXPECT_TRUE(Has(md, "| Dead | 1 |"));
  EXPECT_TRUE(Has(md, "| Retried | 1 |"));
  EXPECT_TRUE(Has(md, "| Cancelled | 0 |"));
  EXPECT_TRUE(Has(md, "| Throughput | 2.00 finished per hour |"));
  // Five samples in the bucket (75 ms, 100 ms]: p50 is rank 3, 75 + 25 * 3/5 = 90 ms;
  // waits in (7.5 ms, 10 ms]: 7.5 + 2.5 * 3/5 = 9 ms (DurationHistogram::Quantile).
  EXPECT_TRUE(Has(md, "| Duration p50 / p95 / p99 | 0.090 s / 0.100 s / 0.100 s |")) << md;
  EXPECT_TRUE(Has(md, "| Wait p50 / p95 / p99 | 0.009 s / 0.010 s / 0.010 s |"));
  // 2. Per action (a '|' in a name is escaped)
  EXPECT_TRUE(Has(md, "| default | mail | 3 | 3 | 1 | 0 | 0 | 100.0% | 0.100 s |"));
  EXPECT_TRUE(Has(md, "| jobs | push\\|x | 1 | 0 | 0 | 1 | 0 | 0.0% | 0.100 s |"));
  // 3. Hourly, 4. Latency
  EXPECT_TRUE(Has(md, "| 2026-11-22 10:00 | 3 | 3 | 0 | 100.0% |"));
  EXPECT_TRUE(Has(md, "| 2026-11-22 11:00 | 1 | 0 | 1 | 0.0% |"));
  EXPECT_TRUE(Has(md, "| 2026-11-22 11:00 | 0.100 s | 0.100 s | 0.100 s |"));
  // 5. Queue depth
  EXPECT_TRUE(Has(md, "| Time (UTC) | default |"));
  EXPECT_TRUE(Has(md, "| 2026-11-22 11:00 | 4 |"));
  EXPECT_TRUE(Has(md, "| 2026-11-22 12:00 | 1 |"));
  // 6. By class
  EXPECT_TRUE(Has(md, "| temporary | 1 | 1 |"));
  EXPECT_TRUE(Has(md, "| validation | 1 | 0 |"));
  // 7. Dead letters: the one before the window is not counted
  EXPECT_TRUE(Has(md, "Dead letters: 3\n"));
  EXPECT_TRUE(Has(md, "| validation | bad \\| input | 2 |\n| timeout | slow | 1 |"));
  EXPECT_FALSE(Has(md, "before window"));
  // 8. Workers: a restart after a deregistration (3 s), a loss healed in 10 s
  EXPECT_TRUE(Has(md, "| Registrations | 3 |"));
  EXPECT_TRUE(Has(md, "| Restarts | 2 |"));
  EXPECT_TRUE(Has(md, "| Losses | 1 |"));
  EXPECT_TRUE(Has(md, "| Deregistrations | 1 |"));
  EXPECT_TRUE(Has(md, "| Time to heal mean | 6.5 s |"));
  EXPECT_TRUE(Has(md, "| Time to heal max | 10.0 s |"));
  EXPECT_TRUE(Has(md, "| w1 | restart | 2026-11-22 10:00:30Z | 2026-11-22 10:00:33Z | 3.0 s |"));
  EXPECT_TRUE(Has(md, "| w1 | lost | 2026-11-22 10:00:40Z | 2026-11-22 10:00:50Z | 10.0 s |"));
  // 9. Alerts: one resolved episode, one still firing
  EXPECT_TRUE(Has(md, "| QueueDepth | queue=default | warning | 2026-11-22 10:01:01Z | 2026-11-22 10:01:31Z | 30.0 s |"));
  EXPECT_TRUE(Has(md, "| DeadLetters | queue=jobs, team=ops | critical | 2026-11-22 10:01:40Z | - | firing |"));
  // 10. Canary
  EXPECT_TRUE(Has(md, "| default | 3 | 2 | 0 | 1 | missing | 0.500 s | 1.500 s |"));
  // 11. Top errors: failed + dead
  EXPECT_TRUE(Has(md, "## 11. Top errors\n\n| Class | Message | Count |\n| --- | --- | --- |\n"
                      "| validation | bad \\| input | 2 |\n| temporary | flaky | 1 |\n| timeout | slow | 1 |\n"));
}

TEST(ReportTest, EmptySectionsSayNone) {
  // Given an empty one-hour window, then every section but the window says so.
  Report r;
  r.hours = 1;
  r.from = kT0;
  r.to = kT0 + kMicrosPerHour;
  r.hourly.resize(1);
  const std::string md = RenderMarkdown(r);
  size_t count = 0;
  for (size_t p = md.find("none in this window"); p != std::string::npos;
       p = md.find("none in this window", p + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 11u) << md;
}

TEST(ReportTest, HtmlIsSelfContainedWithCharts) {
  // Given the report, then the HTML has the same numbers, inline SVG charts, escaped
  // text, and nothing external: no scripts, no URLs.
  const std::string html = RenderHtml(MakeReport());
  EXPECT_TRUE(Has(html, "<h2>1. Summary</h2>"));
  EXPECT_TRUE(Has(html, "<h2>11. Top errors</h2>"));
  EXPECT_TRUE(Has(html, "<td>Success rate</td><td>75.0%</td>"));
  EXPECT_TRUE(Has(html, "<td>bad | input</td><td>2</td>"));
  EXPECT_TRUE(Has(html, "Finished tasks per hour"));
  EXPECT_TRUE(Has(html, "Attempt duration per hour"));
  EXPECT_TRUE(Has(html, "Open tasks per queue"));
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_EQ(svgs, 4u);
  EXPECT_FALSE(Has(html, "<script"));
  EXPECT_FALSE(Has(html, "http:"));
  EXPECT_FALSE(Has(html, "https:"));
  EXPECT_FALSE(Has(html, "url("));
}

}  // namespace
}  // namespace resonance::cli
