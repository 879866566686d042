#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "store/store.h"

namespace resonance {

class Engine;

// [[canaries]]: a synthetic task on a queue every interval, run by whatever worker
// leases that queue (docs/alerts.md, "Canary").
struct CanaryConfig {
  std::string queue;
  int interval_s = 1800;  // one canary per interval (the first at start)
  int timeout_s = 300;    // not finished by then: "missing" (cancelled)
};

// What the last canary of a queue did.
struct CanaryState {
  std::string queue;
  std::string last_outcome;    // "ok", "failed", "missing"; "" before the first result
  double last_latency_s = 0;   // enqueue to finish of the last finished one
  Micros last_success = 0;
  std::map<std::string, int64_t> runs;  // outcome -> count since start
  bool failing() const { return last_outcome == "failed" || last_outcome == "missing"; }
};

// Enqueues each canary when due (idempotency key canary:<queue>:<due time>, one
// attempt, timeout_s lease) and judges the previous one from the store: succeeded ->
// ok, dead or cancelled -> failed, still open after timeout_s -> missing (and
// cancelled). Each result is a canary.result ledger event. Tick is called by one
// thread (the alert loop); States is thread-safe.
class CanaryRunner {
 public:
  CanaryRunner(std::vector<CanaryConfig> canaries, Engine& engine, Store& store);
  void Tick(Micros now);
  std::vector<CanaryState> States() const;

 private:
  struct Running {
    CanaryConfig config;
    Micros next_due = 0;
    std::string task_id;     // the open canary, "" when none; guarded by mu_
    bool enqueuing = false;  // an Enqueue is waiting for its commit; guarded by mu_
    Micros enqueued_at = 0;
  };
  void Finish(Running& r, CanaryState& st, const std::string& outcome, double latency_s, Micros now);

  Engine& engine_;
  Store& store_;
  std::vector<Running> running_;      // Tick's thread, but task_id/enqueuing under mu_
  mutable std::mutex mu_;
  std::vector<CanaryState> states_;   // guarded by mu_, same order as running_
};

}  // namespace resonance
