#include "worker/handler_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace resonance::worker {
namespace {

// The error message of parsing `text`, or "" when it parses.
std::string ErrorOf(const std::string& text) {
  auto r = ParseWorkerConfig(text, "t.toml");
  return r.ok() ? "" : r.status().message();
}

TEST(HandlerConfigTest, ReadsEveryHandlerKey) {
  auto r = ParseWorkerConfig(R"(
listen = "127.0.0.1:8091"      # server keys are not the worker's business
[retry.temporary]
base_s = 1

[handlers."youtube_learn"]
type = "exec"
argv = ["node", "learn.js", "--fast"]
timeout_s = 300
kill_grace_s = 2.5
env = { LANG = "C.UTF-8", MODE = "x" }
dir = "/srv/rpa"
max_output_bytes = 4096

[handlers.fast]
type = "persistent"
argv = ["./fast.py"]

[handlers.canary]
type = "http"
timeout_s = 0.5
)",
                             "t.toml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const HandlerConfig* h = r->Find("youtube_learn");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->type, HandlerType::kExec);
  EXPECT_EQ(h->argv, (std::vector<std::string>{"node", "learn.js", "--fast"}));
  EXPECT_DOUBLE_EQ(h->timeout_s, 300);
  EXPECT_DOUBLE_EQ(h->kill_grace_s, 2.5);
  EXPECT_EQ(h->dir, "/srv/rpa");
  EXPECT_EQ(h->max_output_bytes, 4096u);
  EXPECT_EQ(h->env.size(), 2u);
  const HandlerConfig* fast = r->Find("fast");
  ASSERT_NE(fast, nullptr);
  EXPECT_EQ(fast->type, HandlerType::kPersistent);
  EXPECT_DOUBLE_EQ(fast->timeout_s, 0);     // the task's timeout_s applies
  EXPECT_DOUBLE_EQ(fast->kill_grace_s, 5);  // default
  EXPECT_EQ(fast->max_output_bytes, 1u << 20);
  EXPECT_EQ(r->Find("canary")->type, HandlerType::kHttp);
  EXPECT_EQ(r->Find("nope"), nullptr);
}

TEST(HandlerConfigTest, TypeDefaultsToExec) {
  auto r = ParseWorkerConfig("[handlers.a]\nargv = [\"true\"]\n", "t.toml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->Find("a")->type, HandlerType::kExec);
}

TEST(HandlerConfigTest, NoFileContentMeansNoHandlers) {
  auto r = ParseWorkerConfig("", "t.toml");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->handlers.empty());
}

TEST(HandlerConfigTest, ErrorsNameTheFileAndTheKey) {
  EXPECT_EQ(
      ErrorOf("[handlers.a]\ntype = \"shell\"\n"),
      "t.toml: handlers.\"a\".type: must be one of exec, persistent, noop, sleep, fail, http");
  EXPECT_EQ(ErrorOf("[handlers.a]\nargv = [\"x\"]\ncommand = \"x\"\n"),
            "t.toml: handlers.\"a\".command: unknown key");
  EXPECT_EQ(ErrorOf("[handlers.a]\ntype = \"exec\"\n"),
            "t.toml: handlers.\"a\".argv: is required for exec handlers");
  EXPECT_EQ(ErrorOf("[handlers.a]\ntype = \"persistent\"\nargv = []\n"),
            "t.toml: handlers.\"a\".argv: must name a program");
  EXPECT_EQ(ErrorOf("[handlers.a]\nargv = \"x y\"\n"),
            "t.toml: handlers.\"a\".argv: must be an array of strings");
  EXPECT_EQ(ErrorOf("[handlers.a]\ntype = \"noop\"\nargv = [\"x\"]\n"),
            "t.toml: handlers.\"a\".argv: only for exec and persistent handlers, not noop");
  EXPECT_EQ(ErrorOf("[handlers.a]\nargv = [\"x\"]\ntimeout_s = 0\n"),
            "t.toml: handlers.\"a\".timeout_s: must be a number from 0.001 to 604800");
  EXPECT_EQ(ErrorOf("[handlers.a]\nargv = [\"x\"]\ntimeout_s = \"5\"\n"),
            "t.toml: handlers.\"a\".timeout_s: must be a number");
  EXPECT_EQ(ErrorOf("[handlers.a]\nargv = [\"x\"]\nenv = { A = 1 }\n"),
            "t.toml: handlers.\"a\".env.A: must be a string");
  EXPECT_EQ(ErrorOf("[handlers.a]\nargv = [\"x\"]\nmax_output_bytes = 10\n"),
            "t.toml: handlers.\"a\".max_output_bytes: must be an integer from 1024 to 67108864");
  EXPECT_EQ(ErrorOf("handlers = 5\n"),
            "t.toml: handlers: must be a table of [handlers.\"ACTION\"] tables");
  EXPECT_EQ(ErrorOf("[handlers]\na = 5\n"), "t.toml: handlers.\"a\": must be a table");
}

TEST(HandlerConfigTest, TomlSyntaxErrorsNameTheFile) {
  std::string msg = ErrorOf("[handlers.a\nargv = [\"x\"]\n");
  EXPECT_EQ(msg.rfind("t.toml: ", 0), 0u) << msg;
}

TEST(HandlerConfigTest, ReadsPoolDefaultsAndLeavesTheRestToTheSupervisor) {
  auto r = ParseWorkerConfig(R"(
[[pools]]
name = "rpa"
queues = ["rpa", "rpa-slow"]
workers = 2
concurrency = 3
[[pools]]
name = "bulk"
)",
                             "t.toml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const PoolConfig* rpa = r->FindPool("rpa");
  ASSERT_NE(rpa, nullptr);
  EXPECT_EQ(rpa->queues, (std::vector<std::string>{"rpa", "rpa-slow"}));
  EXPECT_EQ(rpa->concurrency, 3);
  EXPECT_EQ(r->FindPool("bulk")->concurrency, 0);
  EXPECT_EQ(r->FindPool("other"), nullptr);
  EXPECT_EQ(ErrorOf("[[pools]]\nname = \"a\"\nconcurrency = 0\n"),
            "t.toml: pools[0].concurrency: must be an integer from 1 to 1000");
}

TEST(HandlerConfigTest, LoadsAFileAndReportsAMissingOne) {
  auto missing = LoadWorkerConfig("/nonexistent/resonance.toml");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  char path[] = "/tmp/resonance-config-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "[handlers.n]\ntype = \"noop\"\n";
  auto r = LoadWorkerConfig(path);
  std::remove(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->Find("n")->type, HandlerType::kNoop);
}

}  // namespace
}  // namespace resonance::worker
