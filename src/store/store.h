#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/ledger_record.h"
#include "core/minute_stats.h"
#include "core/status.h"
#include "core/task.h"

namespace resonance {

// A change to the mutable columns of a task row. `fields` says which column groups
// to write (updated_at is always written); the others keep their stored values. The
// immutable columns (queue, action, payload, ...) are written once by InsertTask.
struct TaskUpdate {
  enum Field : uint32_t {
    kState = 1 << 0,
    kRunAt = 1 << 1,
    kAttempt = 1 << 2,      // attempt and throttled
    kResult = 1 << 3,
    kError = 1 << 4,        // error_class and error_message
    kLease = 1 << 5,        // lease, lease_expires_at, worker
    kCancel = 1 << 6,       // cancel_requested
    kProgress = 1 << 7,
    kStartedAt = 1 << 8,
    kFinishedAt = 1 << 9,
  };
  std::string id;
  uint32_t fields = 0;
  TaskState state = TaskState::kReady;
  Micros run_at = 0;
  int32_t attempt = 0;
  int32_t throttled = 0;
  std::string result;  // raw JSON, empty = NULL
  bool has_error = false;
  ErrorClass error_class = ErrorClass::kTemporary;
  std::string error_message;
  std::string lease;  // empty = NULL
  Micros lease_expires_at = 0;
  std::string worker;
  bool cancel_requested = false;
  std::string progress;
  Micros started_at = 0;
  Micros finished_at = 0;
  Micros updated_at = 0;
};

// Shared so the engine can hand the same record to its caller without a copy.
struct InsertTask {
  InsertTask(Task t) : task(std::make_shared<const Task>(std::move(t))) {}  // NOLINT
  explicit InsertTask(std::shared_ptr<const Task> t) : task(std::move(t)) {}
  std::shared_ptr<const Task> task;
};
struct UpdateTask { TaskUpdate update; };
struct DeleteTask { std::string id; };
struct AppendLedger { LedgerRecord record; };
struct SetQueuePaused { std::string queue; bool paused; };
// One observation for the task history (MinuteStats of its minute, queue and action).
// The store adds up every observation of a group commit before it writes, so their
// cost is one row write per (minute, queue, action) per commit.
struct RecordStats {
  int64_t minute = 0;  // MinuteOf(the time it happened)
  std::string queue;
  std::string action;
  StatsOutcome outcome = StatsOutcome::kSucceeded;
  std::optional<ErrorClass> error_class;
  Micros duration = -1;  // of the attempt; < 0 = none
  Micros wait = -1;      // due to leased; < 0 = none
};
// Deletes task-history rows of minutes before `before_minute`.
struct PruneStats {
  int64_t before_minute = 0;
};
// A durable record of the scheduler (engine/scheduler.h): a schedule, a target set or
// a gap, its value a JSON object the scheduler writes and reads. (kind, name) is the
// key; `owner` (the schedule of a gap), `sort` and `active` are what ListRecords
// filters and orders by.
struct Record {
  std::string kind;
  std::string name;
  std::string owner;
  int64_t sort = 0;
  bool active = true;
  std::string value;
};
// Inserts or replaces the record with the same kind and name.
struct PutRecord { Record record; };
struct DeleteRecord { std::string kind; std::string name; };
// A named secret (docs/credentials.md). The value lives here and in the config only:
// never in the ledger, logs, metrics or API answers other than a worker's lease.
// Persisted in `credentials`. Changing a field needs a new migration in
// store/sqlite/schema.cc and a bump of kSchemaVersion.
struct CredentialRecord {
  std::string name;
  std::string value;
  Micros expires_at = 0;  // 0 = never expires
  int64_t version = 0;    // 1, 2, ... bumped by every change of value or expiry
  Micros updated_at = 0;
  // Hex SHA-256 of the config's value and expiry that this row last took over ("" when
  // the config never named it): a different hash at start means the config changed.
  std::string config_hash;
};
// Inserts or replaces the row of record.name. A row with an empty value is a deleted
// credential, kept for its version: versions of a name never repeat (refresh tasks are
// keyed by name and version).
struct PutCredential { CredentialRecord record; };
using Mutation = std::variant<InsertTask, UpdateTask, DeleteTask, AppendLedger, SetQueuePaused,
                              RecordStats, PruneStats, PutRecord, DeleteRecord, PutCredential>;

// The changes of one request (or one engine step). Applied atomically, in order,
// within a group commit, after every batch submitted before it.
struct WriteBatch {
  std::vector<Mutation> mutations;
  bool empty() const { return mutations.empty(); }
};

// What a restart needs besides the live tasks themselves.
struct RecoveredState {
  std::vector<std::string> paused_queues;
  int64_t ledger_last_seq = 0;
  std::string ledger_last_hash;  // empty when the ledger is empty
  std::string max_task_id;       // largest id ever stored, empty when none
};

// Which records ListRecords returns: of one kind, newest `sort` first (then name).
struct RecordFilter {
  std::string kind;
  std::string owner;         // empty = any
  bool active_only = false;
  int limit = 100;           // <= 0: no limit
};

struct TaskFilter {
  std::optional<TaskState> state;
  std::string queue;   // empty = any
  std::string action;  // empty = any
  std::string parent_id;  // the follow-ups of this task; empty = any
  std::string after;   // exclusive id cursor, empty = from the start
  int limit = 100;
};

// Task history of one minute for one queue and action.
struct StatsRow {
  int64_t minute = 0;
  std::string queue;
  std::string action;
  MinuteStats stats;
};

// How many tasks of one queue were open (created, not yet finished) at one time.
struct QueueDepthPoint {
  Micros at = 0;
  std::string queue;
  int64_t open = 0;
};

enum class Durability { kFsync, kOs };

// The persistent home of tasks, queue settings and the ledger. The single source of
// truth on restart. Thread-safe: Submit may be called from any thread; reads use their
// own connection and may run concurrently with the writer.
//
// Group commit: Submit queues a batch; one writer thread takes everything queued since
// its last commit, applies it in one transaction, commits (one fsync with kFsync), and
// then runs each batch's `done` in submission order (on the writer thread, or handed
// over as one unit to another thread where the implementation is told to). A batch is
// durable exactly when its `done` runs with an ok Status. If a commit fails, every
// batch in it gets the error and the store refuses all later writes (kUnavailable):
// memory and disk may disagree, so the process must restart and recover.
class Store {
 public:
  using Done = std::function<void(const Status&)>;
  virtual ~Store() = default;

  // Streams every non-terminal task to on_task (payload, result and progress left
  // empty: the engine keeps no payloads in memory) and returns the rest. Call once,
  // before the first Submit.
  virtual Result<RecoveredState> Recover(const std::function<void(Task&&)>& on_task) = 0;
  virtual void Submit(WriteBatch batch, Done done) = 0;
  // Commits and stops the writer. Later Submits fail with kUnavailable.
  virtual void Close() = 0;
  virtual bool healthy() const = 0;

  // Reads see committed data only.
  virtual Result<Task> GetTask(const std::string& id) = 0;
  // Tasks in the order of `ids`; ids with no row are skipped.
  virtual Result<std::vector<Task>> GetTasks(const std::vector<std::string>& ids) = 0;
  virtual Result<std::vector<Task>> ListTasks(const TaskFilter& filter) = 0;
  // Terminal tasks, newest finished first.
  virtual Result<std::vector<Task>> RecentFinished(int count) = 0;
  // The id of the task with this idempotency key, nullopt when none.
  virtual Result<std::optional<std::string>> FindByIdempotencyKey(const std::string& key) = 0;
  virtual Result<std::vector<LedgerRecord>> ReadLedger(int64_t after_seq, int limit) = 0;
  virtual Result<int64_t> CountTasks(TaskState state) = 0;
  // History rows with from_minute <= minute <= to_minute, by minute, queue, action.
  // Empty queue/action match any.
  virtual Result<std::vector<StatsRow>> ReadStats(int64_t from_minute, int64_t to_minute,
                                                  const std::string& queue,
                                                  const std::string& action) = 0;
  // For each time t in `times`: per queue, the tasks with created_at <= t and
  // (finished_at unset or > t), in the order of `times` and then by queue; queues with
  // none open are left out. Approximate for the past: rows deleted since (DLQ delete)
  // are not counted.
  virtual Result<std::vector<QueueDepthPoint>> OpenTasksAt(const std::vector<Micros>& times) = 0;
  // Scheduler records by filter: highest sort first, then name descending.
  virtual Result<std::vector<Record>> ListRecords(const RecordFilter& filter) = 0;
  // Every stored credential row (deleted ones too, with an empty value), by name.
  virtual Result<std::vector<CredentialRecord>> ListCredentials() = 0;
};

}  // namespace resonance
