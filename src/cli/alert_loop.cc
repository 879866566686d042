#include "cli/alert_loop.h"

#include <pthread.h>
#include <signal.h>

#include <filesystem>

#include "observe/alert_sinks.h"
#include "observe/log.h"

namespace resonance::cli {

namespace {
SignalSources WithCanaries(SignalSources s, CanaryRunner& canaries) {
  s.canaries = [&canaries] { return canaries.States(); };
  return s;
}
}  // namespace

AlertLoop::AlertLoop(const AlertsConfig& config, std::vector<CanaryConfig> canaries,
                     const std::string& data_dir, Engine& engine, Store& store,
                     SignalSources sources, int history_keep_days)
    : config_(config),
      data_dir_(data_dir),
      engine_(engine),
      store_(store),
      history_keep_days_(history_keep_days),
      canaries_(std::move(canaries), engine, store),
      evaluator_(config.rules, engine, store, WithCanaries(std::move(sources), canaries_)) {}

AlertLoop::~AlertLoop() { Stop(); }

Status AlertLoop::Start() {
  for (const AlertSinkConfig& sc : config_.sinks) {
    if (sc.type == "log") {
      sinks_.push_back(std::make_unique<alerts::LogSink>());
    } else if (sc.type == "file") {
      sinks_.push_back(std::make_unique<alerts::FileSink>(
          (std::filesystem::path(data_dir_) / "alerts").string()));
    } else {
      alerts::WebhookOptions o;
      o.url = sc.url;
      o.format = sc.type == "alertmanager" ? alerts::WebhookOptions::Format::kAlertmanager
                                           : alerts::WebhookOptions::Format::kJson;
      auto sink = alerts::WebhookSink::Start(std::move(o));
      if (!sink.ok()) return sink.status();
      sinks_.push_back(std::move(*sink));
    }
  }
  std::vector<alerts::Sink*> raw;
  for (auto& s : sinks_) raw.push_back(s.get());
  alerts_ = std::make_unique<alerts::AlertEngine>(
      std::move(raw), [this](const alerts::Alert& a, const std::string& kind) {
        engine_.RecordEvent("alert." + kind, alerts::AlertJson(a), [](const Status& s) {
          if (!s.ok()) log::Warn("alerts", "ledger: " + s.message());
        });
      });
  // The thread blocks every signal: they belong to the server's signal handling.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread([this] { Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return Status::Ok();
}

void AlertLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AlertLoop::RegisterMetrics(metrics::Registry& registry) {
  auto& firing = registry.AddGauge("resonance_alerts_firing",
                                   "Alerts firing now, by rule and severity.",
                                   {"alertname", "severity"});
  registry.OnScrape([this, &firing] {
    firing.Clear();
    for (const RuleSpec& r : evaluator_.rules()) {
      if (!r.enabled) continue;
      // Every rule shows a series (0 when quiet) at the severities it can have.
      firing.With({r.name, r.severity}).Set(0);
      if (r.signal == "queue_depth") firing.With({r.name, "critical"}).Set(0);
    }
    if (!alerts_) return;
    for (const auto& [key, n] : alerts_->FiringByNameAndSeverity()) {
      firing.With({key.first, key.second}).Set(n);
    }
  });
  auto& runs = registry.AddScrapedCounter("resonance_canary_runs_total",
                                          "Canary results by queue: ok, failed, missing.",
                                          {"queue", "outcome"});
  auto& latency = registry.AddGauge("resonance_canary_latency_seconds",
                                    "Enqueue to finish of the last finished canary.", {"queue"});
  auto& success = registry.AddGauge("resonance_canary_last_success_timestamp_seconds",
                                    "Unix time of the last canary that succeeded (0: none yet).",
                                    {"queue"});
  auto& failing = registry.AddGauge("resonance_canary_failing",
                                    "1 while the last canary of the queue failed or went missing.",
                                    {"queue"});
  registry.OnScrape([this, &runs, &latency, &success, &failing] {
    for (const CanaryState& c : canaries_.States()) {
      for (const char* outcome : {"ok", "failed", "missing"}) {
        auto it = c.runs.find(outcome);
        runs.With({c.queue, outcome}).Set(it == c.runs.end() ? 0 : static_cast<double>(it->second));
      }
      latency.With({c.queue}).Set(c.last_latency_s);
      success.With({c.queue}).Set(static_cast<double>(c.last_success) / kMicrosPerSecond);
      failing.With({c.queue}).Set(c.failing() ? 1 : 0);
    }
  });
}

void AlertLoop::Run() {
  const auto interval = std::chrono::milliseconds(config_.interval_ms);
  const Micros resend = static_cast<Micros>(config_.resend_s) * kMicrosPerSecond;
  const Micros hold = static_cast<Micros>(config_.hold_s) * kMicrosPerSecond;
  SystemClock clock;
  Micros last_refresh = clock.Now();
  Micros last_prune = 0;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
    lock.unlock();
    const Micros now = clock.Now();
    canaries_.Tick(now);
    auto round = evaluator_.Measure(now);
    if (round.ok()) {
      alerts_->Evaluate(now, *round, evaluator_.Timings(hold));
    } else {
      log::Warn("alerts", "rules not evaluated: " + round.status().message());
    }
    if (now - last_prune >= 3600 * kMicrosPerSecond) {  // at start, then hourly
      WriteBatch prune;
      prune.mutations.push_back(
          PruneStats{MinuteOf(now) - static_cast<int64_t>(history_keep_days_) * 24 * 60});
      store_.Submit(std::move(prune), [](const Status& s) {
        if (!s.ok()) log::Warn("alerts", "history pruning: " + s.message());
      });
      last_prune = now;
    }
    if (now - last_refresh >= resend) {
      alerts_->Refresh();
      last_refresh = now;
    }
    lock.lock();
  }
}

}  // namespace resonance::cli
