#include "supervise/up_config.h"

#include <gtest/gtest.h>

namespace resonance::supervise {
namespace {

std::string ErrorOf(const std::string& text) {
  auto r = ParseUpConfig(text, "t.toml");
  return r.ok() ? "ok" : r.status().message();
}

TEST(UpConfigTest, ReadsPoolsAndSupervisorTable) {
  auto c = ParseUpConfig(R"(
listen = "127.0.0.1:0"
data_dir = "d"
[supervisor]
backoff_base_s = 0.2
backoff_max_s = 1
stable_after_s = 2
restart_limit = 3
restart_window_s = 30
stop_grace_s = 5
[[pools]]
name = "rpa"
queues = ["a"]
workers = 3
concurrency = 2
[[pools]]
name = "mail"
)",
                         "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->data_dir, "d");
  ASSERT_EQ(c->pools.size(), 2u);
  EXPECT_EQ(c->pools[0].name, "rpa");
  EXPECT_EQ(c->pools[0].workers, 3);
  EXPECT_EQ(c->pools[1].workers, 1);
  EXPECT_DOUBLE_EQ(c->options.backoff_base_s, 0.2);
  EXPECT_DOUBLE_EQ(c->options.backoff_max_s, 1);
  EXPECT_DOUBLE_EQ(c->options.stable_after_s, 2);
  EXPECT_EQ(c->options.restart_limit, 3);
  EXPECT_DOUBLE_EQ(c->options.restart_window_s, 30);
  EXPECT_DOUBLE_EQ(c->options.stop_grace_s, 5);
}

TEST(UpConfigTest, ErrorsNameTheKey) {
  EXPECT_EQ(ErrorOf("[supervisor]\nbogus = 1\n"), "t.toml: supervisor.bogus: unknown key");
  EXPECT_EQ(ErrorOf("[supervisor]\nbackoff_base_s = \"x\"\n"),
            "t.toml: supervisor.backoff_base_s: must be a number");
  EXPECT_EQ(ErrorOf("[supervisor]\nbackoff_base_s = 10\nbackoff_max_s = 5\n"),
            "t.toml: supervisor.backoff_max_s: must be >= backoff_base_s");
  EXPECT_EQ(ErrorOf("[[pools]]\nworkers = 1\n"), "t.toml: pools[0].name: is required");
  EXPECT_EQ(ErrorOf("[[pools]]\nname = \"a/b\"\n"),
            "t.toml: pools[0].name: must be a string of letters, digits, '_', '-', '.'");
  EXPECT_EQ(ErrorOf("[[pools]]\nname = \"a\"\nworkers = -1\n"),
            "t.toml: pools[0].workers: must be an integer from 0 to 1000");
  EXPECT_EQ(ErrorOf("[[pools]]\nname = \"a\"\n[[pools]]\nname = \"a\"\n"),
            "t.toml: pools[1].name: duplicate pool 'a'");
  EXPECT_EQ(ErrorOf("[[pools]]\nname = \"a\"\nworkerz = 1\n"),
            "t.toml: pools[0].workerz: unknown key");
}

}  // namespace
}  // namespace resonance::supervise
