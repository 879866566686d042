#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace resonance::alerts {

enum class AlertState : uint8_t {
  kPending,   // the condition holds, not yet for the rule's `for`
  kFiring,    // it held for `for` (and has not been clear for the hold time since)
  kResolved,  // it was firing and has been clear for the hold time
};
const char* AlertStateName(AlertState s);

using Labels = std::vector<std::pair<std::string, std::string>>;  // sorted by key

// One alert: a rule applied to one label set (e.g. QueueDepthCritical{queue="rpa"}).
// A value type: the engine hands copies to sinks.
struct Alert {
  std::string name;      // the rule's name, also the "alertname" label
  std::string severity;  // "info", "warning" or "critical"
  Labels labels;         // the rule's labels and the subject's (queue, action, pool)
  Labels annotations;    // "summary" and "description" at least
  AlertState state = AlertState::kPending;
  double value = 0;            // what was measured at the last evaluation
  double threshold = 0;        // what it was compared with
  Micros active_since = 0;     // when the condition started to hold (pending)
  Micros firing_since = 0;     // when it started firing (0 while pending)
  Micros resolved_at = 0;      // when it resolved (0 until then)
  std::string fingerprint;     // 16 hex digits, stable for name + labels
};

// FNV-1a over the name and the sorted labels, as 16 lowercase hex digits.
std::string Fingerprint(const std::string& name, const Labels& labels);

// The alert as one JSON object, no newline; keys in this order, labels and
// annotations in their (sorted) order, times RFC 3339 (null while unset), the
// fingerprint computed when the alert has none:
// {"name":"QueueDepthCritical","state":"firing","severity":"critical",
//  "labels":{"queue":"rpa"},"annotations":{"summary":"25 ready tasks in queue rpa"},
//  "value":25,"threshold":21,"active_since":"2026-11-22T18:00:00.000000Z",
//  "firing_since":"2026-11-22T18:01:00.000000Z","resolved_at":null,
//  "fingerprint":"16802cc81ace4792"}
std::string AlertJson(const Alert& alert);

// One line for people: "[FIRING]", "[RESOLVED]" or "[PENDING]", the name, the
// severity in parentheses, the labels other than alertname and severity as k=v, then
// ": " and the summary annotation if there is one. Control characters become spaces.
//   [FIRING] QueueDepthCritical (critical) queue=rpa: 25 ready tasks in queue rpa
std::string AlertText(const Alert& alert);

// A place alerts go to. Deliver is called on every transition to firing and to
// resolved (the engine's thread, under no lock of the engine); Refresh is called every
// resend interval with every firing alert, for sinks that must repeat them
// (Alertmanager forgets alerts that are not re-sent). Both must return at once: a sink
// that talks to the network queues and sends from its own thread.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Deliver(const Alert& alert) = 0;
  virtual void Refresh(const std::vector<Alert>& firing) { (void)firing; }
  virtual std::string name() const = 0;  // for logs and metrics: "log", "file", "webhook:<url>"
};

}  // namespace resonance::alerts
