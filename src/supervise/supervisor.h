#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "supervise/process_spawner.h"
#include "supervise/restart_policy.h"
#include "supervise/server_probe.h"
#include "supervise/up_config.h"

namespace resonance::supervise {

// The tree `resonance up` keeps alive (docs/supervisor.md): one server, then, once it
// answers /readyz, `workers` worker processes per pool. A process that exits is started
// again after its RestartBackoff; more restarts in a pool than the limit within the window
// writes DATA_DIR/alerts/<pool>_alert.json, logs an error and pins the delay at the
// maximum. Stop() drains: workers get SIGTERM, then (when they are gone, or SIGKILL after
// stop_grace_s) the server. When a restarted server comes up at another address (port
// 0), running workers get SIGTERM and are started again at once, pointing at the new one.
//
// Event-driven and not thread-safe: the owner's loop calls OnExit for every reaped child
// and Step often (every ~100 ms); Step never blocks longer than one HTTP probe. All time
// comes from the Clock and every process from the ProcessSpawner, so tests drive it with
// fakes. The state is mirrored to DATA_DIR/supervisor.json (written atomically) whenever
// it changes.
class Supervisor {
 public:
  // self_exe is the resonance binary the children run (`server` / `worker` subcommands).
  Supervisor(UpConfig config, std::string self_exe, Clock& clock, ProcessSpawner& spawner,
             ServerProbe& probe);

  // A child the owner reaped: pid and wait status. Unknown pids are ignored.
  void OnExit(pid_t pid, int wait_status);
  // Starts what is due, checks the server's readiness, advances a stop.
  void Step();
  // Begins the ordered stop (idempotent).
  void Stop();
  // True once Stop() has finished: no child is left.
  bool Done() const { return phase_ == Phase::kDone; }

  // supervisor.json's text for the current state.
  std::string StateJson() const;
  // The server's bound "host:port" once it is ready, else empty.
  const std::string& server_addr() const { return server_addr_; }

  // One supervised process. Exposed for tests and the state file.
  struct Process {
    std::string pool;  // "server" for the server
    std::string id;    // "server", or the worker id POOL-i
    pid_t pid = -1;    // -1 when not running
    enum class State {
      kStarting,
      kRunning,
      kBackoff,
      kStopping,
      kStopped
    } state = State::kStarting;
    Micros started_at = 0;
    Micros next_start = 0;  // when kStarting/kBackoff: not before this
    int restarts = 0;
    bool exited_before = false;
    int last_wait_status = 0;
    bool deregister_first = false;  // a worker restart: free its id on the server first
    RestartBackoff backoff;
    std::string server_addr;       // a worker: the --server address it was started with
    bool planned_restart = false;  // stopped by the supervisor to follow a moved server
  };
  const std::vector<Process>& processes() const { return procs_; }

 private:
  enum class Phase { kRunning, kStoppingWorkers, kStoppingServer, kDone };
  Process& server() { return procs_.front(); }
  void StartProcess(Process& p);
  std::vector<std::string> ArgvFor(const Process& p) const;
  void CheckServerReady();
  void AdvanceStop();
  void WriteState();

  UpConfig config_;
  std::string self_exe_;
  Clock& clock_;
  ProcessSpawner& spawner_;
  ServerProbe& probe_;
  std::vector<Process> procs_;  // [0] is the server, then the workers pool by pool
  std::map<std::string, RestartWindow> windows_;  // by pool
  Phase phase_ = Phase::kRunning;
  Micros started_at_;
  Micros ready_deadline_ = 0;  // the running server must be ready by then
  std::string server_addr_;    // host:port once ready
  Micros stop_deadline_ = 0;
  bool dirty_ = true;
};

const char* ProcessStateName(Supervisor::Process::State s);

}  // namespace resonance::supervise
