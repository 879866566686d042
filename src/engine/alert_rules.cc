#include "engine/alert_rules.h"

#include <cstdio>
#include <set>

#include "engine/engine.h"

namespace resonance {
namespace {

constexpr Micros kMinute = 60 * kMicrosPerSecond;

const std::set<std::string>& KnownSignals() {
  static const std::set<std::string> s = {"success_rate",   "failure_rate",    "duration_p95",
                                          "dead_letters",   "queue_depth",     "rate_limited",
                                          "workers_active", "worker_restarts", "store_commit_p99",
                                          "canary",         "breaker_open",    "schedule_gaps",
                                          "credential_expired"};
  return s;
}

bool PerAction(const std::string& signal) {
  return signal == "success_rate" || signal == "failure_rate" || signal == "duration_p95" ||
         signal == "rate_limited";
}

bool Compare(const std::string& op, double v, double t) {
  if (op == ">") return v > t;
  if (op == ">=") return v >= t;
  if (op == "<") return v < t;
  if (op == "<=") return v <= t;
  return v != t;  // "!="
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

RuleSpec Rule(std::string name, std::string signal, std::string op, double threshold,
              std::string severity, Micros for_, std::string summary) {
  RuleSpec r;
  r.name = std::move(name);
  r.signal = std::move(signal);
  r.op = std::move(op);
  r.threshold = threshold;
  r.severity = std::move(severity);
  r.for_ = for_;
  r.annotations = {{"summary", std::move(summary)}};
  return r;
}

}  // namespace

std::vector<RuleSpec> BuiltinRules() {
  std::vector<RuleSpec> rules;
  RuleSpec r = Rule("SuccessRateBelowBaseline", "success_rate", "<", 0, "critical", 5 * kMinute,
                    "success rate of {{action}} on queue {{queue}} is {{value}}, below its "
                    "baseline {{threshold}}");
  r.use_baseline = true;
  r.window_minutes = 15;
  r.min_samples = 5;
  rules.push_back(r);
  r = Rule("DurationAboveBaseline", "duration_p95", ">", 0, "warning", 5 * kMinute,
           "p95 duration of {{action}} on queue {{queue}} is {{value}} s, above its baseline "
           "{{threshold}} s");
  r.use_baseline = true;
  r.window_minutes = 15;
  r.min_samples = 5;
  rules.push_back(r);
  r = Rule("QueueDepth", "queue_depth", ">=", 0, "warning", kMinute,
           "{{value}} ready tasks in queue {{queue}}");
  r.warning_at = 6;
  r.critical_at = 21;
  rules.push_back(r);
  r = Rule("WorkersOffTarget", "workers_active", "!=", 0, "warning", 2 * kMinute,
           "{{value}} active workers in pool {{pool}}, the target is {{threshold}}");
  r.use_target = true;
  rules.push_back(r);
  r = Rule("DeadLettersGrowing", "dead_letters", ">=", 5, "warning", 0,
           "{{value}} tasks of queue {{queue}} went to the dead-letter queue in 10 minutes");
  r.window_minutes = 10;
  rules.push_back(r);
  r = Rule("FailureRateHigh", "failure_rate", ">", 0.03, "warning", 5 * kMinute,
           "{{value}} of the attempts of {{action}} on queue {{queue}} failed in 5 minutes");
  r.window_minutes = 5;
  r.min_samples = 20;
  rules.push_back(r);
  r = Rule("RateLimitedSpike", "rate_limited", ">=", 10, "warning", 0,
           "{{value}} attempts of {{action}} on queue {{queue}} were rate limited in 5 minutes");
  r.window_minutes = 5;
  rules.push_back(r);
  r = Rule("WorkerRestartLimit", "worker_restarts", ">", 5, "critical", 0,
           "workers of pool {{pool}} restarted {{value}} times in 10 minutes");
  r.window_minutes = 10;
  rules.push_back(r);
  r = Rule("CanaryFailing", "canary", ">", 0, "critical", 0,
           "the canary on queue {{queue}} failed or did not finish in time");
  rules.push_back(r);
  r = Rule("BreakerOpen", "breaker_open", ">", 0, "warning", 0,
           "the circuit breaker of action {{action}} is open: its tasks are held");
  rules.push_back(r);
  r = Rule("ScheduleGaps", "schedule_gaps", ">", 0, "warning", 0,
           "schedule {{schedule}} has {{value}} open gaps (slots without a succeeded task)");
  rules.push_back(r);
  r = Rule("CredentialExpired", "credential_expired", ">", 0, "critical", 0,
           "credential {{credential}} expired and was not renewed");
  rules.push_back(r);
  r = Rule("StoreLatencyHigh", "store_commit_p99", ">", 0.25, "warning", 2 * kMinute,
           "p99 store commit time is {{value}} s");
  rules.push_back(r);
  return rules;
}

Status ValidateRule(const RuleSpec& r) {
  auto bad = [&](const std::string& field, const std::string& msg) {
    return Status(Code::kInvalidArgument, "alerts.rules." + r.name + "." + field + ": " + msg);
  };
  if (r.name.empty()) return Status(Code::kInvalidArgument, "alerts.rules: a rule needs a name");
  if (!KnownSignals().count(r.signal)) {
    return bad("signal", "unknown signal '" + r.signal + "'");
  }
  if (r.op != ">" && r.op != ">=" && r.op != "<" && r.op != "<=" && r.op != "!=") {
    return bad("op", "must be >, >=, <, <= or !=");
  }
  if (r.severity != "info" && r.severity != "warning" && r.severity != "critical") {
    return bad("severity", "must be info, warning or critical");
  }
  if (r.window_minutes < 1 || r.window_minutes > 7 * 24 * 60) {
    return bad("window_minutes", "must be 1 to 10080");
  }
  if (r.use_baseline && !r.per_action) {
    return bad("baseline", "baselines are per queue and action: per_action must stay true");
  }
  if (r.use_baseline && r.signal != "success_rate" && r.signal != "duration_p95") {
    return bad("baseline", "only success_rate and duration_p95 have baselines");
  }
  if (r.signal == "queue_depth" && r.critical_at > 0 && r.warning_at > r.critical_at) {
    return bad("warning_at", "must not be above critical_at");
  }
  return Status::Ok();
}

std::string RenderTemplate(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string token = "{{" + key + "}}";
    for (size_t at = text.find(token); at != std::string::npos; at = text.find(token, at)) {
      text.replace(at, token.size(), value);
      at += value.size();
    }
  }
  return text;
}

Result<BaselineMap> LearnBaselines(Store& store, Micros now, const BaselineOptions& options,
                                   const std::string& queue, const std::string& action) {
  const int64_t hour_start = MinuteOf(now) / 60 * 60;
  const int64_t first = hour_start - static_cast<int64_t>(options.lookback_hours) * 60;
  auto rows = store.ReadStats(first, hour_start - 1, queue, action);
  if (!rows.ok()) return rows.status();
  std::map<std::pair<std::string, std::string>, std::map<int64_t, MinuteStats>> hours;
  for (const StatsRow& r : *rows) hours[{r.queue, r.action}][r.minute / 60].Merge(r.stats);
  BaselineMap out;
  for (const auto& [key, by_hour] : hours) {
    std::vector<MinuteStats> samples;
    for (const auto& [h, s] : by_hour) samples.push_back(s);
    out[key] = ComputeBaseline(samples, options);
  }
  return out;
}

RuleEvaluator::RuleEvaluator(std::vector<RuleSpec> rules, Engine& engine, Store& store,
                             SignalSources sources)
    : rules_(std::move(rules)), engine_(engine), store_(store), sources_(std::move(sources)) {}

std::map<std::string, alerts::Timing> RuleEvaluator::Timings(Micros default_hold) const {
  std::map<std::string, alerts::Timing> out;
  for (const RuleSpec& r : rules_) out[r.name] = {r.for_, r.hold.value_or(default_hold)};
  return out;
}

const Baseline* RuleEvaluator::BaselineOf(const std::string& queue, const std::string& action,
                                          Micros now) {
  const int64_t hour = MinuteOf(now) / 60;
  if (hour != baselines_hour_) {
    auto learned = LearnBaselines(store_, now, sources_.baselines);
    if (!learned.ok()) return nullptr;  // try again next round
    baselines_ = std::move(*learned);
    baselines_hour_ = hour;
  }
  auto it = baselines_.find({queue, action});
  return it == baselines_.end() ? nullptr : &it->second;
}

Result<std::vector<alerts::Observation>> RuleEvaluator::Measure(Micros now) {
  std::vector<alerts::Observation> round;
  // History for the longest window any enabled rule needs.
  int max_window = 0;
  for (const RuleSpec& r : rules_) {
    if (r.enabled && (PerAction(r.signal) || r.signal == "dead_letters")) {
      max_window = std::max(max_window, r.window_minutes);
    }
  }
  const int64_t last = MinuteOf(now);
  std::vector<StatsRow> rows;
  if (max_window > 0) {
    auto read = store_.ReadStats(last - max_window + 1, last, "", "");
    if (!read.ok()) return read.status();
    rows = std::move(*read);
  }
  std::vector<QueueInfo> queues;
  std::vector<WorkerInfo> workers;
  bool have_queues = false, have_workers = false;

  for (const RuleSpec& r : rules_) {
    if (!r.enabled) continue;
    auto emit = [&](alerts::Labels subject, double value, double threshold, bool active,
                    const std::string& severity) {
      alerts::Observation o;
      o.rule = r.name;
      std::map<std::string, std::string> values = {{"value", Number(value)},
                                                    {"threshold", Number(threshold)}};
      for (const auto& [k, v] : subject) values[k] = v;
      o.labels = std::move(subject);
      o.labels.insert(o.labels.end(), r.labels.begin(), r.labels.end());
      o.active = active;
      o.severity = severity;
      o.value = value;
      o.threshold = threshold;
      for (const auto& [k, v] : r.annotations) o.annotations.emplace_back(k, RenderTemplate(v, values));
      round.push_back(std::move(o));
    };
    if (PerAction(r.signal) || r.signal == "dead_letters") {
      const int64_t first = last - r.window_minutes + 1;
      std::map<std::pair<std::string, std::string>, MinuteStats> sums;
      for (const StatsRow& row : rows) {
        if (row.minute < first) continue;
        const std::string action =
            r.signal == "dead_letters" || !r.per_action ? std::string() : row.action;
        sums[{row.queue, action}].Merge(row.stats);
      }
      for (const auto& [key, s] : sums) {
        alerts::Labels subject = {{"queue", key.first}};
        if (!key.second.empty()) subject.emplace_back("action", key.second);
        std::optional<double> value;
        int64_t samples = 0;
        if (r.signal == "success_rate") {
          value = s.success_rate();
          samples = s.succeeded + s.dead;
        } else if (r.signal == "failure_rate") {
          value = s.failure_rate();
          samples = s.succeeded + s.retried + s.dead;
        } else if (r.signal == "duration_p95") {
          value = s.duration.Quantile(0.95);
          samples = s.duration.count;
        } else if (r.signal == "rate_limited") {
          value = static_cast<double>(s.failures[static_cast<size_t>(ErrorClass::kRateLimited)]);
          samples = s.succeeded + s.retried + s.dead;
        } else {  // dead_letters
          value = static_cast<double>(s.dead);
          samples = s.dead;
        }
        if (!value || samples < r.min_samples) continue;
        double threshold = r.threshold;
        if (r.use_baseline) {
          const Baseline* b = BaselineOf(key.first, key.second, now);
          if (r.signal == "success_rate") {
            threshold = b ? b->success_threshold : sources_.baselines.success_floor;
          } else {
            if (!b || !b->p95_threshold) continue;  // nothing learned yet
            threshold = *b->p95_threshold;
          }
        }
        emit(subject, *value, threshold, Compare(r.op, *value, threshold), r.severity);
      }
    } else if (r.signal == "queue_depth") {
      if (!have_queues) {
        queues = engine_.Queues(/*include_empty=*/true);
        have_queues = true;
      }
      for (const QueueInfo& q : queues) {
        auto [warning_at, critical_at] = std::make_pair(r.warning_at, r.critical_at);
        if (auto it = r.queue_bands.find(q.name); it != r.queue_bands.end()) {
          std::tie(warning_at, critical_at) = it->second;
        }
        const double depth = static_cast<double>(q.ready);
        const bool critical = critical_at > 0 && q.ready >= critical_at;
        const bool warning = warning_at > 0 && q.ready >= warning_at;
        const double threshold = static_cast<double>(critical ? critical_at : warning_at);
        emit({{"queue", q.name}}, depth, threshold, critical || warning,
             critical ? "critical" : r.severity);
      }
    } else if (r.signal == "workers_active") {
      if (!have_workers) {
        workers = engine_.Workers();
        have_workers = true;
      }
      std::map<std::string, int> active;
      for (const auto& [pool, target] : sources_.pool_targets) active[pool] = 0;
      for (const WorkerInfo& w : workers) {
        if (w.registered && w.status == WorkerStatus::kActive) ++active[w.registration.pool];
      }
      for (const auto& [pool, n] : active) {
        double threshold = r.threshold;
        if (r.use_target) {
          auto t = sources_.pool_targets.find(pool);
          if (t == sources_.pool_targets.end()) continue;  // no target for this pool
          threshold = t->second;
        }
        emit({{"pool", pool}}, n, threshold, Compare(r.op, n, threshold), r.severity);
      }
    } else if (r.signal == "worker_restarts") {
      for (const auto& [pool, n] :
           engine_.RestartsSince(now - static_cast<Micros>(r.window_minutes) * kMinute)) {
        emit({{"pool", pool}}, n, r.threshold, Compare(r.op, n, r.threshold), r.severity);
      }
    } else if (r.signal == "canary") {
      if (!sources_.canaries) continue;
      for (const CanaryState& c : sources_.canaries()) {
        if (c.last_outcome.empty()) continue;  // no result yet
        const double v = c.failing() ? 1 : 0;
        emit({{"queue", c.queue}}, v, r.threshold, Compare(r.op, v, r.threshold), r.severity);
      }
    } else if (r.signal == "breaker_open") {
      for (const BreakerInfo& b : engine_.Flow().breakers) {
        // Half-open counts as open: the action's tasks are still held but for the probe.
        const double v = b.state == "closed" ? 0 : 1;
        emit({{"action", b.action}}, v, r.threshold, Compare(r.op, v, r.threshold), r.severity);
      }
    } else if (r.signal == "schedule_gaps") {
      if (!sources_.schedule_gaps) continue;
      for (const auto& [schedule, open] : sources_.schedule_gaps()) {
        const double v = static_cast<double>(open);
        emit({{"schedule", schedule}}, v, r.threshold, Compare(r.op, v, r.threshold), r.severity);
      }
    } else if (r.signal == "credential_expired") {
      if (!sources_.credentials) continue;
      for (const CredentialInfo& c : sources_.credentials()) {
        if (c.expires_at == 0) continue;  // never expires
        const double v = c.state == CredentialState::kExpired ? 1 : 0;
        emit({{"credential", c.name}}, v, r.threshold, Compare(r.op, v, r.threshold), r.severity);
      }
    } else if (r.signal == "store_commit_p99") {
      if (!sources_.commit_p99) continue;
      if (auto p99 = sources_.commit_p99()) {
        emit({}, *p99, r.threshold, Compare(r.op, *p99, r.threshold), r.severity);
      }
    }
  }
  return round;
}

}  // namespace resonance
