#include "core/task_id.h"

namespace resonance {
namespace {
constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
constexpr int kChars = 13;  // 13 * 5 = 65 bits >= 64
}  // namespace

std::string FormatTaskId(TaskId id) {
  std::string s(kChars, '0');
  for (int i = kChars - 1; i >= 0; --i) {
    s[static_cast<size_t>(i)] = kAlphabet[id & 31];
    id >>= 5;
  }
  return s;
}

std::optional<TaskId> ParseTaskId(std::string_view s) {
  if (s.size() != kChars) return std::nullopt;
  // 13 characters hold 65 bits: the top character carries only the top 4 bits.
  TaskId v = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    int d = -1;
    for (int k = 0; k < 32; ++k) {
      if (kAlphabet[k] == c) {
        d = k;
        break;
      }
    }
    if (d < 0 || (i == 0 && d > 15)) return std::nullopt;
    v = (v << 5) | static_cast<TaskId>(d);
  }
  return v;
}

TaskId TaskIdGenerator::Next() {
  const TaskId ms = static_cast<TaskId>(clock_.Now() / kMicrosPerMilli);
  const TaskId candidate = ms << 22;
  std::lock_guard lock(mu_);
  last_ = candidate > last_ ? candidate : last_ + 1;
  return last_;
}

void TaskIdGenerator::RaiseFloor(TaskId floor) {
  std::lock_guard lock(mu_);
  if (floor > last_) last_ = floor;
}

}  // namespace resonance
