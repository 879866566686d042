#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/task_id.h"
#include "engine/live_task.h"

namespace resonance {

// A token bucket: tokens flow in at per_second, at most burst are kept.
struct RateLimit {
  double per_second = 0;  // 0 = no rate limit
  double burst = 0;       // 0 = the default, max(1, per_second)
};

// "20/s", "1000/min", "3600/h" (also /sec /second /m /minute /hour /hr /d /day), the count
// may have decimals ("0.5/s"). Tokens per second; kInvalidArgument naming the problem.
Result<double> ParseRate(std::string_view text);

// The limits of one queue or one action (docs/flow-control.md).
struct FlowLimits {
  RateLimit rate;
  int concurrency = 0;  // tasks running at once; 0 = no limit
  RateLimit key_rate;   // the same for each limit key on its own
  int key_concurrency = 0;
  std::string key_field;  // payload field naming the key when a task gives no limit_key
  bool Limits() const { return rate.per_second > 0 || concurrency > 0; }
  bool KeyLimits() const { return key_rate.per_second > 0 || key_concurrency > 0; }
};

// A circuit breaker per action: opens when, over `window`, at least min_attempts
// attempts ended and failure_ratio of them failed (classes temporary and timeout);
// after `cooldown` one probe task runs; its success closes the breaker, its failure
// opens it again.
struct BreakerOptions {
  bool enabled = false;
  Micros window = 60 * kMicrosPerSecond;
  int min_attempts = 10;
  double failure_ratio = 0.5;
  Micros cooldown = 30 * kMicrosPerSecond;
};

// The limit key a payload gives through `field`: a top-level string as it is, a number
// as its JSON text; "" when the payload has no such field or it holds something else.
std::string KeyFromPayload(const std::string& payload, const std::string& field);

struct FlowOptions {
  std::map<std::string, FlowLimits> queues;   // by queue name
  std::map<std::string, FlowLimits> actions;  // by action name
  BreakerOptions breaker;                     // every action's, unless in breakers
  std::map<std::string, BreakerOptions> breakers;  // by action name

  // The payload field that gives a task of this queue and action its limit key: the
  // action's key_field, else the queue's; "" when neither names one.
  const std::string& KeyField(const std::string& queue, const std::string& action) const;
};

// A gate's state, for GET /api/flow and the metrics.
struct GateInfo {
  std::string scope;  // queue, queue_key, action, action_key
  std::string name;   // the queue's or action's name
  std::string key;    // for *_key scopes
  double rate = 0;    // tokens per second, 0 = none
  double burst = 0;
  double tokens = 0;
  int concurrency = 0;  // 0 = none
  int running = 0;
  Micros paused_until = 0;  // backpressure, 0 = not paused
};
struct BreakerInfo {
  std::string action;
  std::string state;  // closed, open, half_open
  int attempts = 0;   // in the window
  int failures = 0;
  Micros opened_at = 0;
  Micros probe_at = 0;  // open: when a probe may run
  uint64_t opened_total = 0;
};
struct FlowSnapshot {
  std::vector<GateInfo> gates;  // those with a limit, a pause or running tasks
  std::vector<BreakerInfo> breakers;
  uint64_t held[4] = {};  // lanes held back at lease time, by FlowControl::HoldReason
  uint64_t pauses = 0;    // backpressure pauses applied
};

// Which ready task may run next. Ready tasks sit in lanes, one per (queue, action, limit
// key), each ordered as a queue is (ReadyKey). At lease time a lane must pass its gates:
// the rate bucket and concurrency slots of its queue and action and of its key under
// each, a backpressure pause of its action (and key), and its action's breaker. A lane
// that may not run is parked (left out of the choice) until it may, so a held key never
// blocks tasks of other lanes behind it: no head-of-line blocking.
//
// Lanes live while tasks refer to them (Attach/Detach). Not thread-safe: the engine
// calls it under its mutex. State is in memory; after a restart buckets start full,
// breakers closed and pauses lifted (running tasks are counted again by AddRunning).
class FlowControl {
 public:
  enum HoldReason { kRate, kConcurrency, kBackpressure, kBreaker };

  explicit FlowControl(FlowOptions options);
  const FlowOptions& options() const { return options_; }
  // True when some queue or action has a limit or a breaker: otherwise Take is the plain
  // "best ready task" and the engine may skip the key lookup.
  bool configured() const { return configured_; }

  // The lane of (queue, action, key), counting one more task on it. Names are the
  // queue's and action's, for their limits.
  uint32_t Attach(uint32_t queue, const std::string& queue_name, uint32_t action,
                  const std::string& action_name, const std::string& key);
  // One task fewer on the lane (it left the engine's memory). The lane goes when none
  // is left.
  void Detach(uint32_t lane);

  void AddReady(uint32_t lane, const ReadyKey& k, float cost);
  void RemoveReady(uint32_t lane, const ReadyKey& k);
  int64_t ReadyCount(uint32_t queue) const;

  // The best ready task of `queues` whose lane passes its gates now, skipping queues
  // paused[q] marks; takes it out of its lane, takes its cost from the buckets and counts
  // it running. nullopt when none may run.
  std::optional<TaskId> Take(const std::vector<uint32_t>& queues,
                             const std::vector<bool>& paused, Micros now);
  // A task recovered as running counts against its gates (no tokens taken).
  void AddRunning(uint32_t lane);
  // A running task of the lane stopped running (finished, failed, expired, released).
  void Release(uint32_t lane, TaskId id);

  // The end of an attempt, for the action's breaker (call before Release).
  void RecordOutcome(uint32_t lane, TaskId id, bool failure, Micros now);
  // Backpressure: holds the lane's action (its key when the lane has one) until `until`.
  void Pause(uint32_t lane, Micros until, Micros now);

  // Unparks lanes whose wait is over; true when any came back.
  bool Wake(Micros now);
  // When the next parked lane's wait ends.
  std::optional<Micros> NextWake() const;

  // Ledger records (kind, JSON data) of breaker transitions and pauses since last call.
  std::vector<std::pair<std::string, std::string>> TakeEvents();
  FlowSnapshot Snapshot(Micros now, const std::vector<std::string>& queue_names,
                        const std::function<const std::string&(uint32_t)>& action_name);

 private:
  enum GateKind : uint8_t { kQueueGate, kQueueKeyGate, kActionGate, kActionKeyGate };
  struct GateKey {
    GateKind kind;
    uint32_t index;
    std::string key;
    bool operator==(const GateKey& o) const {
      return kind == o.kind && index == o.index && key == o.key;
    }
  };
  struct GateKeyHash {
    size_t operator()(const GateKey& k) const;
  };
  struct Gate {
    double rate = 0, burst = 0, tokens = 0;
    Micros refilled_at = 0;
    int concurrency = 0;
    int running = 0;
    int refs = 0;  // lanes using it
    Micros paused_until = 0;
    std::vector<uint32_t> parked;  // lanes waiting for a slot
  };
  struct Bucket {
    Micros second;
    int ok = 0, failed = 0;
  };
  struct Breaker {
    BreakerOptions options;
    enum State { kClosed, kOpen, kHalfOpen } state = kClosed;
    std::deque<Bucket> window;
    Micros opened_at = 0, open_until = 0;
    TaskId probe = 0;
    std::vector<uint32_t> parked;  // lanes waiting for the probe to end
    uint64_t opened_total = 0;
  };
  enum Park : uint8_t { kNotParked, kTimed, kOnGate, kOnBreaker };
  struct Lane {
    uint32_t queue = 0, action = 0;
    std::string key;
    std::set<ReadyKey> ready;
    std::vector<Gate*> gates;
    std::vector<GateKind> kinds;  // of gates, in the same order
    Gate* pause = nullptr;  // where backpressure of this lane goes
    Breaker* breaker = nullptr;
    int tasks = 0;  // live tasks attached
    Park parked = kNotParked;
    Micros parked_until = 0;
    const void* parked_on = nullptr;
    bool in_use = false;
  };

  Gate* GateFor(GateKind kind, uint32_t index, const std::string& key, const RateLimit& rate,
                int concurrency);
  void DropGate(Gate* g, GateKind kind, uint32_t index, const std::string& key);
  // Why the lane may not run now (and until when / on what), or nullopt.
  struct Hold {
    HoldReason reason;
    Park park;
    Micros until = 0;
    const void* on = nullptr;
  };
  std::optional<Hold> Check(Lane& lane, float cost, Micros now);
  void ParkLane(uint32_t lane, const Hold& h);
  void UnparkLane(uint32_t lane);
  void UnparkAll(std::vector<uint32_t>& lanes, const void* on);
  void Refill(Gate& g, Micros now);
  void OpenBreaker(Breaker& b, uint32_t action, Micros now, const char* why);
  std::string ActionLabel(uint32_t action) const;

  FlowOptions options_;
  bool configured_ = false;
  std::vector<Lane> lanes_;  // index 0 unused
  std::vector<uint32_t> free_lanes_;
  struct LaneKeyHash {
    size_t operator()(const std::tuple<uint32_t, uint32_t, std::string>& k) const;
  };
  std::unordered_map<std::tuple<uint32_t, uint32_t, std::string>, uint32_t, LaneKeyHash> lane_of_;
  std::unordered_map<GateKey, Gate, GateKeyHash> gates_;
  std::vector<GateKey> idle_paused_;  // unused gates kept until their pause ends
  std::unordered_map<uint32_t, Breaker> breakers_;  // by action index
  std::unordered_map<uint32_t, std::string> action_names_;  // actions with lanes, for events
  std::vector<std::set<std::pair<ReadyKey, uint32_t>>> heads_;  // by queue: unparked lanes
  std::vector<int64_t> ready_count_;                            // by queue
  std::unordered_map<TaskId, float> costs_;  // ready tasks whose cost is not 1
  std::set<std::pair<Micros, uint32_t>> timed_;  // parked lanes by when they may run
  std::vector<std::pair<std::string, std::string>> events_;
  uint64_t held_[4] = {};
  uint64_t pauses_ = 0;
};

}  // namespace resonance
