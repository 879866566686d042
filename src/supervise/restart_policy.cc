#include "supervise/restart_policy.h"

#include <string.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/json_writer.h"

namespace resonance::supervise {
namespace fs = std::filesystem;

Micros RestartBackoff::Exited(Micros now) {
  if (now - started_ >= SecondsToMicros(options_.stable_after_s)) crashes_ = 0;
  double delay = options_.backoff_base_s;
  for (int i = 0; i < crashes_ && delay < options_.backoff_max_s; ++i) delay *= 2;
  delay = std::min(delay, options_.backoff_max_s);
  ++crashes_;
  return SecondsToMicros(delay);
}

bool RestartWindow::Record(Micros now) {
  restarts_.push_back(now);
  return Count(now) > options_.restart_limit;
}

int RestartWindow::Count(Micros now) {
  const Micros window = SecondsToMicros(options_.restart_window_s);
  while (!restarts_.empty() && now - restarts_.front() > window) restarts_.pop_front();
  return static_cast<int>(restarts_.size());
}

std::string ExitJson(int wait_status) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  if (WIFSIGNALED(wait_status)) {
    w.Key("signal").Int(WTERMSIG(wait_status));
  } else {
    w.Key("code").Int(WEXITSTATUS(wait_status));
  }
  w.EndObject();
  return out;
}

std::string ExitText(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    return "signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "exit " + std::to_string(WEXITSTATUS(wait_status));
}

std::string AlertJson(const Alert& a) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject()
      .Key("pool")
      .String(a.pool)
      .Key("restarts")
      .Int(a.restarts)
      .Key("window_s")
      .Double(a.window_s)
      .Key("last_exit")
      .Raw(ExitJson(a.last_wait_status))
      .Key("time")
      .Time(a.time)
      .EndObject();
  out.push_back('\n');
  return out;
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc | std::ios::binary);
    f << text;
    f.flush();
    if (!f) return Status(Code::kUnavailable, "cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status(Code::kUnavailable, "cannot rename " + tmp + ": " + ec.message());
  return Status::Ok();
}

Status WriteAlert(const std::string& data_dir, const Alert& alert) {
  const fs::path dir = fs::path(data_dir) / "alerts";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(Code::kUnavailable, "cannot create " + dir.string() + ": " + ec.message());
  return WriteFileAtomically((dir / (alert.pool + "_alert.json")).string(), AlertJson(alert));
}

}  // namespace resonance::supervise
