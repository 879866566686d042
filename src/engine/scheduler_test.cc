#include "engine/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>

#include "core/time_format.h"
#include "store/sqlite/sqlite_store.h"

namespace resonance {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000LL * kS;  // a multiple of 10 s

ScheduleSpec Every10s(std::string name = "s") {
  ScheduleSpec s;
  s.name = std::move(name);
  s.cron = "@every 10s";
  s.action = "collect";
  return s;
}

// A server's store, engine and scheduler over one data dir, with a fake clock; Restart
// closes them all and opens them again, as a server restart does.
class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("scheduler_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    SqliteStoreOptions o;
    o.path = (dir_ / "db").string();
    o.durability = Durability::kOs;
    auto s = SqliteStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    engine_ = std::make_unique<Engine>(*store_, clock_, EngineOptions{});
    ASSERT_TRUE(engine_->Recover().ok());
    scheduler_ = std::make_unique<Scheduler>(*engine_, *store_, clock_);
  }
  void Close() {
    scheduler_.reset();
    engine_.reset();
    if (store_) store_->Close();
    store_.reset();
  }
  // Closes everything and opens it again, loading `schedules`.
  void Restart(const std::vector<ScheduleSpec>& schedules,
               const std::map<std::string, std::vector<std::string>>& sets = {}) {
    Close();
    Open();
    Load(schedules, sets);
  }
  void Load(const std::vector<ScheduleSpec>& schedules,
            const std::map<std::string, std::vector<std::string>>& sets = {}) {
    Status s = scheduler_->Load(schedules, sets);
    ASSERT_TRUE(s.ok()) << s.ToString();
    Settle();
  }
  void Settle() {
    std::promise<void> p;
    engine_->Barrier([&](const Status&) { p.set_value(); });
    p.get_future().wait();
  }
  void TickAt(Micros t) {
    clock_.Set(t);
    scheduler_->Tick(t);
    Settle();
  }
  std::vector<Task> Tasks() {
    TaskFilter f;
    f.limit = 10000;
    auto tasks = store_->ListTasks(f);
    EXPECT_TRUE(tasks.ok());
    return *tasks;
  }
  // Slot times (seconds after kT0) of the tasks, in creation order, with their item.
  std::vector<std::string> Slots(bool with_item = false) {
    std::vector<std::string> out;
    for (const Task& t : Tasks()) {
      std::string s = std::to_string((t.scheduled_for - kT0) / kS);
      if (with_item) s += ":" + t.idempotency_key.substr(t.idempotency_key.rfind(':') + 1);
      out.push_back(s);
    }
    return out;
  }
  void Succeed(const std::string& id) {
    std::promise<std::vector<LeasedTask>> leased;
    LeaseRequest req;
    req.worker = "w";
    req.max = 100;
    engine_->Lease(req, [&](const Status&, std::vector<LeasedTask> v) { leased.set_value(v); });
    for (const LeasedTask& l : leased.get_future().get()) {
      FinishRequest f;
      f.id = l.id;
      f.lease = l.lease;
      f.success = l.id == id;
      f.error_message = "not this one";
      std::promise<void> done;
      engine_->Finish({f},
                      [&](const Status&, std::vector<Result<TaskState>>) { done.set_value(); });
      done.get_future().wait();
    }
  }
  std::vector<GapInfo> Gaps() {
    auto g = scheduler_->Gaps("", 100);
    EXPECT_TRUE(g.ok());
    return *g;
  }

  std::filesystem::path dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, EachSlotIsEnqueuedOnceAcrossARestart) {
  Load({Every10s()});
  TickAt(kT0 + 5 * kS);
  EXPECT_TRUE(Tasks().empty());
  TickAt(kT0 + 25 * kS);  // two slots due in one round
  TickAt(kT0 + 25 * kS);
  EXPECT_THAT(Slots(), ElementsAre("10", "20"));
  const Task first = Tasks()[0];
  EXPECT_EQ(first.schedule, "s");
  EXPECT_EQ(first.idempotency_key, "schedule:s:" + FormatRfc3339(kT0 + 10 * kS));
  EXPECT_EQ(first.action, "collect");

  clock_.Set(kT0 + 29 * kS);
  Restart({Every10s()});
  TickAt(kT0 + 29 * kS);
  TickAt(kT0 + 31 * kS);
  EXPECT_THAT(Slots(), ElementsAre("10", "20", "30"));
  auto json = scheduler_->Get("s");
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"last_slot\":\"" + FormatRfc3339(kT0 + 30 * kS) + "\""));
  EXPECT_THAT(*json, HasSubstr("\"next_run_at\":\"" + FormatRfc3339(kT0 + 40 * kS) + "\""));
  EXPECT_THAT(*json, HasSubstr("\"source\":\"config\""));
}

TEST_F(SchedulerTest, CatchUpPoliciesAfterDowntime) {
  for (CatchUp policy : {CatchUp::kSkip, CatchUp::kLatest, CatchUp::kAll}) {
    SCOPED_TRACE(CatchUpName(policy));
    ScheduleSpec spec = Every10s(CatchUpName(policy));
    spec.catch_up = policy;
    spec.catch_up_max = 3;
    clock_.Set(kT0);
    Restart({spec});
    TickAt(kT0 + 11 * kS);
    const size_t before = Tasks().size();
    clock_.Set(kT0 + 75 * kS);  // down while 20 ... 70 came due
    Restart({spec});
    TickAt(kT0 + 75 * kS);
    std::vector<std::string> after;
    for (const Task& t : Tasks()) {
      if (t.schedule == spec.name) after.push_back(std::to_string((t.scheduled_for - kT0) / kS));
    }
    ASSERT_GE(after.size(), 1u);
    EXPECT_EQ(after[0], "10");
    after.erase(after.begin());
    if (policy == CatchUp::kSkip) {
      EXPECT_TRUE(after.empty());
    } else if (policy == CatchUp::kLatest) {
      EXPECT_THAT(after, ElementsAre("70"));
    } else {
      EXPECT_THAT(after, ElementsAre("50", "60", "70"));
    }
    // Slots after the start are enqueued whatever the policy.
    TickAt(kT0 + 80 * kS);
    EXPECT_EQ(Tasks().size(), before + after.size() + 1);
    // The next policy runs in a fresh store.
    Close();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
}

TEST_F(SchedulerTest, FanOutPutsEachItemInItsOwnTask) {
  ScheduleSpec spec = Every10s();
  spec.target_set = "universe";
  spec.item_field = "symbol";
  spec.payload = R"({"depth":2})";
  Load({spec}, {{"universe", {"AAPL", "MSFT", "NVDA"}}});
  TickAt(kT0 + 10 * kS);
  EXPECT_THAT(Slots(true), ElementsAre("10:AAPL", "10:MSFT", "10:NVDA"));
  EXPECT_EQ(Tasks()[1].payload, R"({"symbol":"MSFT","depth":2})");
  std::promise<Status> put;
  scheduler_->PutTargetSet("universe", {"X"},
                           [&](const Status& s, std::string) { put.set_value(s); });
  EXPECT_EQ(put.get_future().get().code(), Code::kConflict);  // the config's
}

TEST_F(SchedulerTest, AMissedSlotIsAGapAndItsBackfillClosesIt) {
  ScheduleSpec spec = Every10s();
  spec.gap_grace = 5 * kS;
  spec.backfill = true;
  spec.catch_up = CatchUp::kSkip;
  Load({spec});
  TickAt(kT0 + 10 * kS);
  ASSERT_EQ(Tasks().size(), 1u);
  const std::string slot10 = Tasks()[0].id;
  TickAt(kT0 + 14 * kS);  // within the grace: nothing yet
  EXPECT_TRUE(Gaps().empty());
  TickAt(kT0 + 16 * kS);  // not succeeded within the grace
  auto gaps = Gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].slot, kT0 + 10 * kS);
  EXPECT_THAT(gaps[0].task_ids, ElementsAre(slot10));
  ASSERT_FALSE(gaps[0].backfill_task_id.empty());
  EXPECT_TRUE(gaps[0].open);
  EXPECT_EQ(scheduler_->OpenGaps()["s"], 1);
  auto backfill = store_->GetTask(gaps[0].backfill_task_id);
  ASSERT_TRUE(backfill.ok());
  EXPECT_EQ(backfill->scheduled_for, kT0 + 10 * kS);
  EXPECT_THAT(backfill->idempotency_key, HasSubstr(":backfill"));

  Succeed(gaps[0].backfill_task_id);
  TickAt(kT0 + 17 * kS);
  gaps = Gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_FALSE(gaps[0].open);
  EXPECT_EQ(gaps[0].closed_by, gaps[0].backfill_task_id);
  EXPECT_EQ(scheduler_->OpenGaps()["s"], 0);

  // Slots skipped by catch-up had no task: gaps too, found after a restart.
  clock_.Set(kT0 + 45 * kS);
  Restart({spec});
  TickAt(kT0 + 45 * kS);
  TickAt(kT0 + 46 * kS);
  gaps = Gaps();
  std::vector<Micros> slots;
  for (const auto& g : gaps) slots.push_back((g.slot - kT0) / kS);
  // The down time's 20, 30 and 40 (skipped: no task), newest first.
  EXPECT_THAT(slots, ElementsAre(40, 30, 20, 10));
  EXPECT_TRUE(gaps[0].task_ids.empty());
}

TEST_F(SchedulerTest, ACaughtUpSlotGetsItsGraceFromItsEnqueue) {
  ScheduleSpec spec = Every10s();
  spec.gap_grace = 5 * kS;
  Load({spec});
  clock_.Set(kT0 + 14 * kS);  // down while slot 10 came due: "latest" enqueues it late
  Restart({spec});
  TickAt(kT0 + 14 * kS);
  ASSERT_THAT(Slots(), ElementsAre("10"));
  // At 16 s slot 10 is past slot + grace but its task came at 14 s: undecided until
  // 19 s. The rounds wake at least once a second, and then at 19 s, not sooner.
  TickAt(kT0 + 16 * kS);
  EXPECT_TRUE(Gaps().empty());
  clock_.Set(kT0 + 18 * kS + kS / 2);
  EXPECT_EQ(scheduler_->Tick(kT0 + 18 * kS + kS / 2), kT0 + 19 * kS);
  Settle();
  EXPECT_TRUE(Gaps().empty());
  TickAt(kT0 + 19 * kS);
  ASSERT_EQ(Gaps().size(), 1u);
  EXPECT_EQ(Gaps()[0].slot, kT0 + 10 * kS);
}

TEST_F(SchedulerTest, SlotsWhilePausedAreNeitherRunNorGaps) {
  ScheduleSpec spec = Every10s();
  spec.gap_grace = 2 * kS;
  Load({spec});
  TickAt(kT0 + 10 * kS);
  Succeed(Tasks()[0].id);
  std::promise<Status> paused;
  scheduler_->SetPaused("s", true, [&](const Status& s, std::string) { paused.set_value(s); });
  ASSERT_TRUE(paused.get_future().get().ok());
  TickAt(kT0 + 35 * kS);
  EXPECT_EQ(Tasks().size(), 1u);
  std::promise<Status> resumed;
  scheduler_->SetPaused("s", false, [&](const Status& s, std::string) { resumed.set_value(s); });
  ASSERT_TRUE(resumed.get_future().get().ok());
  TickAt(kT0 + 36 * kS);
  EXPECT_EQ(Tasks().size(), 1u);
  TickAt(kT0 + 40 * kS);
  EXPECT_THAT(Slots(), ElementsAre("10", "40"));
  TickAt(kT0 + 41 * kS);  // 20 and 30 came due while paused
  EXPECT_TRUE(Gaps().empty());
}

TEST_F(SchedulerTest, ApiCreateRefusesBadSpecsAndDuplicates) {
  Load({});
  auto create = [&](ScheduleSpec spec) {
    std::promise<Status> p;
    scheduler_->Create(std::move(spec), [&](const Status& s, std::string) { p.set_value(s); });
    return p.get_future().get();
  };
  ScheduleSpec bad = Every10s("x");
  bad.cron = "61 * * * *";
  EXPECT_EQ(create(bad).code(), Code::kUnprocessable);
  bad = Every10s("x");
  bad.time_zone = "Mars/Olympus";
  Status s = create(bad);
  EXPECT_EQ(s.code(), Code::kUnprocessable);
  EXPECT_THAT(s.message(), HasSubstr("time_zone"));
  bad = Every10s("x");
  bad.target_set = "none";
  EXPECT_EQ(create(bad).code(), Code::kUnprocessable);
  EXPECT_TRUE(create(Every10s("x")).ok());
  EXPECT_EQ(create(Every10s("x")).code(), Code::kConflict);
  // Created at T0: its first slot is the next one.
  TickAt(kT0 + 10 * kS);
  EXPECT_THAT(Slots(), ElementsAre("10"));
  // API schedules come back from the store.
  Restart({});
  EXPECT_TRUE(scheduler_->Get("x").ok());
  std::promise<Status> del;
  scheduler_->Delete("x", [&](const Status& st) { del.set_value(st); });
  EXPECT_TRUE(del.get_future().get().ok());
  Restart({});
  EXPECT_EQ(scheduler_->Get("x").status().code(), Code::kNotFound);
}

TEST(ScheduleSpecTest, ParsesAndNamesTheBadField) {
  auto s = ParseScheduleSpec(
      R"({"name":"n","cron":"@every 1m","action":"a","payload":{"k":[1,2]},"catch_up":"all",)"
      R"("gap_grace":"10m","backfill":true,"target_set":"t"})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->catch_up, CatchUp::kAll);
  EXPECT_EQ(s->gap_grace, 600 * kS);
  EXPECT_EQ(s->payload, R"({"k":[1,2]})");
  auto field = [](const char* json) {
    auto r = ParseScheduleSpec(json);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_THAT(field(R"({"name":"n","action":"a"})"), HasSubstr("cron: is required"));
  EXPECT_THAT(field(R"({"name":"n","cron":"@hourly"})"), HasSubstr("action: is required"));
  EXPECT_THAT(field(R"({"name":"n/1","cron":"@hourly","action":"a"})"), HasSubstr("name:"));
  EXPECT_THAT(field(R"({"name":"n","cron":"@hourly","action":"a","catch_up":"some"})"),
              HasSubstr("catch_up:"));
  EXPECT_THAT(field(R"({"name":"n","cron":"@hourly","action":"a","backfill":true})"),
              HasSubstr("backfill: needs gap_grace"));
  EXPECT_THAT(field(R"({"name":"n","cron":"@hourly","action":"a","colour":1})"),
              HasSubstr("colour: unknown field"));
  EXPECT_THAT(field(R"({"name":"n","cron":"@hourly","action":"a","gap_grace":"5 minutes"})"),
              HasSubstr("gap_grace:"));
  EXPECT_THAT(
      field(R"({"name":"n","cron":"@hourly","action":"a","target_set":"t","payload":{"item":1}})"),
      HasSubstr("payload.item:"));
  EXPECT_EQ(field(R"({"name":"n","cron":"@hourly","action":"a","payload":"{\"a\":1}"})"), "ok");
  EXPECT_THAT(field(R"({"name":"n","cron":"@hourly","action":"a","payload":[1]})"),
              HasSubstr("payload:"));
}

TEST(ScheduleSpecTest, PayloadWithItem) {
  EXPECT_EQ(PayloadWithItem("{}", "item", "a\"b"), R"({"item":"a\"b"})");
  EXPECT_EQ(PayloadWithItem(R"({ "x":1})", "sym", "A"), R"({"sym":"A","x":1})");
}

}  // namespace
}  // namespace resonance
