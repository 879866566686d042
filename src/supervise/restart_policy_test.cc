#include "supervise/restart_policy.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace resonance::supervise {
namespace {

constexpr Micros kS = kMicrosPerSecond;

TEST(RestartBackoffTest, DoublesFromBaseToMax) {
  // Given the defaults (5 s doubling to 60 s) and a process that crashes at once every
  // time, then the delays are 5, 10, 20, 40, 60, 60.
  SupervisorOptions o;
  RestartBackoff b(o);
  Micros now = 1000 * kS;
  std::vector<Micros> delays;
  for (int i = 0; i < 6; ++i) {
    b.Started(now);
    now += kS;
    delays.push_back(b.Exited(now));
    now += delays.back();
  }
  EXPECT_EQ(delays, (std::vector<Micros>{5 * kS, 10 * kS, 20 * kS, 40 * kS, 60 * kS, 60 * kS}));
}

TEST(RestartBackoffTest, StableRunResetsToBase) {
  // Given three quick crashes (delay now 20 s), when the next run lasts 60 s (stable),
  // then its crash waits the base 5 s again; a run of 59 s would not have reset it.
  SupervisorOptions o;
  RestartBackoff b(o);
  Micros now = 0;
  for (int i = 0; i < 3; ++i) {
    b.Started(now);
    now += kS;
    now += b.Exited(now);
  }
  b.Started(now);
  now += 59 * kS;
  EXPECT_EQ(b.Exited(now), 40 * kS);
  b.Started(now);
  now += 60 * kS;
  EXPECT_EQ(b.Exited(now), 5 * kS);
  b.Started(now);
  EXPECT_EQ(b.Exited(now + kS), 10 * kS);
}

TEST(RestartBackoffTest, ShortConfiguredTimes) {
  // Given base 0.2 s and max 0.5 s, then 0.2, 0.4, 0.5, 0.5.
  SupervisorOptions o;
  o.backoff_base_s = 0.2;
  o.backoff_max_s = 0.5;
  RestartBackoff b(o);
  std::vector<Micros> delays;
  for (int i = 0; i < 4; ++i) {
    b.Started(0);
    delays.push_back(b.Exited(1));
  }
  EXPECT_EQ(delays, (std::vector<Micros>{200'000, 400'000, 500'000, 500'000}));
}

TEST(RestartWindowTest, MoreThanLimitWithinWindowIsOver) {
  // Given the defaults (5 in 10 min): five restarts are within the limit, the sixth
  // within 10 minutes is over it.
  SupervisorOptions o;
  RestartWindow w(o);
  Micros now = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(w.Record(now)) << i;
    now += 60 * kS;
  }
  EXPECT_TRUE(w.Record(now));
  EXPECT_EQ(w.Count(now), 6);
}

TEST(RestartWindowTest, OldRestartsLeaveTheWindow) {
  // Given restarts every 3 minutes, at most 4 fall within any 10 minutes: never over.
  SupervisorOptions o;
  RestartWindow w(o);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(w.Record(i * 180 * kS)) << i;
  EXPECT_EQ(w.Count(19 * 180 * kS), 4);
  // and a restart 11 minutes after the last one finds only itself.
  EXPECT_FALSE(w.Record(19 * 180 * kS + 660 * kS));
  EXPECT_EQ(w.Count(19 * 180 * kS + 660 * kS), 1);
}

TEST(ExitTest, CodeOrSignal) {
  EXPECT_EQ(ExitJson(2 << 8), R"({"code":2})");
  EXPECT_EQ(ExitJson(SIGKILL), R"({"signal":9})");
  EXPECT_EQ(ExitText(3 << 8), "exit 3");
  EXPECT_EQ(ExitText(SIGKILL).rfind("signal 9", 0), 0u);
}

TEST(AlertTest, WritesPoolFileWithContents) {
  // Given an alert for pool "rpa", then DATA_DIR/alerts/rpa_alert.json holds pool,
  // restarts, window_s, last_exit and time, and no temp file is left.
  auto dir = std::filesystem::temp_directory_path() / ("sup-alert-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Alert a{"rpa", 6, 600, SIGKILL, 1'700'000'000LL * kS};
  ASSERT_TRUE(WriteAlert(dir.string(), a).ok());
  std::ifstream f(dir / "alerts" / "rpa_alert.json");
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_EQ(
      text.str(),
      R"({"pool":"rpa","restarts":6,"window_s":600,"last_exit":{"signal":9},"time":"2023-11-14T22:13:20.000000Z"})"
      "\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "alerts" / "rpa_alert.json.tmp"));
  a.last_wait_status = 2 << 8;
  a.restarts = 7;
  ASSERT_TRUE(WriteAlert(dir.string(), a).ok());
  std::ifstream g(dir / "alerts" / "rpa_alert.json");
  std::stringstream again;
  again << g.rdbuf();
  EXPECT_NE(again.str().find(R"("restarts":7,)"), std::string::npos);
  EXPECT_NE(again.str().find(R"("last_exit":{"code":2})"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace resonance::supervise
