#include "supervise/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace resonance::supervise {
namespace {

constexpr Micros kS = kMicrosPerSecond;

// Records what it was asked to start and signal; pids count up from 100.
class FakeSpawner final : public ProcessSpawner {
 public:
  Result<pid_t> Start(const std::vector<std::string>& argv) override {
    started.push_back(argv);
    return next_pid++;
  }
  void Signal(pid_t pid, int sig, bool) override { signals.emplace_back(pid, sig); }
  std::optional<std::pair<pid_t, int>> ReapAny() override { return std::nullopt; }
  std::vector<std::vector<std::string>> started;
  std::vector<std::pair<pid_t, int>> signals;
  pid_t next_pid = 100;
};

class FakeProbe final : public ServerProbe {
 public:
  bool Ready(const std::string&) override { return ready; }
  Status Deregister(const std::string& addr, const std::string& id) override {
    deregistered.push_back(addr + " " + id);
    return Status::Ok();
  }
  bool ready = false;
  std::vector<std::string> deregistered;
};

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("sup-test-" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.path = "r.toml";
    config_.data_dir = dir_;
    config_.pools = {{"rpa", 2}};
    config_.options.backoff_base_s = 1;
    config_.options.backoff_max_s = 4;
    config_.options.restart_limit = 2;
    config_.options.restart_window_s = 100;
    config_.options.stop_grace_s = 10;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // The server "binds": listen.addr appears and /readyz answers 200.
  void ServerUp() {
    std::ofstream(dir_ + "/listen.addr") << "127.0.0.1:5555\n";
    probe_.ready = true;
  }

  std::string dir_;
  UpConfig config_;
  FakeClock clock_;
  FakeSpawner spawner_;
  FakeProbe probe_;
};

TEST_F(SupervisorTest, ServerFirstThenWorkersOnceReady) {
  // Given a pool of 2, then only the server starts until /readyz answers; then both
  // workers start with their ids and the server's bound address.
  Supervisor sup(config_, "/bin/resonance", clock_, spawner_, probe_);
  sup.Step();
  ASSERT_EQ(spawner_.started.size(), 1u);
  EXPECT_EQ(spawner_.started[0],
            (std::vector<std::string>{"/bin/resonance", "server", "--config", "r.toml"}));
  sup.Step();
  EXPECT_EQ(spawner_.started.size(), 1u);
  ServerUp();
  sup.Step();
  ASSERT_EQ(spawner_.started.size(), 3u);
  EXPECT_EQ(spawner_.started[1], (std::vector<std::string>{
                                     "/bin/resonance", "worker", "--config", "r.toml", "--pool",
                                     "rpa", "--id", "rpa-0", "--server", "http://127.0.0.1:5555"}));
  EXPECT_EQ(spawner_.started[2][7], "rpa-1");
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/supervisor.json"));
}

TEST_F(SupervisorTest, CrashedWorkerRestartsAfterBackoffKeepingItsId) {
  // Given a running tree, when rpa-0 (pid 101) is killed, then nothing starts before 1 s;
  // after it, rpa-0 is deregistered on the server and started again with the same id.
  Supervisor sup(config_, "/bin/resonance", clock_, spawner_, probe_);
  sup.Step();  // starts the server
  ServerUp();
  sup.Step();
  ASSERT_EQ(spawner_.started.size(), 3u);
  sup.OnExit(101, SIGKILL);
  clock_.Advance(kS - 1);
  sup.Step();
  EXPECT_EQ(spawner_.started.size(), 3u);
  EXPECT_EQ(sup.processes()[1].state, Supervisor::Process::State::kBackoff);
  clock_.Advance(1);
  sup.Step();
  ASSERT_EQ(spawner_.started.size(), 4u);
  EXPECT_EQ(spawner_.started[3][7], "rpa-0");
  EXPECT_EQ(probe_.deregistered, (std::vector<std::string>{"127.0.0.1:5555 rpa-0"}));
  EXPECT_EQ(sup.processes()[1].pid, 103);
  EXPECT_EQ(sup.processes()[1].restarts, 1);
}

TEST_F(SupervisorTest, RestartLimitWritesAlertAndKeepsTryingAtMax) {
  // Given limit 2 in 100 s, when rpa-1 crashes three times, then the third writes
  // alerts/rpa_alert.json with 3 restarts and its exit code, and the next start waits
  // the maximum 4 s (not 4 s by doubling by chance: 1, 2, then max).
  Supervisor sup(config_, "/bin/resonance", clock_, spawner_, probe_);
  sup.Step();  // starts the server
  ServerUp();
  sup.Step();
  const std::string alert = dir_ + "/alerts/rpa_alert.json";
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(std::filesystem::exists(alert)) << i;
    sup.OnExit(sup.processes()[2].pid, 2 << 8);
    clock_.Advance(10 * kS);
    sup.Step();
    ASSERT_GT(sup.processes()[2].pid, 0);
  }
  ASSERT_TRUE(std::filesystem::exists(alert));
  std::ifstream f(alert);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(
      text.find(R"("pool":"rpa","restarts":3,"window_s":100,"last_exit":{"code":2},"time":")"),
      std::string::npos)
      << text;
  // Over the limit: even right after a stable run the delay is the maximum.
  clock_.Advance(50 * kS);
  sup.OnExit(sup.processes()[2].pid, SIGSEGV);
  clock_.Advance(4 * kS - 1);
  sup.Step();
  EXPECT_EQ(sup.processes()[2].pid, -1);
  clock_.Advance(1);
  sup.Step();
  EXPECT_GT(sup.processes()[2].pid, 0);
}

TEST_F(SupervisorTest, ServerOnNewAddressRestartsWorkersWithoutCountingACrash) {
  // Given a running tree, when the server crashes and comes back on another port, then
  // both workers get SIGTERM; when they exit they start at once with the new --server
  // and no restart is counted for them.
  Supervisor sup(config_, "/bin/resonance", clock_, spawner_, probe_);
  sup.Step();
  ServerUp();
  sup.Step();
  sup.OnExit(100, SIGSEGV);
  clock_.Advance(kS);
  sup.Step();  // the server starts again (pid 103), listen.addr removed
  ASSERT_EQ(spawner_.started.size(), 4u);
  std::ofstream(dir_ + "/listen.addr") << "127.0.0.1:6666\n";
  sup.Step();
  EXPECT_EQ(spawner_.signals, (std::vector<std::pair<pid_t, int>>{{101, SIGTERM}, {102, SIGTERM}}));
  sup.Step();
  EXPECT_EQ(spawner_.signals.size(), 2u);  // asked once
  sup.OnExit(101, 0);
  sup.OnExit(102, 0);
  sup.Step();
  ASSERT_EQ(spawner_.started.size(), 6u);
  EXPECT_EQ(spawner_.started[4].back(), "http://127.0.0.1:6666");
  EXPECT_EQ(sup.processes()[1].restarts, 0);
  EXPECT_EQ(sup.processes()[0].restarts, 1);
}

TEST_F(SupervisorTest, StopDrainsWorkersThenServer) {
  // Given a running tree, when Stop, then the workers get SIGTERM and the server nothing;
  // once both workers exit the server gets SIGTERM; once it exits the supervisor is done.
  Supervisor sup(config_, "/bin/resonance", clock_, spawner_, probe_);
  sup.Step();  // starts the server
  ServerUp();
  sup.Step();
  sup.Stop();
  EXPECT_EQ(spawner_.signals, (std::vector<std::pair<pid_t, int>>{{101, SIGTERM}, {102, SIGTERM}}));
  sup.OnExit(101, 0);
  sup.Step();
  EXPECT_EQ(spawner_.signals.size(), 2u);
  sup.OnExit(102, 0);
  sup.Step();
  ASSERT_EQ(spawner_.signals.size(), 3u);
  EXPECT_EQ(spawner_.signals[2], std::make_pair(pid_t{100}, SIGTERM));
  EXPECT_FALSE(sup.Done());
  sup.OnExit(100, 0);
  sup.Step();
  EXPECT_TRUE(sup.Done());
  EXPECT_EQ(spawner_.started.size(), 3u);  // nothing restarted while stopping
}

TEST_F(SupervisorTest, StopKillsWorkersThatDoNotDrainInTime) {
  // Given a worker that ignores SIGTERM, then after stop_grace_s it gets SIGKILL.
  Supervisor sup(config_, "/bin/resonance", clock_, spawner_, probe_);
  sup.Step();  // starts the server
  ServerUp();
  sup.Step();
  sup.Stop();
  sup.OnExit(101, 0);
  clock_.Advance(10 * kS + 1);
  sup.Step();
  EXPECT_EQ(spawner_.signals.back(), std::make_pair(pid_t{102}, SIGKILL));
}

}  // namespace
}  // namespace resonance::supervise
