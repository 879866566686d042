#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cli/config.h"
#include "engine/alert_rules.h"
#include "engine/engine.h"
#include "observe/alert_engine.h"
#include "observe/metrics.h"

namespace resonance::cli {

// The server's alerting (docs/alerts.md): one thread that measures the rules every
// [alerts] interval_ms, feeds the AlertEngine, writes every transition to the ledger
// (alert.pending, alert.firing, alert.resolved) and re-sends firing alerts every
// resend_s. Owns its sinks. Start once; Stop (or the destructor) joins the thread.
class AlertLoop {
 public:
  // The loop also runs the canaries (each round, before the rules).
  // It also deletes task history older than history_keep_days, once an hour.
  AlertLoop(const AlertsConfig& config, std::vector<CanaryConfig> canaries,
            const std::string& data_dir, Engine& engine, Store& store, SignalSources sources,
            int history_keep_days);
  ~AlertLoop();

  // kInvalidArgument when a sink cannot be made (bad URL).
  Status Start();
  void Stop();

  const alerts::AlertEngine& engine() const { return *alerts_; }
  // resonance_alerts_firing{alertname,severity} and the canary families, read at
  // scrape time.
  void RegisterMetrics(metrics::Registry& registry);

 private:
  void Run();

  AlertsConfig config_;
  std::string data_dir_;
  Engine& engine_;
  Store& store_;
  int history_keep_days_;
  CanaryRunner canaries_;
  RuleEvaluator evaluator_;
  std::vector<std::unique_ptr<alerts::Sink>> sinks_;
  std::unique_ptr<alerts::AlertEngine> alerts_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace resonance::cli
