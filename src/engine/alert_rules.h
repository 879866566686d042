#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/baselines.h"
#include "core/status.h"
#include "engine/canary.h"
#include "engine/credentials.h"
#include "observe/alert_engine.h"
#include "store/store.h"

namespace resonance {

class Engine;

// One alert rule: a signal measured per subject, compared with a threshold, for a
// while (docs/alerts.md, "Rules"). The built-in rules are RuleSpecs with defaults
// (BuiltinRules); [alerts.rules.NAME] in the config changes them or adds new ones.
struct RuleSpec {
  std::string name;
  bool enabled = true;
  // Signals: success_rate, failure_rate, duration_p95 (per queue and action, over
  // `window_minutes` of task history); dead_letters, queue_depth (per queue);
  // rate_limited (per queue and action, failures of that class in the window);
  // workers_active, worker_restarts (per pool); store_commit_p99 (the server);
  // canary (per canary queue: 1 while its last canary failed or went missing, else 0);
  // breaker_open (per action with a breaker: 1 while open or half-open, else 0);
  // schedule_gaps (per schedule: its open gaps, docs/schedules.md);
  // credential_expired (per credential with an expiry: 1 once it expired, else 0).
  std::string signal;
  std::string op = ">";          // >, >=, <, <=, !=
  double threshold = 0;
  // success_rate and duration_p95: compare with the learned baseline threshold
  // (GET /api/baselines) instead of `threshold`. workers_active: with the pool's target.
  bool use_baseline = false;
  bool use_target = false;
  int window_minutes = 5;
  // History signals: one subject per queue and action, or (false) per queue.
  bool per_action = true;
  int64_t min_samples = 0;       // subjects with fewer samples in the window are skipped
  // queue_depth bands: warning from warning_at, critical from critical_at (0 = unused);
  // per-queue overrides in queue_bands.
  int64_t warning_at = 0;
  int64_t critical_at = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> queue_bands;
  Micros for_ = 0;
  std::optional<Micros> hold;    // default: [alerts] hold
  std::string severity = "warning";
  alerts::Labels labels;         // added to the subject's labels
  alerts::Labels annotations;    // {{queue}} {{action}} {{pool}} {{schedule}} {{value}} {{threshold}}
};

// The rules DESIGN §7 and issue 5 ask for, with their defaults.
std::vector<RuleSpec> BuiltinRules();

// Checks one spec (known signal and op, sensible numbers). kInvalidArgument naming the
// rule and the field.
Status ValidateRule(const RuleSpec& r);

// Baselines per (queue, action), learned from the complete hours of the look-back
// before the hour `now` falls in (GET /api/baselines and the baseline rules). Empty
// queue/action: all of them.
using BaselineMap = std::map<std::pair<std::string, std::string>, Baseline>;
Result<BaselineMap> LearnBaselines(Store& store, Micros now, const BaselineOptions& options,
                                   const std::string& queue = "", const std::string& action = "");

// What the rules read besides the engine and the store.
struct SignalSources {
  std::map<std::string, int> pool_targets;            // [[pools]] name -> workers
  std::function<std::optional<double>()> commit_p99;  // seconds over the last interval
  std::function<std::vector<CanaryState>()> canaries;  // [[canaries]], nullptr = none
  // Open gaps per schedule (Scheduler::OpenGaps), nullptr = no schedules.
  std::function<std::map<std::string, int64_t>()> schedule_gaps;
  std::function<std::vector<CredentialInfo>()> credentials;  // nullptr = none
  BaselineOptions baselines;
};

// Measures every enabled rule's signal for every subject and returns the round for
// AlertEngine::Evaluate. Reads the store (history) and the engine (queues, workers).
// Baselines are learned once an hour (they only change when an hour completes). Not
// thread-safe: one evaluator thread.
class RuleEvaluator {
 public:
  RuleEvaluator(std::vector<RuleSpec> rules, Engine& engine, Store& store, SignalSources sources);
  Result<std::vector<alerts::Observation>> Measure(Micros now);
  std::map<std::string, alerts::Timing> Timings(Micros default_hold) const;
  const std::vector<RuleSpec>& rules() const { return rules_; }

 private:
  const Baseline* BaselineOf(const std::string& queue, const std::string& action, Micros now);

  std::vector<RuleSpec> rules_;
  Engine& engine_;
  Store& store_;
  SignalSources sources_;
  int64_t baselines_hour_ = -1;
  BaselineMap baselines_;
};

// Replaces {{key}} in text with the values given.
std::string RenderTemplate(std::string text, const std::map<std::string, std::string>& values);

}  // namespace resonance
