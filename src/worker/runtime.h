#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "worker/handler.h"
#include "worker/handler_config.h"
#include "worker/leased_task.h"
#include "worker/reporter.h"
#include "worker/server_api.h"
#include "worker/spawner.h"

namespace resonance::trace {
class Exporter;
}

namespace resonance::worker {

// Exit codes of `resonance worker` (besides 0 after a drain).
constexpr int kExitConfig = 2;         // bad flags or config file
constexpr int kExitIdentityInUse = 3;  // the registry refused the worker id (409)

struct RuntimeOptions {
  std::string worker_id;
  std::string pool;
  std::string host;
  int pid = 0;
  std::vector<std::string> queues{"default"};
  int concurrency = 1;                         // slots: tasks at once
  int lease_wait_ms = 5000;                    // long-poll of one lease call
  Micros drain_grace = 30 * kMicrosPerSecond;  // running tasks get this long after Stop
  trace::Exporter* tracer = nullptr;           // task.attempt spans; not owned, may be null
};

// The worker: registers, leases tasks into N slots, runs each with its action's handler,
// heartbeats running tasks and itself, reports outcomes (Reporter), and drains on Stop.
//
// Threads: one lease loop (long-polls for at most the number of free slots), one thread
// per slot (runs handlers), one heartbeat loop (task heartbeats at a third of the lease
// left, sooner when there is new progress; registry heartbeats every heartbeat_ms), and
// the reporter's. A task is "held" from its lease until its outcome is delivered or given
// up; heartbeats keep held tasks' leases alive, also while an outcome waits for an
// unreachable server.
//
// Drain (Stop): the lease loop stops at once (its long-poll is aborted; tasks it still
// got are handed back), running tasks get drain_grace to finish, then the rest are
// handed back at once (failed as temporary "worker stopping", so the server redelivers
// them) and their handlers stopped (SIGTERM, SIGKILL after the handler's grace). Then
// the reporter delivers what is left, the worker deregisters and Run returns 0.
//
// Thread-safe: Stop may be called from any thread while Run runs.
class WorkerRuntime {
 public:
  WorkerRuntime(RuntimeOptions options, const WorkerConfig& config, ServerApi& api,
                Spawner& spawner, const Clock& clock);
  ~WorkerRuntime();

  // Runs until Stop() and the drain are done. Returns 0, or kExitIdentityInUse when the
  // registry refuses the worker id (at start, or when registering again later).
  int Run();
  // The first call starts the drain; a second one hands running tasks back at once.
  void Stop();

 private:
  // One task from its lease until its outcome is delivered (or given up).
  struct Held {
    LeasedTask task;
    std::shared_ptr<LeaseState> lease;
    std::unique_ptr<TaskContext> ctx;
    bool started = false;       // guarded by mu_: a slot picked it up
    bool finished = false;      // guarded by mu_: its handler returned
    bool handed_back = false;   // guarded by mu_: its outcome is already "worker stopping"
    Micros next_heartbeat = 0;  // guarded by mu_
    Micros last_heartbeat = 0;  // guarded by mu_
    int64_t started_unix_nano = 0;  // when its slot started it (for the task.attempt span)
  };

  // Logs the attempt (task_id, trace_id, span_id) and exports its task.attempt span.
  void RecordAttempt(const Held& h, const Outcome& outcome);
  bool RegisterLoop();  // false when the id is refused
  // Hands back what does not finish within the grace, stops the slots, flushes reports.
  void Drain(std::vector<std::thread>& slots);
  void LeaseLoop();
  void SlotLoop(int slot);
  void HeartbeatLoop();
  void HeartbeatTask(const std::shared_ptr<Held>& h);
  void RegistryHeartbeat();
  void Finalize(const std::shared_ptr<Held>& h, Outcome outcome);
  void HandBack(const std::shared_ptr<Held>& h);
  void OnReported(const std::string& id, const Status& s);
  Micros LocalDeadline(Micros lease_expires_at, int timeout_s) const;
  // Waits on cv until `until` or pred(); lock must hold mu_.
  template <typename Pred>
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Micros until,
                 Pred pred);

  const RuntimeOptions options_;
  const WorkerConfig& config_;
  ServerApi& api_;
  Spawner& spawner_;
  const Clock& clock_;
  std::unique_ptr<Reporter> reporter_;  // set under mu_ once, before the threads start

  std::mutex mu_;
  // Separate wake-ups, so finishing a task does not wake every slot thread.
  std::condition_variable work_cv_;   // slots: a task is ready, or exit
  std::condition_variable free_cv_;   // lease loop: a slot is free, or stop
  std::condition_variable state_cv_;  // Run, registration, heartbeats: stop and drain progress
  std::deque<std::shared_ptr<Held>> ready_;            // guarded by mu_: leased, not started
  std::map<std::string, std::shared_ptr<Held>> held_;  // guarded by mu_
  int busy_slots_ = 0;                                 // guarded by mu_: started or in ready_
  bool stopping_ = false;                              // guarded by mu_
  bool hurry_ = false;                                 // guarded by mu_
  bool slots_exit_ = false;                            // guarded by mu_
  bool heartbeats_exit_ = false;                       // guarded by mu_
  int exit_code_ = 0;                                  // guarded by mu_
  std::atomic<bool> stop_lease_{false};

  // Registry state: heartbeat thread (and Run before it starts).
  bool registered_ = false;
  Micros registry_interval_ = 5 * kMicrosPerSecond;
  Micros next_registry_heartbeat_ = 0;
};

}  // namespace resonance::worker
