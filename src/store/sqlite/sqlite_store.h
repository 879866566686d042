#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "store/sqlite/sqlite_db.h"
#include "store/store.h"

namespace resonance {

struct SqliteStoreOptions {
  std::string path;  // the database file; WAL and SHM files sit beside it
  Durability durability = Durability::kFsync;
  int cache_mib = 16;  // page cache per connection
  // WAL length (4 KiB frames) at which the background checkpointer copies the WAL back
  // into the database and starts it over; it stays near twice this at most.
  int checkpoint_frames = 8192;
  // How the writer hands a committed group's callbacks over: called once per group with
  // a function that runs them all in order. Unset: they run on the writer thread. The
  // server passes a post to its io context, so one wake-up serves a whole group.
  std::function<void(std::function<void()>)> deliver;
  // Called on the writer thread after each commit that wrote something: its duration
  // (BEGIN to durable) and how many batches it joined. For metrics; must be cheap.
  std::function<void(double seconds, size_t batches)> on_commit;
};

// The embedded store: SQLite in WAL mode, one writer thread doing group commit, one
// reader connection (guarded by its own mutex) for queries. See Store for the contract.
//
// Durability: kFsync runs with synchronous=FULL, so a batch's `done` runs only after
// the WAL was fsync'd: it survives a crash of the process or the machine. kOs runs with
// synchronous=NORMAL: the commit reaches the OS (survives a crash of the process, not
// a power loss or kernel crash, which may lose the last commits).
class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) and migrates the database, and starts the writer.
  static Result<std::unique_ptr<SqliteStore>> Open(const SqliteStoreOptions& options);
  // Opens an existing database read-only (for `resonance ledger verify`). Its writer is
  // not started; Submit fails.
  static Result<std::unique_ptr<SqliteStore>> OpenReadOnly(const std::string& path);
  ~SqliteStore() override;

  Result<RecoveredState> Recover(const std::function<void(Task&&)>& on_task) override;
  void Submit(WriteBatch batch, Done done) override;
  void Close() override;
  bool healthy() const override;

  Result<Task> GetTask(const std::string& id) override;
  Result<std::vector<Task>> GetTasks(const std::vector<std::string>& ids) override;
  Result<std::vector<Task>> ListTasks(const TaskFilter& filter) override;
  Result<std::vector<Task>> RecentFinished(int count) override;
  Result<std::optional<std::string>> FindByIdempotencyKey(const std::string& key) override;
  Result<std::vector<LedgerRecord>> ReadLedger(int64_t after_seq, int limit) override;
  Result<int64_t> CountTasks(TaskState state) override;
  Result<std::vector<StatsRow>> ReadStats(int64_t from_minute, int64_t to_minute,
                                          const std::string& queue,
                                          const std::string& action) override;
  Result<std::vector<QueueDepthPoint>> OpenTasksAt(const std::vector<Micros>& times) override;
  Result<std::vector<Record>> ListRecords(const RecordFilter& filter) override;
  Result<std::vector<CredentialRecord>> ListCredentials() override;

  // WAL length in frames after the last commit (for tests and metrics).
  int wal_frames() const { return wal_frames_.load(std::memory_order_relaxed); }
  // Largest number of batches one commit has carried (for tests and metrics).
  size_t max_group_size() const;
  uint64_t commits() const;

 private:
  struct Pending {
    WriteBatch batch;
    Done done;
  };
  explicit SqliteStore(SqliteStoreOptions options) : options_(std::move(options)) {}
  Status OpenWriter();
  Status OpenReader(bool read_only);
  void WriterLoop();
  // Copies the WAL back into the database file every ~100 ms on its own connection,
  // so commits on the writer thread never pay for a checkpoint.
  void CheckpointLoop();
  Status Apply(const Mutation& m);
  // Adds delta to the stored history row of (minute, queue, action), creating it.
  Status AddStats(int64_t minute, std::string_view queue, std::string_view action,
                  const MinuteStats& delta);
  Status ApplyUpdate(const TaskUpdate& u);
  Status PutCredentialRow(const CredentialRecord& c);
  Status CommitGroup(std::deque<Pending>& group);
  // Runs the callbacks with s, through options_.deliver when set.
  void Deliver(std::deque<Pending>& group, const Status& s);

  SqliteStoreOptions options_;

  // Writer side: owned by the writer thread once started.
  sqlite::Db wdb_;
  sqlite::Stmt insert_task_, delete_task_, insert_ledger_, upsert_queue_;
  sqlite::Stmt select_stats_, upsert_stats_, prune_stats_;
  sqlite::Stmt put_record_, delete_record_;
  std::map<uint32_t, sqlite::Stmt> update_task_;  // one statement per TaskUpdate::fields
  std::thread writer_;
  std::thread checkpointer_;
  std::atomic<int> wal_frames_{0};  // WAL length after the last commit (sqlite3_wal_hook)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable cv_checkpoint_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool closing_ = false;       // guarded by mu_
  bool failed_ = false;        // guarded by mu_; a commit failed, no more writes
  bool writer_running_ = false;  // set before the threads start, then read-only
  size_t max_group_size_ = 0;  // guarded by mu_
  uint64_t commits_ = 0;       // guarded by mu_

  // Reader side.
  std::mutex read_mu_;
  sqlite::Db rdb_;  // guarded by read_mu_
};

}  // namespace resonance
