#include "engine/flow_control.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <simdjson.h>

#include "core/json_writer.h"

namespace resonance {

Result<double> ParseRate(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return Status(Code::kInvalidArgument,
                  "must look like \"20/s\", \"1000/min\" or \"3600/h\", not \"" +
                      std::string(text) + "\"");
  }
  const std::string count(text.substr(0, slash));
  const std::string_view unit = text.substr(slash + 1);
  char* end = nullptr;
  const double n = std::strtod(count.c_str(), &end);
  if (count.empty() || end != count.c_str() + count.size() || !std::isfinite(n) || n <= 0) {
    return Status(Code::kInvalidArgument,
                  "needs a positive count before '/', not \"" + std::string(text) + "\"");
  }
  double seconds;
  if (unit == "s" || unit == "sec" || unit == "second") {
    seconds = 1;
  } else if (unit == "m" || unit == "min" || unit == "minute") {
    seconds = 60;
  } else if (unit == "h" || unit == "hr" || unit == "hour") {
    seconds = 3600;
  } else if (unit == "d" || unit == "day") {
    seconds = 86400;
  } else {
    return Status(Code::kInvalidArgument, "unit must be s, min, h or day, not \"" +
                                              std::string(unit) + "\"");
  }
  return n / seconds;
}

std::string KeyFromPayload(const std::string& payload, const std::string& field) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(payload).get(root) != simdjson::SUCCESS) return "";
  simdjson::dom::element v;
  if (root.at_key(field).get(v) != simdjson::SUCCESS) return "";
  std::string out;
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: out = std::string(v.get_string().value()); break;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: out = simdjson::minify(v); break;
    default: break;
  }
  if (out.size() > 200) out.resize(200);
  return out;
}

const std::string& FlowOptions::KeyField(const std::string& queue,
                                         const std::string& action) const {
  static const std::string kNone;
  auto a = actions.find(action);
  if (a != actions.end() && !a->second.key_field.empty()) return a->second.key_field;
  auto q = queues.find(queue);
  if (q != queues.end() && !q->second.key_field.empty()) return q->second.key_field;
  return kNone;
}

size_t FlowControl::GateKeyHash::operator()(const GateKey& k) const {
  return std::hash<std::string>()(k.key) ^ (static_cast<size_t>(k.index) * 0x9E3779B97F4A7C15ULL) ^
         (static_cast<size_t>(k.kind) << 58);
}

size_t FlowControl::LaneKeyHash::operator()(
    const std::tuple<uint32_t, uint32_t, std::string>& k) const {
  return std::hash<std::string>()(std::get<2>(k)) ^
         ((static_cast<size_t>(std::get<0>(k)) << 32 | std::get<1>(k)) * 0x9E3779B97F4A7C15ULL);
}

FlowControl::FlowControl(FlowOptions options) : options_(std::move(options)) {
  lanes_.emplace_back();  // index 0: no lane
  configured_ = options_.breaker.enabled;
  for (const auto& [name, b] : options_.breakers) configured_ |= b.enabled;
  for (const auto* m : {&options_.queues, &options_.actions}) {
    for (const auto& [name, l] : *m) configured_ |= l.Limits() || l.KeyLimits();
  }
}

FlowControl::Gate* FlowControl::GateFor(GateKind kind, uint32_t index, const std::string& key,
                                        const RateLimit& rate, int concurrency) {
  auto [it, inserted] = gates_.try_emplace(GateKey{kind, index, key});
  Gate& g = it->second;
  if (inserted) {
    g.rate = rate.per_second;
    g.burst = rate.per_second > 0 ? (rate.burst > 0 ? rate.burst : std::max(1.0, rate.per_second))
                                  : 0;
    g.tokens = g.burst;
    g.concurrency = concurrency;
  }
  ++g.refs;
  return &g;
}

void FlowControl::DropGate(Gate* g, GateKind kind, uint32_t index, const std::string& key) {
  if (--g->refs > 0) return;
  // Gates of a whole queue or action are few and keep their buckets; key gates come and
  // go with their tasks, but one under a backpressure pause stays until the pause ends.
  if (kind == kQueueGate || kind == kActionGate) return;
  if (g->paused_until > 0) {
    idle_paused_.push_back(GateKey{kind, index, key});
    return;
  }
  gates_.erase(GateKey{kind, index, key});
}

uint32_t FlowControl::Attach(uint32_t queue, const std::string& queue_name, uint32_t action,
                             const std::string& action_name, const std::string& key) {
  auto [it, inserted] = lane_of_.try_emplace({queue, action, key}, 0);
  if (!inserted) {
    ++lanes_[it->second].tasks;
    return it->second;
  }
  uint32_t id;
  if (!free_lanes_.empty()) {
    id = free_lanes_.back();
    free_lanes_.pop_back();
  } else {
    id = static_cast<uint32_t>(lanes_.size());
    lanes_.emplace_back();
  }
  it->second = id;
  Lane& l = lanes_[id];
  l = Lane{};
  l.in_use = true;
  l.queue = queue;
  l.action = action;
  l.key = key;
  l.tasks = 1;
  action_names_.try_emplace(action, action_name);
  if (heads_.size() <= queue) {
    heads_.resize(queue + 1);
    ready_count_.resize(queue + 1, 0);
  }
  static const FlowLimits kNone;
  auto q = options_.queues.find(queue_name);
  const FlowLimits& ql = q == options_.queues.end() ? kNone : q->second;
  auto a = options_.actions.find(action_name);
  const FlowLimits& al = a == options_.actions.end() ? kNone : a->second;
  auto add = [&](GateKind kind, uint32_t index, const std::string& k, const RateLimit& rate,
                 int concurrency) {
    l.gates.push_back(GateFor(kind, index, k, rate, concurrency));
    l.kinds.push_back(kind);
  };
  if (ql.Limits()) add(kQueueGate, queue, "", ql.rate, ql.concurrency);
  if (!key.empty() && ql.KeyLimits()) add(kQueueKeyGate, queue, key, ql.key_rate, ql.key_concurrency);
  // The action's gate (or its key's) always exists: backpressure pauses go there.
  add(kActionGate, action, "", al.rate, al.concurrency);
  if (!key.empty()) add(kActionKeyGate, action, key, al.key_rate, al.key_concurrency);
  l.pause = l.gates.back();
  auto b = options_.breakers.find(action_name);
  const BreakerOptions& bo = b == options_.breakers.end() ? options_.breaker : b->second;
  if (bo.enabled) {
    auto [bit, fresh] = breakers_.try_emplace(action);
    if (fresh) bit->second.options = bo;
    l.breaker = &bit->second;
  }
  return id;
}

void FlowControl::Detach(uint32_t lane) {
  Lane& l = lanes_[lane];
  if (--l.tasks > 0) return;
  // No task refers to the lane: nothing is ready or running in it.
  if (l.parked == kTimed) timed_.erase({l.parked_until, lane});
  for (size_t i = 0; i < l.gates.size(); ++i) {
    const GateKind kind = l.kinds[i];
    const bool queue = kind == kQueueGate || kind == kQueueKeyGate;
    const bool keyed = kind == kQueueKeyGate || kind == kActionKeyGate;
    DropGate(l.gates[i], kind, queue ? l.queue : l.action, keyed ? l.key : std::string());
  }
  lane_of_.erase({l.queue, l.action, l.key});
  l = Lane{};
  free_lanes_.push_back(lane);
}

void FlowControl::AddReady(uint32_t lane, const ReadyKey& k, float cost) {
  Lane& l = lanes_[lane];
  const bool had = !l.ready.empty();
  const ReadyKey old = had ? *l.ready.begin() : k;
  l.ready.insert(k);
  ++ready_count_[l.queue];
  if (cost != 1.0f) costs_[k.id] = cost;
  if (l.parked != kNotParked) return;
  auto& heads = heads_[l.queue];
  if (!had) {
    heads.insert({k, lane});
  } else if (k < old) {
    heads.erase({old, lane});
    heads.insert({k, lane});
  }
}

void FlowControl::RemoveReady(uint32_t lane, const ReadyKey& k) {
  Lane& l = lanes_[lane];
  auto it = l.ready.find(k);
  if (it == l.ready.end()) return;
  const bool head = it == l.ready.begin();
  l.ready.erase(it);
  --ready_count_[l.queue];
  costs_.erase(k.id);
  if (l.parked != kNotParked || !head) return;
  auto& heads = heads_[l.queue];
  heads.erase({k, lane});
  if (!l.ready.empty()) heads.insert({*l.ready.begin(), lane});
}

int64_t FlowControl::ReadyCount(uint32_t queue) const {
  return queue < ready_count_.size() ? ready_count_[queue] : 0;
}

void FlowControl::Refill(Gate& g, Micros now) {
  if (g.rate <= 0 || now <= g.refilled_at) return;
  g.tokens = std::min(g.burst, g.tokens + static_cast<double>(now - g.refilled_at) /
                                              kMicrosPerSecond * g.rate);
  g.refilled_at = now;
}

std::optional<FlowControl::Hold> FlowControl::Check(Lane& l, float cost, Micros now) {
  if (Breaker* b = l.breaker) {
    if (b->state == Breaker::kOpen && now < b->open_until) {
      return Hold{kBreaker, kTimed, b->open_until, nullptr};
    }
    if (b->state == Breaker::kHalfOpen && b->probe != 0) {
      return Hold{kBreaker, kOnBreaker, 0, b};
    }
  }
  for (Gate* g : l.gates) {
    if (g->paused_until > now) return Hold{kBackpressure, kTimed, g->paused_until, nullptr};
    if (g->concurrency > 0 && g->running >= g->concurrency) {
      return Hold{kConcurrency, kOnGate, 0, g};
    }
    if (g->rate > 0) {
      Refill(*g, now);
      const double need = std::min<double>(cost, g->burst);
      if (g->tokens < need) {
        const double wait_s = (need - g->tokens) / g->rate;
        return Hold{kRate, kTimed,
                    now + std::max<Micros>(1, static_cast<Micros>(std::ceil(wait_s * 1e6))),
                    nullptr};
      }
    }
  }
  return std::nullopt;
}

void FlowControl::ParkLane(uint32_t lane, const Hold& h) {
  Lane& l = lanes_[lane];
  heads_[l.queue].erase({*l.ready.begin(), lane});
  l.parked = h.park;
  l.parked_on = h.on;
  ++held_[h.reason];
  switch (h.park) {
    case kTimed:
      l.parked_until = h.until;
      timed_.insert({h.until, lane});
      break;
    case kOnGate: static_cast<Gate*>(const_cast<void*>(h.on))->parked.push_back(lane); break;
    case kOnBreaker:
      static_cast<Breaker*>(const_cast<void*>(h.on))->parked.push_back(lane);
      break;
    case kNotParked: break;
  }
}

void FlowControl::UnparkLane(uint32_t lane) {
  Lane& l = lanes_[lane];
  if (l.parked == kTimed) timed_.erase({l.parked_until, lane});
  l.parked = kNotParked;
  l.parked_on = nullptr;
  if (!l.ready.empty()) heads_[l.queue].insert({*l.ready.begin(), lane});
}

void FlowControl::UnparkAll(std::vector<uint32_t>& lanes, const void* on) {
  std::vector<uint32_t> waiting;
  waiting.swap(lanes);
  for (uint32_t lane : waiting) {
    const Lane& l = lanes_[lane];
    // A lane parked elsewhere since (or gone and reused) is not this list's to wake.
    if (l.in_use && (l.parked == kOnGate || l.parked == kOnBreaker) && l.parked_on == on) {
      UnparkLane(lane);
    }
  }
}

std::optional<TaskId> FlowControl::Take(const std::vector<uint32_t>& queues,
                                        const std::vector<bool>& paused, Micros now) {
  while (true) {
    const std::pair<ReadyKey, uint32_t>* best = nullptr;
    for (uint32_t q : queues) {
      if (q >= heads_.size() || heads_[q].empty() || (q < paused.size() && paused[q])) continue;
      const auto& head = *heads_[q].begin();
      if (!best || head.first < best->first) best = &head;
    }
    if (!best) return std::nullopt;
    const uint32_t lane = best->second;
    const ReadyKey k = best->first;
    Lane& l = lanes_[lane];
    auto c = costs_.find(k.id);
    const float cost = c == costs_.end() ? 1.0f : c->second;
    if (auto hold = Check(l, cost, now)) {
      ParkLane(lane, *hold);
      continue;
    }
    for (Gate* g : l.gates) {
      if (g->rate > 0) g->tokens -= cost;
      ++g->running;
    }
    if (Breaker* b = l.breaker; b && b->state != Breaker::kClosed) {
      // Open past its cool-down, or half-open with no probe running: this one probes.
      if (b->state == Breaker::kOpen) {
        b->state = Breaker::kHalfOpen;
        std::string data;
        JsonWriter(data).BeginObject().Key("action").String(action_names_[l.action])
            .Key("probe").String(FormatTaskId(k.id)).EndObject();
        events_.emplace_back("breaker.half_open", std::move(data));
      }
      b->probe = k.id;
    }
    RemoveReady(lane, k);
    return k.id;
  }
}

void FlowControl::AddRunning(uint32_t lane) {
  for (Gate* g : lanes_[lane].gates) ++g->running;
}

void FlowControl::Release(uint32_t lane, TaskId id) {
  Lane& l = lanes_[lane];
  for (Gate* g : l.gates) {
    --g->running;
    if (!g->parked.empty()) UnparkAll(g->parked, g);
  }
  if (Breaker* b = l.breaker; b && b->probe == id) {
    // The probe ended without an outcome that counts (cancelled, validation, ...):
    // another task may probe.
    b->probe = 0;
    UnparkAll(b->parked, b);
  }
}

void FlowControl::OpenBreaker(Breaker& b, uint32_t action, Micros now, const char* why) {
  int attempts = 0, failures = 0;
  for (const Bucket& x : b.window) {
    attempts += x.ok + x.failed;
    failures += x.failed;
  }
  b.state = Breaker::kOpen;
  b.opened_at = now;
  b.open_until = now + b.options.cooldown;
  b.probe = 0;
  ++b.opened_total;
  std::string data;
  JsonWriter w(data);
  w.BeginObject().Key("action").String(action_names_[action]).Key("reason").String(why);
  w.Key("attempts").Int(attempts).Key("failures").Int(failures);
  w.Key("probe_at").Time(b.open_until).EndObject();
  events_.emplace_back("breaker.opened", std::move(data));
  UnparkAll(b.parked, &b);  // they park again, timed, until the cool-down ends
}

void FlowControl::RecordOutcome(uint32_t lane, TaskId id, bool failure, Micros now) {
  Lane& l = lanes_[lane];
  Breaker* b = l.breaker;
  if (!b) return;
  if (b->state == Breaker::kHalfOpen && b->probe == id) {
    if (failure) {
      OpenBreaker(*b, l.action, now, "probe failed");
      return;
    }
    b->state = Breaker::kClosed;
    b->probe = 0;
    b->window.clear();
    std::string data;
    JsonWriter(data).BeginObject().Key("action").String(action_names_[l.action])
        .Key("probe").String(FormatTaskId(id)).EndObject();
    events_.emplace_back("breaker.closed", std::move(data));
    UnparkAll(b->parked, b);
    return;
  }
  if (b->state != Breaker::kClosed) return;  // tasks leased before it opened
  const Micros second = now / kMicrosPerSecond;
  if (b->window.empty() || b->window.back().second != second) b->window.push_back({second});
  (failure ? b->window.back().failed : b->window.back().ok)++;
  const Micros oldest = (now - b->options.window) / kMicrosPerSecond;
  while (!b->window.empty() && b->window.front().second <= oldest) b->window.pop_front();
  if (!failure) return;
  int attempts = 0, failures = 0;
  for (const Bucket& x : b->window) {
    attempts += x.ok + x.failed;
    failures += x.failed;
  }
  if (attempts >= b->options.min_attempts &&
      static_cast<double>(failures) >= b->options.failure_ratio * attempts) {
    OpenBreaker(*b, l.action, now, "failure ratio");
  }
}

void FlowControl::Pause(uint32_t lane, Micros until, Micros now) {
  Lane& l = lanes_[lane];
  if (until <= now || until <= l.pause->paused_until) return;
  l.pause->paused_until = until;
  ++pauses_;
  std::string data;
  JsonWriter w(data);
  w.BeginObject().Key("action").String(action_names_[l.action]);
  w.Key("key").String(l.key).Key("until").Time(until).EndObject();
  events_.emplace_back("flow.paused", std::move(data));
}

bool FlowControl::Wake(Micros now) {
  bool any = false;
  while (!timed_.empty() && timed_.begin()->first <= now) {
    UnparkLane(timed_.begin()->second);
    any = true;
  }
  if (!idle_paused_.empty()) {
    std::erase_if(idle_paused_, [&](const GateKey& k) {
      auto it = gates_.find(k);
      if (it == gates_.end()) return true;
      if (it->second.refs > 0) return true;  // in use again: its lanes drop it later
      if (it->second.paused_until > now) return false;
      gates_.erase(it);
      return true;
    });
  }
  return any;
}

std::optional<Micros> FlowControl::NextWake() const {
  if (timed_.empty()) return std::nullopt;
  return timed_.begin()->first;
}

std::vector<std::pair<std::string, std::string>> FlowControl::TakeEvents() {
  std::vector<std::pair<std::string, std::string>> out;
  out.swap(events_);
  return out;
}

FlowSnapshot FlowControl::Snapshot(Micros now, const std::vector<std::string>& queue_names,
                                   const std::function<const std::string&(uint32_t)>& action_name) {
  FlowSnapshot s;
  static const char* const kScopes[] = {"queue", "queue_key", "action", "action_key"};
  for (auto& [k, g] : gates_) {
    const bool paused = g.paused_until > now;
    if (g.rate <= 0 && g.concurrency <= 0 && !paused) continue;
    Refill(g, now);
    GateInfo i;
    i.scope = kScopes[k.kind];
    const bool queue = k.kind == kQueueGate || k.kind == kQueueKeyGate;
    i.name = queue ? (k.index < queue_names.size() ? queue_names[k.index] : "")
                   : action_name(k.index);
    i.key = k.key;
    i.rate = g.rate;
    i.burst = g.burst;
    i.tokens = g.tokens;
    i.concurrency = g.concurrency;
    i.running = g.running;
    i.paused_until = paused ? g.paused_until : 0;
    s.gates.push_back(std::move(i));
  }
  std::sort(s.gates.begin(), s.gates.end(), [](const GateInfo& a, const GateInfo& b) {
    return std::tie(a.scope, a.name, a.key) < std::tie(b.scope, b.name, b.key);
  });
  for (auto& [action, b] : breakers_) {
    BreakerInfo i;
    i.action = action_name(action);
    i.state = b.state == Breaker::kClosed ? "closed" : b.state == Breaker::kOpen ? "open" : "half_open";
    for (const Bucket& x : b.window) {
      if (x.second <= (now - b.options.window) / kMicrosPerSecond) continue;
      i.attempts += x.ok + x.failed;
      i.failures += x.failed;
    }
    i.opened_at = b.state == Breaker::kClosed ? 0 : b.opened_at;
    i.probe_at = b.state == Breaker::kOpen ? b.open_until : 0;
    i.opened_total = b.opened_total;
    s.breakers.push_back(std::move(i));
  }
  std::sort(s.breakers.begin(), s.breakers.end(),
            [](const BreakerInfo& a, const BreakerInfo& b) { return a.action < b.action; });
  std::copy(std::begin(held_), std::end(held_), std::begin(s.held));
  s.pauses = pauses_;
  return s;
}

}  // namespace resonance
