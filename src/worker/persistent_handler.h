#pragma once

#include <sys/types.h>

#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "worker/backoff.h"
#include "worker/child_io.h"
#include "worker/handler.h"
#include "worker/handler_config.h"
#include "worker/spawner.h"
#include "worker/temp_dir.h"

namespace resonance::worker {

// type = "persistent": one long-lived process per slot speaking JSON lines
// (docs/workers.md). Per task the worker writes one line on the process's stdin,
//   {"id","action","queue","payload","attempt","traceparent"}
// and reads lines from its stdout until one with that id carries "result" or "error";
// lines with that id and "progress" travel with the next heartbeat. The process is
// started at the first task and restarted (with backoff: 0.5 s doubling to 30 s, reset
// by a success) when it dies; the task in flight then fails as temporary. A timeout or a
// stop request kills its process group and the next task starts a fresh one.
// Not thread-safe (one slot). The destructor closes the process's stdin, gives it a
// second to exit, then stops its group like a timeout.
class PersistentHandler final : public Handler {
 public:
  PersistentHandler(HandlerConfig config, Spawner& spawner, const Clock& clock,
                    std::string worker_id, int slot);
  ~PersistentHandler() override;
  Outcome Run(const LeasedTask& task, TaskContext& ctx) override;

  // The running process's pid, or -1 (tests).
  pid_t pid() const { return io_ ? io_->child().pid : -1; }

 private:
  Status Start();
  // Forgets a reaped process; logs how it ended (warn unless `expected`).
  void Reaped(int status, const std::string& why, bool expected = false);
  void StopProcess(Micros grace);

  const HandlerConfig config_;
  Spawner& spawner_;
  const Clock& clock_;
  const std::string worker_id_;
  const int slot_;
  std::mt19937_64 rng_;
  Backoff restart_backoff_;
  Micros next_start_ = 0;
  std::optional<TempDir> tmp_;  // RESONANCE_TMPDIR of the current process
  std::unique_ptr<ChildIo> io_;
  LineSplitter lines_;
  std::deque<std::pair<std::string, bool>> ready_lines_;  // (line, cut) not yet read
  StderrLog err_;
};

}  // namespace resonance::worker
