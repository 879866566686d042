#include "engine/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ledger/verifier.h"
#include "observe/log.h"
#include "store/forwarding_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/test_store.h"

namespace resonance {

// Readable states in test failure messages.
static void PrintTo(TaskState s, std::ostream* os) { *os << TaskStateName(s); }

namespace {

using ::testing::ElementsAre;

// The state of a per-item result, nullopt (with the reason printed) when it failed.
std::optional<TaskState> St(const Result<TaskState>& r) {
  if (!r.ok()) {
    std::cerr << "  (item failed: " << r.status().ToString() << ")\n";
    return std::nullopt;
  }
  return *r;
}

constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;
constexpr Micros kSecond = kMicrosPerSecond;
constexpr auto kWait = std::chrono::seconds(10);

// Passes everything to a real store, except that after FailNextCommits() it answers
// Submit with kInternal without writing, as a store whose commit failed would.
class FaultyStore final : public ForwardingStore {
 public:
  explicit FaultyStore(Store& real) : ForwardingStore(real) {}
  void FailNextCommits() { fail_ = true; }

  void Submit(WriteBatch batch, Done done) override {
    if (fail_) {
      if (done) done(Status(Code::kInternal, "injected commit failure"));
      return;
    }
    real_.Submit(std::move(batch), std::move(done));
  }
  bool healthy() const override { return !fail_ && real_.healthy(); }

 private:
  std::atomic<bool> fail_{false};
};

// What an engine callback was called with.
template <typename T>
struct Answer {
  Status status;
  T value{};
};

// Runs `call` with a callback and returns a future of what the callback gets. The
// promise is shared so that a callback arriving after a failed wait is harmless.
template <typename T>
std::future<Answer<T>> Invoke(const std::function<void(Engine::Callback<T>)>& call) {
  auto p = std::make_shared<std::promise<Answer<T>>>();
  auto f = p->get_future();
  call([p](const Status& s, T v) { p->set_value({s, std::move(v)}); });
  return f;
}

template <typename T>
Answer<T> Wait(std::future<Answer<T>> f) {
  if (f.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "engine callback never ran";
    return {Status(Code::kInternal, "callback never ran"), {}};
  }
  return f.get();
}

Status WaitDone(const std::function<void(Engine::Done)>& call) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  call([p](const Status& s) { p->set_value(s); });
  if (f.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "engine callback never ran";
    return Status(Code::kInternal, "callback never ran");
  }
  return f.get();
}

NewTask Job(int32_t priority = 0, std::string queue = "default") {
  NewTask t;
  t.queue = std::move(queue);
  t.action = "send_mail";
  t.payload = R"({"to":"a@example.com"})";
  t.priority = priority;
  return t;
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }

  void SetUp() override {
    dir_ = MakeTestDir("engine-test");
    ASSERT_FALSE(dir_.empty());
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  void TearDown() override {
    if (engine_) {
      ExpectLedgerVerifies();
      Stop();
    }
    std::filesystem::remove_all(dir_);
  }

  // Opens store and engine over dir_ and recovers.
  void Open(EngineOptions options = {}) {
    auto opened = OpenTestStore(dir_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    sqlite_ = std::move(opened).value();
    store_ = std::make_unique<FaultyStore>(*sqlite_);
    engine_ = std::make_unique<Engine>(*store_, clock_, std::move(options));
    Status s = engine_->Recover();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Closes the store (running every pending callback while the engine still lives),
  // then drops the engine and the store.
  void Stop() {
    if (engine_) engine_->ReleaseWaiters();
    if (sqlite_) sqlite_->Close();
    engine_.reset();
    store_.reset();
    sqlite_.reset();
  }

  void Restart(EngineOptions options = {}) {
    Stop();
    Open(std::move(options));
  }

  Answer<std::vector<EnqueueOutcome>> Enqueue(std::vector<NewTask> tasks) {
    return Wait(Invoke<std::vector<EnqueueOutcome>>(
        [&](auto cb) { engine_->Enqueue(std::move(tasks), std::move(cb)); }));
  }
  // Enqueues one task and returns its id ("" on failure, with a test failure).
  std::string Add(NewTask t) {
    std::vector<NewTask> v;
    v.push_back(std::move(t));
    auto a = Enqueue(std::move(v));
    EXPECT_TRUE(a.status.ok()) << a.status.ToString();
    if (!a.status.ok() || a.value.size() != 1) return "";
    return a.value[0].id;
  }

  std::future<Answer<std::vector<LeasedTask>>> StartLease(LeaseRequest req) {
    return Invoke<std::vector<LeasedTask>>(
        [&](auto cb) { engine_->Lease(std::move(req), std::move(cb)); });
  }
  std::vector<LeasedTask> Lease(int max = 1, std::vector<std::string> queues = {"default"},
                                std::string worker = "w1") {
    LeaseRequest req;
    req.worker = std::move(worker);
    req.queues = std::move(queues);
    req.max = max;
    auto a = Wait(StartLease(std::move(req)));
    EXPECT_TRUE(a.status.ok()) << a.status.ToString();
    return a.value;
  }
  // Leases exactly one task, with a test failure when there is none.
  LeasedTask LeaseOne() {
    auto got = Lease();
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? LeasedTask{} : got[0];
  }

  Answer<HeartbeatReply> Heartbeat(const std::string& id, const std::string& lease,
                                   std::string progress = "") {
    return Wait(Invoke<HeartbeatReply>([&](auto cb) {
      engine_->Heartbeat(id, lease, std::move(progress), std::move(cb));
    }));
  }

  Answer<std::vector<Result<TaskState>>> Finish(std::vector<FinishRequest> items) {
    return Wait(Invoke<std::vector<Result<TaskState>>>(
        [&](auto cb) { engine_->Finish(std::move(items), std::move(cb)); }));
  }
  // Finishes one item and returns its per-item result (the commit must be ok).
  Result<TaskState> FinishOne(FinishRequest req) {
    std::vector<FinishRequest> v;
    v.push_back(std::move(req));
    auto a = Finish(std::move(v));
    EXPECT_TRUE(a.status.ok()) << a.status.ToString();
    if (a.value.size() != 1) return Status(Code::kInternal, "no item result");
    return a.value[0];
  }
  Result<TaskState> Complete(const LeasedTask& l, std::string result = "") {
    FinishRequest r;
    r.id = l.id;
    r.lease = l.lease;
    r.result = std::move(result);
    return FinishOne(std::move(r));
  }
  Result<TaskState> Fail(const LeasedTask& l, ErrorClass cls,
                         std::optional<double> retry_after_s = std::nullopt) {
    FinishRequest r;
    r.id = l.id;
    r.lease = l.lease;
    r.success = false;
    r.error_class = cls;
    r.error_message = std::string("failed with ") + ErrorClassName(cls);
    r.retry_after_s = retry_after_s;
    return FinishOne(std::move(r));
  }

  Status Cancel(const std::string& id) {
    return WaitDone([&](Engine::Done d) { engine_->Cancel(id, std::move(d)); });
  }
  Status Requeue(const std::string& id) {
    return WaitDone([&](Engine::Done d) { engine_->Requeue(id, std::move(d)); });
  }
  Status DeleteDead(const std::string& id) {
    return WaitDone([&](Engine::Done d) { engine_->DeleteDead(id, std::move(d)); });
  }
  Status SetPaused(const std::string& queue, bool paused) {
    return WaitDone([&](Engine::Done d) { engine_->SetPaused(queue, paused, std::move(d)); });
  }
  // Waits until everything submitted so far is durable.
  void Barrier() {
    Status s = WaitDone([&](Engine::Done d) { engine_->Barrier(std::move(d)); });
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  // Ticks, then waits for its writes.
  void Tick() {
    engine_->Tick();
    Barrier();
  }

  Task Stored(const std::string& id) {
    auto t = sqlite_->GetTask(id);
    EXPECT_TRUE(t.ok()) << id << ": " << t.status().ToString();
    return t.ok() ? *t : Task{};
  }

  // A task that has failed its way into the dead-letter queue.
  std::string MakeDead() {
    NewTask t = Job();
    t.queue = "dlq-source";
    const std::string id = Add(t);
    auto got = Lease(1, {"dlq-source"});
    EXPECT_EQ(got.size(), 1u);
    if (got.empty()) return id;
    EXPECT_EQ(St(Fail(got[0], ErrorClass::kValidation)), TaskState::kDead);
    return id;
  }

  std::vector<LedgerRecord> Ledger() {
    auto l = sqlite_->ReadLedger(0, 1'000'000);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? *l : std::vector<LedgerRecord>{};
  }
  std::vector<std::string> LedgerKinds(const std::string& task_id) {
    std::vector<std::string> out;
    for (const auto& r : Ledger()) {
      if (r.task_id == task_id) out.push_back(r.kind);
    }
    return out;
  }
  void ExpectLedgerVerifies() {
    // Straight to the real store, so this also works after injected failures.
    std::promise<void> durable;
    sqlite_->Submit({}, [&](const Status&) { durable.set_value(); });
    durable.get_future().wait();
    LedgerVerifier v;
    const auto records = Ledger();
    for (const auto& r : records) v.Add(r);
    EXPECT_TRUE(v.Finish().ok()) << v.Finish().ToString();
    EXPECT_EQ(v.summary().records, static_cast<int64_t>(records.size()));
  }

  // Runs fn on a thread of its own; false if it has not returned within 2 s (a
  // deadlock). The engine and stores are then abandoned, not destroyed: the stuck
  // thread still holds them.
  bool ReturnsInTime(std::function<void()> fn) {
    auto finished = std::make_shared<std::promise<void>>();
    auto f = finished->get_future();
    std::thread([fn = std::move(fn), finished] {
      fn();
      finished->set_value();
    }).detach();
    if (f.wait_for(std::chrono::seconds(2)) == std::future_status::ready) return true;
    (void)engine_.release();
    (void)store_.release();
    (void)sqlite_.release();
    return false;
  }

  FakeClock clock_{kT0};
  std::string dir_;
  std::unique_ptr<SqliteStore> sqlite_;
  std::unique_ptr<FaultyStore> store_;
  std::unique_ptr<Engine> engine_;
};

std::vector<std::string> IdsOf(const std::vector<LeasedTask>& leased) {
  std::vector<std::string> out;
  for (const auto& l : leased) out.push_back(l.id);
  return out;
}

// ---- Validation ---------------------------------------------------------------------

TEST(ValidateNewTaskTest, AcceptsDefaultsAndRefusesBadFields) {
  // Given a plain task, then ok; given each bad field, then kInvalidArgument naming it.
  EXPECT_TRUE(ValidateNewTask(Job()).ok());
  auto expect_bad = [](NewTask t, const std::string& field) {
    Status s = ValidateNewTask(t);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << field;
    EXPECT_THAT(s.message(), ::testing::HasSubstr(field));
  };
  NewTask t = Job();
  t.action = "";
  expect_bad(t, "action");
  t = Job();
  t.queue = "";
  expect_bad(t, "queue");
  t = Job();
  t.delay_s = 1;
  t.run_at = kT0;
  expect_bad(t, "delay_s");
  t = Job();
  t.delay_s = -1;
  expect_bad(t, "delay_s");
  t = Job();
  t.max_attempts = 0;
  expect_bad(t, "max_attempts");
  t = Job();
  t.timeout_s = 0;
  expect_bad(t, "timeout_s");
  t = Job();
  t.idempotency_key = std::string(501, 'k');
  expect_bad(t, "idempotency_key");
  t = Job();
  t.requires_approval = true;
  EXPECT_EQ(ValidateNewTask(t).code(), Code::kUnprocessable);
}

// ---- Enqueue and ordering -----------------------------------------------------------

TEST_F(EngineTest, EnqueueStoresTaskAsReady) {
  // Given an enqueued task, then it is stored ready with its fields and one event.
  NewTask job = Job(3);
  job.trace_id = "tr";
  const std::string id = Add(job);
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kReady);
  EXPECT_EQ(t.priority, 3);
  EXPECT_EQ(t.payload, job.payload);
  EXPECT_EQ(t.trace_id, "tr");
  EXPECT_EQ(t.attempt, 0);
  EXPECT_EQ(t.run_at, kT0);
  EXPECT_EQ(t.created_at, kT0);
  EXPECT_EQ(engine_->live_count(), 1u);
  EXPECT_THAT(LedgerKinds(id), ElementsAre("task.enqueued"));
}

TEST_F(EngineTest, ReadyOrderIsPriorityThenRunAtThenId) {
  // Given tasks differing in priority, run_at and id, then leases come highest
  // priority first, then earliest run_at, then lowest id.
  const std::string a = Add(Job(0));
  const std::string b = Add(Job(5));
  NewTask early = Job(0);
  early.run_at = kT0 - 10 * kSecond;
  const std::string c = Add(early);
  const std::string d = Add(Job(0));
  EXPECT_THAT(IdsOf(Lease(10)), ElementsAre(b, c, a, d));
}

TEST_F(EngineTest, ReadyOrderSpansListedQueuesOnly) {
  // Given tasks in q1, q2 and q3, when leasing from q1 and q2, then the best of both
  // come first and q3 is left alone.
  const std::string x = Add(Job(1, "q1"));
  const std::string y = Add(Job(3, "q2"));
  NewTask z_job = Job(3, "q1");
  z_job.run_at = kT0 - 5 * kSecond;
  const std::string z = Add(z_job);
  const std::string other = Add(Job(9, "q3"));
  EXPECT_THAT(IdsOf(Lease(10, {"q1", "q2"})), ElementsAre(z, y, x));
  EXPECT_THAT(IdsOf(Lease(10, {"q3"})), ElementsAre(other));
}

TEST_F(EngineTest, LeaseRespectsMax) {
  // Given three ready tasks, when leasing max 2, then two come and one stays ready.
  Add(Job());
  Add(Job());
  Add(Job());
  EXPECT_EQ(Lease(2).size(), 2u);
  EXPECT_EQ(engine_->QueueByName("default")->ready, 1);
}

TEST_F(EngineTest, DelayedTaskIsLeasedOnlyAfterTickPastRunAt) {
  // Given a task delayed 10 s, then it is scheduled and not leased before a Tick at or
  // after its run_at.
  NewTask job = Job();
  job.delay_s = 10;
  const std::string id = Add(job);
  EXPECT_EQ(Stored(id).state, TaskState::kScheduled);
  EXPECT_EQ(Stored(id).run_at, kT0 + 10 * kSecond);
  EXPECT_TRUE(Lease().empty());

  clock_.Advance(10 * kSecond - 1);
  Tick();
  EXPECT_TRUE(Lease().empty());

  clock_.Advance(1);
  EXPECT_TRUE(Lease().empty());  // due, but not promoted until a Tick
  Tick();
  EXPECT_EQ(Stored(id).state, TaskState::kReady);
  EXPECT_THAT(IdsOf(Lease()), ElementsAre(id));
}

TEST_F(EngineTest, RunAtInThePastIsReadyAtOnce) {
  // Given an explicit run_at in the past, then the task is ready without a Tick.
  NewTask job = Job();
  job.run_at = kT0 - kSecond;
  const std::string id = Add(job);
  EXPECT_EQ(Stored(id).state, TaskState::kReady);
  EXPECT_THAT(IdsOf(Lease()), ElementsAre(id));
}

// ---- Leases -------------------------------------------------------------------------

TEST_F(EngineTest, LeaseSetsAttemptStateAndExpiry) {
  // Given a task with timeout_s 45, when leased, then it is running, attempt 1, and its
  // lease expires 45 s from now, in the answer and in the store.
  NewTask job = Job();
  job.timeout_s = 45;
  const std::string id = Add(job);
  LeasedTask l = LeaseOne();
  EXPECT_EQ(l.id, id);
  EXPECT_EQ(l.lease.size(), 16u);
  EXPECT_EQ(l.lease_expires_at, kT0 + 45 * kSecond);
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kRunning);
  EXPECT_EQ(t.attempt, 1);
  EXPECT_EQ(t.lease, l.lease);
  EXPECT_EQ(t.lease_expires_at, kT0 + 45 * kSecond);
  EXPECT_EQ(t.worker, "w1");
  EXPECT_EQ(t.started_at, kT0);
  EXPECT_THAT(LedgerKinds(id), ElementsAre("task.enqueued", "task.leased"));
}

TEST_F(EngineTest, HeartbeatExtendsLeaseAndStoresProgress) {
  // Given a leased task, when a heartbeat comes 20 s later, then the lease runs
  // timeout_s from then, and the progress is stored.
  const std::string id = Add(Job());
  LeasedTask l = LeaseOne();
  clock_.Advance(20 * kSecond);
  auto hb = Heartbeat(id, l.lease, R"({"pct":40})");
  ASSERT_TRUE(hb.status.ok()) << hb.status.ToString();
  EXPECT_EQ(hb.value.lease_expires_at, kT0 + 50 * kSecond);
  EXPECT_FALSE(hb.value.cancel);
  Task t = Stored(id);
  EXPECT_EQ(t.lease_expires_at, kT0 + 50 * kSecond);
  EXPECT_EQ(t.progress, R"({"pct":40})");
  EXPECT_EQ(t.lease, l.lease);

  // The extended lease is not expired at the old deadline.
  clock_.Advance(15 * kSecond);
  Tick();
  EXPECT_EQ(Stored(id).state, TaskState::kRunning);
}

TEST_F(EngineTest, StaleLeaseIsRefusedAndChangesNothing) {
  // Given a leased task, when heartbeat, complete and fail carry another token, then
  // each gets kConflict and the stored task is unchanged.
  const std::string id = Add(Job());
  LeasedTask l = LeaseOne();
  const Task before = Stored(id);
  const std::string stale = l.lease == "0000000000000001" ? "0000000000000002" : "0000000000000001";
  clock_.Advance(5 * kSecond);

  EXPECT_EQ(Heartbeat(id, stale).status.code(), Code::kConflict);
  EXPECT_EQ(Heartbeat(id, "not-a-token").status.code(), Code::kConflict);
  LeasedTask wrong = l;
  wrong.lease = stale;
  EXPECT_EQ(Complete(wrong).status().code(), Code::kConflict);
  EXPECT_EQ(Fail(wrong, ErrorClass::kValidation).status().code(), Code::kConflict);
  Barrier();

  const Task after = Stored(id);
  EXPECT_EQ(after.state, TaskState::kRunning);
  EXPECT_EQ(after.lease_expires_at, before.lease_expires_at);
  EXPECT_EQ(after.updated_at, before.updated_at);
  EXPECT_EQ(after.lease, l.lease);
  EXPECT_EQ(engine_->live_count(), 1u);
  // The real token still works.
  EXPECT_EQ(St(Complete(l)), TaskState::kSucceeded);
}

TEST_F(EngineTest, UnknownTaskIsNotFound) {
  // Given ids that name no task (well-formed or not), then kNotFound.
  EXPECT_EQ(Heartbeat("0000000000001", "0000000000000001").status.code(), Code::kNotFound);
  EXPECT_EQ(Heartbeat("bogus", "0000000000000001").status.code(), Code::kNotFound);
  LeasedTask ghost{"0000000000001", "0000000000000001", 0};
  EXPECT_EQ(Complete(ghost).status().code(), Code::kNotFound);
  EXPECT_EQ(Cancel("0000000000001").code(), Code::kNotFound);
  EXPECT_EQ(Requeue("0000000000001").code(), Code::kNotFound);
  EXPECT_EQ(DeleteDead("bogus").code(), Code::kNotFound);
}

// ---- Finish -------------------------------------------------------------------------

TEST_F(EngineTest, CompleteSucceedsAndTaskLeavesMemory) {
  // Given a leased task, when completed with a result, then it is stored succeeded with
  // the result and finished_at, no lease, and the engine no longer holds it.
  const std::string id = Add(Job());
  LeasedTask l = LeaseOne();
  EXPECT_EQ(engine_->live_count(), 1u);
  clock_.Advance(2 * kSecond);
  EXPECT_EQ(St(Complete(l, R"({"sent":true})")), TaskState::kSucceeded);
  EXPECT_EQ(engine_->live_count(), 0u);
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kSucceeded);
  EXPECT_EQ(t.result, R"({"sent":true})");
  EXPECT_EQ(t.finished_at, kT0 + 2 * kSecond);
  EXPECT_EQ(t.lease, "");
  EXPECT_FALSE(t.has_error);
  // A second completion is refused.
  EXPECT_EQ(Complete(l).status().code(), Code::kConflict);
  EXPECT_THAT(LedgerKinds(id), ElementsAre("task.enqueued", "task.leased", "task.succeeded"));
}

TEST_F(EngineTest, FinishAnswersEachItemOnItsOwn) {
  // Given one leased task, when a batch finishes it and an unknown id, then the first
  // succeeds, the second is kNotFound, and the commit is ok.
  Add(Job());
  LeasedTask l = LeaseOne();
  FinishRequest good;
  good.id = l.id;
  good.lease = l.lease;
  FinishRequest ghost = good;
  ghost.id = "0000000000001";
  std::vector<FinishRequest> items = {good, ghost};
  auto a = Finish(items);
  ASSERT_TRUE(a.status.ok());
  ASSERT_EQ(a.value.size(), 2u);
  EXPECT_EQ(St(a.value[0]), TaskState::kSucceeded);
  EXPECT_EQ(a.value[1].status().code(), Code::kNotFound);
}

TEST_F(EngineTest, TemporaryFailureBacksOffThenGoesDead) {
  // Given max_attempts 3, when each attempt fails temporary, then the task waits 1 s,
  // then 5 s (promoted by Tick, attempt counting up), and the third failure is dead.
  NewTask job = Job();
  job.max_attempts = 3;
  const std::string id = Add(job);

  LeasedTask l = LeaseOne();
  EXPECT_EQ(St(Fail(l, ErrorClass::kTemporary)), TaskState::kScheduled);
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kScheduled);
  EXPECT_EQ(t.run_at, kT0 + 1 * kSecond);
  EXPECT_EQ(t.attempt, 1);
  EXPECT_TRUE(t.has_error);
  EXPECT_EQ(t.error_class, ErrorClass::kTemporary);
  EXPECT_EQ(t.error_message, "failed with temporary");
  EXPECT_EQ(t.lease, "");
  EXPECT_TRUE(Lease().empty());

  clock_.Advance(1 * kSecond);
  Tick();
  EXPECT_EQ(Stored(id).state, TaskState::kReady);
  l = LeaseOne();
  EXPECT_EQ(Stored(id).attempt, 2);
  EXPECT_EQ(St(Fail(l, ErrorClass::kTemporary)), TaskState::kScheduled);
  EXPECT_EQ(Stored(id).run_at, kT0 + 6 * kSecond);

  clock_.Advance(4 * kSecond);
  Tick();
  EXPECT_TRUE(Lease().empty());  // 1 s short of the 5 s wait
  clock_.Advance(1 * kSecond);
  Tick();
  l = LeaseOne();
  EXPECT_EQ(Stored(id).attempt, 3);
  EXPECT_EQ(St(Fail(l, ErrorClass::kTemporary)), TaskState::kDead);

  t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kDead);
  EXPECT_EQ(t.attempt, 3);
  EXPECT_EQ(t.finished_at, kT0 + 6 * kSecond);
  EXPECT_EQ(t.error_class, ErrorClass::kTemporary);
  EXPECT_EQ(engine_->live_count(), 0u);
  EXPECT_THAT(LedgerKinds(id),
              ElementsAre("task.enqueued", "task.leased", "task.failed", "task.ready",
                          "task.leased", "task.failed", "task.ready", "task.leased",
                          "task.dead"));
}

TEST_F(EngineTest, ValidationFailureIsDeadAtOnce) {
  // Given a leased task, when it fails with class validation, then it is dead at once.
  const std::string id = Add(Job());
  LeasedTask l = LeaseOne();
  EXPECT_EQ(St(Fail(l, ErrorClass::kValidation)), TaskState::kDead);
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kDead);
  EXPECT_EQ(t.error_class, ErrorClass::kValidation);
  EXPECT_EQ(t.finished_at, kT0);
  EXPECT_EQ(engine_->live_count(), 0u);
}

TEST_F(EngineTest, RateLimitedFailureDoesNotUseUpAttempts) {
  // Given max_attempts 2, when attempt 1 is rate limited (retry_after 2 s) and then
  // attempts 2 and 3 fail temporary, then the task retries after 2 s, then after 1 s,
  // and is dead only at attempt 3.
  NewTask job = Job();
  job.max_attempts = 2;
  const std::string id = Add(job);
  LeasedTask l = LeaseOne();
  EXPECT_EQ(St(Fail(l, ErrorClass::kRateLimited, 2.0)), TaskState::kScheduled);
  Task t = Stored(id);
  EXPECT_EQ(t.run_at, kT0 + 2 * kSecond);
  EXPECT_EQ(t.throttled, 1);
  EXPECT_EQ(t.error_class, ErrorClass::kRateLimited);

  clock_.Advance(2 * kSecond);
  Tick();
  l = LeaseOne();
  EXPECT_EQ(St(Fail(l, ErrorClass::kTemporary)), TaskState::kScheduled);
  EXPECT_EQ(Stored(id).run_at, kT0 + 3 * kSecond);

  clock_.Advance(1 * kSecond);
  Tick();
  l = LeaseOne();
  EXPECT_EQ(Stored(id).attempt, 3);
  EXPECT_EQ(St(Fail(l, ErrorClass::kTemporary)), TaskState::kDead);
}

TEST_F(EngineTest, RetryAfterZeroMakesTaskReadyAtOnce) {
  // Given a rate_limited failure with retry_after_s 0, then the task is ready again
  // without a Tick.
  const std::string id = Add(Job());
  LeasedTask l = LeaseOne();
  EXPECT_EQ(St(Fail(l, ErrorClass::kRateLimited, 0.0)), TaskState::kReady);
  EXPECT_EQ(Stored(id).state, TaskState::kReady);
  EXPECT_THAT(IdsOf(Lease()), ElementsAre(id));
}

TEST_F(EngineTest, PerActionPolicyOverridesDefault) {
  // Given a policy for "fragile" with no temporary retries, then its first temporary
  // failure is dead while another action's is retried.
  EngineOptions options;
  RetryPolicy none = RetryPolicy::Defaults();
  none.For(ErrorClass::kTemporary).max_retries = 0;
  options.retry.SetForAction("fragile", none);
  Restart(options);

  NewTask fragile = Job(1);
  fragile.action = "fragile";
  const std::string f = Add(fragile);
  const std::string s = Add(Job(0));
  auto leased = Lease(2);
  ASSERT_THAT(IdsOf(leased), ElementsAre(f, s));
  EXPECT_EQ(St(Fail(leased[0], ErrorClass::kTemporary)), TaskState::kDead);
  EXPECT_EQ(St(Fail(leased[1], ErrorClass::kTemporary)), TaskState::kScheduled);
}

TEST_F(EngineTest, ExpiredLeaseIsFailedAsTimeoutByTick) {
  // Given a task leased with timeout_s 5, when Tick runs at its expiry, then it is
  // failed with class timeout and scheduled 1 s later; its old token gets kConflict;
  // and it can be leased again as attempt 2.
  NewTask job = Job();
  job.timeout_s = 5;
  const std::string id = Add(job);
  LeasedTask l = LeaseOne();

  clock_.Advance(5 * kSecond - 1);
  Tick();
  EXPECT_EQ(Stored(id).state, TaskState::kRunning);

  clock_.Advance(1);
  Tick();
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kScheduled);
  EXPECT_TRUE(t.has_error);
  EXPECT_EQ(t.error_class, ErrorClass::kTimeout);
  EXPECT_EQ(t.error_message, "lease expired");
  EXPECT_EQ(t.run_at, kT0 + 6 * kSecond);
  EXPECT_EQ(t.lease, "");
  EXPECT_EQ(t.attempt, 1);

  EXPECT_EQ(Heartbeat(id, l.lease).status.code(), Code::kConflict);
  EXPECT_EQ(Complete(l).status().code(), Code::kConflict);

  clock_.Advance(1 * kSecond);
  Tick();
  LeasedTask again = LeaseOne();
  EXPECT_EQ(again.id, id);
  EXPECT_NE(again.lease, l.lease);
  EXPECT_EQ(Stored(id).attempt, 2);
  EXPECT_EQ(Complete(l).status().code(), Code::kConflict);
  EXPECT_EQ(St(Complete(again)), TaskState::kSucceeded);
}

TEST_F(EngineTest, ExpiredLeaseOfKeyedTaskOnItsLastAttemptGoesDead) {
  // Given a task with an idempotency key and max_attempts 1, when its lease expires,
  // then Tick makes it dead (the key then answers from the store), without crashing
  // the writer thread on the key-release callback.
  NewTask job = Job();
  job.idempotency_key = "once";
  job.max_attempts = 1;
  job.timeout_s = 5;
  const std::string id = Add(job);
  LeaseOne();
  clock_.Advance(5 * kSecond);
  Tick();
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kDead);
  EXPECT_EQ(t.error_class, ErrorClass::kTimeout);
  EXPECT_EQ(engine_->live_count(), 0u);
  auto again = Enqueue({job});
  ASSERT_TRUE(again.status.ok());
  ASSERT_EQ(again.value.size(), 1u);
  EXPECT_FALSE(again.value[0].created);
  EXPECT_EQ(again.value[0].id, id);
}

// ---- Cancel -------------------------------------------------------------------------

TEST_F(EngineTest, CancelReadyTaskIsImmediate) {
  // Given a ready and a scheduled task, when cancelled, then both are cancelled at
  // once, leave memory, are not leased, and a second cancel is kConflict.
  const std::string ready = Add(Job());
  NewTask later = Job();
  later.delay_s = 5;
  const std::string scheduled = Add(later);
  EXPECT_TRUE(Cancel(ready).ok());
  EXPECT_TRUE(Cancel(scheduled).ok());
  for (const auto& id : {ready, scheduled}) {
    Task t = Stored(id);
    EXPECT_EQ(t.state, TaskState::kCancelled) << id;
    EXPECT_EQ(t.error_class, ErrorClass::kCancelled) << id;
    EXPECT_EQ(t.finished_at, kT0) << id;
  }
  EXPECT_EQ(engine_->live_count(), 0u);
  clock_.Advance(10 * kSecond);
  Tick();
  EXPECT_TRUE(Lease().empty());
  EXPECT_EQ(Cancel(ready).code(), Code::kConflict);
}

TEST_F(EngineTest, CancelRunningTaskAsksTheWorker) {
  // Given a running task, when cancelled, then it keeps running with cancel_requested,
  // the next heartbeat says cancel, and completing it ends it cancelled.
  const std::string id = Add(Job());
  LeasedTask l = LeaseOne();
  EXPECT_TRUE(Cancel(id).ok());
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kRunning);
  EXPECT_TRUE(t.cancel_requested);
  EXPECT_TRUE(Cancel(id).ok());  // asking twice is fine

  auto hb = Heartbeat(id, l.lease);
  ASSERT_TRUE(hb.status.ok());
  EXPECT_TRUE(hb.value.cancel);

  EXPECT_EQ(St(Complete(l)), TaskState::kCancelled);
  t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kCancelled);
  EXPECT_EQ(t.error_class, ErrorClass::kCancelled);
  EXPECT_EQ(engine_->live_count(), 0u);
}

TEST_F(EngineTest, FailingACancelRequestedTaskEndsCancelled) {
  // Given a running task with a cancel request, when its attempt fails temporary, then
  // it is cancelled, not retried.
  const std::string id = Add(Job());
  LeasedTask l = LeaseOne();
  EXPECT_TRUE(Cancel(id).ok());
  EXPECT_EQ(St(Fail(l, ErrorClass::kTemporary)), TaskState::kCancelled);
  EXPECT_EQ(Stored(id).state, TaskState::kCancelled);
  EXPECT_EQ(engine_->live_count(), 0u);
}

// ---- Dead letters -------------------------------------------------------------------

TEST_F(EngineTest, RequeueDeadMakesItReadyWithAttemptZero) {
  // Given a dead task, when requeued, then it is ready with attempt 0 and no error or
  // finish time, and leasing it starts attempt 1.
  const std::string id = MakeDead();
  clock_.Advance(3 * kSecond);
  EXPECT_TRUE(Requeue(id).ok());
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kReady);
  EXPECT_EQ(t.attempt, 0);
  EXPECT_EQ(t.run_at, kT0 + 3 * kSecond);
  EXPECT_FALSE(t.has_error);
  EXPECT_EQ(t.finished_at, 0);
  EXPECT_EQ(engine_->live_count(), 1u);
  auto leased = Lease(1, {"dlq-source"});
  ASSERT_THAT(IdsOf(leased), ElementsAre(id));
  EXPECT_EQ(Stored(id).attempt, 1);
}

TEST_F(EngineTest, DeleteDeadRemovesIt) {
  // Given a dead task, when deleted, then the store no longer has it and deleting or
  // requeueing it again is kNotFound.
  const std::string id = MakeDead();
  EXPECT_TRUE(DeleteDead(id).ok());
  EXPECT_EQ(sqlite_->GetTask(id).status().code(), Code::kNotFound);
  EXPECT_EQ(DeleteDead(id).code(), Code::kNotFound);
  EXPECT_EQ(Requeue(id).code(), Code::kNotFound);
  EXPECT_EQ(LedgerKinds(id).back(), "task.deleted");
}

TEST_F(EngineTest, RequeueOrDeleteOfTaskThatIsNotDeadConflicts) {
  // Given a ready, a running and a succeeded task, then requeue and delete of each is
  // kConflict and nothing changes.
  const std::string done = Add(Job());
  Complete(LeaseOne());
  const std::string running = Add(Job());
  LeaseOne();
  const std::string ready = Add(Job());
  for (const auto& id : {ready, running, done}) {
    EXPECT_EQ(Requeue(id).code(), Code::kConflict) << id;
    EXPECT_EQ(DeleteDead(id).code(), Code::kConflict) << id;
  }
  EXPECT_EQ(Stored(ready).state, TaskState::kReady);
  EXPECT_EQ(Stored(running).state, TaskState::kRunning);
  EXPECT_EQ(Stored(done).state, TaskState::kSucceeded);
}

// ---- Idempotency --------------------------------------------------------------------

TEST_F(EngineTest, SameIdempotencyKeyGivesSameTask) {
  // Given a task enqueued with key k, when k is enqueued again (alone and twice in one
  // call), then created is false with the first id and no task is added.
  NewTask job = Job();
  job.idempotency_key = "k";
  auto first = Enqueue({job});
  ASSERT_TRUE(first.status.ok());
  ASSERT_EQ(first.value.size(), 1u);
  EXPECT_TRUE(first.value[0].created);
  const std::string id = first.value[0].id;

  auto again = Enqueue({job, job});
  ASSERT_TRUE(again.status.ok());
  ASSERT_EQ(again.value.size(), 2u);
  for (const auto& o : again.value) {
    EXPECT_FALSE(o.created);
    EXPECT_EQ(o.id, id);
  }
  EXPECT_EQ(engine_->live_count(), 1u);

  NewTask other = Job();
  other.idempotency_key = "k2";
  auto mixed = Enqueue({other, other});
  ASSERT_TRUE(mixed.status.ok());
  ASSERT_EQ(mixed.value.size(), 2u);
  EXPECT_TRUE(mixed.value[0].created);
  EXPECT_FALSE(mixed.value[1].created);
  EXPECT_EQ(mixed.value[1].id, mixed.value[0].id);
}

TEST_F(EngineTest, IdempotencyKeyOutlivesTheTask) {
  // Given a task with key k that has finished (the engine forgot it), when k is
  // enqueued again, then the store's record answers: created false, same id.
  NewTask job = Job();
  job.idempotency_key = "k";
  const std::string id = Add(job);
  EXPECT_EQ(St(Complete(LeaseOne())), TaskState::kSucceeded);
  EXPECT_EQ(engine_->live_count(), 0u);
  auto again = Enqueue({job});
  ASSERT_TRUE(again.status.ok());
  ASSERT_EQ(again.value.size(), 1u);
  EXPECT_FALSE(again.value[0].created);
  EXPECT_EQ(again.value[0].id, id);
  EXPECT_EQ(engine_->live_count(), 0u);
}

TEST_F(EngineTest, IdempotencyKeySurvivesRestart) {
  // Given a live task with key k and a finished one with key f, when the server
  // restarts, then both keys still give the first ids.
  NewTask live = Job();
  live.idempotency_key = "k";
  const std::string live_id = Add(live);
  NewTask finished = Job(5);
  finished.idempotency_key = "f";
  const std::string finished_id = Add(finished);
  LeasedTask l = LeaseOne();  // priority 5: the finished one
  ASSERT_EQ(l.id, finished_id);
  EXPECT_EQ(St(Complete(l)), TaskState::kSucceeded);
  ASSERT_NO_FATAL_FAILURE(Restart());

  auto again = Enqueue({live, finished});
  ASSERT_TRUE(again.status.ok());
  ASSERT_EQ(again.value.size(), 2u);
  EXPECT_FALSE(again.value[0].created);
  EXPECT_EQ(again.value[0].id, live_id);
  EXPECT_FALSE(again.value[1].created);
  EXPECT_EQ(again.value[1].id, finished_id);
}

// ---- Pause --------------------------------------------------------------------------

TEST_F(EngineTest, PausedQueueIsNotLeasedUntilResumed) {
  // Given a paused queue with a ready task, then nothing is leased from it (other
  // queues still are); after resume it is.
  ASSERT_TRUE(SetPaused("default", true).ok());
  const std::string id = Add(Job());
  const std::string other = Add(Job(0, "other"));
  EXPECT_TRUE(Lease().empty());
  EXPECT_THAT(IdsOf(Lease(5, {"default", "other"})), ElementsAre(other));
  EXPECT_TRUE(engine_->QueueByName("default")->paused);

  ASSERT_TRUE(SetPaused("default", false).ok());
  EXPECT_THAT(IdsOf(Lease()), ElementsAre(id));
}

TEST_F(EngineTest, PauseSurvivesRestart) {
  // Given a paused queue, when the server restarts, then it is still paused.
  ASSERT_TRUE(SetPaused("default", true).ok());
  Add(Job());
  ASSERT_NO_FATAL_FAILURE(Restart());
  EXPECT_TRUE(Lease().empty());
  ASSERT_TRUE(SetPaused("default", false).ok());
  EXPECT_EQ(Lease().size(), 1u);
}

// ---- Long poll ----------------------------------------------------------------------

TEST_F(EngineTest, LongPollGetsTaskEnqueuedLater) {
  // Given a lease waiting up to 5 s on an empty queue, when a task is enqueued, then
  // the waiting lease gets it.
  LeaseRequest req;
  req.worker = "w1";
  req.wait_ms = 5000;
  auto pending = StartLease(req);
  Barrier();
  EXPECT_EQ(pending.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

  clock_.Advance(kSecond);
  const std::string id = Add(Job());
  auto a = Wait(std::move(pending));
  ASSERT_TRUE(a.status.ok());
  EXPECT_THAT(IdsOf(a.value), ElementsAre(id));
  EXPECT_EQ(Stored(id).state, TaskState::kRunning);
}

TEST_F(EngineTest, LongPollGetsTaskOnResume) {
  // Given a lease waiting on a paused queue with a ready task, when the queue resumes,
  // then the waiting lease gets the task.
  ASSERT_TRUE(SetPaused("default", true).ok());
  const std::string id = Add(Job());
  LeaseRequest req;
  req.worker = "w1";
  req.wait_ms = 5000;
  auto pending = StartLease(req);
  Barrier();
  EXPECT_EQ(pending.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  ASSERT_TRUE(SetPaused("default", false).ok());
  auto a = Wait(std::move(pending));
  EXPECT_THAT(IdsOf(a.value), ElementsAre(id));
}

TEST_F(EngineTest, LongPollAnswersEmptyAfterDeadline) {
  // Given a lease waiting up to 1 s, when Tick runs before the deadline it keeps
  // waiting, and when Tick runs at the deadline it answers with no tasks.
  LeaseRequest req;
  req.wait_ms = 1000;
  auto pending = StartLease(req);
  clock_.Advance(999 * kMicrosPerMilli);
  Tick();
  EXPECT_EQ(pending.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  clock_.Advance(1 * kMicrosPerMilli);
  Tick();
  auto a = Wait(std::move(pending));
  ASSERT_TRUE(a.status.ok());
  EXPECT_TRUE(a.value.empty());
}

TEST_F(EngineTest, ReleaseWaitersAnswersEmpty) {
  // Given a waiting lease, when ReleaseWaiters runs (shutdown), then it answers empty.
  LeaseRequest req;
  req.wait_ms = 60'000;
  auto pending = StartLease(req);
  engine_->ReleaseWaiters();
  auto a = Wait(std::move(pending));
  EXPECT_TRUE(a.status.ok());
  EXPECT_TRUE(a.value.empty());
}

// ---- Restart ------------------------------------------------------------------------

TEST_F(EngineTest, RestartRecoversReadyScheduledAndRunningTasks) {
  // Given a ready, a scheduled, a running and a succeeded task, when the server
  // restarts, then the three live ones are back in their states: the ready one is
  // leasable, the running one keeps its lease, the scheduled one waits for its time.
  NewTask running_job = Job(9);
  const std::string running = Add(running_job);
  LeasedTask l = LeaseOne();
  const std::string done = Add(Job(9));
  Complete(LeaseOne());
  const std::string ready = Add(Job());
  NewTask later = Job();
  later.delay_s = 60;
  const std::string scheduled = Add(later);
  ASSERT_EQ(engine_->live_count(), 3u);

  ASSERT_NO_FATAL_FAILURE(Restart());
  EXPECT_EQ(engine_->live_count(), 3u);
  auto q = engine_->QueueByName("default");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->ready, 1);
  EXPECT_EQ(q->scheduled, 1);
  EXPECT_EQ(q->running, 1);

  auto hb = Heartbeat(running, l.lease);
  EXPECT_TRUE(hb.status.ok()) << hb.status.ToString();
  EXPECT_EQ(St(Complete(l)), TaskState::kSucceeded);
  EXPECT_THAT(IdsOf(Lease(5)), ElementsAre(ready));
  clock_.Advance(60 * kSecond - 1);
  Tick();
  EXPECT_TRUE(Lease(5).empty());
  clock_.Advance(1);
  Tick();
  EXPECT_THAT(IdsOf(Lease(5)), ElementsAre(scheduled));
  EXPECT_EQ(Stored(done).state, TaskState::kSucceeded);
}

TEST_F(EngineTest, LapsedLeaseIsTimedOutByFirstTickAfterRestart) {
  // Given a running task whose lease lapses while the server is down, when it
  // restarts, then the first Tick fails it as timeout and it is leasable again after
  // the backoff; the ledger over both runs verifies.
  NewTask job = Job();
  job.timeout_s = 10;
  const std::string id = Add(job);
  LeasedTask l = LeaseOne();
  ASSERT_NO_FATAL_FAILURE(Restart());

  clock_.Advance(11 * kSecond);
  Tick();
  Task t = Stored(id);
  EXPECT_EQ(t.state, TaskState::kScheduled);
  EXPECT_EQ(t.error_class, ErrorClass::kTimeout);
  EXPECT_EQ(t.attempt, 1);
  EXPECT_EQ(Complete(l).status().code(), Code::kConflict);

  clock_.Advance(1 * kSecond);
  Tick();
  LeasedTask again = LeaseOne();
  EXPECT_EQ(again.id, id);
  EXPECT_EQ(Stored(id).attempt, 2);
  EXPECT_EQ(St(Complete(again)), TaskState::kSucceeded);

  ExpectLedgerVerifies();
  int recovered = 0;
  for (const auto& r : Ledger()) recovered += r.kind == "server.recovered";
  EXPECT_EQ(recovered, 2);
}

TEST_F(EngineTest, IdsStayIncreasingAcrossRestartWhenClockGoesBack) {
  // Given a task created at T, when the server restarts with the clock an hour behind,
  // then a new task's id is still larger.
  const std::string before = Add(Job());
  ASSERT_NO_FATAL_FAILURE(Restart());
  clock_.Advance(-3600 * kSecond);
  const std::string after = Add(Job());
  EXPECT_GT(after, before);
}

TEST_F(EngineTest, LedgerCheckpointsAtTheConfiguredInterval) {
  // Given a checkpoint every 4 records, when enough events happen, then checkpoints are
  // written and the ledger verifies.
  EngineOptions options;
  options.ledger_checkpoint_every = 4;
  Restart(options);
  for (int i = 0; i < 5; ++i) Add(Job());
  int checkpoints = 0;
  for (const auto& r : Ledger()) checkpoints += r.kind == "ledger.checkpoint";
  EXPECT_GE(checkpoints, 1);
  ExpectLedgerVerifies();
}

// ---- Store failure ------------------------------------------------------------------

TEST_F(EngineTest, FailedCommitMakesEngineUnavailable) {
  // Given a store whose commits fail, when a task is enqueued, then the callback gets
  // the error, the engine turns unhealthy, and later writes are kUnavailable.
  Add(Job());
  EXPECT_TRUE(engine_->healthy());
  store_->FailNextCommits();
  auto a = Enqueue({Job()});
  EXPECT_FALSE(a.status.ok());
  EXPECT_FALSE(engine_->healthy());
  LeaseRequest req;
  auto lease = Wait(StartLease(req));
  EXPECT_EQ(lease.status.code(), Code::kUnavailable);
  EXPECT_EQ(Cancel("0000000000001").code(), Code::kUnavailable);
}

TEST_F(EngineTest, FinishOfKeyedTaskOnFailedStoreReportsErrorWithoutDeadlock) {
  // Given a leased task with an idempotency key and a store that refuses commits at
  // Submit, when the task completes, then the callback gets the error and the engine
  // turns unhealthy (engine.h), rather than the engine deadlocking on its own mutex.
  NewTask job = Job();
  job.idempotency_key = "k";
  Add(job);
  LeasedTask l = LeaseOne();
  store_->FailNextCommits();
  Status commit;
  const bool returned = ReturnsInTime([&] {
    std::vector<FinishRequest> items(1);
    items[0].id = l.id;
    items[0].lease = l.lease;
    commit = Finish(std::move(items)).status;
  });
  ASSERT_TRUE(returned) << "Engine::Finish deadlocked";
  EXPECT_FALSE(commit.ok());
  EXPECT_FALSE(engine_->healthy());
}

TEST_F(EngineTest, DeleteDeadOnClosedStoreReportsErrorWithoutDeadlock) {
  // Given a dead task and a store that was closed (shutdown), when the dead task is
  // deleted, then the callback gets kUnavailable rather than the engine deadlocking.
  const std::string id = MakeDead();
  sqlite_->Close();
  Status deleted;
  const bool returned = ReturnsInTime([&] { deleted = DeleteDead(id); });
  ASSERT_TRUE(returned) << "Engine::DeleteDead deadlocked";
  EXPECT_EQ(deleted.code(), Code::kUnavailable);
}

// ---- Introspection ------------------------------------------------------------------

TEST_F(EngineTest, QueuesAndWorkersReportCounts) {
  // Given ready, scheduled and running tasks in two queues, then Queues and Workers
  // count them.
  Add(Job(0, "a"));
  Add(Job(0, "a"));
  NewTask later = Job(0, "b");
  later.delay_s = 5;
  Add(later);
  Lease(1, {"a"}, "w-7");
  auto queues = engine_->Queues();
  ASSERT_EQ(queues.size(), 2u);
  EXPECT_EQ(queues[0].name, "a");
  EXPECT_EQ(queues[0].ready, 1);
  EXPECT_EQ(queues[0].running, 1);
  EXPECT_EQ(queues[1].name, "b");
  EXPECT_EQ(queues[1].scheduled, 1);
  auto workers = engine_->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].name, "w-7");
  EXPECT_EQ(workers[0].running, 1);
  EXPECT_EQ(workers[0].last_seen, kT0);
}

}  // namespace
}  // namespace resonance

namespace resonance {
namespace {

// Renders the registry and returns the value on the line that starts with `series `.
std::optional<double> Sample(metrics::Registry& r, const std::string& series) {
  const std::string text = r.Render();
  const std::string key = "\n" + series + " ";
  size_t at = ("\n" + text).find(key);
  if (at == std::string::npos) return std::nullopt;
  size_t start = at + key.size() - 1;
  return std::stod(text.substr(start, text.find('\n', start) - start));
}

class EngineMetricsTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (HasFatalFailure()) return;
    metrics_ = std::make_unique<EngineMetrics>(registry_, 2, 100);
    EngineOptions o;
    o.metrics = metrics_.get();
    ASSERT_NO_FATAL_FAILURE(Restart(o));
    metrics_->CollectFrom(*engine_, {"p1"});
  }
  void TearDown() override {
    EngineTest::TearDown();  // stops the engine before the metrics it points at go
    metrics_.reset();
  }
  std::optional<double> Value(const std::string& series) { return Sample(registry_, series); }

  metrics::Registry registry_;
  std::unique_ptr<EngineMetrics> metrics_;
};

TEST_F(EngineMetricsTest, CountsEveryOutcomeWithDurationsAndWaits) {
  for (int i = 0; i < 4; ++i) Add(Job());
  clock_.Advance(3 * kSecond);  // each waits 3 s before its lease
  auto got = Lease(4);
  ASSERT_EQ(got.size(), 4u);
  clock_.Advance(2 * kSecond);  // each attempt takes 2 s
  EXPECT_EQ(St(Complete(got[0])), TaskState::kSucceeded);
  EXPECT_EQ(St(Fail(got[1], ErrorClass::kValidation)), TaskState::kDead);
  EXPECT_EQ(St(Fail(got[2], ErrorClass::kRateLimited, 1.0)), TaskState::kScheduled);
  ASSERT_TRUE(Cancel(got[3].id).ok());
  EXPECT_EQ(St(Complete(got[3])), TaskState::kCancelled);

  const std::string qa = R"(queue="default",action="send_mail")";
  EXPECT_EQ(Value("resonance_tasks_enqueued_total{" + qa + "}"), 4);
  EXPECT_EQ(Value(R"(resonance_tasks_leased_total{queue="default"})"), 4);
  EXPECT_EQ(Value("resonance_tasks_finished_total{" + qa + R"(,outcome="succeeded"})"), 1);
  EXPECT_EQ(Value("resonance_tasks_finished_total{" + qa + R"(,outcome="dead"})"), 1);
  EXPECT_EQ(Value("resonance_tasks_finished_total{" + qa + R"(,outcome="retried"})"), 1);
  EXPECT_EQ(Value("resonance_tasks_finished_total{" + qa + R"(,outcome="cancelled"})"), 1);
  EXPECT_EQ(Value("resonance_task_failures_total{" + qa + R"(,class="validation"})"), 1);
  EXPECT_EQ(Value("resonance_task_failures_total{" + qa + R"(,class="rate_limited"})"), 1);
  EXPECT_EQ(Value("resonance_task_retries_total{" + qa + R"(,class="rate_limited"})"), 1);
  EXPECT_EQ(Value("resonance_task_retries_total{" + qa + R"(,class="validation"})"), 0);
  EXPECT_EQ(Value("resonance_rate_limited_total{" + qa + "}"), 1);
  EXPECT_EQ(Value("resonance_task_duration_seconds_count{" + qa + "}"), 4);
  EXPECT_EQ(Value("resonance_task_duration_seconds_sum{" + qa + "}"), 8);
  EXPECT_EQ(Value(R"(resonance_task_wait_seconds_count{queue="default"})"), 4);
  EXPECT_EQ(Value(R"(resonance_task_wait_seconds_sum{queue="default"})"), 12);
  EXPECT_EQ(Value(R"(resonance_queue_depth{queue="default",state="scheduled"})"), 1);
  EXPECT_EQ(Value(R"(resonance_queue_depth{queue="default",state="running"})"), 0);
  EXPECT_EQ(Value(R"(resonance_workers{pool="p1",state="active"})"), 0);
}

TEST_F(EngineMetricsTest, CancellingAQueuedTaskCountsAsCancelled) {
  std::string id = Add(Job());
  ASSERT_TRUE(Cancel(id).ok());
  EXPECT_EQ(Value(R"(resonance_tasks_finished_total{queue="default",action="send_mail",outcome="cancelled"})"),
            1);
  EXPECT_EQ(Value(R"(resonance_tasks_leased_total{queue="default"})"), std::nullopt);
}

TEST_F(EngineMetricsTest, ExpiredLeasesAndLostWorkersAreCounted) {
  NewTask t = Job();
  t.timeout_s = 5;
  Add(t);
  LeaseOne();
  clock_.Advance(6 * kSecond);
  Tick();
  EXPECT_EQ(Value(R"(resonance_leases_expired_total{queue="default"})"), 1);
  EXPECT_EQ(
      Value(R"(resonance_task_failures_total{queue="default",action="send_mail",class="timeout"})"),
      1);

  WorkerRegistration r;
  r.name = "w-lost";
  r.pool = "p1";
  r.pid = 42;
  ASSERT_TRUE(WaitDone([&](Engine::Done d) { engine_->RegisterWorker(r, std::move(d)); }).ok());
  EXPECT_EQ(Value(R"(resonance_workers{pool="p1",state="active"})"), 1);
  Add(Job());
  Lease(1, {"default"}, "w-lost");
  clock_.Advance(20 * kSecond);
  Tick();
  EXPECT_EQ(Value(R"(resonance_workers_lost_total{pool="p1"})"), 1);
  EXPECT_EQ(Value(R"(resonance_workers{pool="p1",state="lost"})"), 1);
  EXPECT_EQ(Value(R"(resonance_leases_expired_total{queue="default"})"), 2);
  // The same id registering again is a restart.
  EXPECT_EQ(Value(R"(resonance_worker_restarts_total{pool="p1"})"), 0);
  ASSERT_TRUE(WaitDone([&](Engine::Done d) { engine_->RegisterWorker(r, std::move(d)); }).ok());
  EXPECT_EQ(Value(R"(resonance_worker_restarts_total{pool="p1"})"), 1);
}

TEST_F(EngineMetricsTest, ActionsPastTheLimitCountAsOther) {
  for (const char* action : {"a", "b", "c", "d"}) {
    NewTask t = Job();
    t.action = action;
    Add(t);
  }
  EXPECT_EQ(Value(R"(resonance_tasks_enqueued_total{queue="default",action="a"})"), 1);
  EXPECT_EQ(Value(R"(resonance_tasks_enqueued_total{queue="default",action="b"})"), 1);
  EXPECT_EQ(Value(R"(resonance_tasks_enqueued_total{queue="default",action="other"})"), 2);
  EXPECT_EQ(Value(R"(resonance_tasks_enqueued_total{queue="default",action="c"})"), std::nullopt);
}

}  // namespace
}  // namespace resonance

namespace resonance {
namespace {

TEST_F(EngineTest, HistoryRecordsOutcomesDurationsAndWaitsInTheMinuteTheyHappen) {
  // Given tasks enqueued at T0, leased 3 s later and ended 2 s after that (one
  // succeeded, one dead as validation, one retried as temporary, one cancelled while
  // queued), then the store's history row of that minute holds exactly those.
  const int64_t minute = MinuteOf(kT0 + 5 * kSecond);
  ASSERT_EQ(MinuteOf(kT0), minute) << "the test wants all of it inside one minute";
  for (int i = 0; i < 3; ++i) Add(Job());
  std::string queued = Add(Job(-1));  // lowest priority: not leased below
  clock_.Advance(3 * kSecond);
  auto got = Lease(3);
  ASSERT_EQ(got.size(), 3u);
  clock_.Advance(2 * kSecond);
  EXPECT_EQ(St(Complete(got[0])), TaskState::kSucceeded);
  EXPECT_EQ(St(Fail(got[1], ErrorClass::kValidation)), TaskState::kDead);
  EXPECT_EQ(St(Fail(got[2], ErrorClass::kTemporary)), TaskState::kScheduled);
  ASSERT_TRUE(Cancel(queued).ok());
  Barrier();

  auto rows = sqlite_->ReadStats(minute, minute, "default", "send_mail");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  const MinuteStats& s = (*rows)[0].stats;
  EXPECT_EQ(s.succeeded, 1);
  EXPECT_EQ(s.dead, 1);
  EXPECT_EQ(s.retried, 1);
  EXPECT_EQ(s.cancelled, 1);
  EXPECT_EQ(s.failures[static_cast<size_t>(ErrorClass::kValidation)], 1);
  EXPECT_EQ(s.retries[static_cast<size_t>(ErrorClass::kTemporary)], 1);
  EXPECT_EQ(s.duration.count, 3);
  EXPECT_EQ(s.duration.sum_us, 3 * 2 * kSecond);
  EXPECT_EQ(s.wait.count, 3);
  EXPECT_EQ(s.wait.sum_us, 3 * 3 * kSecond);
}

}  // namespace
}  // namespace resonance
