#pragma once

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace resonance::worker {

// One task as a lease handed it to this worker (the fields of the task JSON the
// worker uses). Value type; `payload` is the raw JSON object text, never re-serialised.
struct LeasedTask {
  std::string id;
  std::string queue;
  std::string action;
  std::string payload = "{}";
  int attempt = 0;
  int max_attempts = 0;
  int timeout_s = 30;  // lease length; an exec handler's timeout defaults to it
  std::string trace_id;
  std::string span_id;  // this attempt's task.attempt span: set when a slot starts it
  std::string lease;  // token for heartbeat / complete / fail
  Micros lease_expires_at = 0;
  // (name, value) of the credentials the action declares (docs/credentials.md). Secret:
  // handed to the handler only, never logged or sent back.
  std::vector<std::pair<std::string, std::string>> credentials;
};

// The lease of one held task as it moves: heartbeats push the deadline on, and a 409
// answer marks it lost. Shared (by shared_ptr) between the task's slot, the heartbeat
// loop and the reporter. Thread-safe.
struct LeaseState {
  std::atomic<Micros> deadline{0};  // local clock: when the server will consider it lapsed
  std::atomic<bool> lost{false};    // the server refused the token (lapsed or reassigned)
};

}  // namespace resonance::worker
