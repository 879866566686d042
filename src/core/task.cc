#include "core/task.h"

namespace resonance {

const char* TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kPendingApproval: return "pending_approval";
    case TaskState::kScheduled: return "scheduled";
    case TaskState::kReady: return "ready";
    case TaskState::kRunning: return "running";
    case TaskState::kSucceeded: return "succeeded";
    case TaskState::kDead: return "dead";
    case TaskState::kCancelled: return "cancelled";
    case TaskState::kRejected: return "rejected";
  }
  return "unknown";
}

std::optional<TaskState> ParseTaskState(std::string_view s) {
  for (int i = 0; i <= static_cast<int>(TaskState::kRejected); ++i) {
    auto st = static_cast<TaskState>(i);
    if (s == TaskStateName(st)) return st;
  }
  return std::nullopt;
}

const char* ErrorClassName(ErrorClass c) {
  switch (c) {
    case ErrorClass::kTemporary: return "temporary";
    case ErrorClass::kRateLimited: return "rate_limited";
    case ErrorClass::kTimeout: return "timeout";
    case ErrorClass::kValidation: return "validation";
    case ErrorClass::kCancelled: return "cancelled";
  }
  return "temporary";
}

std::optional<ErrorClass> ParseErrorClass(std::string_view s) {
  for (int i = 0; i < kErrorClassCount; ++i) {
    auto c = static_cast<ErrorClass>(i);
    if (s == ErrorClassName(c)) return c;
  }
  return std::nullopt;
}

}  // namespace resonance
