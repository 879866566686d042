#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "engine/live_task.h"

namespace resonance {

// What a worker says about itself when it registers.
struct WorkerRegistration {
  std::string name;  // the worker's identity, unique among live workers
  std::string pool;
  int64_t pid = 0;
  std::string host;
  std::vector<std::string> queues;
  int64_t concurrency = 0;
};

enum class WorkerStatus : uint8_t { kActive, kLost, kGone };
const char* WorkerStatusName(WorkerStatus s);

struct WorkerInfo {
  std::string name;
  WorkerRegistration registration;  // empty fields for a worker that never registered
  bool registered = false;
  WorkerStatus status = WorkerStatus::kActive;
  Micros started_at = 0;
  Micros last_seen = 0;
  int64_t running = 0;
};

// Which workers exist, what they said about themselves and when they were last heard
// from. Workers are named by dense indices (0 = none) so LiveTask can hold one cheaply.
// A worker that only leases, never registers, is tracked too but never marked lost.
// Not thread-safe: the engine calls it under its mutex. Memory only: after a restart
// workers register again (their heartbeat gets 404).
class WorkerRegistry {
 public:
  explicit WorkerRegistry(Micros lost_after) : lost_after_(lost_after) { workers_.emplace_back(); }

  // Index of the worker with this name, created on first sight.
  uint32_t Intern(const std::string& name);
  const std::string& Name(uint32_t w) const { return names_.Name(w); }

  // kConflict when another live registration holds the name (seen within lost_after).
  Status Register(const WorkerRegistration& r, Micros now, uint32_t* index);
  // kNotFound unless the worker is registered and active.
  Status Heartbeat(const std::string& name, Micros now);
  // kNotFound for an unknown worker.
  Status Deregister(const std::string& name, Micros now, uint32_t* index);

  // True when this name has registered before (in this process's life).
  bool WasRegistered(const std::string& name) const;
  const std::string& Pool(uint32_t w) const { return workers_[w].registration.pool; }

  void Touch(uint32_t w, Micros now) { workers_[w].last_seen = now; }
  void AddRunning(uint32_t w, int64_t delta) { workers_[w].running += delta; }
  // Registered, active workers silent for longer than lost_after: marks them lost.
  std::vector<uint32_t> MarkLost(Micros now);

  std::vector<WorkerInfo> List() const;
  Micros lost_after() const { return lost_after_; }

 private:
  struct State {
    WorkerRegistration registration;
    bool registered = false;
    WorkerStatus status = WorkerStatus::kActive;
    Micros started_at = 0;
    Micros last_seen = 0;
    int64_t running = 0;
  };
  Micros lost_after_;
  Interner names_;
  std::vector<State> workers_;  // by index; [0] is "no worker"
};

}  // namespace resonance
