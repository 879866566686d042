#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace resonance {

// Task states (DESIGN.md §2). The diagram is in docs/api.md.
//   pending_approval -> scheduled -> ready -> running -> succeeded | dead | cancelled
//   (a failed attempt with retries left goes running -> scheduled)
enum class TaskState : uint8_t {
  kPendingApproval,
  kScheduled,
  kReady,
  kRunning,
  kSucceeded,
  kDead,
  kCancelled,
  kRejected,
};

const char* TaskStateName(TaskState s);
std::optional<TaskState> ParseTaskState(std::string_view s);
inline bool IsTerminal(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kDead || s == TaskState::kCancelled ||
         s == TaskState::kRejected;
}

// Why an attempt failed; picks the retry policy (DESIGN.md §2 table).
enum class ErrorClass : uint8_t {
  kTemporary,
  kRateLimited,
  kTimeout,
  kValidation,
  kCancelled,
};
constexpr int kErrorClassCount = 5;

const char* ErrorClassName(ErrorClass c);
std::optional<ErrorClass> ParseErrorClass(std::string_view s);

// Defaults a task gets when the producer leaves a field out.
constexpr int kDefaultMaxAttempts = 5;
constexpr int kDefaultTimeoutS = 30;
constexpr std::string_view kDefaultQueue = "default";
// The action of the server's synthetic canary tasks; every worker answers it with a
// built-in handler unless [handlers] configures it (docs/alerts.md, "Canary").
constexpr std::string_view kCanaryAction = "resonance.canary";

// Persisted in `tasks` (store/sqlite/schema.cc). Changing a field needs a new
// migration there and a bump of kSchemaVersion. The full record: what the API shows.
// The engine keeps a compact LiveTask in memory instead (engine/live_task.h).
struct Task {
  std::string id;
  std::string queue{kDefaultQueue};
  std::string action;
  std::string payload = "{}";  // raw JSON object text, as validated on enqueue
  int32_t priority = 0;
  TaskState state = TaskState::kReady;
  Micros run_at = 0;
  int32_t attempt = 0;  // attempts started
  int32_t max_attempts = kDefaultMaxAttempts;
  int32_t timeout_s = kDefaultTimeoutS;
  int32_t throttled = 0;  // rate_limited failures so far; they do not use up attempts
  std::string idempotency_key;
  bool requires_approval = false;
  std::string parent_id;
  std::string trace_id;
  std::string limit_key;  // the key rate and concurrency limits count it under; "" = none
  double cost = 1;        // tokens it takes from its rate buckets (docs/flow-control.md)
  std::string result;  // raw JSON text, empty when none
  bool has_error = false;
  ErrorClass error_class = ErrorClass::kTemporary;
  std::string error_message;
  std::string lease;  // token of the current lease, empty when not running
  Micros lease_expires_at = 0;
  std::string worker;
  bool cancel_requested = false;
  std::string progress;  // raw JSON of the last heartbeat's progress, empty when none
  Micros created_at = 0;
  Micros started_at = 0;
  Micros finished_at = 0;
  Micros updated_at = 0;
};

}  // namespace resonance
