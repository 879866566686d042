// Engine::Finish creating follow-ups (docs/follow-ups.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "ledger/verifier.h"
#include "observe/log.h"
#include "store/forwarding_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/test_store.h"

namespace resonance {
namespace {

using ::testing::HasSubstr;

constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;
constexpr auto kWait = std::chrono::seconds(10);

// Records every batch it passes on, so a test can see what was committed together.
class RecordingStore final : public ForwardingStore {
 public:
  explicit RecordingStore(Store& real) : ForwardingStore(real) {}
  void Submit(WriteBatch batch, Done done) override {
    {
      std::lock_guard lock(mu_);
      batches_.push_back(batch);
    }
    real_.Submit(std::move(batch), std::move(done));
  }
  // Task ids inserted and updated by each batch, in order.
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> Writes() {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> out;
    for (const auto& b : batches_) {
      std::vector<std::string> inserted, updated;
      for (const auto& m : b.mutations) {
        if (auto* i = std::get_if<InsertTask>(&m)) inserted.push_back(i->task->id);
        if (auto* u = std::get_if<UpdateTask>(&m)) updated.push_back(u->update.id);
      }
      out.emplace_back(std::move(inserted), std::move(updated));
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<WriteBatch> batches_;
};

class EngineFollowupsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }
  void SetUp() override {
    dir_ = MakeTestDir("followups-test");
    ASSERT_FALSE(dir_.empty());
    ASSERT_NO_FATAL_FAILURE(Open());
  }
  void TearDown() override {
    if (engine_) {
      Barrier();
      LedgerVerifier v;
      for (const auto& r : Ledger()) v.Add(r);
      EXPECT_TRUE(v.Finish().ok()) << v.Finish().ToString();
      Stop();
    }
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto opened = OpenTestStore(dir_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    sqlite_ = std::move(opened).value();
    store_ = std::make_unique<RecordingStore>(*sqlite_);
    EngineOptions o;
    o.max_followup_depth = max_depth_;
    o.check_followup = [](const NewTask& t, const std::string&) {
      return t.payload.find("forbidden") == std::string::npos
                 ? Status::Ok()
                 : Status(Code::kUnprocessable, "payload: forbidden");
    };
    engine_ = std::make_unique<Engine>(*store_, clock_, o);
    ASSERT_TRUE(engine_->Recover().ok());
  }
  void Stop() {
    if (engine_) engine_->ReleaseWaiters();
    if (sqlite_) sqlite_->Close();
    engine_.reset();
    store_.reset();
    sqlite_.reset();
  }
  void Barrier() {
    std::promise<Status> p;
    engine_->Barrier([&](const Status& s) { p.set_value(s); });
    ASSERT_EQ(p.get_future().wait_for(kWait), std::future_status::ready);
  }
  std::string Add(NewTask t) {
    std::promise<std::vector<EnqueueOutcome>> p;
    std::vector<NewTask> v;
    v.push_back(std::move(t));
    engine_->Enqueue(std::move(v), [&](const Status& s, std::vector<EnqueueOutcome> out) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      p.set_value(std::move(out));
    });
    auto out = p.get_future().get();
    return out.size() == 1 ? out[0].id : "";
  }
  // Leases one task of `action`'s queue and completes it with `result`.
  std::string LeaseAndComplete(const std::string& result, Status* item = nullptr) {
    std::promise<std::vector<LeasedTask>> lp;
    LeaseRequest req;
    req.worker = "w1";
    engine_->Lease(req, [&](const Status&, std::vector<LeasedTask> got) { lp.set_value(got); });
    auto got = lp.get_future().get();
    EXPECT_EQ(got.size(), 1u);
    if (got.empty()) return "";
    FinishRequest f;
    f.id = got[0].id;
    f.lease = got[0].lease;
    f.result = result;
    std::promise<Result<TaskState>> fp;
    std::vector<FinishRequest> items;
    items.push_back(f);
    engine_->Finish(std::move(items), [&](const Status& s, std::vector<Result<TaskState>> r) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      fp.set_value(r.empty() ? Result<TaskState>(Code::kInternal, "none") : r[0]);
    });
    auto r = fp.get_future().get();
    if (item) *item = r.status();
    EXPECT_TRUE(r.ok() || item) << r.status().ToString();
    return got[0].id;
  }
  std::vector<Task> Children(const std::string& parent) {
    auto all = sqlite_->ListTasks(TaskFilter{});
    EXPECT_TRUE(all.ok());
    std::vector<Task> out;
    for (auto& t : *all) {
      if (t.parent_id == parent) out.push_back(t);
    }
    return out;
  }
  std::vector<LedgerRecord> Ledger() {
    auto l = sqlite_->ReadLedger(0, 1'000'000);
    EXPECT_TRUE(l.ok());
    return l.ok() ? *l : std::vector<LedgerRecord>{};
  }

  int max_depth_ = 10;
  FakeClock clock_{kT0};
  std::string dir_;
  std::unique_ptr<SqliteStore> sqlite_;
  std::unique_ptr<RecordingStore> store_;
  std::unique_ptr<Engine> engine_;
};

NewTask Spec(std::string action, std::string on_success, std::string payload = "{}") {
  NewTask t;
  t.action = std::move(action);
  t.on_success = std::move(on_success);
  t.payload = std::move(payload);
  t.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  return t;
}

TEST_F(EngineFollowupsTest, CompletionCreatesChildrenInTheSameBatch) {
  // Given a task with on_success, when it completes, then the child is created filled in
  // from the result, in the very batch that records the completion, and is leasable.
  const std::string a = Add(Spec("a", R"([{"action":"b","payload":{"x":"{{result.x}}"},
      "on_success":[{"action":"c","payload":{"from":"{{task.id}}"}}]}])"));
  LeaseAndComplete(R"({"x":{"n":[1,2]}})");
  Barrier();
  auto kids = Children(a);
  ASSERT_EQ(kids.size(), 1u);
  const Task& b = kids[0];
  EXPECT_EQ(b.action, "b");
  EXPECT_EQ(b.payload, R"({"x":{"n":[1,2]}})");
  EXPECT_EQ(b.depth, 1);
  EXPECT_EQ(b.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(b.state, TaskState::kReady);
  bool together = false;
  for (const auto& [inserted, updated] : store_->Writes()) {
    const bool has_parent = std::find(updated.begin(), updated.end(), a) != updated.end();
    const bool has_child = std::find(inserted.begin(), inserted.end(), b.id) != inserted.end();
    if (has_child) together = has_parent;
  }
  EXPECT_TRUE(together) << "the child was not inserted in the parent's completion batch";
  // The child's created record names its parent.
  bool created = false;
  for (const auto& r : Ledger()) {
    if (r.kind == "task.enqueued" && r.task_id == b.id) {
      created = true;
      EXPECT_THAT(r.data, HasSubstr("\"parent_id\":\"" + a + "\""));
      EXPECT_THAT(r.data, HasSubstr("\"depth\":1"));
    }
  }
  EXPECT_TRUE(created);
  // B's own on_success survives a restart and then makes C from B's id.
  Stop();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(LeaseAndComplete("{}"), b.id);
  Barrier();
  auto grandkids = Children(b.id);
  ASSERT_EQ(grandkids.size(), 1u);
  EXPECT_EQ(grandkids[0].payload, R"({"from":")" + b.id + R"("})");
  EXPECT_EQ(grandkids[0].depth, 2);
}

TEST_F(EngineFollowupsTest, ResultEnqueueAndIdempotencyKeys) {
  // Given a result with an enqueue list holding the same key twice, then one child.
  const std::string a = Add(Spec("a", ""));
  LeaseAndComplete(R"({"enqueue":[{"action":"b","idempotency_key":"k:{{result.v}}"},
      {"action":"b","idempotency_key":"k:{{result.v}}"}],"v":"7"})");
  Barrier();
  auto kids = Children(a);
  ASSERT_EQ(kids.size(), 1u);
  EXPECT_EQ(kids[0].idempotency_key, "k:7");
}

TEST_F(EngineFollowupsTest, DepthLimitStopsASelfEnqueueingLoop) {
  // Given max_depth 3 and a task whose result enqueues another like it, then tasks at
  // depths 0..3 run and the fourth follow-up is refused with a ledger record.
  Stop();
  max_depth_ = 3;
  ASSERT_NO_FATAL_FAILURE(Open());
  Add(Spec("loop", ""));
  for (int depth = 0; depth <= 3; ++depth) {
    LeaseAndComplete(R"({"enqueue":[{"action":"loop"}]})");
  }
  Barrier();
  EXPECT_EQ(engine_->live_count(), 0u);
  int refused = 0;
  for (const auto& r : Ledger()) {
    if (r.kind != "task.followup_refused") continue;
    ++refused;
    EXPECT_THAT(r.data, HasSubstr("\"depth\":4"));
    EXPECT_THAT(r.data, HasSubstr("\"action\":\"loop\""));
    EXPECT_THAT(r.data, HasSubstr("\"max_depth\":3"));
  }
  EXPECT_EQ(refused, 1);
}

TEST_F(EngineFollowupsTest, FailedFollowupsAreRecordedAndTheParentSucceeds) {
  // Given a missing value and a check that refuses, then no child, two records, and
  // the parent succeeded.
  const std::string a = Add(Spec("a", R"([{"action":"b","payload":{"v":"{{result.nope}}"}},
      {"action":"b","payload":{"v":"forbidden"}}])"));
  Status item;
  LeaseAndComplete(R"({"x":1})", &item);
  EXPECT_TRUE(item.ok()) << item.ToString();
  Barrier();
  EXPECT_TRUE(Children(a).empty());
  auto parent = sqlite_->GetTask(a);
  ASSERT_TRUE(parent.ok());
  EXPECT_EQ(parent->state, TaskState::kSucceeded);
  std::vector<std::string> reasons;
  for (const auto& r : Ledger()) {
    if (r.kind == "task.followup_failed" && r.task_id == a) reasons.push_back(r.data);
  }
  ASSERT_EQ(reasons.size(), 2u);
  EXPECT_THAT(reasons[0], HasSubstr("result has no field nope"));
  EXPECT_THAT(reasons[1], HasSubstr("forbidden"));
}

}  // namespace
}  // namespace resonance
