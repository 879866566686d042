#include "engine/event_hub.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "observe/log.h"
#include "store/forwarding_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/test_store.h"

namespace resonance {
namespace {

using ::testing::ElementsAre;

StreamEvent Ev(int64_t seq, std::string kind, std::string task_id = "", std::string data = "{}") {
  return {seq, 0, std::move(kind), std::move(task_id), std::move(data)};
}

std::vector<int64_t> Seqs(const std::vector<std::shared_ptr<const StreamEvent>>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e->seq);
  return out;
}

std::vector<std::string> Kinds(const std::vector<std::shared_ptr<const StreamEvent>>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e->kind);
  return out;
}

TEST(EventHubTest, NotActiveWithoutSubscribers) {
  // Given a hub, then it is active exactly while a subscription exists.
  EventHub hub;
  EXPECT_FALSE(hub.active());
  {
    auto sub = hub.Subscribe({}, [] {});
    EXPECT_TRUE(hub.active());
    EXPECT_EQ(hub.subscribers(), 1u);
  }
  EXPECT_FALSE(hub.active());
  EXPECT_EQ(hub.subscribers(), 0u);
}

TEST(EventHubTest, ReleasesTicketsInOrderWhenPublishedOutOfOrder) {
  // Given three reserved tickets published 2, 0, 1, then the subscriber sees them in
  // ticket order, and nothing before ticket 0 is out.
  EventHub hub;
  auto sub = hub.Subscribe({}, [] {});
  const uint64_t t0 = hub.Reserve(), t1 = hub.Reserve(), t2 = hub.Reserve();
  hub.Publish(t2, {Ev(5, "task.ready"), Ev(6, "task.leased")});
  EXPECT_TRUE(sub->Take().empty());
  hub.Publish(t0, {Ev(1, "task.enqueued"), Ev(2, "task.enqueued")});
  EXPECT_THAT(Seqs(sub->Take()), ElementsAre(1, 2));
  hub.Publish(t1, {Ev(3, "task.leased"), Ev(4, "task.succeeded")});
  EXPECT_THAT(Seqs(sub->Take()), ElementsAre(3, 4, 5, 6));
}

TEST(EventHubTest, EmptyPublishReleasesLaterTickets) {
  // Given a ticket whose batch failed (published with no events), then later tickets
  // still come out.
  EventHub hub;
  auto sub = hub.Subscribe({}, [] {});
  const uint64_t t0 = hub.Reserve(), t1 = hub.Reserve();
  hub.Publish(t1, {Ev(2, "task.enqueued")});
  hub.Publish(t0, {});
  EXPECT_THAT(Seqs(sub->Take()), ElementsAre(2));
}

TEST(EventHubTest, FiltersByTaskAndKindPrefixes) {
  // Given subscribers for one task, for worker.+queue. kinds, and for everything,
  // then each gets only what it asked for.
  EventHub hub;
  EventFilter one_task;
  one_task.task_id = "t1";
  EventFilter kinds;
  kinds.kind_prefixes = {"worker.", "queue."};
  auto task_sub = hub.Subscribe(one_task, [] {});
  auto kind_sub = hub.Subscribe(kinds, [] {});
  auto all_sub = hub.Subscribe({}, [] {});
  hub.Publish(hub.Reserve(), {Ev(1, "task.enqueued", "t1"), Ev(2, "task.enqueued", "t2"),
                              Ev(3, "worker.registered"), Ev(0, "task.progress", "t1"),
                              Ev(4, "queue.paused"), Ev(5, "task.leased", "t1")});
  EXPECT_THAT(Kinds(task_sub->Take()),
              ElementsAre("task.enqueued", "task.progress", "task.leased"));
  EXPECT_THAT(Seqs(kind_sub->Take()), ElementsAre(3, 4));
  EXPECT_THAT(Seqs(all_sub->Take()), ElementsAre(1, 2, 3, 0, 4, 5));
}

TEST(EventHubTest, WakesOnlyWhenTheQueueTurnsNonEmpty) {
  // Given a subscriber that does not take, then two publishes wake it once; after it
  // takes, the next publish wakes it again.
  EventHub hub;
  int wakes = 0;
  auto sub = hub.Subscribe({}, [&] { ++wakes; });
  hub.Publish(hub.Reserve(), {Ev(1, "a")});
  hub.Publish(hub.Reserve(), {Ev(2, "b")});
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(sub->Take().size(), 2u);
  hub.Publish(hub.Reserve(), {Ev(3, "c")});
  EXPECT_EQ(wakes, 2);
  // Events this subscriber filters out do not wake it.
  EventFilter other;
  other.task_id = "nobody";
  int other_wakes = 0;
  auto quiet = hub.Subscribe(other, [&] { ++other_wakes; });
  hub.Publish(hub.Reserve(), {Ev(4, "d", "t1")});
  EXPECT_EQ(other_wakes, 0);
}

TEST(EventHubTest, DropsASubscriberThatFallsBehindAndCountsIt) {
  // Given a 4 KiB limit and a subscriber that never takes, then once it has more than
  // the limit pending and more arrives it is dropped (woken, queue freed, counted) and
  // gets nothing more, while a subscriber that keeps up is unaffected.
  EventHub hub({4096});
  int slow_wakes = 0;
  auto slow = hub.Subscribe({}, [&] { ++slow_wakes; });
  auto fast = hub.Subscribe({}, [] {});
  const std::string data(500, 'x');
  int64_t seq = 0;
  size_t fast_got = 0;
  while (!slow->dropped() && seq < 100) {
    hub.Publish(hub.Reserve(), {Ev(++seq, "task.enqueued", "t", "\"" + data + "\"")});
    fast_got += fast->Take().size();
  }
  ASSERT_TRUE(slow->dropped());
  const size_t each = EventBytes(Ev(1, "task.enqueued", "t", "\"" + data + "\""));
  EXPECT_GT((static_cast<size_t>(seq) - 1) * each, 4096u);  // not before the limit...
  EXPECT_LE((static_cast<size_t>(seq) - 2) * each, 4096u);  // ...and at the next event
  EXPECT_EQ(hub.dropped_total(), 1u);
  EXPECT_EQ(slow_wakes, 2);  // the first event, then the drop
  EXPECT_TRUE(slow->Take().empty());
  hub.Publish(hub.Reserve(), {Ev(++seq, "task.enqueued")});
  EXPECT_TRUE(slow->Take().empty());
  EXPECT_EQ(fast_got + fast->Take().size(), static_cast<size_t>(seq));
  EXPECT_FALSE(fast->dropped());
  EXPECT_EQ(hub.dropped_total(), 1u);
}

TEST(EventHubTest, ABurstLargerThanTheLimitDoesNotDropASubscriberThatKeepsUp) {
  // Given a 4 KiB limit and a subscriber that takes after each publish, when each
  // publish carries 40 KiB, then it gets everything; one that does not take is dropped
  // at the second burst.
  EventHub hub({4096});
  auto keeps_up = hub.Subscribe({}, [] {});
  auto stuck = hub.Subscribe({}, [] {});
  std::vector<StreamEvent> burst;
  int64_t seq = 0;
  size_t got = 0;
  for (int round = 0; round < 5; ++round) {
    burst.clear();
    for (int i = 0; i < 40; ++i) {
      burst.push_back(Ev(++seq, "task.ready", "t", std::string(1000, '1')));
    }
    hub.Publish(hub.Reserve(), burst);
    got += keeps_up->Take().size();
    EXPECT_EQ(stuck->dropped(), round >= 1) << "round " << round;
  }
  EXPECT_EQ(got, static_cast<size_t>(seq));
  EXPECT_FALSE(keeps_up->dropped());
  EXPECT_EQ(hub.dropped_total(), 1u);
}

TEST(EventHubTest, PublishersOnManyThreadsKeepTicketOrder) {
  // Given tickets reserved in order and published from four threads in any order,
  // then the subscriber sees every event once, in ticket order.
  EventHub hub(EventHubOptions{1 << 30});
  auto sub = hub.Subscribe({}, [] {});
  constexpr int kTickets = 4000;
  std::vector<uint64_t> tickets;
  for (int i = 0; i < kTickets; ++i) tickets.push_back(hub.Reserve());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = kTickets - 1 - t; i >= 0; i -= 4) {
        hub.Publish(tickets[static_cast<size_t>(i)], {Ev(i + 1, "task.enqueued")});
      }
    });
  }
  for (auto& th : threads) th.join();
  auto got = Seqs(sub->Take());
  ASSERT_EQ(got.size(), static_cast<size_t>(kTickets));
  for (int i = 0; i < kTickets; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], i + 1);
}

// --------------------------------------------------------------------------- engine

// Passes everything to a real store, but while holding, keeps each batch's callback
// (with the real commit's status) until the test releases it: "durable" is then
// exactly when the test says, and callbacks can run in any order.
class HeldStore final : public ForwardingStore {
 public:
  explicit HeldStore(Store& real) : ForwardingStore(real) {}
  void Hold(bool on) { hold_ = on; }
  // Waits until n callbacks are held (their commits are done).
  bool WaitHeld(size_t n) {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard lock(mu_);
        if (held_.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  // Runs held callback i (in submission order) with its status, or with `override`.
  void Release(size_t i, std::optional<Status> override_status = std::nullopt) {
    std::pair<Status, Done> h;
    {
      std::lock_guard lock(mu_);
      h = held_.at(i);
    }
    if (h.second) h.second(override_status ? *override_status : h.first);
  }

  void Submit(WriteBatch batch, Done done) override {
    if (!hold_) return real_.Submit(std::move(batch), std::move(done));
    real_.Submit(std::move(batch), [this, done = std::move(done)](const Status& s) {
      std::lock_guard lock(mu_);
      held_.emplace_back(s, done);
    });
  }

 private:
  std::atomic<bool> hold_{false};
  std::mutex mu_;
  std::vector<std::pair<Status, Done>> held_;  // guarded by mu_
};

class EngineEventsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }

  void SetUp() override {
    dir_ = MakeTestDir("events-test");
    ASSERT_FALSE(dir_.empty());
    auto opened = OpenTestStore(dir_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    sqlite_ = std::move(opened).value();
    store_ = std::make_unique<HeldStore>(*sqlite_);
    EngineOptions options;
    options.events = &hub_;
    engine_ = std::make_unique<Engine>(*store_, clock_, options);
    ASSERT_TRUE(engine_->Recover().ok());
  }

  void TearDown() override {
    sqlite_->Close();
    engine_.reset();
    store_.reset();
    sqlite_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Enqueue(bool wait = true) {
    auto p = std::make_shared<std::promise<std::string>>();
    auto f = p->get_future();
    NewTask t;
    t.action = "send_mail";
    std::vector<NewTask> v{t};
    engine_->Enqueue(std::move(v), [p](const Status& s, std::vector<EnqueueOutcome> out) {
      p->set_value(s.ok() && out.size() == 1 ? out[0].id : "");
    });
    if (!wait) return "";
    EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return f.get();
  }
  LeasedTask Lease() {
    std::promise<std::vector<LeasedTask>> p;
    LeaseRequest req;
    req.worker = "w1";
    engine_->Lease(req, [&](const Status&, std::vector<LeasedTask> v) { p.set_value(v); });
    auto v = p.get_future().get();
    EXPECT_EQ(v.size(), 1u);
    return v.empty() ? LeasedTask{} : v[0];
  }
  void Heartbeat(const LeasedTask& l, std::string progress) {
    std::promise<Status> p;
    engine_->Heartbeat(l.id, l.lease, std::move(progress),
                       [&](const Status& s, HeartbeatReply) { p.set_value(s); });
    EXPECT_TRUE(p.get_future().get().ok());
  }
  void Complete(const LeasedTask& l) {
    std::promise<Status> p;
    FinishRequest f;
    f.id = l.id;
    f.lease = l.lease;
    f.result = "{}";
    engine_->Finish({f}, [&](const Status& s, std::vector<Result<TaskState>>) { p.set_value(s); });
    EXPECT_TRUE(p.get_future().get().ok());
  }
  std::unique_ptr<EventSubscription> Subscribe(EventFilter filter, int64_t* last_seq) {
    auto ignore_wake = [] {};
    return engine_->Subscribe(std::move(filter), ignore_wake, last_seq);
  }

  std::string dir_;
  FakeClock clock_;
  EventHub hub_;
  std::unique_ptr<SqliteStore> sqlite_;
  std::unique_ptr<HeldStore> store_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineEventsTest, NothingIsCopiedOrPublishedWithoutSubscribers) {
  // Given no subscriber, then a task's whole life reserves no ticket (no copy, no
  // publish); once someone subscribes, the next change does.
  Enqueue();
  LeasedTask l = Lease();
  Heartbeat(l, R"({"pct":50})");
  Complete(l);
  EXPECT_EQ(hub_.reserved(), 0u);
  int64_t last_seq = 0;
  auto sub = Subscribe({}, &last_seq);
  Enqueue();
  EXPECT_EQ(hub_.reserved(), 1u);
  auto got = sub->Take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->seq, last_seq + 1);
}

TEST_F(EngineEventsTest, OneTasksLifeInLedgerOrderWithProgress) {
  // Given a subscriber to everything and one to the task, then the task's events come
  // in ledger order, with the heartbeat's progress between leased and succeeded, and
  // they are the records the store holds.
  int64_t last_seq = 0;
  auto all = Subscribe({}, &last_seq);
  const std::string id = Enqueue();
  EventFilter mine;
  mine.task_id = id;
  int64_t unused = 0;
  auto one = Subscribe(mine, &unused);
  EXPECT_EQ(unused, last_seq + 1);  // the enqueue is before this subscription
  LeasedTask l = Lease();
  Heartbeat(l, R"({"pct":50})");
  Heartbeat(l, "");  // no progress, no event
  Complete(l);
  auto events = all->Take();
  EXPECT_THAT(Kinds(events),
              ElementsAre("task.enqueued", "task.leased", "task.progress", "task.succeeded"));
  EXPECT_THAT(Seqs(events), ElementsAre(last_seq + 1, last_seq + 2, 0, last_seq + 3));
  EXPECT_EQ(events[2]->data, R"({"pct":50})");
  EXPECT_EQ(events[2]->task_id, id);
  auto records = store_->ReadLedger(last_seq, 100);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto& e = events[i < 2 ? i : i + 1];
    EXPECT_EQ(e->kind, (*records)[i].kind);
    EXPECT_EQ(e->task_id, (*records)[i].task_id);
    EXPECT_EQ(e->data, (*records)[i].data);
    EXPECT_EQ(e->ts, (*records)[i].ts);
  }
  EXPECT_THAT(Kinds(one->Take()), ElementsAre("task.leased", "task.progress", "task.succeeded"));
}

TEST_F(EngineEventsTest, PublishedOnlyWhenDurableAndInSubmissionOrder) {
  // Given three enqueues whose commit callbacks are held, then nothing is published
  // before the callbacks run; run last-first, the events still come out in ledger
  // order once the first is released.
  int64_t last_seq = 0;
  auto sub = Subscribe({}, &last_seq);
  store_->Hold(true);
  for (int i = 0; i < 3; ++i) Enqueue(/*wait=*/false);
  ASSERT_TRUE(store_->WaitHeld(3));
  EXPECT_TRUE(sub->Take().empty());  // committed, but the engine was not told yet
  store_->Release(2);
  store_->Release(1);
  EXPECT_TRUE(sub->Take().empty());
  store_->Release(0);
  EXPECT_THAT(Seqs(sub->Take()), ElementsAre(last_seq + 1, last_seq + 2, last_seq + 3));
}

TEST_F(EngineEventsTest, AFailedCommitPublishesNothing) {
  // Given two held enqueues, the first reported failed, then only the second's event
  // is published.
  int64_t last_seq = 0;
  auto sub = Subscribe({}, &last_seq);
  store_->Hold(true);
  Enqueue(false);
  Enqueue(false);
  ASSERT_TRUE(store_->WaitHeld(2));
  store_->Release(0, Status(Code::kInternal, "injected"));
  store_->Release(1);
  EXPECT_THAT(Seqs(sub->Take()), ElementsAre(last_seq + 2));
}

}  // namespace
}  // namespace resonance
