#include "store/sqlite/sqlite_store.h"

#include <chrono>
#include <map>
#include <tuple>
#include <utility>

#include "store/sqlite/schema.h"

namespace resonance {
namespace {

constexpr const char* kTaskColumns =
    "id, queue, action, payload, priority, state, run_at, attempt, max_attempts, timeout_s, "
    "throttled, idempotency_key, requires_approval, parent_id, trace_id, result, error_class, "
    "error_message, lease, lease_expires_at, worker, cancel_requested, progress, created_at, "
    "started_at, finished_at, updated_at, limit_key, cost, schedule, scheduled_for, "
    "on_success, depth";

Task RowToTask(const sqlite::Stmt& st) {
  Task t;
  t.id = st.Text(0);
  t.queue = st.Text(1);
  t.action = st.Text(2);
  t.payload = st.Text(3);
  t.priority = static_cast<int32_t>(st.Int(4));
  t.state = ParseTaskState(st.Text(5)).value_or(TaskState::kDead);
  t.run_at = st.Int(6);
  t.attempt = static_cast<int32_t>(st.Int(7));
  t.max_attempts = static_cast<int32_t>(st.Int(8));
  t.timeout_s = static_cast<int32_t>(st.Int(9));
  t.throttled = static_cast<int32_t>(st.Int(10));
  t.idempotency_key = st.Text(11);
  t.requires_approval = st.Int(12) != 0;
  t.parent_id = st.Text(13);
  t.trace_id = st.Text(14);
  t.result = st.Text(15);
  t.has_error = !st.IsNull(16);
  if (t.has_error) t.error_class = ParseErrorClass(st.Text(16)).value_or(ErrorClass::kTemporary);
  t.error_message = st.Text(17);
  t.lease = st.Text(18);
  t.lease_expires_at = st.Int(19);
  t.worker = st.Text(20);
  t.cancel_requested = st.Int(21) != 0;
  t.progress = st.Text(22);
  t.created_at = st.Int(23);
  t.started_at = st.Int(24);
  t.finished_at = st.Int(25);
  t.updated_at = st.Int(26);
  t.limit_key = st.Text(27);
  t.cost = st.IsNull(28) ? 1.0 : st.Double(28);
  t.schedule = st.Text(29);
  t.scheduled_for = st.Int(30);
  t.on_success = st.Text(31);
  t.depth = static_cast<int32_t>(st.Int(32));
  return t;
}

std::string Select(const char* tail) {
  return std::string("SELECT ") + kTaskColumns + " FROM tasks " + tail;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteStoreOptions& options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(options));
  if (Status s = store->OpenWriter(); !s.ok()) return s;
  if (Status s = store->OpenReader(false); !s.ok()) return s;
  store->writer_running_ = true;
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  store->checkpointer_ = std::thread([s = store.get()] { s->CheckpointLoop(); });
  return store;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::OpenReadOnly(const std::string& path) {
  SqliteStoreOptions options;
  options.path = path;
  std::unique_ptr<SqliteStore> store(new SqliteStore(options));
  if (Status s = store->OpenReader(true); !s.ok()) return s;
  auto version = sqlite::SchemaVersion(store->rdb_);
  if (!version.ok()) return version.status();
  if (*version == 0) return Status(Code::kNotFound, "no Resonance database at " + path);
  store->failed_ = true;  // read-only: refuse writes
  return store;
}

SqliteStore::~SqliteStore() { Close(); }

Status SqliteStore::OpenWriter() {
  if (Status s = wdb_.Open(options_.path, false); !s.ok()) return s;
  std::string pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=";
  pragmas += options_.durability == Durability::kFsync ? "FULL" : "NORMAL";
  pragmas += "; PRAGMA cache_size=-" + std::to_string(options_.cache_mib * 1024) + ";";
  pragmas += "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;";
  pragmas += "PRAGMA wal_autocheckpoint=0;";  // CheckpointLoop does it off the commit path
  pragmas += "PRAGMA journal_size_limit=" +
             std::to_string(int64_t{options_.checkpoint_frames} * 4096 * 2) +
             ";";  // a reset WAL shrinks back
  if (Status s = wdb_.Exec(pragmas); !s.ok()) return s;
  if (Status s = sqlite::Migrate(wdb_); !s.ok()) return s;
  sqlite3* db = wdb_.get();
  // After each commit SQLite reports the WAL's length; the checkpointer reads it.
  sqlite3_wal_hook(
      db,
      [](void* self, sqlite3*, const char*, int frames) {
        static_cast<SqliteStore*>(self)->wal_frames_.store(frames, std::memory_order_relaxed);
        return SQLITE_OK;
      },
      this);
  insert_task_ = sqlite::Stmt(db, std::string("INSERT INTO tasks (") + kTaskColumns +
                                      ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  delete_task_ = sqlite::Stmt(db, "DELETE FROM tasks WHERE id=?1");
  insert_ledger_ = sqlite::Stmt(
      db, "INSERT INTO ledger (seq, ts, kind, task_id, data, hash) VALUES (?,?,?,?,?,?)");
  upsert_queue_ = sqlite::Stmt(
      db, "INSERT INTO queues (name, paused) VALUES (?1, ?2) "
          "ON CONFLICT(name) DO UPDATE SET paused=excluded.paused");
  select_stats_ =
      sqlite::Stmt(db, "SELECT data FROM stats WHERE minute=?1 AND queue=?2 AND action=?3");
  upsert_stats_ = sqlite::Stmt(
      db, "INSERT INTO stats (minute, queue, action, data) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT(minute, queue, action) DO UPDATE SET data=excluded.data");
  prune_stats_ = sqlite::Stmt(db, "DELETE FROM stats WHERE minute < ?1");
  put_record_ = sqlite::Stmt(
      db, "INSERT OR REPLACE INTO records (kind, name, owner, sort, active, value) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  delete_record_ = sqlite::Stmt(db, "DELETE FROM records WHERE kind=?1 AND name=?2");
  for (auto* st : {&insert_task_, &delete_task_, &insert_ledger_, &upsert_queue_, &select_stats_,
                   &upsert_stats_, &prune_stats_, &put_record_, &delete_record_}) {
    if (!st->valid()) return st->status();
  }
  return Status::Ok();
}

Status SqliteStore::OpenReader(bool read_only) {
  std::lock_guard lock(read_mu_);
  if (Status s = rdb_.Open(options_.path, read_only); !s.ok()) return s;
  return rdb_.Exec("PRAGMA cache_size=-" + std::to_string(options_.cache_mib * 1024) +
                   "; PRAGMA query_only=1;");
}

Result<RecoveredState> SqliteStore::Recover(const std::function<void(Task&&)>& on_task) {
  std::lock_guard lock(read_mu_);
  RecoveredState out;
  // Payload, result and progress are not loaded: the engine does not keep them. The
  // on_success text is (the engine keeps only whether there is one).
  sqlite::Stmt st(rdb_.get(),
                  "SELECT id, queue, action, '', priority, state, run_at, attempt, "
                  "max_attempts, timeout_s, throttled, idempotency_key, requires_approval, "
                  "parent_id, trace_id, NULL, error_class, error_message, lease, "
                  "lease_expires_at, worker, cancel_requested, NULL, created_at, started_at, "
                  "finished_at, updated_at, limit_key, cost, schedule, scheduled_for, on_success, "
                  "depth FROM tasks "
                  "WHERE state IN ('pending_approval','scheduled','ready','running')");
  if (!st.valid()) return st.status();
  while (st.Step()) on_task(RowToTask(st));
  if (!st.status().ok()) return st.status();

  sqlite::Stmt q(rdb_.get(), "SELECT name FROM queues WHERE paused=1");
  while (q.Step()) out.paused_queues.push_back(q.Text(0));
  if (!q.status().ok()) return q.status();

  sqlite::Stmt l(rdb_.get(), "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1");
  if (l.Step()) {
    out.ledger_last_seq = l.Int(0);
    out.ledger_last_hash = l.Text(1);
  }
  if (!l.status().ok()) return l.status();

  sqlite::Stmt m(rdb_.get(), "SELECT max(id) FROM tasks");
  if (m.Step()) out.max_task_id = m.Text(0);
  if (!m.status().ok()) return m.status();
  return out;
}

void SqliteStore::Submit(WriteBatch batch, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!closing_ && !failed_ && writer_running_) {
      queue_.push_back({std::move(batch), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  if (done) done(Status(Code::kUnavailable, "store is closed or failed"));
}

void SqliteStore::WriterLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) break;  // closing and drained
    std::deque<Pending> group;
    group.swap(queue_);
    lock.unlock();
    Status s = CommitGroup(group);
    lock.lock();
    if (!s.ok()) failed_ = true;
    max_group_size_ = std::max(max_group_size_, group.size());
    ++commits_;
    lock.unlock();
    Deliver(group, s);
    lock.lock();
    if (failed_) {
      // Everything queued after a failed commit fails too: memory and disk disagree.
      std::deque<Pending> rest;
      rest.swap(queue_);
      lock.unlock();
      Deliver(rest, Status(Code::kUnavailable, "store failed: " + s.message()));
      lock.lock();
    }
  }
}

void SqliteStore::Deliver(std::deque<Pending>& group, const Status& s) {
  std::vector<Done> dones;
  dones.reserve(group.size());
  for (auto& p : group) {
    if (p.done) dones.push_back(std::move(p.done));
  }
  group.clear();
  if (dones.empty()) return;
  auto run = [dones = std::move(dones), s] {
    for (const auto& d : dones) d(s);
  };
  if (options_.deliver) {
    options_.deliver(std::move(run));
  } else {
    run();
  }
}

Status SqliteStore::CommitGroup(std::deque<Pending>& group) {
  // A group of barriers only (empty batches) has nothing to write.
  bool any = false;
  for (const auto& p : group) any = any || !p.batch.empty();
  if (!any) return Status::Ok();
  const auto start = std::chrono::steady_clock::now();
  if (Status s = wdb_.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  // History observations are summed over the group and written once per key.
  std::map<std::tuple<int64_t, std::string_view, std::string_view>, MinuteStats> stats;
  for (auto& p : group) {
    for (const Mutation& m : p.batch.mutations) {
      if (auto* rs = std::get_if<RecordStats>(&m)) {
        stats[{rs->minute, rs->queue, rs->action}].Record(rs->outcome, rs->error_class,
                                                           rs->duration, rs->wait);
        continue;
      }
      if (Status s = Apply(m); !s.ok()) {
        wdb_.Exec("ROLLBACK");
        return s;
      }
    }
  }
  for (const auto& [key, delta] : stats) {
    if (Status s = AddStats(std::get<0>(key), std::get<1>(key), std::get<2>(key), delta); !s.ok()) {
      wdb_.Exec("ROLLBACK");
      return s;
    }
  }
  if (Status s = wdb_.Exec("COMMIT"); !s.ok()) {
    wdb_.Exec("ROLLBACK");
    return s;
  }
  if (options_.on_commit) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    options_.on_commit(took.count(), group.size());
  }
  return Status::Ok();
}

Status SqliteStore::AddStats(int64_t minute, std::string_view queue, std::string_view action,
                             const MinuteStats& delta) {
  MinuteStats sum = delta;
  select_stats_.BindInt(1, minute);
  select_stats_.BindText(2, queue);
  select_stats_.BindText(3, action);
  if (select_stats_.Step()) {
    auto stored = MinuteStats::Decode(select_stats_.Text(0));
    if (!stored) {
      select_stats_.Reset();
      return Status(Code::kInternal, "stats row for minute " + std::to_string(minute) +
                                         " is not readable");
    }
    sum.Merge(*stored);
  }
  Status read = select_stats_.status();
  select_stats_.Reset();
  if (!read.ok()) return read;
  const std::string data = sum.Encode();
  upsert_stats_.BindInt(1, minute);
  upsert_stats_.BindText(2, queue);
  upsert_stats_.BindText(3, action);
  upsert_stats_.BindText(4, data);
  return upsert_stats_.Run();
}

Status SqliteStore::Apply(const Mutation& m) {
  if (auto* ins = std::get_if<InsertTask>(&m)) {
    const Task& t = *ins->task;
    auto& st = insert_task_;
    st.BindText(1, t.id);
    st.BindText(2, t.queue);
    st.BindText(3, t.action);
    st.BindText(4, t.payload);
    st.BindInt(5, t.priority);
    st.BindText(6, TaskStateName(t.state));
    st.BindInt(7, t.run_at);
    st.BindInt(8, t.attempt);
    st.BindInt(9, t.max_attempts);
    st.BindInt(10, t.timeout_s);
    st.BindInt(11, t.throttled);
    st.BindText(12, t.idempotency_key, true);
    st.BindInt(13, t.requires_approval ? 1 : 0);
    st.BindText(14, t.parent_id, true);
    st.BindText(15, t.trace_id, true);
    st.BindText(16, t.result, true);
    if (t.has_error) {
      st.BindText(17, ErrorClassName(t.error_class));
    } else {
      st.BindNull(17);
    }
    st.BindText(18, t.error_message, true);
    st.BindText(19, t.lease, true);
    st.BindIntOrNull(20, t.lease_expires_at);
    st.BindText(21, t.worker, true);
    st.BindInt(22, t.cancel_requested ? 1 : 0);
    st.BindText(23, t.progress, true);
    st.BindInt(24, t.created_at);
    st.BindIntOrNull(25, t.started_at);
    st.BindIntOrNull(26, t.finished_at);
    st.BindInt(27, t.updated_at);
    st.BindText(28, t.limit_key, true);
    st.BindDouble(29, t.cost);
    st.BindText(30, t.schedule, true);
    st.BindIntOrNull(31, t.scheduled_for);
    st.BindText(32, t.on_success, true);
    st.BindInt(33, t.depth);
    return st.Run();
  }
  if (auto* up = std::get_if<UpdateTask>(&m)) return ApplyUpdate(up->update);
  if (auto* del = std::get_if<DeleteTask>(&m)) {
    delete_task_.BindText(1, del->id);
    return delete_task_.Run();
  }
  if (auto* led = std::get_if<AppendLedger>(&m)) {
    const LedgerRecord& r = led->record;
    auto& st = insert_ledger_;
    st.BindInt(1, r.seq);
    st.BindInt(2, r.ts);
    st.BindText(3, r.kind);
    st.BindText(4, r.task_id, true);
    st.BindText(5, r.data);
    st.BindText(6, r.hash);
    return st.Run();
  }
  if (auto* ps = std::get_if<PruneStats>(&m)) {
    prune_stats_.BindInt(1, ps->before_minute);
    return prune_stats_.Run();
  }
  if (auto* rs = std::get_if<RecordStats>(&m)) {
    MinuteStats one;
    one.Record(rs->outcome, rs->error_class, rs->duration, rs->wait);
    return AddStats(rs->minute, rs->queue, rs->action, one);
  }
  if (auto* pr = std::get_if<PutRecord>(&m)) {
    const Record& r = pr->record;
    put_record_.BindText(1, r.kind);
    put_record_.BindText(2, r.name);
    put_record_.BindText(3, r.owner);
    put_record_.BindInt(4, r.sort);
    put_record_.BindInt(5, r.active ? 1 : 0);
    put_record_.BindText(6, r.value);
    return put_record_.Run();
  }
  if (auto* dr = std::get_if<DeleteRecord>(&m)) {
    delete_record_.BindText(1, dr->kind);
    delete_record_.BindText(2, dr->name);
    return delete_record_.Run();
  }
  if (auto* pc = std::get_if<PutCredential>(&m)) return PutCredentialRow(pc->record);
  const auto& q = std::get<SetQueuePaused>(m);
  upsert_queue_.BindText(1, q.queue);
  upsert_queue_.BindInt(2, q.paused ? 1 : 0);
  return upsert_queue_.Run();
}

// Credentials change rarely: the statement is prepared on use.
Status SqliteStore::PutCredentialRow(const CredentialRecord& c) {
  sqlite::Stmt st(wdb_.get(),
                  "INSERT OR REPLACE INTO credentials "
                  "(name, value, expires_at, version, updated_at, config_hash) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st.valid()) return st.status();
  st.BindText(1, c.name);
  st.BindText(2, c.value);
  st.BindIntOrNull(3, c.expires_at);
  st.BindInt(4, c.version);
  st.BindInt(5, c.updated_at);
  st.BindText(6, c.config_hash);
  return st.Run();
}

Status SqliteStore::ApplyUpdate(const TaskUpdate& u) {
  using F = TaskUpdate;
  auto it = update_task_.find(u.fields);
  if (it == update_task_.end()) {
    std::string sql = "UPDATE tasks SET updated_at=?2";
    if (u.fields & F::kState) sql += ", state=?3";
    if (u.fields & F::kRunAt) sql += ", run_at=?4";
    if (u.fields & F::kAttempt) sql += ", attempt=?5, throttled=?6";
    if (u.fields & F::kResult) sql += ", result=?7";
    if (u.fields & F::kError) sql += ", error_class=?8, error_message=?9";
    if (u.fields & F::kLease) sql += ", lease=?10, lease_expires_at=?11, worker=?12";
    if (u.fields & F::kCancel) sql += ", cancel_requested=?13";
    if (u.fields & F::kProgress) sql += ", progress=?14";
    if (u.fields & F::kStartedAt) sql += ", started_at=?15";
    if (u.fields & F::kFinishedAt) sql += ", finished_at=?16";
    sql += " WHERE id=?1";
    sqlite::Stmt st(wdb_.get(), sql);
    if (!st.valid()) return st.status();
    it = update_task_.emplace(u.fields, std::move(st)).first;
  }
  sqlite::Stmt& st = it->second;
  st.BindText(1, u.id);
  st.BindInt(2, u.updated_at);
  if (u.fields & F::kState) st.BindText(3, TaskStateName(u.state));
  if (u.fields & F::kRunAt) st.BindInt(4, u.run_at);
  if (u.fields & F::kAttempt) {
    st.BindInt(5, u.attempt);
    st.BindInt(6, u.throttled);
  }
  if (u.fields & F::kResult) st.BindText(7, u.result, true);
  if (u.fields & F::kError) {
    if (u.has_error) {
      st.BindText(8, ErrorClassName(u.error_class));
      st.BindText(9, u.error_message);
    } else {
      st.BindNull(8);
      st.BindNull(9);
    }
  }
  if (u.fields & F::kLease) {
    st.BindText(10, u.lease, true);
    st.BindIntOrNull(11, u.lease_expires_at);
    st.BindText(12, u.worker, true);
  }
  if (u.fields & F::kCancel) st.BindInt(13, u.cancel_requested ? 1 : 0);
  if (u.fields & F::kProgress) st.BindText(14, u.progress, true);
  if (u.fields & F::kStartedAt) st.BindIntOrNull(15, u.started_at);
  if (u.fields & F::kFinishedAt) st.BindIntOrNull(16, u.finished_at);
  return st.Run();
}

void SqliteStore::CheckpointLoop() {
  // Checkpoints cost fsyncs that queue with the commits' own, so they run only once the
  // WAL holds options_.checkpoint_frames, in one larger pass, rather than every tick. Under steady
  // writes a passive checkpoint alone never finds the moment to start the WAL over, so
  // when it copied everything (or the WAL passed kRestartFrames) a RESTART follows: it
  // copies what is left (little) and holds the writer only until its next commit starts
  // the log from the beginning.
  const int kCheckpointFrames = options_.checkpoint_frames;
  const int kRestartFrames = 2 * options_.checkpoint_frames;
  sqlite::Db db;
  if (Status s = db.Open(options_.path, false); !s.ok()) return;
  // A connection opens the file lazily: until it has read the database it does not
  // know it is in WAL mode and checkpoint calls do nothing (log = -1).
  if (Status s = db.Exec("PRAGMA journal_mode=WAL"); !s.ok()) return;
  std::unique_lock lock(mu_);
  while (!closing_) {
    cv_checkpoint_.wait_for(lock, std::chrono::milliseconds(100), [&] { return closing_; });
    if (wal_frames_.load(std::memory_order_relaxed) < kCheckpointFrames) continue;
    lock.unlock();
    int log_frames = 0, checkpointed = 0;
    sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                              &checkpointed);
    if (log_frames > 0 && (checkpointed == log_frames || log_frames >= kRestartFrames)) {
      sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
    }
    lock.lock();
  }
  lock.unlock();
  // A final full checkpoint leaves a small WAL behind for the next start.
  sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
}

void SqliteStore::Close() {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
    closing_ = true;
    cv_.notify_one();
  }
  if (writer_.joinable()) writer_.join();
  cv_checkpoint_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
}

bool SqliteStore::healthy() const {
  std::lock_guard lock(mu_);
  return !failed_ && !closing_;
}

size_t SqliteStore::max_group_size() const {
  std::lock_guard lock(mu_);
  return max_group_size_;
}

uint64_t SqliteStore::commits() const {
  std::lock_guard lock(mu_);
  return commits_;
}

Result<Task> SqliteStore::GetTask(const std::string& id) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(), Select("WHERE id=?1"));
  if (!st.valid()) return st.status();
  st.BindText(1, id);
  if (st.Step()) return RowToTask(st);
  if (!st.status().ok()) return st.status();
  return Status(Code::kNotFound, "no task " + id);
}

Result<std::vector<Task>> SqliteStore::GetTasks(const std::vector<std::string>& ids) {
  std::lock_guard lock(read_mu_);
  std::vector<Task> out;
  out.reserve(ids.size());
  sqlite::Stmt st(rdb_.get(), Select("WHERE id=?1"));
  if (!st.valid()) return st.status();
  for (const auto& id : ids) {
    st.BindText(1, id);
    if (st.Step()) out.push_back(RowToTask(st));
    if (!st.status().ok()) return st.status();
    st.Reset();
  }
  return out;
}

Result<std::vector<Task>> SqliteStore::ListTasks(const TaskFilter& f) {
  std::lock_guard lock(read_mu_);
  std::string where = "WHERE id > ?1";
  if (f.state) where += " AND state = ?2";
  if (!f.queue.empty()) where += " AND queue = ?3";
  if (!f.action.empty()) where += " AND action = ?4";
  if (!f.parent_id.empty()) where += " AND parent_id = ?6";
  where += " ORDER BY id LIMIT ?5";
  sqlite::Stmt st(rdb_.get(), Select(where.c_str()));
  if (!st.valid()) return st.status();
  st.BindText(1, f.after);
  if (f.state) st.BindText(2, TaskStateName(*f.state));
  if (!f.queue.empty()) st.BindText(3, f.queue);
  if (!f.action.empty()) st.BindText(4, f.action);
  if (!f.parent_id.empty()) st.BindText(6, f.parent_id);
  st.BindInt(5, f.limit);
  std::vector<Task> out;
  while (st.Step()) out.push_back(RowToTask(st));
  if (!st.status().ok()) return st.status();
  return out;
}

Result<std::vector<Task>> SqliteStore::RecentFinished(int count) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(),
                  Select("WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT ?1"));
  if (!st.valid()) return st.status();
  st.BindInt(1, count);
  std::vector<Task> out;
  while (st.Step()) out.push_back(RowToTask(st));
  if (!st.status().ok()) return st.status();
  return out;
}

Result<std::optional<std::string>> SqliteStore::FindByIdempotencyKey(const std::string& key) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(), "SELECT id FROM tasks WHERE idempotency_key=?1");
  if (!st.valid()) return st.status();
  st.BindText(1, key);
  if (st.Step()) return std::optional<std::string>(st.Text(0));
  if (!st.status().ok()) return st.status();
  return std::optional<std::string>();
}

Result<std::vector<Record>> SqliteStore::ListRecords(const RecordFilter& f) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(),
                  "SELECT kind, name, owner, sort, active, value FROM records WHERE kind=?1 "
                  "AND (?2='' OR owner=?2) AND (?3=0 OR active=1) "
                  "ORDER BY sort DESC, name DESC LIMIT ?4");
  if (!st.valid()) return st.status();
  st.BindText(1, f.kind);
  st.BindText(2, f.owner);
  st.BindInt(3, f.active_only ? 1 : 0);
  st.BindInt(4, f.limit > 0 ? f.limit : -1);
  std::vector<Record> out;
  while (st.Step()) {
    Record r;
    r.kind = st.Text(0);
    r.name = st.Text(1);
    r.owner = st.Text(2);
    r.sort = st.Int(3);
    r.active = st.Int(4) != 0;
    r.value = st.Text(5);
    out.push_back(std::move(r));
  }
  if (!st.status().ok()) return st.status();
  return out;
}

Result<std::vector<LedgerRecord>> SqliteStore::ReadLedger(int64_t after_seq, int limit) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(),
                  "SELECT seq, ts, kind, task_id, data, hash FROM ledger WHERE seq > ?1 "
                  "ORDER BY seq LIMIT ?2");
  if (!st.valid()) return st.status();
  st.BindInt(1, after_seq);
  st.BindInt(2, limit);
  std::vector<LedgerRecord> out;
  while (st.Step()) {
    out.push_back({st.Int(0), st.Int(1), st.Text(2), st.Text(3), st.Text(4), st.Text(5)});
  }
  if (!st.status().ok()) return st.status();
  return out;
}

Result<std::vector<StatsRow>> SqliteStore::ReadStats(int64_t from_minute, int64_t to_minute,
                                                     const std::string& queue,
                                                     const std::string& action) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(),
                  "SELECT minute, queue, action, data FROM stats WHERE minute BETWEEN ?1 AND ?2 "
                  "AND (?3 = '' OR queue = ?3) AND (?4 = '' OR action = ?4) "
                  "ORDER BY minute, queue, action");
  if (!st.valid()) return st.status();
  st.BindInt(1, from_minute);
  st.BindInt(2, to_minute);
  st.BindText(3, queue);
  st.BindText(4, action);
  std::vector<StatsRow> rows;
  while (st.Step()) {
    StatsRow r;
    r.minute = st.Int(0);
    r.queue = st.Text(1);
    r.action = st.Text(2);
    auto stats = MinuteStats::Decode(st.Text(3));
    if (!stats) {
      return Status(Code::kInternal, "stats row for minute " + std::to_string(r.minute) +
                                         " is not readable");
    }
    r.stats = std::move(*stats);
    rows.push_back(std::move(r));
  }
  if (!st.status().ok()) return st.status();
  return rows;
}

Result<std::vector<QueueDepthPoint>> SqliteStore::OpenTasksAt(const std::vector<Micros>& times) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(),
                  "SELECT queue, count(*) FROM tasks WHERE created_at <= ?1 AND "
                  "(finished_at IS NULL OR finished_at > ?1) GROUP BY queue ORDER BY queue");
  if (!st.valid()) return st.status();
  std::vector<QueueDepthPoint> out;
  for (Micros t : times) {
    st.Reset();
    st.BindInt(1, t);
    while (st.Step()) out.push_back({t, st.Text(0), st.Int(1)});
    if (!st.status().ok()) return st.status();
  }
  return out;
}

Result<std::vector<CredentialRecord>> SqliteStore::ListCredentials() {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(),
                  "SELECT name, value, expires_at, version, updated_at, config_hash "
                  "FROM credentials ORDER BY name");
  if (!st.valid()) return st.status();
  std::vector<CredentialRecord> out;
  while (st.Step()) {
    out.push_back({st.Text(0), st.Text(1), st.IsNull(2) ? 0 : st.Int(2), st.Int(3), st.Int(4),
                   st.Text(5)});
  }
  if (!st.status().ok()) return st.status();
  return out;
}

Result<int64_t> SqliteStore::CountTasks(TaskState state) {
  std::lock_guard lock(read_mu_);
  sqlite::Stmt st(rdb_.get(), "SELECT count(*) FROM tasks WHERE state=?1");
  if (!st.valid()) return st.status();
  st.BindText(1, TaskStateName(state));
  if (st.Step()) return st.Int(0);
  return st.status();
}

}  // namespace resonance
