#pragma once

#include <sys/types.h>

#include <string>

#include "core/status.h"

namespace resonance::supervise {

// An exclusive flock on DATA_DIR/supervisor.lock for the life of the object, so only one
// `resonance up` supervises a data dir. The file holds the owner's pid (for the message
// a second `up` prints). The lock dies with the process (kill -9 included): a stale file
// never blocks a new supervisor. Not thread-safe; not copyable.
class SupervisorLock {
 public:
  SupervisorLock() = default;
  ~SupervisorLock();
  SupervisorLock(const SupervisorLock&) = delete;
  SupervisorLock& operator=(const SupervisorLock&) = delete;

  // kConflict naming the holder's pid when another process holds the lock;
  // kUnavailable when the file cannot be opened or written.
  Status Acquire(const std::string& data_dir);
  void Release();

  // The pid written in DATA_DIR/supervisor.lock when some process holds the lock, else
  // 0 (no supervisor runs). Does not take the lock.
  static pid_t Holder(const std::string& data_dir);

 private:
  int fd_ = -1;
};

}  // namespace resonance::supervise
