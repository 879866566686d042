#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/task.h"
#include "worker/leased_task.h"

namespace resonance::worker {

// What one attempt of a task came to: a result to complete it with, or an error to fail
// it with. Value type. `result` is raw JSON text; empty means "no result".
struct Outcome {
  bool ok = false;
  std::string result;
  ErrorClass error_class = ErrorClass::kTemporary;
  std::string message;
  std::optional<double> retry_after_s;

  static Outcome Success(std::string result = {});
  static Outcome Failure(ErrorClass c, std::string message,
                         std::optional<double> retry_after_s = std::nullopt);
};

// Why a handler is asked to stop before it is done.
enum class StopReason {
  kNone,
  kCancelled,  // the server answered a heartbeat with cancel: true
  kLeaseLost,  // the server refused the lease (lapsed or taken over): nobody wants the result
  kShutdown,   // the worker is stopping and hands the task back
};

// The running task as its handler sees it: the deadline of the handler's own timeout,
// stop requests from other threads, and progress on its way to the next heartbeat.
// Thread-safe: the slot thread runs the handler; the heartbeat loop and the drain call
// RequestStop / TakeProgress.
class TaskContext {
 public:
  // `timeout_s`: the handler's timeout (its config's timeout_s, else the task's).
  TaskContext(const Clock& clock, double timeout_s);

  const Clock& clock() const { return clock_; }
  double timeout_s() const { return timeout_s_; }
  Micros deadline() const { return deadline_; }
  bool TimedOut() const { return clock_.Now() >= deadline_; }

  StopReason stop_reason() const { return stop_.load(); }
  bool StopRequested() const { return stop_.load() != StopReason::kNone; }
  // Set while a stop is requested, for APIs that poll a flag (HttpConnection).
  const std::atomic<bool>& stop_flag() const { return stop_flag_; }
  // The first reason sticks; later calls only wake waiters.
  void RequestStop(StopReason reason);

  // Sleeps until `until` (on the clock) or a stop request, whichever comes first.
  // Returns false when woken by a stop request.
  bool SleepUntil(Micros until);

  // Handler side: the latest progress report (a raw JSON object) replaces any not yet sent.
  void SetProgress(std::string json);
  // Heartbeat side: the progress not yet sent, if any.
  std::optional<std::string> TakeProgress();
  bool HasProgress() const;

 private:
  const Clock& clock_;
  const double timeout_s_;
  const Micros deadline_;
  std::atomic<StopReason> stop_{StopReason::kNone};
  std::atomic<bool> stop_flag_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::string> progress_;  // guarded by mu_
};

// Runs tasks of one action. Implementations: exec, persistent, noop, sleep, fail, http.
// One instance per worker slot, driven by that slot's thread only (not thread-safe).
class Handler {
 public:
  virtual ~Handler() = default;
  // Runs one attempt to its outcome. Returns soon after ctx.StopRequested() (within the
  // handler's kill grace) or once ctx.TimedOut() (then with class timeout). The outcome
  // of a stopped run is replaced by the runtime (cancelled / worker stopping / dropped).
  virtual Outcome Run(const LeasedTask& task, TaskContext& ctx) = 0;
};

}  // namespace resonance::worker
