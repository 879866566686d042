#pragma once

#include <deque>
#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace resonance::supervise {

// The [supervisor] table of resonance.toml (docs/supervisor.md lists the keys). Value type.
struct SupervisorOptions {
  double backoff_base_s = 5;   // first restart delay after a crash
  double backoff_max_s = 60;   // the delay doubles up to this
  double stable_after_s = 60;  // a run this long resets the delay to backoff_base_s
  int restart_limit = 5;       // more restarts than this within restart_window_s alerts
  double restart_window_s = 600;
  double stop_grace_s = 40;     // SIGTERM to SIGKILL when stopping a process
  double ready_timeout_s = 60;  // the server must answer /readyz within this, else restart
};

// The restart delay of one supervised process: backoff_base_s after a crash, doubling
// with each crash that follows a short run, capped at backoff_max_s; a run of at least
// stable_after_s starts over from backoff_base_s. Value type, not thread-safe.
class RestartBackoff {
 public:
  explicit RestartBackoff(const SupervisorOptions& options) : options_(options) {}
  // The process was started at now.
  void Started(Micros now) { started_ = now; }
  // The process exited at now: the delay before it is started again.
  Micros Exited(Micros now);

 private:
  SupervisorOptions options_;
  Micros started_ = 0;
  int crashes_ = 0;  // consecutive short runs
};

// Counts the restarts of one pool in a sliding window: more than restart_limit within
// restart_window_s is over the limit. Value type, not thread-safe.
class RestartWindow {
 public:
  explicit RestartWindow(const SupervisorOptions& options) : options_(options) {}
  // Records a restart at now; returns true when the window now holds more than the limit.
  bool Record(Micros now);
  // Restarts within the window ending at now.
  int Count(Micros now);

 private:
  SupervisorOptions options_;
  std::deque<Micros> restarts_;
};

// How a process ended, from its wait status: {"code": N} or {"signal": N}.
std::string ExitJson(int wait_status);
// The same in words: "exit 2", "signal 9 (Killed)".
std::string ExitText(int wait_status);

// What DATA_DIR/alerts/<pool>_alert.json holds (docs/supervisor.md).
struct Alert {
  std::string pool;
  int restarts = 0;
  double window_s = 0;
  int last_wait_status = 0;
  Micros time = 0;
};
std::string AlertJson(const Alert& alert);
// Writes DATA_DIR/alerts/<pool>_alert.json atomically (temp file, rename), creating
// alerts/. kUnavailable with the reason when the file system refuses.
Status WriteAlert(const std::string& data_dir, const Alert& alert);

// Writes text to path atomically: path.tmp, then rename. kUnavailable on failure.
Status WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace resonance::supervise
