#include "observe/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "core/json_writer.h"

namespace resonance::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}
}  // namespace

void SetLevel(Level level) { g_level = level; }

void Write(Level level, std::string_view module, std::string_view msg) {
  if (level < g_level.load(std::memory_order_relaxed)) return;
  std::string line;
  JsonWriter w(line);
  w.BeginObject().Key("ts").Time(SystemClock().Now()).Key("level").String(LevelName(level));
  w.Key("module").String(module).Key("msg").String(msg).EndObject();
  line.push_back('\n');
  ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
  (void)n;
}

}  // namespace resonance::log
