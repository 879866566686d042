#include "store/sqlite/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/ledger_record.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_db.h"

namespace resonance {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;
constexpr auto kWait = std::chrono::seconds(10);

Task MakeTask(std::string id, TaskState state = TaskState::kReady,
              std::string queue = "default") {
  Task t;
  t.id = std::move(id);
  t.queue = std::move(queue);
  t.action = "send_mail";
  t.payload = R"({"to":"a@example.com"})";
  t.state = state;
  t.run_at = kT0;
  t.created_at = kT0;
  t.updated_at = kT0;
  return t;
}

LedgerRecord MakeRecord(int64_t seq, std::string kind, std::string task_id) {
  LedgerRecord r;
  r.seq = seq;
  r.ts = kT0 + seq;
  r.kind = std::move(kind);
  r.task_id = std::move(task_id);
  r.data = R"({"n":)" + std::to_string(seq) + "}";
  r.hash = std::string(64, static_cast<char>('a' + seq % 6));
  return r;
}

void ExpectSameTask(const Task& got, const Task& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.queue, want.queue);
  EXPECT_EQ(got.action, want.action);
  EXPECT_EQ(got.payload, want.payload);
  EXPECT_EQ(got.priority, want.priority);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.run_at, want.run_at);
  EXPECT_EQ(got.attempt, want.attempt);
  EXPECT_EQ(got.max_attempts, want.max_attempts);
  EXPECT_EQ(got.timeout_s, want.timeout_s);
  EXPECT_EQ(got.throttled, want.throttled);
  EXPECT_EQ(got.idempotency_key, want.idempotency_key);
  EXPECT_EQ(got.requires_approval, want.requires_approval);
  EXPECT_EQ(got.parent_id, want.parent_id);
  EXPECT_EQ(got.trace_id, want.trace_id);
  EXPECT_EQ(got.result, want.result);
  EXPECT_EQ(got.has_error, want.has_error);
  if (want.has_error) {
    EXPECT_EQ(got.error_class, want.error_class);
  }
  EXPECT_EQ(got.error_message, want.error_message);
  EXPECT_EQ(got.lease, want.lease);
  EXPECT_EQ(got.lease_expires_at, want.lease_expires_at);
  EXPECT_EQ(got.worker, want.worker);
  EXPECT_EQ(got.cancel_requested, want.cancel_requested);
  EXPECT_EQ(got.progress, want.progress);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.started_at, want.started_at);
  EXPECT_EQ(got.finished_at, want.finished_at);
  EXPECT_EQ(got.updated_at, want.updated_at);
  EXPECT_EQ(got.schedule, want.schedule);
  EXPECT_EQ(got.scheduled_for, want.scheduled_for);
}

std::vector<std::string> Ids(const std::vector<Task>& tasks) {
  std::vector<std::string> out;
  for (const Task& t : tasks) out.push_back(t.id);
  return out;
}

// Holds the store's writer thread inside a `done` callback until Release(), so that
// batches submitted meanwhile queue up and are committed as one group.
class WriterBlocker {
 public:
  explicit WriterBlocker(Store& store) {
    WriteBatch b;
    // The callback owns copies of what it touches after Release(): the blocker may be
    // gone by the time it returns.
    store.Submit(std::move(b), [entered = &entered_, release = release_future_](const Status&) {
      entered->set_value();
      release.wait();
    });
    entered_.get_future().wait();
  }
  ~WriterBlocker() { Release(); }
  void Release() {
    if (!released_) {
      released_ = true;
      release_.set_value();
    }
  }

 private:
  std::promise<void> entered_;
  std::promise<void> release_;
  std::shared_future<void> release_future_ = release_.get_future().share();
  bool released_ = false;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/resonance-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/resonance.db";
    ASSERT_NO_FATAL_FAILURE(Open());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Open(int checkpoint_frames = 8192) {
    SqliteStoreOptions options;
    options.path = path_;
    options.checkpoint_frames = checkpoint_frames;
    auto opened = SqliteStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  void Reopen() {
    store_->Close();
    store_.reset();
    Open();
  }

  Status Submit(WriteBatch batch) {
    std::promise<Status> p;
    auto f = p.get_future();
    store_->Submit(std::move(batch), [&p](const Status& s) { p.set_value(s); });
    if (f.wait_for(kWait) != std::future_status::ready) {
      return Status(Code::kInternal, "done never ran");
    }
    return f.get();
  }
  Status Insert(const Task& t) {
    WriteBatch b;
    b.mutations.push_back(InsertTask{t});
    return Submit(std::move(b));
  }
  Status Update(const TaskUpdate& u) {
    WriteBatch b;
    b.mutations.push_back(UpdateTask{u});
    return Submit(std::move(b));
  }

  int UserVersion() {
    sqlite::Db db;
    EXPECT_TRUE(db.Open(path_, true).ok());
    auto v = sqlite::SchemaVersion(db);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : -1;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteStoreTest, NewDatabaseGetsCurrentSchemaVersion) {
  // Given a new directory, then the database is at kSchemaVersion and healthy.
  EXPECT_EQ(UserVersion(), sqlite::kSchemaVersion);
  EXPECT_TRUE(store_->healthy());
}

TEST_F(SqliteStoreTest, ReopenIsIdempotent) {
  // Given a database with a task, when opened twice more, then the version stays and
  // the task is still there.
  ASSERT_TRUE(Insert(MakeTask("t1")).ok());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(UserVersion(), sqlite::kSchemaVersion);
  EXPECT_TRUE(store_->GetTask("t1").ok());
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  // Given a database whose user_version is above kSchemaVersion, then Open fails with
  // kUnavailable and leaves the version alone.
  store_->Close();
  store_.reset();
  {
    sqlite::Db db;
    ASSERT_TRUE(db.Open(path_, false).ok());
    ASSERT_TRUE(
        db.Exec("PRAGMA user_version=" + std::to_string(sqlite::kSchemaVersion + 1)).ok());
  }
  SqliteStoreOptions options;
  options.path = path_;
  auto opened = SqliteStore::Open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kUnavailable);
  EXPECT_EQ(UserVersion(), sqlite::kSchemaVersion + 1);
}

TEST_F(SqliteStoreTest, InsertRoundTripsEveryColumn) {
  // Given a task with every field set, then GetTask returns each field unchanged.
  Task t = MakeTask("t1", TaskState::kRunning, "mail");
  t.priority = -7;
  t.attempt = 2;
  t.max_attempts = 9;
  t.timeout_s = 45;
  t.throttled = 1;
  t.idempotency_key = "key-1";
  t.requires_approval = true;
  t.parent_id = "p1";
  t.trace_id = "trace";
  t.result = R"({"ok":true})";
  t.has_error = true;
  t.error_class = ErrorClass::kRateLimited;
  t.error_message = "slow down";
  t.lease = "00000000000000ff";
  t.lease_expires_at = kT0 + 45 * kMicrosPerSecond;
  t.worker = "w-1";
  t.cancel_requested = true;
  t.progress = R"({"pct":50})";
  t.started_at = kT0 + 1;
  t.finished_at = kT0 + 2;
  t.updated_at = kT0 + 3;
  t.schedule = "nightly";
  t.scheduled_for = kT0 - 60 * kMicrosPerSecond;
  ASSERT_TRUE(Insert(t).ok());
  auto got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameTask(*got, t);
}

TEST_F(SqliteStoreTest, GetUnknownTaskIsNotFound) {
  // Given no such task, then GetTask says kNotFound.
  EXPECT_EQ(store_->GetTask("nope").status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, UpdateWritesOnlyMaskedColumns) {
  // Given a ready task, when updated with kState|kLease while other fields of the
  // update differ, then only state, lease columns and updated_at change.
  Task t = MakeTask("t1");
  t.result = R"("old")";
  ASSERT_TRUE(Insert(t).ok());

  TaskUpdate u;
  u.id = "t1";
  u.fields = TaskUpdate::kState | TaskUpdate::kLease;
  u.state = TaskState::kRunning;
  u.lease = "0000000000000001";
  u.lease_expires_at = kT0 + 30 * kMicrosPerSecond;
  u.worker = "w-1";
  u.updated_at = kT0 + 10;
  // Unmasked: must not reach the row.
  u.run_at = kT0 + 999;
  u.attempt = 4;
  u.throttled = 3;
  u.result = R"("new")";
  u.has_error = true;
  u.error_message = "boom";
  u.cancel_requested = true;
  u.progress = "{}";
  u.started_at = kT0 + 5;
  u.finished_at = kT0 + 6;
  ASSERT_TRUE(Update(u).ok());

  Task want = t;
  want.state = TaskState::kRunning;
  want.lease = u.lease;
  want.lease_expires_at = u.lease_expires_at;
  want.worker = "w-1";
  want.updated_at = kT0 + 10;
  auto got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok());
  ExpectSameTask(*got, want);
}

TEST_F(SqliteStoreTest, UpdateOfEachFieldGroup) {
  // Given a task, when each field group is updated in turn, then each lands and the
  // earlier ones keep their values.
  ASSERT_TRUE(Insert(MakeTask("t1")).ok());
  Task want = MakeTask("t1");

  TaskUpdate u;
  u.id = "t1";
  u.fields = TaskUpdate::kAttempt | TaskUpdate::kRunAt;
  u.attempt = 3;
  u.throttled = 2;
  u.run_at = kT0 + 100;
  u.updated_at = kT0 + 1;
  ASSERT_TRUE(Update(u).ok());
  want.attempt = 3;
  want.throttled = 2;
  want.run_at = kT0 + 100;
  want.updated_at = kT0 + 1;

  u = {};
  u.id = "t1";
  u.fields = TaskUpdate::kError | TaskUpdate::kProgress | TaskUpdate::kCancel |
             TaskUpdate::kStartedAt;
  u.has_error = true;
  u.error_class = ErrorClass::kTimeout;
  u.error_message = "lease expired";
  u.progress = R"({"step":2})";
  u.cancel_requested = true;
  u.started_at = kT0 + 50;
  u.updated_at = kT0 + 2;
  ASSERT_TRUE(Update(u).ok());
  want.has_error = true;
  want.error_class = ErrorClass::kTimeout;
  want.error_message = "lease expired";
  want.progress = R"({"step":2})";
  want.cancel_requested = true;
  want.started_at = kT0 + 50;
  want.updated_at = kT0 + 2;

  u = {};
  u.id = "t1";
  u.fields = TaskUpdate::kState | TaskUpdate::kResult | TaskUpdate::kFinishedAt;
  u.state = TaskState::kSucceeded;
  u.result = "[1,2]";
  u.finished_at = kT0 + 60;
  u.updated_at = kT0 + 3;
  ASSERT_TRUE(Update(u).ok());
  want.state = TaskState::kSucceeded;
  want.result = "[1,2]";
  want.finished_at = kT0 + 60;
  want.updated_at = kT0 + 3;

  auto got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok());
  ExpectSameTask(*got, want);

  // Clearing: kError without an error and empty progress/result write NULL.
  u = {};
  u.id = "t1";
  u.fields = TaskUpdate::kError | TaskUpdate::kResult | TaskUpdate::kProgress |
             TaskUpdate::kFinishedAt;
  u.updated_at = kT0 + 4;
  ASSERT_TRUE(Update(u).ok());
  got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_error);
  EXPECT_EQ(got->error_message, "");
  EXPECT_EQ(got->result, "");
  EXPECT_EQ(got->progress, "");
  EXPECT_EQ(got->finished_at, 0);
  EXPECT_EQ(got->attempt, 3);  // untouched
}

TEST_F(SqliteStoreTest, DeleteRemovesTask) {
  // Given two tasks, when one is deleted, then only it is gone.
  ASSERT_TRUE(Insert(MakeTask("t1")).ok());
  ASSERT_TRUE(Insert(MakeTask("t2")).ok());
  WriteBatch b;
  b.mutations.push_back(DeleteTask{"t1"});
  ASSERT_TRUE(Submit(std::move(b)).ok());
  EXPECT_EQ(store_->GetTask("t1").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->GetTask("t2").ok());
}

TEST_F(SqliteStoreTest, LedgerAppendRoundTrips) {
  // Given three appended records, then ReadLedger returns them in seq order, and
  // after_seq and limit page through them.
  WriteBatch b;
  const std::vector<LedgerRecord> recs = {MakeRecord(1, "task.enqueued", "t1"),
                                          MakeRecord(2, "queue.paused", ""),
                                          MakeRecord(3, "task.leased", "t1")};
  for (const auto& r : recs) b.mutations.push_back(AppendLedger{r});
  ASSERT_TRUE(Submit(std::move(b)).ok());

  auto all = store_->ReadLedger(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ((*all)[i].seq, recs[i].seq);
    EXPECT_EQ((*all)[i].ts, recs[i].ts);
    EXPECT_EQ((*all)[i].kind, recs[i].kind);
    EXPECT_EQ((*all)[i].task_id, recs[i].task_id);
    EXPECT_EQ((*all)[i].data, recs[i].data);
    EXPECT_EQ((*all)[i].hash, recs[i].hash);
  }
  auto page = store_->ReadLedger(1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].seq, 2);
  auto none = store_->ReadLedger(3, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(SqliteStoreTest, DuplicateLedgerSeqFailsTheBatch) {
  // Given a stored record seq 1, when another seq 1 is appended, then the batch fails.
  WriteBatch b;
  b.mutations.push_back(AppendLedger{MakeRecord(1, "a", "")});
  ASSERT_TRUE(Submit(std::move(b)).ok());
  WriteBatch again;
  again.mutations.push_back(AppendLedger{MakeRecord(1, "b", "")});
  EXPECT_FALSE(Submit(std::move(again)).ok());
}

TEST_F(SqliteStoreTest, ListTasksFiltersAndPages) {
  // Given tasks across queues, states and actions, then each filter selects its rows
  // in id order, and after/limit page.
  Task a = MakeTask("a", TaskState::kReady, "q1");
  Task b = MakeTask("b", TaskState::kDead, "q1");
  Task c = MakeTask("c", TaskState::kReady, "q2");
  c.action = "resize";
  Task d = MakeTask("d", TaskState::kReady, "q1");
  for (const Task& t : {d, b, a, c}) ASSERT_TRUE(Insert(t).ok());

  auto list = [&](TaskFilter f) {
    auto r = store_->ListTasks(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? Ids(*r) : std::vector<std::string>{};
  };
  EXPECT_THAT(list({}), ElementsAre("a", "b", "c", "d"));
  TaskFilter by_state;
  by_state.state = TaskState::kReady;
  EXPECT_THAT(list(by_state), ElementsAre("a", "c", "d"));
  TaskFilter by_queue;
  by_queue.queue = "q1";
  EXPECT_THAT(list(by_queue), ElementsAre("a", "b", "d"));
  TaskFilter by_action;
  by_action.action = "resize";
  EXPECT_THAT(list(by_action), ElementsAre("c"));
  TaskFilter combined;
  combined.state = TaskState::kReady;
  combined.queue = "q1";
  EXPECT_THAT(list(combined), ElementsAre("a", "d"));
  TaskFilter page;
  page.after = "a";
  page.limit = 2;
  EXPECT_THAT(list(page), ElementsAre("b", "c"));
}

TEST_F(SqliteStoreTest, GetTasksKeepsOrderAndSkipsMissing) {
  // Given tasks a and b, when asked for b, x, a, then b and a in that order.
  ASSERT_TRUE(Insert(MakeTask("a")).ok());
  ASSERT_TRUE(Insert(MakeTask("b")).ok());
  auto got = store_->GetTasks({"b", "x", "a"});
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(Ids(*got), ElementsAre("b", "a"));
}

TEST_F(SqliteStoreTest, RecentFinishedNewestFirst) {
  // Given three finished tasks and one unfinished, then RecentFinished lists the
  // finished ones newest first, up to count.
  Task a = MakeTask("a", TaskState::kSucceeded);
  a.finished_at = kT0 + 10;
  Task b = MakeTask("b", TaskState::kDead);
  b.finished_at = kT0 + 30;
  Task c = MakeTask("c", TaskState::kCancelled);
  c.finished_at = kT0 + 20;
  Task d = MakeTask("d", TaskState::kReady);
  for (const Task& t : {a, b, c, d}) ASSERT_TRUE(Insert(t).ok());
  auto got = store_->RecentFinished(10);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(Ids(*got), ElementsAre("b", "c", "a"));
  got = store_->RecentFinished(2);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(Ids(*got), ElementsAre("b", "c"));
}

TEST_F(SqliteStoreTest, FindByIdempotencyKey) {
  // Given a task with key k1 and two without a key, then k1 finds it, k2 finds nothing,
  // and tasks without keys do not collide.
  Task a = MakeTask("a");
  a.idempotency_key = "k1";
  ASSERT_TRUE(Insert(a).ok());
  ASSERT_TRUE(Insert(MakeTask("b")).ok());
  ASSERT_TRUE(Insert(MakeTask("c")).ok());
  auto found = store_->FindByIdempotencyKey("k1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, "a");
  auto missing = store_->FindByIdempotencyKey("k2");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto empty = store_->FindByIdempotencyKey("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
}

TEST_F(SqliteStoreTest, DuplicateIdempotencyKeyIsRefused) {
  // Given a task with key k1, when another task with k1 is inserted, then it fails.
  Task a = MakeTask("a");
  a.idempotency_key = "k1";
  ASSERT_TRUE(Insert(a).ok());
  Task b = MakeTask("b");
  b.idempotency_key = "k1";
  EXPECT_FALSE(Insert(b).ok());
}

TEST_F(SqliteStoreTest, CountTasksByState) {
  // Given two ready and one dead task, then the counts say so.
  ASSERT_TRUE(Insert(MakeTask("a")).ok());
  ASSERT_TRUE(Insert(MakeTask("b")).ok());
  ASSERT_TRUE(Insert(MakeTask("c", TaskState::kDead)).ok());
  EXPECT_EQ(*store_->CountTasks(TaskState::kReady), 2);
  EXPECT_EQ(*store_->CountTasks(TaskState::kDead), 1);
  EXPECT_EQ(*store_->CountTasks(TaskState::kRunning), 0);
}

TEST_F(SqliteStoreTest, RecoverStreamsLiveTasksAndReturnsHeads) {
  // Given tasks in every state, a ledger and queue settings, then Recover streams only
  // the non-terminal tasks (without payload, result or progress) and returns the
  // ledger head, the paused queues and the largest id.
  const std::vector<std::pair<std::string, TaskState>> tasks = {
      {"01", TaskState::kPendingApproval}, {"02", TaskState::kScheduled},
      {"03", TaskState::kReady},           {"04", TaskState::kRunning},
      {"05", TaskState::kSucceeded},       {"06", TaskState::kDead},
      {"07", TaskState::kCancelled},       {"08", TaskState::kRejected},
  };
  WriteBatch b;
  for (const auto& [id, state] : tasks) {
    Task t = MakeTask(id, state);
    t.result = "[1]";
    t.progress = "{}";
    if (state == TaskState::kRunning) {
      t.lease = "00000000000000aa";
      t.lease_expires_at = kT0 + 30 * kMicrosPerSecond;
      t.worker = "w-1";
      t.attempt = 2;
      t.idempotency_key = "k";
    }
    b.mutations.push_back(InsertTask{t});
  }
  for (int64_t seq = 1; seq <= 4; ++seq) {
    b.mutations.push_back(AppendLedger{MakeRecord(seq, "e", "")});
  }
  b.mutations.push_back(SetQueuePaused{"paused", true});
  b.mutations.push_back(SetQueuePaused{"resumed", true});
  b.mutations.push_back(SetQueuePaused{"resumed", false});
  b.mutations.push_back(SetQueuePaused{"never", false});
  ASSERT_TRUE(Submit(std::move(b)).ok());
  ASSERT_NO_FATAL_FAILURE(Reopen());

  std::vector<Task> seen;
  auto state = store_->Recover([&](Task&& t) { seen.push_back(std::move(t)); });
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_THAT(Ids(seen), UnorderedElementsAre("01", "02", "03", "04"));
  for (const Task& t : seen) {
    EXPECT_EQ(t.payload, "") << t.id;
    EXPECT_EQ(t.result, "") << t.id;
    EXPECT_EQ(t.progress, "") << t.id;
    EXPECT_EQ(t.action, "send_mail") << t.id;
    if (t.id == "04") {
      EXPECT_EQ(t.state, TaskState::kRunning);
      EXPECT_EQ(t.lease, "00000000000000aa");
      EXPECT_EQ(t.lease_expires_at, kT0 + 30 * kMicrosPerSecond);
      EXPECT_EQ(t.worker, "w-1");
      EXPECT_EQ(t.attempt, 2);
      EXPECT_EQ(t.idempotency_key, "k");
    }
  }
  EXPECT_THAT(state->paused_queues, ElementsAre("paused"));
  EXPECT_EQ(state->ledger_last_seq, 4);
  EXPECT_EQ(state->ledger_last_hash, MakeRecord(4, "e", "").hash);
  EXPECT_EQ(state->max_task_id, "08");
}

TEST_F(SqliteStoreTest, RecoverOnEmptyDatabase) {
  // Given a new database, then Recover streams nothing and returns empty heads.
  int count = 0;
  auto state = store_->Recover([&](Task&&) { ++count; });
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(count, 0);
  EXPECT_EQ(state->ledger_last_seq, 0);
  EXPECT_EQ(state->ledger_last_hash, "");
  EXPECT_EQ(state->max_task_id, "");
  EXPECT_TRUE(state->paused_queues.empty());
}

TEST_F(SqliteStoreTest, ConcurrentSubmitsAreGroupedAndOrdered) {
  // Given 8 threads each submitting 25 batches while the writer is busy, then every
  // batch commits ok, each thread's callbacks run in its submission order, and the
  // batches shared commits (max_group_size > 1, fewer commits than batches).
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::mutex mu;
  std::vector<std::vector<int>> order(kThreads);
  std::atomic<int> failures{0};
  std::atomic<int> done_count{0};
  std::promise<void> all_done;
  {
    WriterBlocker blocker(*store_);
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
      threads.emplace_back([&, th] {
        for (int n = 0; n < kPerThread; ++n) {
          WriteBatch b;
          b.mutations.push_back(
              InsertTask{MakeTask("t" + std::to_string(th) + "-" + std::to_string(n))});
          store_->Submit(std::move(b), [&, th, n](const Status& s) {
            if (!s.ok()) ++failures;
            {
              std::lock_guard lock(mu);
              order[static_cast<size_t>(th)].push_back(n);
            }
            if (++done_count == kThreads * kPerThread) all_done.set_value();
          });
        }
      });
    }
    for (auto& t : threads) t.join();
    blocker.Release();
  }
  ASSERT_EQ(all_done.get_future().wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(failures.load(), 0);
  for (int th = 0; th < kThreads; ++th) {
    std::vector<int> want(kPerThread);
    for (int n = 0; n < kPerThread; ++n) want[static_cast<size_t>(n)] = n;
    EXPECT_EQ(order[static_cast<size_t>(th)], want) << "thread " << th;
  }
  EXPECT_GT(store_->max_group_size(), 1u);
  EXPECT_LT(store_->commits(), static_cast<uint64_t>(kThreads * kPerThread));
  TaskFilter all;
  all.limit = 1000;
  auto listed = store_->ListTasks(all);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(SqliteStoreTest, FailingMutationFailsItsWholeGroupAndLaterWrites) {
  // Given batches A, B (a duplicate id) and C committed as one group, then all three
  // fail, none of their rows exist, later Submits get kUnavailable, and the store is
  // unhealthy.
  ASSERT_TRUE(Insert(MakeTask("dup")).ok());
  std::promise<Status> pa, pb, pc;
  {
    WriterBlocker blocker(*store_);
    WriteBatch a, b, c;
    a.mutations.push_back(InsertTask{MakeTask("a")});
    b.mutations.push_back(InsertTask{MakeTask("b")});
    b.mutations.push_back(InsertTask{MakeTask("dup", TaskState::kDead)});
    c.mutations.push_back(InsertTask{MakeTask("c")});
    store_->Submit(std::move(a), [&](const Status& s) { pa.set_value(s); });
    store_->Submit(std::move(b), [&](const Status& s) { pb.set_value(s); });
    store_->Submit(std::move(c), [&](const Status& s) { pc.set_value(s); });
  }
  for (auto* p : {&pa, &pb, &pc}) {
    auto f = p->get_future();
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    EXPECT_FALSE(f.get().ok());
  }
  EXPECT_EQ(store_->max_group_size(), 3u);
  for (const char* id : {"a", "b", "c"}) {
    EXPECT_EQ(store_->GetTask(id).status().code(), Code::kNotFound) << id;
  }
  auto dup = store_->GetTask("dup");
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(dup->state, TaskState::kReady);

  EXPECT_FALSE(store_->healthy());
  Status later = Insert(MakeTask("d"));
  EXPECT_EQ(later.code(), Code::kUnavailable);
  EXPECT_EQ(store_->GetTask("d").status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, CommittedDataSurvivesReopen) {
  // Given a committed task, ledger record and paused queue, when the store is closed
  // and reopened, then all of it is there.
  WriteBatch b;
  b.mutations.push_back(InsertTask{MakeTask("t1")});
  b.mutations.push_back(AppendLedger{MakeRecord(1, "task.enqueued", "t1")});
  b.mutations.push_back(SetQueuePaused{"default", true});
  ASSERT_TRUE(Submit(std::move(b)).ok());
  ASSERT_NO_FATAL_FAILURE(Reopen());

  auto t = store_->GetTask("t1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->payload, MakeTask("t1").payload);
  auto ledger = store_->ReadLedger(0, 10);
  ASSERT_TRUE(ledger.ok());
  ASSERT_EQ(ledger->size(), 1u);
  EXPECT_EQ((*ledger)[0].kind, "task.enqueued");
  auto state = store_->Recover([](Task&&) {});
  ASSERT_TRUE(state.ok());
  EXPECT_THAT(state->paused_queues, ElementsAre("default"));
}

TEST_F(SqliteStoreTest, CloseDrainsQueuedBatchesThenRefusesWrites) {
  // Given batches queued behind a busy writer, when Close runs, then they are committed
  // first; later Submits get kUnavailable and the store reports unhealthy.
  std::promise<Status> queued;
  {
    WriterBlocker blocker(*store_);
    WriteBatch b;
    b.mutations.push_back(InsertTask{MakeTask("t1")});
    store_->Submit(std::move(b), [&](const Status& s) { queued.set_value(s); });
  }
  store_->Close();
  auto f = queued.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_TRUE(store_->GetTask("t1").ok());
  EXPECT_FALSE(store_->healthy());
  EXPECT_EQ(Insert(MakeTask("t2")).code(), Code::kUnavailable);
}

TEST_F(SqliteStoreTest, ReadOnlyOpenReadsButRefusesWrites) {
  // Given a database with a task, when opened read-only, then reads work and Submit
  // fails with kUnavailable; a path with no database is kNotFound or unavailable.
  ASSERT_TRUE(Insert(MakeTask("t1")).ok());
  auto ro = SqliteStore::OpenReadOnly(path_);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_TRUE((*ro)->GetTask("t1").ok());
  std::promise<Status> p;
  (*ro)->Submit(WriteBatch{}, [&](const Status& s) { p.set_value(s); });
  EXPECT_EQ(p.get_future().get().code(), Code::kUnavailable);
  EXPECT_FALSE(SqliteStore::OpenReadOnly(dir_ + "/missing.db").ok());
}

}  // namespace
}  // namespace resonance

namespace resonance {
namespace {

TEST_F(SqliteStoreTest, BackgroundCheckpointKeepsTheWalShort) {
  // Given a checkpoint threshold of 64 frames and a steady stream of commits writing
  // far more than that, then the checkpointer starts the WAL over: after the writes
  // stop, the WAL's length reported at the next commit is far below what was written.
  store_->Close();
  store_.reset();
  ASSERT_NO_FATAL_FAILURE(Open(64));
  int max_frames = 0;
  for (int i = 0; i < 600; ++i) {
    ASSERT_TRUE(Insert(MakeTask("t" + std::to_string(i))).ok());
    max_frames = std::max(max_frames, store_->wal_frames());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int frames = store_->wal_frames();
  for (int i = 600; frames >= 128 && std::chrono::steady_clock::now() < deadline; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_TRUE(Insert(MakeTask("t" + std::to_string(i))).ok());
    frames = store_->wal_frames();
  }
  EXPECT_LT(frames, 128) << "the WAL was never started over (max seen " << max_frames << ")";
  EXPECT_GT(max_frames, 64);
}

}  // namespace
}  // namespace resonance

namespace resonance {
namespace {

RecordStats Obs(int64_t minute, std::string queue, std::string action, StatsOutcome outcome,
                std::optional<ErrorClass> cls = std::nullopt, Micros duration = -1) {
  RecordStats r;
  r.minute = minute;
  r.queue = std::move(queue);
  r.action = std::move(action);
  r.outcome = outcome;
  r.error_class = cls;
  r.duration = duration;
  return r;
}

TEST_F(SqliteStoreTest, StatsObservationsAddUpPerMinuteQueueAndAction) {
  // Given observations in two batches (and twice the same key in one), then each
  // (minute, queue, action) row holds their sum, across batches and a reopen.
  WriteBatch a;
  a.mutations.push_back(Obs(100, "q", "x", StatsOutcome::kSucceeded, std::nullopt, 2000));
  a.mutations.push_back(Obs(100, "q", "x", StatsOutcome::kDead, ErrorClass::kValidation, 5000));
  a.mutations.push_back(Obs(100, "q", "y", StatsOutcome::kRetried, ErrorClass::kTemporary, 1000));
  a.mutations.push_back(Obs(101, "r", "x", StatsOutcome::kCancelled));
  ASSERT_TRUE(Submit(std::move(a)).ok());
  WriteBatch b;
  b.mutations.push_back(Obs(100, "q", "x", StatsOutcome::kSucceeded, std::nullopt, 3000));
  ASSERT_TRUE(Submit(std::move(b)).ok());
  Reopen();

  auto all = store_->ReadStats(0, 1000, "", "");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  const StatsRow& qx = (*all)[0];
  EXPECT_EQ(qx.minute, 100);
  EXPECT_EQ(qx.queue, "q");
  EXPECT_EQ(qx.action, "x");
  EXPECT_EQ(qx.stats.succeeded, 2);
  EXPECT_EQ(qx.stats.dead, 1);
  EXPECT_EQ(qx.stats.failures[static_cast<size_t>(ErrorClass::kValidation)], 1);
  EXPECT_EQ(qx.stats.duration.count, 3);
  EXPECT_EQ(qx.stats.duration.sum_us, 10000);
  EXPECT_EQ((*all)[1].action, "y");
  EXPECT_EQ((*all)[1].stats.retries[static_cast<size_t>(ErrorClass::kTemporary)], 1);
  EXPECT_EQ((*all)[2].minute, 101);
  EXPECT_EQ((*all)[2].stats.cancelled, 1);

  // Filters: minute range, queue, action.
  auto q_only = store_->ReadStats(0, 1000, "q", "");
  ASSERT_TRUE(q_only.ok());
  EXPECT_EQ(q_only->size(), 2u);
  auto x_only = store_->ReadStats(0, 1000, "", "x");
  ASSERT_TRUE(x_only.ok());
  EXPECT_EQ(x_only->size(), 2u);
  auto late = store_->ReadStats(101, 101, "", "");
  ASSERT_TRUE(late.ok());
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ((*late)[0].queue, "r");
}

}  // namespace
}  // namespace resonance

namespace resonance {
namespace {

TEST_F(SqliteStoreTest, VersionOneDatabaseGainsTheStatsTable) {
  // Given a database as schema 1 left it (no stats table nor later task columns,
  // user_version 1), when the store opens it, then migrations 2.. run and history and
  // flow-control fields can be written.
  store_->Close();
  store_.reset();
  {
    sqlite::Db db;
    ASSERT_TRUE(db.Open(path_, false).ok());
    ASSERT_TRUE(db.Exec("DROP TABLE stats; DROP TABLE records; "
                        "ALTER TABLE tasks DROP COLUMN limit_key; "
                        "ALTER TABLE tasks DROP COLUMN cost; "
                        "ALTER TABLE tasks DROP COLUMN schedule; "
                        "ALTER TABLE tasks DROP COLUMN scheduled_for; "
                        "DROP INDEX tasks_parent; ALTER TABLE tasks DROP COLUMN on_success; "
                        "ALTER TABLE tasks DROP COLUMN depth; DROP TABLE credentials; "
                        "PRAGMA user_version = 1;")
                    .ok());
  }
  ASSERT_EQ(UserVersion(), 1);
  Open();
  EXPECT_EQ(UserVersion(), sqlite::kSchemaVersion);
  WriteBatch b;
  b.mutations.push_back(Obs(7, "q", "x", StatsOutcome::kSucceeded));
  ASSERT_TRUE(Submit(std::move(b)).ok());
  auto rows = store_->ReadStats(7, 7, "", "");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->size(), 1u);
  Task t = MakeTask("t1", TaskState::kReady, "q");
  t.limit_key = "acct-7";
  t.cost = 2.5;
  ASSERT_TRUE(Insert(t).ok());
  auto back = store_->GetTask("t1");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->limit_key, "acct-7");
  EXPECT_EQ(back->cost, 2.5);
}

TEST_F(SqliteStoreTest, RecordsArePutReplacedDeletedAndListedByFilter) {
  // Given records of two kinds, when some are replaced and one deleted, then
  // ListRecords returns those of one kind, highest sort first, filtered by owner and
  // active, up to the limit.
  WriteBatch b;
  b.mutations.push_back(PutRecord{Record{"gap", "g1", "s1", 10, true, R"({"v":1})"}});
  b.mutations.push_back(PutRecord{Record{"gap", "g2", "s1", 30, true, R"({"v":2})"}});
  b.mutations.push_back(PutRecord{Record{"gap", "g3", "s2", 20, true, R"({"v":3})"}});
  b.mutations.push_back(PutRecord{Record{"schedule", "g1", "", 5, true, "{}"}});
  b.mutations.push_back(PutRecord{Record{"gap", "g2", "s1", 30, false, R"({"v":22})"}});
  b.mutations.push_back(DeleteRecord{"schedule", "g1"});
  ASSERT_TRUE(Submit(std::move(b)).ok());
  auto names = [&](RecordFilter f) {
    std::vector<std::string> out;
    auto r = store_->ListRecords(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      for (const Record& rec : *r) out.push_back(rec.name + "=" + rec.value);
    }
    return out;
  };
  EXPECT_EQ(names({"gap", "", false, 0}),
            (std::vector<std::string>{R"(g2={"v":22})", R"(g3={"v":3})", R"(g1={"v":1})"}));
  EXPECT_EQ(names({"gap", "s1", false, 0}),
            (std::vector<std::string>{R"(g2={"v":22})", R"(g1={"v":1})"}));
  EXPECT_EQ(names({"gap", "", true, 0}), (std::vector<std::string>{R"(g3={"v":3})", R"(g1={"v":1})"}));
  EXPECT_EQ(names({"gap", "", false, 1}), (std::vector<std::string>{R"(g2={"v":22})"}));
  EXPECT_TRUE(names({"schedule", "", false, 0}).empty());
}

TEST_F(SqliteStoreTest, OpenTasksAtCountsCreatedAndNotYetFinished) {
  // Given a task finished at T0+10s in queue a, one still open in a and one created at
  // T0+5s in b, then OpenTasksAt counts per queue what was open at each time.
  Task done = MakeTask("t1", TaskState::kSucceeded, "a");
  done.finished_at = kT0 + 10 * kMicrosPerSecond;
  Task open = MakeTask("t2", TaskState::kReady, "a");
  Task later = MakeTask("t3", TaskState::kReady, "b");
  later.created_at = kT0 + 5 * kMicrosPerSecond;
  ASSERT_TRUE(Insert(done).ok());
  ASSERT_TRUE(Insert(open).ok());
  ASSERT_TRUE(Insert(later).ok());

  auto points = store_->OpenTasksAt({kT0 - 1, kT0, kT0 + 10 * kMicrosPerSecond});
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  ASSERT_EQ(points->size(), 3u);
  EXPECT_EQ((*points)[0].at, kT0);
  EXPECT_EQ((*points)[0].queue, "a");
  EXPECT_EQ((*points)[0].open, 2);
  EXPECT_EQ((*points)[1].queue, "a");
  EXPECT_EQ((*points)[1].open, 1);
  EXPECT_EQ((*points)[2].queue, "b");
  EXPECT_EQ((*points)[2].open, 1);
}

}  // namespace
}  // namespace resonance

namespace resonance {
namespace {

TEST_F(SqliteStoreTest, PruneStatsDeletesRowsBeforeTheMinute) {
  WriteBatch b;
  for (int64_t m : {10, 19, 20, 30}) b.mutations.push_back(Obs(m, "q", "x", StatsOutcome::kSucceeded));
  ASSERT_TRUE(Submit(std::move(b)).ok());
  WriteBatch prune;
  prune.mutations.push_back(PruneStats{20});
  ASSERT_TRUE(Submit(std::move(prune)).ok());
  auto rows = store_->ReadStats(0, 100, "", "");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].minute, 20);
  EXPECT_EQ((*rows)[1].minute, 30);
}

}  // namespace
}  // namespace resonance

namespace resonance {
namespace {

TEST_F(SqliteStoreTest, VersionFourDatabaseGainsFollowupColumns) {
  // Given a database as schema 4 left it (no on_success or depth) holding a task, when
  // the store opens it, then migration 5 runs, the old task reads as having none and
  // depth 0, and a new task's on_success and depth round-trip, Recover included.
  store_->Close();
  store_.reset();
  {
    sqlite::Db db;
    ASSERT_TRUE(db.Open(path_, false).ok());
    ASSERT_TRUE(db.Exec("DROP INDEX tasks_parent; ALTER TABLE tasks DROP COLUMN on_success; "
                        "ALTER TABLE tasks DROP COLUMN depth; DROP TABLE credentials; "
                        "PRAGMA user_version = 4;"
                        "INSERT INTO tasks (id, queue, action, payload, priority, state, run_at, "
                        "attempt, max_attempts, timeout_s, created_at, updated_at) VALUES "
                        "('old', 'default', 'a', '{}', 0, 'ready', 1, 0, 5, 30, 1, 1);")
                    .ok());
  }
  Open();
  EXPECT_EQ(UserVersion(), sqlite::kSchemaVersion);
  auto old = store_->GetTask("old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->on_success, "");
  EXPECT_EQ(old->depth, 0);
  Task t = MakeTask("new");
  t.on_success = R"([{"action":"b","payload":{"x":"{{result.x}}"}}])";
  t.depth = 3;
  t.parent_id = "old";
  ASSERT_TRUE(Insert(t).ok());
  auto got = store_->GetTask("new");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->on_success, t.on_success);
  EXPECT_EQ(got->depth, 3);
  EXPECT_EQ(got->parent_id, "old");
  TaskFilter children;
  children.parent_id = "old";
  auto listed = store_->ListTasks(children);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, "new");
  children.parent_id = "new";
  EXPECT_TRUE(store_->ListTasks(children)->empty());
  std::vector<Task> seen;
  ASSERT_TRUE(store_->Recover([&](Task&& r) { seen.push_back(std::move(r)); }).ok());
  ASSERT_EQ(seen.size(), 2u);
  const Task& recovered = seen[0].id == "new" ? seen[0] : seen[1];
  EXPECT_EQ(recovered.on_success, t.on_success);
  EXPECT_EQ(recovered.depth, 3);
}

TEST_F(SqliteStoreTest, CredentialRowsAreWrittenReplacedAndListedByName) {
  // Given two credentials written and one replaced (a later version), then the list holds
  // each once, by name, with the last values; expires_at 0 reads back as 0 (NULL).
  WriteBatch b;
  b.mutations.push_back(PutCredential{{"zeta", "v1", 0, 1, 10, ""}});
  b.mutations.push_back(PutCredential{{"alpha", "a1", 5'000'000, 1, 11, "hash"}});
  ASSERT_TRUE(Submit(std::move(b)).ok());
  WriteBatch c;
  c.mutations.push_back(PutCredential{{"zeta", "v2", 7'000'000, 2, 12, ""}});
  ASSERT_TRUE(Submit(std::move(c)).ok());
  auto rows = store_->ListCredentials();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].name, "alpha");
  EXPECT_EQ((*rows)[0].config_hash, "hash");
  EXPECT_EQ((*rows)[0].expires_at, 5'000'000);
  EXPECT_EQ((*rows)[1].name, "zeta");
  EXPECT_EQ((*rows)[1].value, "v2");
  EXPECT_EQ((*rows)[1].version, 2);
  EXPECT_EQ((*rows)[1].expires_at, 7'000'000);
  EXPECT_EQ((*rows)[1].updated_at, 12);
}

TEST_F(SqliteStoreTest, VersionFiveDatabaseGainsTheCredentialsTable) {
  // Given a database as schema 5 left it, when the store opens it, then migration 6 adds
  // the credentials table.
  store_->Close();
  store_.reset();
  {
    sqlite::Db db;
    ASSERT_TRUE(db.Open(path_, false).ok());
    ASSERT_TRUE(db.Exec("DROP TABLE credentials; PRAGMA user_version = 5;").ok());
  }
  Open();
  EXPECT_EQ(UserVersion(), sqlite::kSchemaVersion);
  auto rows = store_->ListCredentials();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_TRUE(rows->empty());
}

}  // namespace
}  // namespace resonance
