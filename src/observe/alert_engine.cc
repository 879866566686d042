#include "observe/alert_engine.h"

#include <algorithm>
#include <set>

namespace resonance::alerts {

AlertEngine::AlertEngine(std::vector<Sink*> sinks, Transition on_transition, size_t history)
    : sinks_(std::move(sinks)), on_transition_(std::move(on_transition)), history_limit_(history) {}

void AlertEngine::Evaluate(Micros now, const std::vector<Observation>& round,
                           const std::map<std::string, Timing>& timing) {
  struct Pending {
    Alert alert;
    std::string kind;
    bool deliver;
  };
  std::vector<Pending> out;
  auto timing_of = [&](const std::string& rule) {
    auto it = timing.find(rule);
    return it == timing.end() ? Timing{} : it->second;
  };
  {
    std::lock_guard lock(mu_);
    std::set<std::string> seen;
    for (const Observation& o : round) {
      Labels labels = o.labels;
      std::sort(labels.begin(), labels.end());
      const std::string fp = Fingerprint(o.rule, labels);
      if (!o.active) continue;  // handled below with the subjects not seen
      seen.insert(fp);
      const Timing t = timing_of(o.rule);
      auto it = tracked_.find(fp);
      if (it == tracked_.end()) {
        Tracked tr;
        Alert& a = tr.alert;
        a.name = o.rule;
        a.severity = o.severity;
        a.labels = std::move(labels);
        a.annotations = o.annotations;
        a.value = o.value;
        a.threshold = o.threshold;
        a.active_since = now;
        a.fingerprint = fp;
        a.state = AlertState::kPending;
        it = tracked_.emplace(fp, std::move(tr)).first;
        out.push_back({it->second.alert, "pending", false});
      }
      Tracked& tr = it->second;
      Alert& a = tr.alert;
      a.value = o.value;
      a.threshold = o.threshold;
      a.annotations = o.annotations;
      tr.clear_since = 0;
      if (a.state == AlertState::kPending && now - a.active_since >= t.for_) {
        a.state = AlertState::kFiring;
        a.firing_since = now;
        a.severity = o.severity;
        out.push_back({a, "firing", true});
      } else if (a.state == AlertState::kFiring && a.severity != o.severity) {
        a.severity = o.severity;
        out.push_back({a, "firing", true});  // escalated or eased: a new notification
      } else if (a.state == AlertState::kPending) {
        a.severity = o.severity;
      }
    }
    for (auto it = tracked_.begin(); it != tracked_.end();) {
      Tracked& tr = it->second;
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      Alert& a = tr.alert;
      if (a.state == AlertState::kPending) {
        it = tracked_.erase(it);  // never fired: nothing to resolve
        continue;
      }
      if (tr.clear_since == 0) tr.clear_since = now;
      if (now - tr.clear_since >= timing_of(a.name).hold) {
        a.state = AlertState::kResolved;
        a.resolved_at = now;
        out.push_back({a, "resolved", true});
        it = tracked_.erase(it);
        continue;
      }
      ++it;
    }
    for (const Pending& p : out) {
      history_.push_front(p.alert);
      if (history_.size() > history_limit_) history_.pop_back();
    }
  }
  for (const Pending& p : out) Emit(p.alert, p.kind, p.deliver);
}

void AlertEngine::Emit(const Alert& a, const std::string& kind, bool deliver) {
  if (on_transition_) on_transition_(a, kind);
  if (!deliver) return;
  for (Sink* s : sinks_) s->Deliver(a);
}

void AlertEngine::Refresh() {
  std::vector<Alert> firing;
  {
    std::lock_guard lock(mu_);
    for (const auto& [fp, tr] : tracked_) {
      if (tr.alert.state == AlertState::kFiring) firing.push_back(tr.alert);
    }
  }
  if (firing.empty()) return;
  for (Sink* s : sinks_) s->Refresh(firing);
}

std::vector<Alert> AlertEngine::Active() const {
  std::lock_guard lock(mu_);
  std::vector<Alert> out;
  for (const auto& [fp, tr] : tracked_) out.push_back(tr.alert);
  std::sort(out.begin(), out.end(), [](const Alert& a, const Alert& b) {
    return std::tie(a.name, a.labels) < std::tie(b.name, b.labels);
  });
  return out;
}

std::vector<Alert> AlertEngine::History() const {
  std::lock_guard lock(mu_);
  return {history_.begin(), history_.end()};
}

int AlertEngine::FiringCount(const std::string& name, const std::string& severity) const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [fp, tr] : tracked_) {
    if (tr.alert.state == AlertState::kFiring && tr.alert.name == name &&
        tr.alert.severity == severity) {
      ++n;
    }
  }
  return n;
}

std::map<std::pair<std::string, std::string>, int> AlertEngine::FiringByNameAndSeverity() const {
  std::lock_guard lock(mu_);
  std::map<std::pair<std::string, std::string>, int> out;
  for (const auto& [fp, tr] : tracked_) {
    if (tr.alert.state == AlertState::kFiring) ++out[{tr.alert.name, tr.alert.severity}];
  }
  return out;
}

}  // namespace resonance::alerts
