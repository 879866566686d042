// g++ 12 at -O2 reports a false "may be used uninitialized" when a Mutation variant
// (one alternative holds a shared_ptr) is moved into the batch vector (cf. GCC bug
// 105562). The warning stays on everywhere else.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "engine/engine.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/json_writer.h"
#include "core/time_format.h"
#include "engine/followups.h"
#include "observe/log.h"

namespace resonance {
namespace {

std::string LeaseText(uint64_t token) {
  static const char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<size_t>(i)] = kHex[token & 15];
    token >>= 4;
  }
  return s;
}

uint64_t ParseLease(std::string_view s) {
  uint64_t v = 0;
  if (s.size() != 16) return 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return 0;
  return v;
}

TaskUpdate UpdateOf(const LiveTask& t, Micros now) {
  TaskUpdate u;
  u.id = FormatTaskId(t.id);
  u.updated_at = now;
  u.state = t.state;
  u.run_at = t.run_at;
  u.attempt = t.attempt;
  u.throttled = t.throttled;
  return u;
}

}  // namespace

Status ValidateNewTask(const NewTask& t) {
  auto bad = [](std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); };
  if (t.action.empty() || t.action.size() > 200) return bad("action: must be 1 to 200 characters");
  if (t.queue.empty() || t.queue.size() > 200) return bad("queue: must be 1 to 200 characters");
  if (t.delay_s && t.run_at) return bad("delay_s and run_at: give one, not both");
  if (t.delay_s && (!std::isfinite(*t.delay_s) || *t.delay_s < 0 || *t.delay_s > 1e9)) {
    return bad("delay_s: must be a number >= 0");
  }
  if (t.max_attempts < 1 || t.max_attempts > 1000) return bad("max_attempts: must be 1 to 1000");
  if (t.timeout_s < 1 || t.timeout_s > 86400) return bad("timeout_s: must be 1 to 86400");
  if (t.idempotency_key.size() > 500) return bad("idempotency_key: at most 500 characters");
  if (t.limit_key.size() > 200) return bad("limit_key: at most 200 characters");
  if (!std::isfinite(t.cost) || t.cost <= 0 || t.cost > 1e9) {
    return bad("cost: must be a number > 0 and at most 1e9");
  }
  if (t.requires_approval) {
    return Status(Code::kUnprocessable, "requires_approval: approvals are not available yet");
  }
  return Status::Ok();
}

Engine::Engine(Store& store, const Clock& clock, EngineOptions options)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      ids_(clock),
      flow_(options_.flow),
      workers_(options_.worker_lost_after),
      rng_(std::random_device{}()) {}

Engine::~Engine() = default;

uint32_t Engine::QueueIndex(const std::string& name) {
  auto [it, inserted] = queue_index_.emplace(name, static_cast<uint32_t>(queues_.size()));
  if (inserted) {
    queues_.emplace_back();
    queues_.back().name = name;
    paused_.push_back(false);
  }
  return it->second;
}

uint64_t Engine::NewLeaseToken() {
  uint64_t v;
  do {
    v = rng_();
  } while (v == 0);
  return v;
}

const LiveTask& Engine::AddLive(TaskId id, const Task& task) {
  LiveTask t;
  t.id = id;
  t.run_at = task.run_at;
  t.priority = task.priority;
  t.timeout_s = task.timeout_s;
  t.queue = QueueIndex(task.queue);
  t.action = actions_.Intern(task.action);
  t.attempt = static_cast<uint16_t>(task.attempt);
  t.max_attempts = static_cast<uint16_t>(task.max_attempts);
  t.throttled = static_cast<uint16_t>(task.throttled);
  t.state = task.state;
  t.cancel_requested = task.cancel_requested;
  t.cost = static_cast<float>(task.cost);
  t.has_on_success = !task.on_success.empty();
  if (task.state == TaskState::kRunning) {
    t.lease = ParseLease(task.lease);
    t.lease_expires_at = task.lease_expires_at;
    t.started_at = task.started_at;
    t.worker = workers_.Intern(task.worker);
  }
  if (!task.idempotency_key.empty()) {
    t.has_idempotency_key = true;
    idempotency_[task.idempotency_key] = id;
    key_of_[id] = task.idempotency_key;
  }
  QueueState& q = queues_[t.queue];
  t.lane = flow_.Attach(t.queue, q.name, t.action, actions_.Name(t.action), task.limit_key);
  switch (t.state) {
    case TaskState::kReady: flow_.AddReady(t.lane, {t.priority, t.run_at, t.id}, t.cost); break;
    case TaskState::kScheduled:
      scheduled_.insert({t.run_at, t.id});
      ++q.scheduled;
      break;
    case TaskState::kRunning:
      leases_.insert({t.lease_expires_at, t.id});
      ++q.running;
      workers_.AddRunning(t.worker, 1);
      flow_.AddRunning(t.lane);
      break;
    default: break;
  }
  return live_.emplace(t.id, t).first->second;
}

void Engine::EraseLive(TaskId id) {
  auto it = live_.find(id);
  flow_.Detach(it->second.lane);
  live_.erase(it);
}

void Engine::AppendFlowEvents(WriteBatch& batch, Micros now) {
  for (auto& [kind, data] : flow_.TakeEvents()) AppendEvent(batch, now, kind, 0, std::move(data));
}

void Engine::RemoveFromIndexes(LiveTask& t) {
  QueueState& q = queues_[t.queue];
  switch (t.state) {
    case TaskState::kReady: flow_.RemoveReady(t.lane, {t.priority, t.run_at, t.id}); break;
    case TaskState::kScheduled:
      scheduled_.erase({t.run_at, t.id});
      --q.scheduled;
      break;
    case TaskState::kRunning:
      leases_.erase({t.lease_expires_at, t.id});
      --q.running;
      workers_.AddRunning(t.worker, -1);
      flow_.Release(t.lane, t.id);
      break;
    default: break;
  }
}

void Engine::MakeReady(LiveTask& t) {
  t.state = TaskState::kReady;
  flow_.AddReady(t.lane, {t.priority, t.run_at, t.id}, t.cost);
}

void Engine::AppendEvent(WriteBatch& batch, Micros now, std::string kind, TaskId id,
                         std::string data) {
  batch.mutations.push_back(AppendLedger{
      chain_.Append(now, std::move(kind), id ? FormatTaskId(id) : std::string(), std::move(data))});
  const int64_t every = options_.ledger_checkpoint_every;
  if (every > 0 && chain_.last_seq() % every == 0) {
    batch.mutations.push_back(AppendLedger{chain_.AppendCheckpoint(now)});
  }
}

void Engine::SubmitLocked(WriteBatch batch, Done done, std::vector<StreamEvent> ephemeral) {
  if (options_.events && options_.events->active()) {
    done = PublishWhenDurable(batch, std::move(ephemeral), std::move(done));
  }
  store_.Submit(std::move(batch), [this, done = std::move(done)](const Status& s) {
    if (s.ok()) {
      if (done) done(s);
      return;
    }
    if (!failed_.exchange(true)) {
      log::Error("engine", "store commit failed, engine stops accepting writes: " + s.ToString());
    }
    // Whatever the store said, for the client this is the server being unavailable.
    if (done) done(Status(Code::kUnavailable, "store commit failed: " + s.message()));
  });
}

Engine::Done Engine::ReleaseKeysAfter(std::vector<TaskId> ids, Done done) {
  if (ids.empty()) return done;
  return [this, ids = std::move(ids), done = std::move(done)](const Status& s) {
    {
      std::lock_guard lock(settled_mu_);
      settled_keys_.insert(settled_keys_.end(), ids.begin(), ids.end());
    }
    if (done) done(s);
  };
}

std::unique_lock<std::mutex> Engine::Lock() {
  std::unique_lock lock(mu_);
  std::vector<TaskId> keys, deletes;
  {
    std::lock_guard settled(settled_mu_);
    keys.swap(settled_keys_);
    deletes.swap(settled_deletes_);
  }
  for (TaskId id : keys) {
    if (live_.count(id)) continue;  // requeued meanwhile: it owns its key again
    auto k = key_of_.find(id);
    if (k == key_of_.end()) continue;
    auto it = idempotency_.find(k->second);
    if (it != idempotency_.end() && it->second == id) idempotency_.erase(it);
    key_of_.erase(k);
  }
  for (TaskId id : deletes) dead_busy_.erase(id);
  return lock;
}

Status Engine::Recover() {
  auto lock = Lock();
  size_t count = 0;
  auto meta = store_.Recover([&](Task&& t) {
    auto id = ParseTaskId(t.id);
    if (!id) {
      log::Warn("engine", "skipping task with malformed id " + t.id);
      return;
    }
    AddLive(*id, t);
    ++count;
  });
  if (!meta.ok()) return meta.status();
  for (const auto& name : meta->paused_queues) {
    const uint32_t q = QueueIndex(name);
    queues_[q].paused = paused_[q] = true;
  }
  if (meta->ledger_last_seq > 0) chain_ = LedgerChain(meta->ledger_last_seq, meta->ledger_last_hash);
  // BUG: if the newest task was deleted from the dead-letter queue and the clock then
  // stepped back across a restart, a new task could get the deleted task's id (the floor
  // comes from the rows that still exist). Needs a persisted high-water mark.
  if (auto max_id = ParseTaskId(meta->max_task_id)) ids_.RaiseFloor(*max_id);

  WriteBatch batch;
  std::string data;
  JsonWriter(data).BeginObject().Key("live_tasks").Int(static_cast<int64_t>(count)).EndObject();
  AppendEvent(batch, clock_.Now(), "server.recovered", 0, std::move(data));
  SubmitLocked(std::move(batch), nullptr);
  log::Info("engine", "recovered " + std::to_string(count) + " live tasks");
  return Status::Ok();
}

std::shared_ptr<const Task> Engine::CreateTask(NewTask& nt, Micros now, WriteBatch& batch) {
  const TaskId id = ids_.Next();
  Task t;
  t.id = FormatTaskId(id);
  t.queue = std::move(nt.queue);
  t.action = std::move(nt.action);
  t.payload = std::move(nt.payload);
  t.priority = nt.priority;
  t.run_at = nt.run_at ? *nt.run_at : now + (nt.delay_s ? SecondsToMicros(*nt.delay_s) : 0);
  t.state = t.run_at > now ? TaskState::kScheduled : TaskState::kReady;
  t.max_attempts = nt.max_attempts;
  t.timeout_s = nt.timeout_s;
  t.idempotency_key = std::move(nt.idempotency_key);
  t.parent_id = std::move(nt.parent_id);
  t.trace_id = std::move(nt.trace_id);
  t.limit_key = std::move(nt.limit_key);
  if (t.limit_key.empty()) {
    const std::string& field = flow_.options().KeyField(t.queue, t.action);
    if (!field.empty()) t.limit_key = KeyFromPayload(t.payload, field);
  }
  t.cost = nt.cost;
  t.schedule = std::move(nt.schedule);
  if (!t.schedule.empty()) t.scheduled_for = nt.scheduled_for;
  t.on_success = std::move(nt.on_success);
  t.depth = nt.depth;
  t.created_at = t.updated_at = now;

  const LiveTask& lt = AddLive(id, t);
  if (options_.metrics) ActionMetrics(lt).enqueued->Inc();

  std::string data;
  JsonWriter w(data);
  w.BeginObject().Key("queue").String(t.queue).Key("action").String(t.action);
  w.Key("priority").Int(t.priority).Key("state").String(TaskStateName(t.state));
  w.Key("run_at").Time(t.run_at);
  if (t.depth > 0) w.Key("parent_id").String(t.parent_id).Key("depth").Int(t.depth);
  if (!t.schedule.empty()) {
    w.Key("schedule").String(t.schedule).Key("scheduled_for").Time(t.scheduled_for);
  }
  w.EndObject();
  AppendEvent(batch, now, "task.enqueued", id, std::move(data));
  auto shared = std::make_shared<const Task>(std::move(t));
  batch.mutations.emplace_back(std::in_place_type<InsertTask>, shared);
  return shared;
}

void Engine::Enqueue(std::vector<NewTask> tasks, Callback<std::vector<EnqueueOutcome>> done,
                     EnqueueExtras extras) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"), {});
  const Micros now = clock_.Now();
  std::vector<EnqueueOutcome> out;
  out.reserve(tasks.size());
  WriteBatch batch;
  batch.mutations.reserve(tasks.size() * 2);
  // Keys of tasks that are no longer live are looked up in the store first, so a store
  // error leaves nothing half-enqueued.
  std::unordered_map<std::string, std::string> stored_keys;
  for (const NewTask& nt : tasks) {
    if (nt.idempotency_key.empty() || idempotency_.count(nt.idempotency_key)) continue;
    auto found = store_.FindByIdempotencyKey(nt.idempotency_key);
    if (!found.ok()) return done(found.status(), {});
    if (found->has_value()) stored_keys[nt.idempotency_key] = **found;
  }
  for (NewTask& nt : tasks) {
    if (!nt.idempotency_key.empty()) {
      auto it = idempotency_.find(nt.idempotency_key);
      if (it != idempotency_.end()) {
        out.push_back({FormatTaskId(it->second), false, {}});
        continue;
      }
      auto st = stored_keys.find(nt.idempotency_key);
      if (st != stored_keys.end()) {
        out.push_back({st->second, false, {}});
        continue;
      }
    }
    auto shared = CreateTask(nt, now, batch);
    out.push_back({shared->id, true, shared});
  }
  if (extras) {
    ExtraWrites more;
    extras(out, more);
    for (auto& m : more.mutations) batch.mutations.push_back(std::move(m));
    for (auto& [kind, data] : more.events) AppendEvent(batch, now, std::move(kind), 0, std::move(data));
  }
  if (batch.empty()) {
    // Only known keys: answer once the earlier writes that created them are durable.
    store_.Submit({}, [done, out = std::move(out)](const Status& s) mutable {
      done(s, std::move(out));
    });
    return;
  }
  SubmitLocked(std::move(batch), [done, out = std::move(out)](const Status& s) mutable {
    done(s, std::move(out));
  });
  ServeWaiters(now);
}

std::vector<LeasedTask> Engine::PickReady(uint32_t worker, const std::vector<uint32_t>& queues,
                                          int max, Micros now, WriteBatch& batch) {
  std::vector<LeasedTask> out;
  while (static_cast<int>(out.size()) < max) {
    auto picked = flow_.Take(queues, paused_, now);
    if (!picked) break;
    const TaskId id = *picked;
    LiveTask& t = live_.at(id);
    QueueState* best = &queues_[t.queue];
    t.state = TaskState::kRunning;
    ++t.attempt;
    t.lease = NewLeaseToken();
    t.lease_expires_at = now + static_cast<Micros>(t.timeout_s) * kMicrosPerSecond;
    t.started_at = now;
    t.worker = worker;
    leases_.insert({t.lease_expires_at, id});
    ++best->running;
    workers_.AddRunning(worker, 1);
    if (options_.metrics) {
      auto& qm = QueueMetrics(t);
      qm.leased->Inc();
      qm.wait->Observe(static_cast<double>(std::max<Micros>(0, now - t.run_at)) / kMicrosPerSecond);
    }
    RecordHistory(batch, t, StatsOutcome::kLeased, std::nullopt, -1, std::max<Micros>(0, now - t.run_at), now);

    TaskUpdate u = UpdateOf(t, now);
    u.fields = TaskUpdate::kState | TaskUpdate::kAttempt | TaskUpdate::kLease |
               TaskUpdate::kStartedAt | TaskUpdate::kProgress;
    u.lease = LeaseText(t.lease);
    u.lease_expires_at = t.lease_expires_at;
    u.worker = workers_.Name(worker);
    u.started_at = now;
    out.push_back({u.id, u.lease, t.lease_expires_at});

    std::string data;
    JsonWriter w(data);
    w.BeginObject().Key("attempt").Int(t.attempt).Key("worker").String(u.worker);
    w.Key("lease_expires_at").Time(t.lease_expires_at).EndObject();
    AppendEvent(batch, now, "task.leased", id, std::move(data));
    batch.mutations.push_back(UpdateTask{std::move(u)});
  }
  AppendFlowEvents(batch, now);
  return out;
}

void Engine::Lease(LeaseRequest req, Callback<std::vector<LeasedTask>> done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"), {});
  const Micros now = clock_.Now();
  const uint32_t worker = workers_.Intern(req.worker);
  workers_.Touch(worker, now);
  std::vector<uint32_t> queues;
  queues.reserve(req.queues.size());
  for (const auto& name : req.queues) queues.push_back(QueueIndex(name));
  WriteBatch batch;
  auto picked = PickReady(worker, queues, req.max, now, batch);
  if (picked.empty()) {
    if (req.wait_ms > 0) {
      waiters_.push_back({worker, std::move(queues), req.max,
                          now + static_cast<Micros>(req.wait_ms) * kMicrosPerMilli,
                          std::move(done)});
    } else {
      done(Status::Ok(), {});
    }
    return;
  }
  SubmitLocked(std::move(batch), [done, picked = std::move(picked)](const Status& s) mutable {
    done(s, std::move(picked));
  });
}

void Engine::ServeWaiters(Micros now) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->deadline <= now) {
      it->done(Status::Ok(), {});
      it = waiters_.erase(it);
      continue;
    }
    WriteBatch batch;
    workers_.Touch(it->worker, now);
    auto picked = PickReady(it->worker, it->queues, it->max, now, batch);
    if (picked.empty()) {
      ++it;
      continue;
    }
    SubmitLocked(std::move(batch),
                 [done = std::move(it->done), picked = std::move(picked)](const Status& s) mutable {
                   done(s, std::move(picked));
                 });
    it = waiters_.erase(it);
  }
}

void Engine::Heartbeat(const std::string& id_text, const std::string& lease,
                       std::string progress, Callback<HeartbeatReply> done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"), {});
  const Micros now = clock_.Now();
  auto id = ParseTaskId(id_text);
  auto it = id ? live_.find(*id) : live_.end();
  if (it == live_.end()) {
    auto stored = id ? store_.GetTask(id_text) : Result<Task>(Code::kNotFound, "");
    if (!stored.ok()) return done(Status(Code::kNotFound, "no task " + id_text), {});
    return done(Status(Code::kConflict, std::string("task is ") + TaskStateName(stored->state) +
                                            ", not running under this lease"),
                {});
  }
  LiveTask& t = it->second;
  if (t.state != TaskState::kRunning || t.lease != ParseLease(lease)) {
    return done(Status(Code::kConflict, "lease is not the task's current lease"), {});
  }
  leases_.erase({t.lease_expires_at, t.id});
  t.lease_expires_at = now + static_cast<Micros>(t.timeout_s) * kMicrosPerSecond;
  leases_.insert({t.lease_expires_at, t.id});
  workers_.Touch(t.worker, now);

  TaskUpdate u = UpdateOf(t, now);
  u.fields = TaskUpdate::kLease;
  u.lease = LeaseText(t.lease);
  u.lease_expires_at = t.lease_expires_at;
  u.worker = workers_.Name(t.worker);
  std::vector<StreamEvent> progress_event;  // for live streams; not in the ledger
  if (!progress.empty()) {
    if (options_.events && options_.events->active()) {
      progress_event.push_back({0, now, "task.progress", u.id, progress});
    }
    u.fields |= TaskUpdate::kProgress;
    u.progress = std::move(progress);
  }
  WriteBatch batch;
  batch.mutations.push_back(UpdateTask{std::move(u)});
  HeartbeatReply reply{t.lease_expires_at, t.cancel_requested};
  SubmitLocked(std::move(batch), [done, reply](const Status& s) { done(s, reply); },
               std::move(progress_event));
}

TaskState Engine::FailLive(LiveTask& t, ErrorClass cls, const std::string& message,
                           std::optional<double> retry_after_s, Micros now, WriteBatch& batch) {
  RetryDecision d = DecideRetry(options_.retry.For(actions_.Name(t.action)),
                                {cls, t.attempt, t.max_attempts, t.throttled, retry_after_s});
  if (t.cancel_requested) d = {RetryDecision::kCancelled};
  RecordHistory(batch, t,
                d.outcome == RetryDecision::kRetry  ? StatsOutcome::kRetried
                : d.outcome == RetryDecision::kDead ? StatsOutcome::kDead
                                                    : StatsOutcome::kCancelled,
                cls, now - t.started_at, -1, now);
  if (options_.metrics) {
    auto& m = ActionMetrics(t);
    const int c = static_cast<int>(cls);
    m.duration->Observe(static_cast<double>(now - t.started_at) / kMicrosPerSecond);
    m.failures[c]->Inc();
    if (cls == ErrorClass::kRateLimited) m.rate_limited->Inc();
    if (d.outcome == RetryDecision::kRetry) {
      m.retries[c]->Inc();
      m.finished[EngineMetrics::kRetried]->Inc();
    } else {
      m.finished[d.outcome == RetryDecision::kDead ? EngineMetrics::kDead
                                                   : EngineMetrics::kCancelled]
          ->Inc();
    }
  }
  if (t.state == TaskState::kRunning) {
    // Only failures that say something about the action's health feed its breaker.
    if (cls == ErrorClass::kTemporary || cls == ErrorClass::kTimeout) {
      flow_.RecordOutcome(t.lane, t.id, true, now);
    }
    if (cls == ErrorClass::kRateLimited && retry_after_s && *retry_after_s > 0) {
      flow_.Pause(t.lane, now + SecondsToMicros(std::min(*retry_after_s, 86400.0)), now);
    }
  }
  RemoveFromIndexes(t);
  TaskUpdate u = UpdateOf(t, now);
  u.fields = TaskUpdate::kState | TaskUpdate::kError | TaskUpdate::kLease;
  u.has_error = true;
  u.error_class = cls;
  u.error_message = message;
  std::string data;
  JsonWriter w(data);
  w.BeginObject().Key("attempt").Int(t.attempt).Key("class").String(ErrorClassName(cls));
  w.Key("message").String(message);
  std::string kind;
  if (d.outcome == RetryDecision::kRetry) {
    if (d.throttled) ++t.throttled;
    t.run_at = now + d.delay;
    t.lease = 0;
    t.worker = 0;
    if (d.delay <= 0) {
      MakeReady(t);
    } else {
      t.state = TaskState::kScheduled;
      scheduled_.insert({t.run_at, t.id});
      ++queues_[t.queue].scheduled;
    }
    u.fields |= TaskUpdate::kRunAt | TaskUpdate::kAttempt;
    u.state = t.state;
    u.run_at = t.run_at;
    u.throttled = t.throttled;
    w.Key("retry_at").Time(t.run_at);
    kind = "task.failed";
  } else {
    const TaskState end =
        d.outcome == RetryDecision::kDead ? TaskState::kDead : TaskState::kCancelled;
    u.state = end;
    u.fields |= TaskUpdate::kFinishedAt;
    u.finished_at = now;
    kind = end == TaskState::kDead ? "task.dead" : "task.cancelled";
    t.state = end;
  }
  w.EndObject();
  const TaskId id = t.id;
  const TaskState result = t.state;
  if (IsTerminal(result)) EraseLive(id);
  AppendEvent(batch, now, std::move(kind), id, std::move(data));
  batch.mutations.push_back(UpdateTask{std::move(u)});
  AppendFlowEvents(batch, now);
  return result;
}

Result<TaskState> Engine::FinishOne(const FinishRequest& req, Micros now, WriteBatch& batch,
                                    std::vector<TaskId>& finished_with_key) {
  auto id = ParseTaskId(req.id);
  auto it = id ? live_.find(*id) : live_.end();
  if (it == live_.end()) {
    auto stored = id ? store_.GetTask(req.id) : Result<Task>(Code::kNotFound, "");
    if (!stored.ok()) return Status(Code::kNotFound, "no task " + req.id);
    return Status(Code::kConflict, std::string("task is ") + TaskStateName(stored->state) +
                                       ", not running under this lease");
  }
  LiveTask& t = it->second;
  if (t.state != TaskState::kRunning || t.lease != ParseLease(req.lease)) {
    return Status(Code::kConflict, "lease is not the task's current lease");
  }
  workers_.Touch(t.worker, now);
  if (!req.success) {
    const bool has_key = t.has_idempotency_key;
    const TaskId tid = t.id;
    // FailLive erases a task that turns terminal: t is not to be touched after it.
    TaskState s = FailLive(t, req.error_class, req.error_message, req.retry_after_s, now, batch);
    if (IsTerminal(s) && has_key) finished_with_key.push_back(tid);
    return s;
  }
  // Follow-ups are planned (store reads) before anything changes.
  std::vector<PlannedFollowup> followups;
  std::unordered_map<std::string, std::string> followup_keys;
  if (!t.cancel_requested && (t.has_on_success || (!req.result.empty() && MayEnqueue(req.result)))) {
    if (Status s = PlanFollowupsOf(t, req.result, followups, followup_keys); !s.ok()) return s;
  }
  if (t.has_idempotency_key) finished_with_key.push_back(t.id);
  const TaskState end = t.cancel_requested ? TaskState::kCancelled : TaskState::kSucceeded;
  RecordHistory(batch, t,
                end == TaskState::kSucceeded ? StatsOutcome::kSucceeded : StatsOutcome::kCancelled,
                std::nullopt, now - t.started_at, -1, now);
  if (options_.metrics) {
    auto& m = ActionMetrics(t);
    m.duration->Observe(static_cast<double>(now - t.started_at) / kMicrosPerSecond);
    m.finished[end == TaskState::kSucceeded ? EngineMetrics::kSucceeded
                                            : EngineMetrics::kCancelled]
        ->Inc();
  }
  if (end == TaskState::kSucceeded) flow_.RecordOutcome(t.lane, t.id, false, now);
  RemoveFromIndexes(t);
  TaskUpdate u = UpdateOf(t, now);
  u.state = end;
  u.fields = TaskUpdate::kState | TaskUpdate::kResult | TaskUpdate::kLease |
             TaskUpdate::kFinishedAt | TaskUpdate::kError;
  u.result = req.result;
  u.finished_at = now;
  if (end == TaskState::kCancelled) {
    u.has_error = true;
    u.error_class = ErrorClass::kCancelled;
    u.error_message = "cancelled on request";
  }
  std::string data;
  JsonWriter(data).BeginObject().Key("attempt").Int(t.attempt).Key("duration_ms")
      .Int((now - t.started_at) / kMicrosPerMilli).EndObject();
  const TaskId tid = t.id;
  EraseLive(tid);
  AppendEvent(batch, now, end == TaskState::kSucceeded ? "task.succeeded" : "task.cancelled",
              tid, std::move(data));
  batch.mutations.push_back(UpdateTask{std::move(u)});
  if (!followups.empty()) ApplyFollowups(tid, followups, followup_keys, now, batch);
  AppendFlowEvents(batch, now);
  return end;
}

void Engine::Finish(std::vector<FinishRequest> items,
                    Callback<std::vector<Result<TaskState>>> done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"), {});
  const Micros now = clock_.Now();
  std::vector<Result<TaskState>> out;
  out.reserve(items.size());
  WriteBatch batch;
  std::vector<TaskId> finished_with_key;
  for (const auto& item : items) out.push_back(FinishOne(item, now, batch, finished_with_key));
  auto answer = [done, out = std::move(out)](const Status& s) mutable { done(s, std::move(out)); };
  if (batch.empty()) {
    store_.Submit({}, std::move(answer));
    return;
  }
  SubmitLocked(std::move(batch), ReleaseKeysAfter(std::move(finished_with_key), std::move(answer)));
  if (!waiters_.empty()) ServeWaiters(now);
}

void Engine::Cancel(const std::string& id_text, Done done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"));
  const Micros now = clock_.Now();
  auto id = ParseTaskId(id_text);
  auto it = id ? live_.find(*id) : live_.end();
  if (it == live_.end()) {
    auto stored = id ? store_.GetTask(id_text) : Result<Task>(Code::kNotFound, "");
    if (!stored.ok()) return done(Status(Code::kNotFound, "no task " + id_text));
    return done(Status(Code::kConflict,
                       std::string("task is already ") + TaskStateName(stored->state)));
  }
  LiveTask& t = it->second;
  WriteBatch batch;
  TaskUpdate u = UpdateOf(t, now);
  std::vector<TaskId> finished_with_key;
  if (t.state == TaskState::kRunning) {
    if (t.cancel_requested) return Barrier(std::move(done));
    t.cancel_requested = true;
    u.fields = TaskUpdate::kCancel;
    u.cancel_requested = true;
    AppendEvent(batch, now, "task.cancel_requested", t.id, "{}");
  } else {
    if (options_.metrics) ActionMetrics(t).finished[EngineMetrics::kCancelled]->Inc();
    RecordHistory(batch, t, StatsOutcome::kCancelled, std::nullopt, -1, -1, now);
    RemoveFromIndexes(t);
    u.state = TaskState::kCancelled;
    u.fields = TaskUpdate::kState | TaskUpdate::kError | TaskUpdate::kFinishedAt;
    u.has_error = true;
    u.error_class = ErrorClass::kCancelled;
    u.error_message = "cancelled on request";
    u.finished_at = now;
    std::string data;
    JsonWriter(data).BeginObject().Key("from").String(TaskStateName(t.state)).EndObject();
    AppendEvent(batch, now, "task.cancelled", t.id, std::move(data));
    if (t.has_idempotency_key) finished_with_key.push_back(t.id);
    EraseLive(t.id);
  }
  batch.mutations.push_back(UpdateTask{std::move(u)});
  SubmitLocked(std::move(batch), ReleaseKeysAfter(std::move(finished_with_key), std::move(done)));
}

void Engine::Requeue(const std::string& id_text, Done done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"));
  const Micros now = clock_.Now();
  auto id = ParseTaskId(id_text);
  if (!id) return done(Status(Code::kNotFound, "no task " + id_text));
  if (live_.count(*id) || dead_busy_.count(*id)) {
    return done(Status(Code::kConflict, "task is not in the dead-letter queue"));
  }
  auto stored = store_.GetTask(id_text);
  if (!stored.ok()) return done(Status(Code::kNotFound, "no task " + id_text));
  if (stored->state != TaskState::kDead) {
    return done(Status(Code::kConflict, std::string("task is ") + TaskStateName(stored->state) +
                                            ", not dead"));
  }
  const int32_t previous_attempts = stored->attempt;
  Task again = std::move(stored).value();
  again.run_at = now;
  again.state = TaskState::kReady;
  again.attempt = 0;
  again.throttled = 0;
  again.cancel_requested = false;
  const LiveTask& lt = AddLive(*id, again);
  TaskUpdate u = UpdateOf(lt, now);
  u.fields = TaskUpdate::kState | TaskUpdate::kRunAt | TaskUpdate::kAttempt | TaskUpdate::kError |
             TaskUpdate::kLease | TaskUpdate::kFinishedAt | TaskUpdate::kResult |
             TaskUpdate::kCancel | TaskUpdate::kProgress | TaskUpdate::kStartedAt;
  WriteBatch batch;
  std::string data;
  JsonWriter(data).BeginObject().Key("previous_attempts").Int(previous_attempts).EndObject();
  AppendEvent(batch, now, "task.requeued", lt.id, std::move(data));
  batch.mutations.push_back(UpdateTask{std::move(u)});
  SubmitLocked(std::move(batch), std::move(done));
  if (!waiters_.empty()) ServeWaiters(now);
}

void Engine::DeleteDead(const std::string& id_text, Done done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"));
  const Micros now = clock_.Now();
  auto id = ParseTaskId(id_text);
  if (!id) return done(Status(Code::kNotFound, "no task " + id_text));
  if (live_.count(*id) || dead_busy_.count(*id)) {
    return done(Status(Code::kConflict, "task is not in the dead-letter queue"));
  }
  auto stored = store_.GetTask(id_text);
  if (!stored.ok()) return done(Status(Code::kNotFound, "no task " + id_text));
  if (stored->state != TaskState::kDead) {
    return done(Status(Code::kConflict, std::string("task is ") + TaskStateName(stored->state) +
                                            ", not dead"));
  }
  dead_busy_.insert(*id);
  WriteBatch batch;
  std::string data;
  JsonWriter(data).BeginObject().Key("queue").String(stored->queue).Key("action")
      .String(stored->action).EndObject();
  AppendEvent(batch, now, "task.deleted", *id, std::move(data));
  batch.mutations.push_back(DeleteTask{id_text});
  SubmitLocked(std::move(batch), [this, tid = *id, done = std::move(done)](const Status& s) {
    {
      std::lock_guard lock(settled_mu_);
      settled_deletes_.push_back(tid);
    }
    done(s);
  });
}

void Engine::SetPaused(const std::string& queue, bool paused, Done done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"));
  const Micros now = clock_.Now();
  const uint32_t qi = QueueIndex(queue);
  QueueState& q = queues_[qi];
  q.paused = paused_[qi] = paused;
  WriteBatch batch;
  std::string data;
  JsonWriter(data).BeginObject().Key("queue").String(queue).EndObject();
  AppendEvent(batch, now, paused ? "queue.paused" : "queue.resumed", 0, std::move(data));
  batch.mutations.push_back(SetQueuePaused{queue, paused});
  SubmitLocked(std::move(batch), std::move(done));
  if (!paused && !waiters_.empty()) ServeWaiters(now);
}

void Engine::Barrier(Done done) { store_.Submit({}, std::move(done)); }

void Engine::ReleaseLeasesOf(uint32_t worker, ErrorClass cls, const std::string& message,
                             Micros now, WriteBatch& batch,
                             std::vector<TaskId>& finished_with_key) {
  std::vector<TaskId> held;
  for (const auto& [expiry, id] : leases_) {
    if (live_.at(id).worker == worker) held.push_back(id);
  }
  for (TaskId id : held) {
    LiveTask& t = live_.at(id);
    const bool has_key = t.has_idempotency_key;
    TaskState s = FailLive(t, cls, message, std::nullopt, now, batch);
    if (IsTerminal(s) && has_key) finished_with_key.push_back(id);
  }
}

void Engine::Tick() {
  auto lock = Lock();
  if (failed_) return;
  const Micros now = clock_.Now();
  WriteBatch batch;
  while (!scheduled_.empty() && scheduled_.begin()->first <= now) {
    const TaskId id = scheduled_.begin()->second;
    LiveTask& t = live_.at(id);
    RemoveFromIndexes(t);
    MakeReady(t);
    TaskUpdate u = UpdateOf(t, now);
    u.fields = TaskUpdate::kState;
    AppendEvent(batch, now, "task.ready", id, "{}");
    batch.mutations.push_back(UpdateTask{std::move(u)});
  }
  std::vector<TaskId> finished_with_key;
  for (uint32_t w : workers_.MarkLost(now)) {
    std::string data;
    JsonWriter(data).BeginObject().Key("worker").String(workers_.Name(w)).EndObject();
    AppendEvent(batch, now, "worker.lost", 0, std::move(data));
    if (options_.metrics) {
      options_.metrics->WorkerLost(workers_.Pool(w));
      for (const auto& [expiry, id] : leases_) {
        const LiveTask& held = live_.at(id);
        if (held.worker == w) QueueMetrics(held).leases_expired->Inc();
      }
    }
    ReleaseLeasesOf(w, ErrorClass::kTimeout, "worker lost", now, batch, finished_with_key);
  }
  while (!leases_.empty() && leases_.begin()->first <= now) {
    LiveTask& t = live_.at(leases_.begin()->second);
    const bool has_key = t.has_idempotency_key;
    const TaskId id = t.id;
    if (options_.metrics) QueueMetrics(t).leases_expired->Inc();
    TaskState s = FailLive(t, ErrorClass::kTimeout, "lease expired", std::nullopt, now, batch);
    if (IsTerminal(s) && has_key) finished_with_key.push_back(id);
  }
  flow_.Wake(now);
  AppendFlowEvents(batch, now);
  if (!batch.empty()) {
    SubmitLocked(std::move(batch), ReleaseKeysAfter(std::move(finished_with_key), nullptr));
  }
  if (!waiters_.empty()) ServeWaiters(now);
}

FlowSnapshot Engine::Flow() {
  auto lock = Lock();
  std::vector<std::string> names;
  names.reserve(queues_.size());
  for (const auto& q : queues_) names.push_back(q.name);
  return flow_.Snapshot(clock_.Now(), names,
                        [this](uint32_t a) -> const std::string& { return actions_.Name(a); });
}

std::optional<Micros> Engine::NextFlowWake() {
  auto lock = Lock();
  return flow_.NextWake();
}

void Engine::ReleaseWaiters() {
  auto lock = Lock();
  for (auto& w : waiters_) w.done(Status::Ok(), {});
  waiters_.clear();
}

void Engine::RecordHistory(WriteBatch& batch, const LiveTask& t, StatsOutcome outcome,
                           std::optional<ErrorClass> cls, Micros duration, Micros wait,
                           Micros now) {
  RecordStats r;
  r.minute = MinuteOf(now);
  r.queue = queues_[t.queue].name;
  r.action = actions_.Name(t.action);
  r.outcome = outcome;
  r.error_class = cls;
  r.duration = duration;
  r.wait = wait;
  batch.mutations.push_back(std::move(r));
}

EngineMetrics::PerAction& Engine::ActionMetrics(const LiveTask& t) {
  return options_.metrics->Action(t.queue, queues_[t.queue].name, t.action, actions_.Name(t.action));
}

EngineMetrics::PerQueue& Engine::QueueMetrics(const LiveTask& t) {
  return options_.metrics->Queue(t.queue, queues_[t.queue].name);
}

QueueInfo Engine::InfoOf(const QueueState& q) const {
  return {q.name, q.paused, q.scheduled, flow_.ReadyCount(static_cast<uint32_t>(&q - queues_.data())), q.running};
}

std::vector<QueueInfo> Engine::Queues(bool include_empty) {
  auto lock = Lock();
  std::vector<QueueInfo> out;
  for (const auto& q : queues_) {
    if (include_empty || q.paused || q.scheduled || q.running || InfoOf(q).ready > 0) {
      out.push_back(InfoOf(q));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const QueueInfo& a, const QueueInfo& b) { return a.name < b.name; });
  return out;
}

std::optional<QueueInfo> Engine::QueueByName(const std::string& name) {
  auto lock = Lock();
  auto it = queue_index_.find(name);
  if (it == queue_index_.end()) return std::nullopt;
  return InfoOf(queues_[it->second]);
}

std::vector<WorkerInfo> Engine::Workers() {
  auto lock = Lock();
  return workers_.List();
}

size_t Engine::live_count() {
  auto lock = Lock();
  return live_.size();
}

bool Engine::healthy() {
  auto lock = Lock();
  return !failed_ && store_.healthy();
}

}  // namespace resonance

