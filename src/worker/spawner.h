#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace resonance::worker {

// What to start. No shell: argv[0] is looked up in PATH (the child's, else the
// worker's) unless it contains a '/', in which case it is taken relative to `dir`.
struct SpawnSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // the complete environment, "NAME=value" each
  std::string dir;               // working directory; empty: the worker's
  bool progress_pipe = false;    // give the child fd 3: the write end of a pipe
};

// A started child, the leader of its own process group (pgid == pid). The worker's ends
// of its pipes are non-blocking and close-on-exec; -1 where there is none. The caller
// owns the descriptors (CloseFds) and must Reap the child.
struct Child {
  pid_t pid = -1;
  int stdin_fd = -1;  // write the payload here
  int stdout_fd = -1;
  int stderr_fd = -1;
  int progress_fd = -1;  // read end of the child's fd 3
  int exit_fd = -1;      // becomes readable when the child exits (a pidfd); -1: poll Exited()
  void CloseStdin();
  void CloseFds();
};

// Starts and stops handler processes: the one place that forks. PosixSpawner is the real
// one; tests use a fake that records what it was asked to start. Thread-safe.
class Spawner {
 public:
  virtual ~Spawner() = default;
  // Starts spec as the leader of a new process group, its signal mask and dispositions
  // reset, no descriptors of the worker's but 0-2 (and 3 with progress_pipe), and
  // SIGKILL on the worker thread's death (PR_SET_PDEATHSIG). kNotFound when argv[0] is
  // not found or not executable; kInternal for other failures (pipe, fork, chdir, exec),
  // with the errno text.
  virtual Result<Child> Spawn(const SpawnSpec& spec) = 0;
  // Sends sig to every process in the child's group. Harmless once the group is empty.
  // Valid until Reap: an unreaped leader keeps its pid (and so the group id) reserved.
  virtual void SignalGroup(const Child& child, int sig) = 0;
  // True once the child has exited. Does not reap it.
  virtual bool Exited(const Child& child) = 0;
  // Waits for the child to exit, reaps it and returns its wait status (as waitpid).
  virtual int Reap(const Child& child) = 0;
};

class PosixSpawner final : public Spawner {
 public:
  Result<Child> Spawn(const SpawnSpec& spec) override;
  void SignalGroup(const Child& child, int sig) override;
  bool Exited(const Child& child) override;
  int Reap(const Child& child) override;
};

// The worker's own environment plus `overrides` ("NAME=value" each; a later one wins).
std::vector<std::string> EnvironmentWith(const std::vector<std::string>& overrides);

}  // namespace resonance::worker
