#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace resonance::supervise {

// Starts, signals and reaps the supervisor's children: the one place `resonance up`
// forks. PosixProcessSpawner is the real one; tests use a fake that records what it
// was asked to start. Not thread-safe (the supervisor is one thread).
//
// (worker/spawner.h is the worker's spawner for handlers: pipes for stdin/stdout/fd 3
// and a pidfd per child. The supervisor's children share its stdout and stderr and are
// reaped with waitpid(-1), so it has this smaller interface; supervise may not link the
// worker module, STYLE.md "Layout".)
class ProcessSpawner {
 public:
  virtual ~ProcessSpawner() = default;
  // Starts argv (argv[0] an absolute path) as the leader of a new process group, so a
  // terminal's Ctrl-C reaches only the supervisor, which then stops its children in
  // order. The child inherits stdin/stdout/stderr, gets default signal dispositions and
  // mask, and SIGTERM when the supervisor dies (PR_SET_PDEATHSIG). kInternal with the
  // errno text when fork or exec fails.
  virtual Result<pid_t> Start(const std::vector<std::string>& argv) = 0;
  // Sends sig to the child (group = false) or to its whole process group.
  virtual void Signal(pid_t pid, int sig, bool group) = 0;
  // Reaps one exited child without blocking: its pid and wait status, or nullopt.
  virtual std::optional<std::pair<pid_t, int>> ReapAny() = 0;
};

class PosixProcessSpawner final : public ProcessSpawner {
 public:
  Result<pid_t> Start(const std::vector<std::string>& argv) override;
  void Signal(pid_t pid, int sig, bool group) override;
  std::optional<std::pair<pid_t, int>> ReapAny() override;
};

}  // namespace resonance::supervise
