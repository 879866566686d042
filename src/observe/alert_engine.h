#pragma once

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "observe/alert.h"

namespace resonance::alerts {

// What one rule measured for one subject in one evaluation round.
struct Observation {
  std::string rule;      // the rule's name
  Labels labels;         // the subject (queue, action, pool) and the rule's own labels
  bool active = false;   // the condition holds
  std::string severity;  // may change between rounds (queue depth bands)
  double value = 0;
  double threshold = 0;
  Labels annotations;    // rendered for this subject
};

// How long a rule's condition must hold before it fires (`for`), and how long it must
// be clear before a firing alert resolves (`hold`: no flapping storms).
struct Timing {
  Micros for_ = 0;
  Micros hold = 0;
};

// The state machine of alerts (docs/alerts.md, "States"):
//   condition holds          -> pending (since now); after `for` -> firing
//   pending, condition clear -> forgotten (it never fired)
//   firing, condition clear  -> still firing until clear for `hold`, then resolved
//   firing, severity changes -> firing again with the new severity (delivered again)
// Subjects a round does not mention count as clear. Every transition (to pending,
// firing, resolved, and severity changes) is handed to `on_transition` and, for firing
// and resolved, delivered to every sink. Thread-safe; Evaluate is meant for one thread.
class AlertEngine {
 public:
  using Transition = std::function<void(const Alert& alert, const std::string& kind)>;
  AlertEngine(std::vector<Sink*> sinks, Transition on_transition, size_t history = 500);

  // One round at `now`. `timing` gives each rule's for and hold (rules not listed: 0).
  void Evaluate(Micros now, const std::vector<Observation>& round,
                const std::map<std::string, Timing>& timing);
  // Sends every firing alert to the sinks' Refresh (Alertmanager must hear them again).
  void Refresh();

  std::vector<Alert> Active() const;   // pending and firing, by name and labels
  std::vector<Alert> History() const;  // recent transitions, newest first
  int FiringCount(const std::string& name, const std::string& severity) const;
  // (name, severity) -> firing alerts, for the resonance_alerts_firing gauge.
  std::map<std::pair<std::string, std::string>, int> FiringByNameAndSeverity() const;

 private:
  struct Tracked {
    Alert alert;
    Micros clear_since = 0;  // firing and clear since then (0 = condition holds)
  };
  void Emit(const Alert& a, const std::string& kind, bool deliver);

  std::vector<Sink*> sinks_;
  Transition on_transition_;
  size_t history_limit_;
  mutable std::mutex mu_;
  std::map<std::string, Tracked> tracked_;  // by fingerprint; guarded by mu_
  std::deque<Alert> history_;               // guarded by mu_
};

}  // namespace resonance::alerts
