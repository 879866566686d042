#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/retry_policy.h"
#include "core/status.h"
#include "core/task.h"
#include "core/task_id.h"
#include "engine/engine_metrics.h"
#include "engine/event_hub.h"
#include "engine/flow_control.h"
#include "engine/live_task.h"
#include "engine/worker_registry.h"
#include "ledger/chain.h"
#include "store/store.h"

namespace resonance {

struct NewTask;
struct PlannedFollowup;  // engine/followups.h

struct EngineOptions {
  RetryPolicies retry;
  int64_t ledger_checkpoint_every = 100000;  // records between checkpoints, 0 = never
  Micros worker_heartbeat = 5 * kMicrosPerSecond;   // told to registering workers
  Micros worker_lost_after = 15 * kMicrosPerSecond; // silence that marks a worker lost
  // Counted when the engine decides a change (before it is durable; a failed commit
  // leaves the server unhealthy anyway). Not owned; nullptr = no metrics.
  EngineMetrics* metrics = nullptr;
  // Receives every committed ledger record and task progress (engine_events.cc). Not
  // owned; must outlive the engine. nullptr = no live events.
  EventHub* events = nullptr;
  // Rate and concurrency limits, backpressure and breakers (docs/flow-control.md).
  FlowOptions flow;
  // Follow-ups (docs/follow-ups.md): the deepest follow-up created ([followups] max_depth),
  // and a check of each one once filled in (the action registry; nullptr = none; see
  // FollowupOptions::check). The check runs under the engine's lock.
  int max_followup_depth = 10;
  std::function<Status(const NewTask&, const std::string& prefix)> check_followup;
};

// A task as a producer asks for it. Validate with ValidateNewTask before Enqueue.
struct NewTask {
  std::string queue{kDefaultQueue};
  std::string action;
  std::string payload = "{}";  // raw JSON object
  int32_t priority = 0;
  std::optional<double> delay_s;
  std::optional<Micros> run_at;
  int32_t max_attempts = kDefaultMaxAttempts;
  int32_t timeout_s = kDefaultTimeoutS;
  std::string idempotency_key;
  bool requires_approval = false;
  std::string parent_id;
  std::string trace_id;
  std::string limit_key;  // "" = from the payload field the flow options name, if any
  double cost = 1;        // tokens taken from the task's rate buckets per attempt
  // Set by the scheduler only (engine/scheduler.h): the schedule and its slot time.
  std::string schedule;
  Micros scheduled_for = 0;
  // Follow-ups (engine/followups.h): a checked JSON array of task specs (ReadFollowups),
  // empty = none; depth is set by the engine for the follow-ups it creates.
  std::string on_success;
  int32_t depth = 0;
};

// kInvalidArgument naming the field, or kUnprocessable for features not offered yet.
Status ValidateNewTask(const NewTask& t);

struct EnqueueOutcome {
  std::string id;
  bool created = false;
  std::shared_ptr<const Task> task;  // the full task when created; else read the store
};

// Writes about no task that commit in the same store transaction as an Enqueue's
// tasks (the scheduler records the slot it enqueued this way).
struct ExtraWrites {
  std::vector<Mutation> mutations;
  std::vector<std::pair<std::string, std::string>> events;  // ledger (kind, data JSON)
};
// Called by Enqueue under the engine's lock, once the outcomes (ids of created and of
// already known tasks) are decided and only if the enqueue goes ahead; it fills the
// extra writes. It must not call back into the engine.
using EnqueueExtras = std::function<void(const std::vector<EnqueueOutcome>&, ExtraWrites&)>;

struct LeaseRequest {
  std::string worker;
  std::vector<std::string> queues{std::string(kDefaultQueue)};
  int max = 1;
  int wait_ms = 0;
};

struct LeasedTask {
  std::string id;
  std::string lease;
  Micros lease_expires_at = 0;
};

struct HeartbeatReply {
  Micros lease_expires_at = 0;
  bool cancel = false;
};

// One complete or fail of a leased task.
struct FinishRequest {
  std::string id;
  std::string lease;
  bool success = true;
  std::string result;  // raw JSON, when success (may be empty)
  ErrorClass error_class = ErrorClass::kTemporary;
  std::string error_message;
  std::optional<double> retry_after_s;
};

struct QueueInfo {
  std::string name;
  bool paused = false;
  int64_t scheduled = 0;
  int64_t ready = 0;
  int64_t running = 0;
};


// The broker: ready queues, leases, retries, dead letters, delays, cancellation,
// idempotency and pause/resume, over a Store that is the source of truth.
//
// Thread-safe: every method takes one mutex for its whole step (not per task or
// field). State changes are applied in memory and handed to the store as one
// WriteBatch with their ledger events, in the order they were made; the callback runs
// (on the store's writer thread) once that batch is durable, and only then may the
// caller answer its client. A store failure is reported to the callback and leaves the
// engine unhealthy: the process must restart and recover from the store.
//
// Memory holds only LiveTask for non-terminal tasks; read full tasks from the store
// after the callback (they are committed by then).
class Engine {
 public:
  template <typename T>
  using Callback = std::function<void(const Status&, T)>;
  using Done = std::function<void(const Status&)>;

  Engine(Store& store, const Clock& clock, EngineOptions options);
  ~Engine();

  // Loads every live task from the store. Call once before anything else.
  Status Recover();

  // All or nothing: if any item is invalid nothing is enqueued (kInvalidArgument naming
  // "tasks[i].field"). Known idempotency keys give created=false with the existing id.
  // With `extras`, their writes join the same transaction, after the tasks (also when
  // every key was known or `tasks` is empty).
  void Enqueue(std::vector<NewTask> tasks, Callback<std::vector<EnqueueOutcome>> done,
               EnqueueExtras extras = nullptr);

  // Leases up to max ready tasks from the listed queues (best first across them). With
  // wait_ms > 0 and nothing ready, waits for work up to wait_ms (see Tick).
  void Lease(LeaseRequest req, Callback<std::vector<LeasedTask>> done);

  // kNotFound for an unknown task; kConflict when the lease is not the task's current one.
  void Heartbeat(const std::string& id, const std::string& lease, std::string progress,
                 Callback<HeartbeatReply> done);

  // Each item on its own: per-item Status or the task's new state. The outer Status is
  // the commit's. A success creates the task's follow-ups (its on_success list and the
  // result's "enqueue" list, engine/followups.h) in the same write batch, so a crash
  // keeps both or neither; follow-ups that cannot be created are ledger records
  // (task.followup_refused / task.followup_failed) and the parent still succeeds. An item
  // whose follow-ups cannot be read from the store is kUnavailable and changes nothing.
  void Finish(std::vector<FinishRequest> items,
              Callback<std::vector<Result<TaskState>>> done);

  // scheduled/ready -> cancelled at once; running -> cancel_requested. kConflict when
  // terminal, kNotFound when unknown.
  void Cancel(const std::string& id, Done done);

  // Dead letters. kConflict unless the task is dead; kNotFound when unknown.
  void Requeue(const std::string& id, Done done);
  void DeleteDead(const std::string& id, Done done);

  void SetPaused(const std::string& queue, bool paused, Done done);

  // Runs done once everything submitted before is durable (a read barrier).
  void Barrier(Done done);

  // Promotes due scheduled tasks, times out expired leases, answers lease waiters
  // whose wait is over. Call every sweep interval.
  void Tick();

  // Worker registry (DESIGN §5). Register: kConflict when another live worker holds
  // the name. Heartbeat: kNotFound unless registered and active (register again).
  // A registered worker silent past worker_lost_after is marked lost by Tick and every
  // task it holds fails at once as `timeout` ("worker lost"); a worker that deregisters
  // while still holding tasks has them failed as `temporary` ("worker stopped").
  void RegisterWorker(WorkerRegistration r, Done done);
  Status WorkerHeartbeat(const std::string& name);
  void DeregisterWorker(const std::string& name, Done done);
  Micros worker_heartbeat() const { return options_.worker_heartbeat; }
  Micros worker_lost_after() const { return options_.worker_lost_after; }

  // Re-registrations of known worker ids (restarts) since `since`, by pool ("none"
  // for workers that named no pool). The last day is kept.
  std::map<std::string, int> RestartsSince(Micros since);

  // Appends an event that is about no task (alerts, ...) to the ledger, in one
  // transaction with `with` (written before the event).
  void RecordEvent(std::string kind, std::string data, Done done,
                   std::vector<Mutation> with = {});

  // Limits, pauses and breakers as they are now (GET /api/flow, metrics).
  FlowSnapshot Flow();
  // When a lane held back by a rate, pause or breaker may run again (the sweeper wakes
  // then rather than a whole interval later); nullopt when none waits on time.
  std::optional<Micros> NextFlowWake();

  // Answers every waiting lease with no tasks (used at shutdown).
  void ReleaseWaiters();

  // Live events (engine_events.cc). Subscribes to options.events under the engine's
  // lock and sets *last_seq to the ledger's last seq at that moment: every record after
  // it will be delivered to the subscription, and every record up to it was submitted
  // before (so it is durable once a Barrier submitted afterwards is done). nullptr when
  // the engine has no hub.
  std::unique_ptr<EventSubscription> Subscribe(EventFilter filter, std::function<void()> wake,
                                               int64_t* last_seq);

  // Queues with something in them or paused; every queue seen when include_empty.
  std::vector<QueueInfo> Queues(bool include_empty = false);
  std::optional<QueueInfo> QueueByName(const std::string& name);
  std::vector<WorkerInfo> Workers();
  size_t live_count();
  bool healthy();

 private:
  struct QueueState {
    std::string name;
    bool paused = false;  // mirrored in paused_ for FlowControl::Take
    int64_t scheduled = 0;
    int64_t running = 0;
  };
  struct Waiter {
    uint32_t worker;
    std::vector<uint32_t> queues;
    int max;
    Micros deadline;
    Callback<std::vector<LeasedTask>> done;
  };

  // All below run with mu_ held.
  uint32_t QueueIndex(const std::string& name);
  // Adds a stored or new task to memory: the indexes of its state, the lane of its limit
  // key, its idempotency key. Callers set `task` as the task is to be now.
  const LiveTask& AddLive(TaskId id, const Task& task);
  // Forgets a task that turned terminal (t is gone afterwards).
  void EraseLive(TaskId id);
  // Appends FlowControl's pending ledger records (breakers, pauses) to the batch.
  void AppendFlowEvents(WriteBatch& batch, Micros now);
  void MakeReady(LiveTask& t);
  void RemoveFromIndexes(LiveTask& t);
  std::vector<LeasedTask> PickReady(uint32_t worker, const std::vector<uint32_t>& queues,
                                    int max, Micros now, WriteBatch& batch);
  Result<TaskState> FinishOne(const FinishRequest& req, Micros now, WriteBatch& batch,
                              std::vector<TaskId>& finished_with_key);
  // Applies a failed attempt by policy; erases t from live_ when it turns terminal, so
  // callers must not touch t afterwards.
  TaskState FailLive(LiveTask& t, ErrorClass cls, const std::string& message,
                     std::optional<double> retry_after_s, Micros now, WriteBatch& batch);
  void ServeWaiters(Micros now);
  // Follow-ups (engine_followups.cc). Plans what a successful finish of t with `result`
  // creates, reading the stored task and the stored idempotency keys of the follow-ups
  // (into stored_keys) before anything changes: kUnavailable when the store cannot be
  // read. Apply then creates them (or records why not) in batch, after the parent's
  // completion.
  Status PlanFollowupsOf(const LiveTask& t, const std::string& result,
                         std::vector<PlannedFollowup>& plan,
                         std::unordered_map<std::string, std::string>& stored_keys);
  void ApplyFollowups(TaskId parent, std::vector<PlannedFollowup>& plan,
                      const std::unordered_map<std::string, std::string>& stored_keys, Micros now,
                      WriteBatch& batch);
  // Creates one task (Enqueue and follow-ups): memory, indexes, its lane, metrics, the
  // `task.enqueued` record and the insert in the batch. Known idempotency keys are the
  // caller's to check first. nt is moved from.
  std::shared_ptr<const Task> CreateTask(NewTask& nt, Micros now, WriteBatch& batch);
  // Fails every task the worker holds (its leases are released now, not at expiry).
  void ReleaseLeasesOf(uint32_t worker, ErrorClass cls, const std::string& message, Micros now,
                       WriteBatch& batch, std::vector<TaskId>& finished_with_key);
  void AppendEvent(WriteBatch& batch, Micros now, std::string kind, TaskId id, std::string data);
  // Submits the batch; with event subscribers, its ledger records and then `ephemeral`
  // are published once it is durable.
  void SubmitLocked(WriteBatch batch, Done done, std::vector<StreamEvent> ephemeral = {});
  // Wraps done so it first publishes the batch's events (engine_events.cc).
  Done PublishWhenDurable(const WriteBatch& batch, std::vector<StreamEvent> ephemeral, Done done);
  // Forgets idempotency keys of tasks that turned terminal, once that is durable.
  // Store callbacks never take mu_ (the store may call back on the submitting thread,
  // which holds it): they queue their effects in settled_*, which Lock() applies.
  Done ReleaseKeysAfter(std::vector<TaskId> ids, Done done);
  // Takes mu_ and applies what store callbacks settled since the last call.
  std::unique_lock<std::mutex> Lock();
  uint64_t NewLeaseToken();
  QueueInfo InfoOf(const QueueState& q) const;
  // Adds one task-history observation (Store::ReadStats) to the batch.
  void RecordHistory(WriteBatch& batch, const LiveTask& t, StatsOutcome outcome,
                     std::optional<ErrorClass> cls, Micros duration, Micros wait, Micros now);
  // Metric children of a task's queue and action (options_.metrics must be set).
  EngineMetrics::PerAction& ActionMetrics(const LiveTask& t);
  EngineMetrics::PerQueue& QueueMetrics(const LiveTask& t);

  Store& store_;
  const Clock& clock_;
  EngineOptions options_;

  std::mutex mu_;
  TaskIdGenerator ids_;
  std::unordered_map<TaskId, LiveTask> live_;               // guarded by mu_
  std::vector<QueueState> queues_;                          // guarded by mu_
  std::vector<bool> paused_;                                // by queue index; guarded by mu_
  FlowControl flow_;                                        // guarded by mu_
  std::unordered_map<std::string, uint32_t> queue_index_;   // guarded by mu_
  Interner actions_;                                        // guarded by mu_
  WorkerRegistry workers_;                                  // guarded by mu_
  std::set<std::pair<Micros, TaskId>> scheduled_;           // by run_at; guarded by mu_
  std::set<std::pair<Micros, TaskId>> leases_;              // by expiry; guarded by mu_
  std::unordered_map<std::string, TaskId> idempotency_;     // key -> live task; guarded by mu_
  std::unordered_map<TaskId, std::string> key_of_;          // live task -> key; guarded by mu_
  std::unordered_set<TaskId> dead_busy_;  // dead tasks with a delete in flight; guarded by mu_
  std::mutex settled_mu_;
  std::vector<TaskId> settled_keys_;     // guarded by settled_mu_
  std::vector<TaskId> settled_deletes_;  // guarded by settled_mu_
  std::deque<Waiter> waiters_;                              // guarded by mu_
  std::deque<std::pair<Micros, std::string>> restarts_;     // (when, pool); guarded by mu_
  LedgerChain chain_;                                       // guarded by mu_
  std::mt19937_64 rng_;                                     // guarded by mu_
  std::atomic<bool> failed_{false};  // a commit failed: no more writes
};

}  // namespace resonance
