#pragma once

#include <string_view>

namespace resonance::log {

// Minimal structured logging: one JSON object a line on stderr
// ({"ts","level","module","msg"}). Thread-safe (one write(2) per line).
// Issue 4 grows this into the full logger (levels from config, request/trace ids,
// rotation); the call sites stay the same.
enum class Level { kDebug, kInfo, kWarn, kError };

void SetLevel(Level level);
void Write(Level level, std::string_view module, std::string_view msg);

inline void Info(std::string_view module, std::string_view msg) { Write(Level::kInfo, module, msg); }
inline void Warn(std::string_view module, std::string_view msg) { Write(Level::kWarn, module, msg); }
inline void Error(std::string_view module, std::string_view msg) {
  Write(Level::kError, module, msg);
}

}  // namespace resonance::log
