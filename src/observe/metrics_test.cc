#include "observe/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace resonance::metrics {
namespace {

TEST(MetricsTest, CounterFamilyRendersHelpTypeAndSortedChildren) {
  Registry r;
  auto& f = r.AddCounter("resonance_things_total", "Things done.", {"queue", "action"});
  f.With({"q2", "b"}).Inc(3);
  f.With({"q1", "a"}).Inc();
  f.With({"q1", "a"}).Inc();
  EXPECT_EQ(r.Render(),
            "# HELP resonance_things_total Things done.\n"
            "# TYPE resonance_things_total counter\n"
            "resonance_things_total{queue=\"q1\",action=\"a\"} 2\n"
            "resonance_things_total{queue=\"q2\",action=\"b\"} 3\n");
}

TEST(MetricsTest, GaugeWithoutLabelsAndNumberForms) {
  Registry r;
  auto& g = r.AddGauge("resonance_g", "A gauge.");
  g.With({}).Set(0.25);
  auto& h = r.AddGauge("resonance_h", "Another.", {"k"});
  h.With({"inf"}).Set(1.0 / 0.0);
  h.With({"whole"}).Set(3);
  EXPECT_EQ(r.Render(),
            "# HELP resonance_g A gauge.\n# TYPE resonance_g gauge\nresonance_g 0.25\n"
            "# HELP resonance_h Another.\n# TYPE resonance_h gauge\n"
            "resonance_h{k=\"inf\"} +Inf\nresonance_h{k=\"whole\"} 3\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry r;
  auto& f = r.AddHistogram("resonance_d_seconds", "Durations.", {"q"}, {0.125, 1, 0.5});
  Histogram& h = f.With({"x"});
  for (double v : {0.0625, 0.125, 0.25, 0.75, 2.0}) h.Observe(v);
  EXPECT_EQ(r.Render(),
            "# HELP resonance_d_seconds Durations.\n"
            "# TYPE resonance_d_seconds histogram\n"
            "resonance_d_seconds_bucket{q=\"x\",le=\"0.125\"} 2\n"
            "resonance_d_seconds_bucket{q=\"x\",le=\"0.5\"} 3\n"
            "resonance_d_seconds_bucket{q=\"x\",le=\"1\"} 4\n"
            "resonance_d_seconds_bucket{q=\"x\",le=\"+Inf\"} 5\n"
            "resonance_d_seconds_sum{q=\"x\"} 3.1875\n"
            "resonance_d_seconds_count{q=\"x\"} 5\n");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Registry r;
  auto& f = r.AddCounter("resonance_e_total", "Help with \\ and\nnewline.", {"v"});
  f.With({"a\"b\\c\nd"}).Inc();
  EXPECT_EQ(r.Render(),
            "# HELP resonance_e_total Help with \\\\ and\\nnewline.\n"
            "# TYPE resonance_e_total counter\n"
            "resonance_e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTest, OnScrapeRunsBeforeEachRenderAndClearDropsChildren) {
  Registry r;
  auto& g = r.AddGauge("resonance_depth", "Depth.", {"queue"});
  int calls = 0;
  r.OnScrape([&] {
    ++calls;
    g.Clear();
    g.With({"q" + std::to_string(calls)}).Set(calls);
  });
  EXPECT_NE(r.Render().find("resonance_depth{queue=\"q1\"} 1\n"), std::string::npos);
  std::string second = r.Render();
  EXPECT_EQ(second.find("q1"), std::string::npos);
  EXPECT_NE(second.find("resonance_depth{queue=\"q2\"} 2\n"), std::string::npos);
}

TEST(MetricsTest, WithReturnsTheSameChildForTheSameValues) {
  Registry r;
  auto& f = r.AddCounter("resonance_s_total", "S.", {"a"});
  Counter* c1 = &f.With({"x"});
  Counter* c2 = &f.With(std::vector<std::string>{"x"});
  EXPECT_EQ(c1, c2);
  EXPECT_NE(c1, &f.With({"y"}));
}

TEST(MetricsTest, ConcurrentIncrementsAreAllCounted) {
  Registry r;
  auto& f = r.AddCounter("resonance_c_total", "C.", {"t"});
  auto& h = r.AddHistogram("resonance_h_seconds", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        f.With({"same"}).Inc();
        h.With({}).Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(f.With({"same"}).value(), 40000u);
  auto s = h.With({}).Read();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_DOUBLE_EQ(s.sum, 20000.0);
}

TEST(MetricsTest, BoundedLabelFoldsValuesPastTheLimitIntoOther) {
  BoundedLabel b(2);
  EXPECT_EQ(b.Map("a"), "a");
  EXPECT_EQ(b.Map("b"), "b");
  EXPECT_EQ(b.Map("c"), "other");
  EXPECT_EQ(b.Map("a"), "a");
  EXPECT_EQ(b.Map("d"), "other");
}

TEST(MetricsTest, ScrapedCounterRendersAsCounterWithFractionalValue) {
  Registry r;
  auto& c = r.AddScrapedCounter("resonance_cpu_seconds_total", "CPU.");
  r.OnScrape([&] { c.With({}).Set(1.5); });
  EXPECT_EQ(r.Render(),
            "# HELP resonance_cpu_seconds_total CPU.\n"
            "# TYPE resonance_cpu_seconds_total counter\n"
            "resonance_cpu_seconds_total 1.5\n");
}

TEST(MetricsTest, RegisteringANameTwiceAborts) {
  Registry r;
  r.AddCounter("resonance_dup_total", "D.");
  EXPECT_DEATH(r.AddGauge("resonance_dup_total", "D."), "registered twice");
}

TEST(MetricsTest, WrongNumberOfLabelValuesAborts) {
  Registry r;
  auto& f = r.AddCounter("resonance_w_total", "W.", {"a", "b"});
  EXPECT_DEATH(f.With({"only-one"}), "wants 2 label values");
}

}  // namespace
}  // namespace resonance::metrics
