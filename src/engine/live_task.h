#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/task.h"
#include "core/task_id.h"

namespace resonance {

// What the engine keeps in memory for one non-terminal task: just enough to order,
// lease, time out and retry it. Payloads, results and the rest stay in the store
// (the source of truth), which keeps a million queued tasks small.
struct LiveTask {
  TaskId id = 0;
  Micros run_at = 0;
  Micros lease_expires_at = 0;  // when running
  Micros started_at = 0;        // of the current attempt
  uint64_t lease = 0;           // fencing token of the current lease, 0 = none
  int32_t priority = 0;
  int32_t timeout_s = kDefaultTimeoutS;
  uint32_t queue = 0;   // index into Engine's queue table
  uint32_t action = 0;  // index into Engine's action names
  uint32_t worker = 0;  // index into Engine's worker table (0 = none)
  uint32_t lane = 0;    // FlowControl lane of (queue, action, limit key)
  float cost = 1;       // tokens per attempt from its rate buckets
  uint16_t attempt = 0;
  uint16_t max_attempts = kDefaultMaxAttempts;
  uint16_t throttled = 0;
  TaskState state = TaskState::kReady;
  bool cancel_requested = false;
  bool has_idempotency_key = false;
};

// Order of ready tasks within a queue: priority high first, then run_at, then id.
struct ReadyKey {
  int32_t priority;
  Micros run_at;
  TaskId id;
  bool operator<(const ReadyKey& o) const {
    if (priority != o.priority) return priority > o.priority;
    if (run_at != o.run_at) return run_at < o.run_at;
    return id < o.id;
  }
};

// Interns short strings (queue, action and worker names) to dense indices.
// Not thread-safe; the engine calls it under its mutex. Index 0 is the empty string.
class Interner {
 public:
  Interner() { Intern(""); }
  uint32_t Intern(const std::string& s) {
    auto [it, inserted] = index_.emplace(s, static_cast<uint32_t>(names_.size()));
    if (inserted) names_.push_back(s);
    return it->second;
  }
  // UINT32_MAX when unknown.
  uint32_t Find(const std::string& s) const {
    auto it = index_.find(s);
    return it == index_.end() ? UINT32_MAX : it->second;
  }
  const std::string& Name(uint32_t i) const { return names_[i]; }
  size_t size() const { return names_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<std::string> names_;
};

}  // namespace resonance
