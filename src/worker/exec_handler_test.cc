#include "worker/exec_handler.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "worker/test_support.h"

namespace resonance::worker {
namespace {

using testing::AllGone;
using testing::ReadPids;
using testing::ScratchDir;

LeasedTask Task(std::string payload = "{\"x\":1}") {
  LeasedTask t;
  t.id = "0pa3k1x9q2b4c";
  t.queue = "default";
  t.action = "act";
  t.payload = std::move(payload);
  t.attempt = 2;
  t.timeout_s = 30;
  t.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  t.lease = "L";
  return t;
}

HandlerConfig Sh(const std::string& script, double kill_grace_s = 2) {
  HandlerConfig c;
  c.action = "act";
  c.type = HandlerType::kExec;
  c.argv = {"/bin/sh", "-c", script};
  c.kill_grace_s = kill_grace_s;
  return c;
}

// ---------------------------------------------------------------- fake spawner

// Records what it is asked to start; each "child" is a set of pipes the test drives.
// A child dies on SIGKILL, and on SIGTERM unless told to ignore it.
class FakeSpawner final : public Spawner {
 public:
  struct FakeChild {
    SpawnSpec spec;
    int stdin_read = -1, stdout_write = -1, stderr_write = -1, progress_write = -1, exit_write = -1;
    bool exited = false;
    int status = 0;
    std::vector<int> signals;
  };

  Result<Child> Spawn(const SpawnSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    FakeChild fc;
    fc.spec = spec;
    Child c;
    c.pid = 4242;
    auto pipe_pair = [](int& ours, int& theirs, bool child_reads) {
      int p[2];
      EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
      ours = child_reads ? p[1] : p[0];
      theirs = child_reads ? p[0] : p[1];
      ::fcntl(ours, F_SETFL, O_NONBLOCK);
    };
    pipe_pair(c.stdin_fd, fc.stdin_read, true);
    pipe_pair(c.stdout_fd, fc.stdout_write, false);
    pipe_pair(c.stderr_fd, fc.stderr_write, false);
    if (spec.progress_pipe) pipe_pair(c.progress_fd, fc.progress_write, false);
    pipe_pair(c.exit_fd, fc.exit_write, false);
    children_.push_back(fc);
    if (on_spawn) on_spawn(children_.back());
    return c;
  }
  void SignalGroup(const Child&, int sig) override {
    std::lock_guard<std::mutex> lock(mu_);
    FakeChild& fc = children_.back();
    fc.signals.push_back(sig);
    if (sig == SIGKILL || (sig == SIGTERM && !ignore_term)) ExitLocked(fc, sig);
  }
  bool Exited(const Child&) override {
    std::lock_guard<std::mutex> lock(mu_);
    return children_.back().exited;
  }
  int Reap(const Child&) override {
    std::lock_guard<std::mutex> lock(mu_);
    return children_.back().status;
  }

  // Test side: the child writes, then exits with a waitpid status.
  static void Write(int fd, std::string_view s) {
    ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  static void ExitLocked(FakeChild& fc, int status) {
    if (fc.exited) return;
    fc.exited = true;
    fc.status = status;
    for (int* fd : {&fc.stdout_write, &fc.stderr_write, &fc.progress_write}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    Write(fc.exit_write, "x");
  }
  std::vector<int> Signals() {
    std::lock_guard<std::mutex> lock(mu_);
    return children_.empty() ? std::vector<int>{} : children_.back().signals;
  }
  FakeChild Last() {
    std::lock_guard<std::mutex> lock(mu_);
    return children_.back();
  }
  // What the child got on stdin (read after the run).
  std::string Stdin() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    char buf[4096];
    ssize_t n;
    ::fcntl(children_.back().stdin_read, F_SETFL, O_NONBLOCK);
    while ((n = ::read(children_.back().stdin_read, buf, sizeof buf)) > 0)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }
  ~FakeSpawner() override {
    for (auto& fc : children_) {
      for (int fd :
           {fc.stdin_read, fc.stdout_write, fc.stderr_write, fc.progress_write, fc.exit_write}) {
        if (fd >= 0) ::close(fd);
      }
    }
  }

  std::function<void(FakeChild&)> on_spawn;
  bool ignore_term = false;

 private:
  std::mutex mu_;
  std::vector<FakeChild> children_;
};

bool HasEnv(const SpawnSpec& spec, const std::string& kv) {
  return std::find(spec.env.begin(), spec.env.end(), kv) != spec.env.end();
}
std::string EnvValue(const SpawnSpec& spec, const std::string& name) {
  for (const auto& kv : spec.env) {
    if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
  }
  return "";
}

TEST(ExecHandlerTest, StartsTheProgramWithPayloadEnvAndProgressPipe) {
  // Given a child that prints a result and a progress line and exits 0, then the task
  // completes with that result, and the spawn carried the protocol's env and stdin.
  FakeSpawner spawner;
  spawner.on_spawn = [](FakeSpawner::FakeChild& fc) {
    FakeSpawner::Write(fc.stdout_write, "{\"answer\":42}\n");
    FakeSpawner::Write(fc.progress_write, "{\"progress\":0.5}\n");
    FakeSpawner::ExitLocked(fc, 0);
  };
  HandlerConfig config = Sh("unused");
  config.argv = {"prog", "--flag"};
  config.dir = "/srv";
  config.env = {{"LANG", "C.UTF-8"}};
  ExecHandler handler(config, spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 30);
  Outcome o = handler.Run(Task(), ctx);
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.result, "{\"answer\":42}");
  EXPECT_EQ(ctx.TakeProgress().value_or(""), "{\"progress\":0.5}");
  EXPECT_EQ(spawner.Stdin(), "{\"x\":1}");
  const SpawnSpec spec = spawner.Last().spec;
  EXPECT_EQ(spec.argv, (std::vector<std::string>{"prog", "--flag"}));
  EXPECT_EQ(spec.dir, "/srv");
  EXPECT_TRUE(spec.progress_pipe);
  EXPECT_TRUE(HasEnv(spec, "RESONANCE_TASK_ID=0pa3k1x9q2b4c"));
  EXPECT_TRUE(HasEnv(spec, "RESONANCE_ATTEMPT=2"));
  EXPECT_TRUE(HasEnv(spec, "RESONANCE_WORKER_ID=w1"));
  EXPECT_TRUE(HasEnv(spec, "LANG=C.UTF-8"));
  EXPECT_EQ(EnvValue(spec, "TRACEPARENT").substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  const std::string tmp = EnvValue(spec, "RESONANCE_TMPDIR");
  EXPECT_FALSE(tmp.empty());
  EXPECT_FALSE(std::filesystem::exists(tmp)) << "temp dir left behind: " << tmp;
  // The group is swept for leftovers after the exit.
  EXPECT_EQ(spawner.Signals(), (std::vector<int>{SIGKILL}));
}

TEST(ExecHandlerTest, CredentialsArriveAsEnvVariables) {
  // Given a task whose lease carried credentials, then the child's env holds each as
  // RESONANCE_CREDENTIAL_<NAME> (upper-cased, other characters as '_').
  FakeSpawner spawner;
  spawner.on_spawn = [](FakeSpawner::FakeChild& fc) { FakeSpawner::ExitLocked(fc, 0); };
  ExecHandler handler(Sh("unused"), spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 30);
  LeasedTask task = Task();
  task.credentials = {{"api.token-2", "s3cret value"}, {"DB", "pw=1"}};
  Outcome o = handler.Run(task, ctx);
  ASSERT_TRUE(o.ok) << o.message;
  const SpawnSpec spec = spawner.Last().spec;
  EXPECT_EQ(EnvValue(spec, "RESONANCE_CREDENTIAL_API_TOKEN_2"), "s3cret value");
  EXPECT_EQ(EnvValue(spec, "RESONANCE_CREDENTIAL_DB"), "pw=1");
  EXPECT_EQ(CredentialEnvName("a.b-c_D9"), "RESONANCE_CREDENTIAL_A_B_C_D9");
}

TEST(ExecHandlerTest, TimeoutSendsTermThenKillAfterTheGrace) {
  // Given a child that ignores SIGTERM, a 10 s timeout and a 5 s grace on a fake clock:
  // nothing is sent before 10 s, SIGTERM at 10 s, SIGKILL only once 5 more passed.
  FakeSpawner spawner;
  spawner.ignore_term = true;
  FakeClock clock;
  ExecHandler handler(Sh("unused", 5), spawner, "w1");
  TaskContext ctx(clock, 10);
  Outcome o;
  std::atomic<bool> done{false};
  std::thread run([&] {
    o = handler.Run(Task(), ctx);
    done = true;
  });
  auto wait_for_signals = [&](size_t n) {
    for (int i = 0; i < 400 && spawner.Signals().size() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return spawner.Signals();
  };
  clock.Advance(9 * kMicrosPerSecond);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_TRUE(spawner.Signals().empty());
  clock.Advance(1 * kMicrosPerSecond);
  EXPECT_EQ(wait_for_signals(1), (std::vector<int>{SIGTERM}));
  clock.Advance(4 * kMicrosPerSecond);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(spawner.Signals(), (std::vector<int>{SIGTERM}));
  EXPECT_FALSE(done);
  clock.Advance(1 * kMicrosPerSecond);
  run.join();
  EXPECT_EQ(spawner.Signals(), (std::vector<int>{SIGTERM, SIGKILL, SIGKILL}));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kTimeout);
  EXPECT_EQ(o.message, "handler timed out after 10 s");
}

TEST(ExecHandlerTest, MissingProgramFailsAsTemporary) {
  PosixSpawner spawner;
  HandlerConfig config = Sh("unused");
  config.argv = {"/nonexistent/handler"};
  ExecHandler handler(config, spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 5);
  Outcome o = handler.Run(Task(), ctx);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kTemporary);
  EXPECT_NE(o.message.find("cannot start handler"), std::string::npos) << o.message;
}

// ---------------------------------------------------------------- real processes

TEST(ExecHandlerRealTest, PayloadInResultOut) {
  PosixSpawner spawner;
  ExecHandler handler(Sh("cat"), spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 10);
  Outcome o = handler.Run(Task("{\"big\":\"" + std::string(300000, 'y') + "\"}"), ctx);
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.result.size(), 300010u);  // more than a pipe buffer each way
}

TEST(ExecHandlerRealTest, TempDirIsRemovedAfterTheTask) {
  // Given a handler that fills its temp dir (a locked subdirectory too), then the
  // directory is gone after the task.
  PosixSpawner spawner;
  ExecHandler handler(
      Sh("touch \"$RESONANCE_TMPDIR/f\"; mkdir \"$RESONANCE_TMPDIR/sub\"; touch "
         "\"$RESONANCE_TMPDIR/sub/g\";"
         " chmod 0 \"$RESONANCE_TMPDIR/sub\"; printf '{\"dir\":\"%s\"}' \"$RESONANCE_TMPDIR\""),
      spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 10);
  Outcome o = handler.Run(Task(), ctx);
  ASSERT_TRUE(o.ok) << o.message;
  const std::string prefix = "{\"dir\":\"";
  ASSERT_EQ(o.result.rfind(prefix, 0), 0u) << o.result;
  const std::string dir = o.result.substr(prefix.size(), o.result.size() - prefix.size() - 2);
  EXPECT_NE(dir.find("resonance-0pa3k1x9q2b4c-"), std::string::npos) << dir;
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

TEST(ExecHandlerRealTest, TimeoutKillsTheWholeProcessGroup) {
  // Given sh with a background sleep and a foreground sleep, then a timeout ends both:
  // no orphan is left.
  ScratchDir scratch;
  const std::string pids = scratch.File("pids");
  PosixSpawner spawner;
  ExecHandler handler(Sh("sleep 100 & echo $! > " + pids + "; echo $$ >> " + pids + "; sleep 100"),
                      spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 0.5);
  const Micros start = clock.Now();
  Outcome o = handler.Run(Task(), ctx);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kTimeout);
  EXPECT_LT(clock.Now() - start, 2 * kMicrosPerSecond);  // SIGTERM sufficed, no grace wait
  std::vector<pid_t> started = ReadPids(pids);
  ASSERT_EQ(started.size(), 2u);
  EXPECT_TRUE(AllGone(started)) << "a handler process outlived the timeout";
}

TEST(ExecHandlerRealTest, StopRequestKillsTheGroupAndSigkillsAfterTheGrace) {
  // Given a handler that ignores SIGTERM (and passes that on to its children), then a
  // stop request ends it with SIGKILL once the 0.3 s grace is over.
  ScratchDir scratch;
  const std::string pids = scratch.File("pids");
  PosixSpawner spawner;
  ExecHandler handler(Sh("trap '' TERM; echo $$ > " + pids + "; sleep 100 & echo $! >> " + pids +
                             "; while :; do sleep 0.05; done",
                         0.3),
                      spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 30);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ctx.RequestStop(StopReason::kCancelled);
  });
  const Micros start = clock.Now();
  Outcome o = handler.Run(Task(), ctx);
  stopper.join();
  EXPECT_FALSE(o.ok);
  EXPECT_GE(clock.Now() - start, 550 * kMicrosPerMilli);  // waited out the grace
  EXPECT_LT(clock.Now() - start, 3 * kMicrosPerSecond);
  std::vector<pid_t> started = ReadPids(pids);
  ASSERT_EQ(started.size(), 2u);
  EXPECT_TRUE(AllGone(started));
}

TEST(ExecHandlerRealTest, LeftoversAreKilledWhenTheHandlerExits) {
  // Given a handler that exits 0 leaving a background process that holds its stdout,
  // then the task completes at once and the leftover is killed.
  ScratchDir scratch;
  const std::string pids = scratch.File("pids");
  PosixSpawner spawner;
  ExecHandler handler(Sh("sleep 100 & echo $! > " + pids + "; echo '{\"done\":true}'"), spawner,
                      "w1");
  SystemClock clock;
  TaskContext ctx(clock, 30);
  const Micros start = clock.Now();
  Outcome o = handler.Run(Task(), ctx);
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.result, "{\"done\":true}");
  EXPECT_LT(clock.Now() - start, 2 * kMicrosPerSecond);
  std::vector<pid_t> started = ReadPids(pids);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_TRUE(AllGone(started));
}

TEST(ExecHandlerRealTest, ProgressOnFd3AndExitCodeClasses) {
  PosixSpawner spawner;
  SystemClock clock;
  {
    ExecHandler handler(
        Sh("echo '{\"progress\":0.25,\"message\":\"a quarter\"}' >&3; echo not json"), spawner,
        "w1");
    TaskContext ctx(clock, 10);
    Outcome o = handler.Run(Task(), ctx);
    ASSERT_TRUE(o.ok);
    EXPECT_EQ(o.result, "{\"output\":\"not json\\n\"}");
    EXPECT_EQ(ctx.TakeProgress().value_or(""), "{\"progress\":0.25,\"message\":\"a quarter\"}");
  }
  {
    ExecHandler handler(Sh("echo 'field x is missing' >&2; exit 65"), spawner, "w1");
    TaskContext ctx(clock, 10);
    Outcome o = handler.Run(Task(), ctx);
    EXPECT_EQ(o.error_class, ErrorClass::kValidation);
    EXPECT_EQ(o.message, "handler exited with status 65: field x is missing");
  }
  {
    ExecHandler handler(Sh("echo "
                           "'{\"error\":{\"class\":\"rate_limited\",\"message\":\"429\",\"retry_"
                           "after_s\":3}}'; exit 1"),
                        spawner, "w1");
    TaskContext ctx(clock, 10);
    Outcome o = handler.Run(Task(), ctx);
    EXPECT_EQ(o.error_class, ErrorClass::kRateLimited);
    EXPECT_EQ(o.retry_after_s.value_or(0), 3);
  }
}

TEST(ExecHandlerRealTest, OversizedStdoutIsBounded) {
  PosixSpawner spawner;
  HandlerConfig config = Sh("head -c 3000000 /dev/zero | tr '\\0' 'a'");
  config.max_output_bytes = 1 << 20;
  ExecHandler handler(config, spawner, "w1");
  SystemClock clock;
  TaskContext ctx(clock, 10);
  Outcome o = handler.Run(Task(), ctx);
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_LT(o.result.size(), 70000u);
  EXPECT_NE(o.result.find("\"truncated\":true,\"output_bytes\":3000000"), std::string::npos);
}

}  // namespace
}  // namespace resonance::worker
