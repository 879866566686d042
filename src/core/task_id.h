#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace resonance {

// Task ids: 64 bits = 42 bits of milliseconds since the epoch + 22 bits of sequence,
// written as 13 characters of lowercase Crockford base32, so string order is creation
// order. Inside the engine the number is the key; clients see the opaque string.
using TaskId = uint64_t;

std::string FormatTaskId(TaskId id);
// nullopt unless s is exactly 13 characters of the alphabet.
std::optional<TaskId> ParseTaskId(std::string_view s);

// Hands out strictly increasing ids. Thread-safe. Starts above `floor` (the largest id
// recovered from the store), so ids stay increasing across restarts and clock steps.
class TaskIdGenerator {
 public:
  explicit TaskIdGenerator(const Clock& clock, TaskId floor = 0) : clock_(clock), last_(floor) {}
  TaskId Next();
  void RaiseFloor(TaskId floor);

 private:
  const Clock& clock_;
  std::mutex mu_;
  TaskId last_;  // guarded by mu_
};

}  // namespace resonance
