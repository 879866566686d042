#include "worker/reporter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "worker/fake_server_api.h"

namespace resonance::worker {
namespace {

using testing::FakeServerApi;

std::vector<FinishAnswer> All(const std::vector<Finish>& items, Status s) {
  std::vector<FinishAnswer> out;
  for (const auto& f : items) out.push_back(FinishAnswer{f.id, s});
  return out;
}

class ReporterTest : public ::testing::Test {
 protected:
  std::shared_ptr<LeaseState> Lease(Micros from_now) {
    auto l = std::make_shared<LeaseState>();
    l->deadline = clock_.Now() + from_now;
    return l;
  }
  void Done(const std::string& id, const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    done_.emplace_back(id, s.code());
  }
  std::vector<std::pair<std::string, Code>> done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }

  SystemClock clock_;
  FakeServerApi api_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Code>> done_;
};

TEST_F(ReporterTest, RetriesUntilTheServerIsBack) {
  // Given a server that cannot be reached for three tries, then the result lands on the
  // fourth and nothing is given up.
  std::atomic<int> calls{0};
  api_.finish = [&](const std::vector<Finish>& items) {
    return All(items,
               ++calls <= 3 ? Status(Code::kUnavailable, "connection refused") : Status::Ok());
  };
  Reporter reporter(api_, clock_, [this](const std::string& id, const Status& s) { Done(id, s); });
  reporter.Submit(Finish{"t1", "L1", Outcome::Success("{\"r\":1}")}, Lease(30 * kMicrosPerSecond));
  EXPECT_EQ(reporter.Close(clock_.Now() + 10 * kMicrosPerSecond), 0u);
  EXPECT_EQ(calls.load(), 4);
  ASSERT_EQ(api_.delivered().size(), 1u);
  EXPECT_EQ(api_.delivered()[0].outcome.result, "{\"r\":1}");
  EXPECT_EQ(done(), (std::vector<std::pair<std::string, Code>>{{"t1", Code::kOk}}));
}

TEST_F(ReporterTest, GivesUpOnceTheLeaseLapses) {
  // Given a server that stays unreachable, then the item is given up soon after its
  // lease's deadline (the server retries the task), not held forever.
  api_.finish = [](const std::vector<Finish>& items) {
    return All(items, Status(Code::kUnavailable, "down"));
  };
  Reporter reporter(api_, clock_, [this](const std::string& id, const Status& s) { Done(id, s); });
  const Micros start = clock_.Now();
  reporter.Submit(Finish{"t1", "L1", Outcome::Success()}, Lease(400 * kMicrosPerMilli));
  EXPECT_EQ(reporter.Close(clock_.Now() + 30 * kMicrosPerSecond), 1u);
  EXPECT_GE(clock_.Now() - start, 400 * kMicrosPerMilli);
  EXPECT_LT(clock_.Now() - start, 3 * kMicrosPerSecond);
  EXPECT_EQ(done(), (std::vector<std::pair<std::string, Code>>{{"t1", Code::kUnavailable}}));
}

TEST_F(ReporterTest, HastenCutsAClosingFlushShort) {
  // Given an unreachable server and a lease good for 30 s, when the worker is told to
  // hurry (a second SIGTERM), then Close gives up now instead of in 30 s.
  api_.finish = [](const std::vector<Finish>& items) {
    return All(items, Status(Code::kUnavailable, "down"));
  };
  Reporter reporter(api_, clock_, [this](const std::string& id, const Status& s) { Done(id, s); });
  reporter.Submit(Finish{"t1", "L1", Outcome::Success()}, Lease(30 * kMicrosPerSecond));
  std::thread hurry([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    reporter.Hasten(clock_.Now());
  });
  const Micros start = clock_.Now();
  EXPECT_EQ(reporter.Close(clock_.Now() + 30 * kMicrosPerSecond), 1u);
  hurry.join();
  EXPECT_LT(clock_.Now() - start, 2 * kMicrosPerSecond);
}

TEST_F(ReporterTest, StaleLeaseDropsTheItemAndMarksTheLeaseLost) {
  api_.finish = [](const std::vector<Finish>& items) {
    return All(items, Status(Code::kConflict, "stale lease"));
  };
  Reporter reporter(api_, clock_, [this](const std::string& id, const Status& s) { Done(id, s); });
  auto lease = Lease(30 * kMicrosPerSecond);
  reporter.Submit(Finish{"t1", "L1", Outcome::Success()}, lease);
  reporter.Close(clock_.Now() + 5 * kMicrosPerSecond);
  EXPECT_EQ(api_.finish_calls().size(), 1u);
  EXPECT_TRUE(lease->lost);
  EXPECT_EQ(done(), (std::vector<std::pair<std::string, Code>>{{"t1", Code::kConflict}}));
}

TEST_F(ReporterTest, ARefusedResultIsSentAgainAsAValidationFailure) {
  std::atomic<int> calls{0};
  api_.finish = [&](const std::vector<Finish>& items) {
    return All(items, ++calls == 1 ? Status(Code::kTooLarge, "HTTP 413: body over 1048576 bytes")
                                   : Status::Ok());
  };
  Reporter reporter(api_, clock_, [this](const std::string& id, const Status& s) { Done(id, s); });
  reporter.Submit(Finish{"t1", "L1", Outcome::Success("[\"huge\"]")}, Lease(30 * kMicrosPerSecond));
  reporter.Close(clock_.Now() + 5 * kMicrosPerSecond);
  ASSERT_EQ(api_.delivered().size(), 1u);
  const Outcome o = api_.delivered()[0].outcome;
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kValidation);
  EXPECT_EQ(o.message, "the server refused the result: HTTP 413: body over 1048576 bytes");
}

TEST_F(ReporterTest, BatchesWhatQueuesUpMeanwhile) {
  // Given a slow first call, then the ten items submitted during it go out together.
  std::atomic<int> calls{0};
  api_.finish = [&](const std::vector<Finish>& items) {
    if (++calls == 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return All(items, Status::Ok());
  };
  Reporter reporter(api_, clock_, [this](const std::string& id, const Status& s) { Done(id, s); });
  reporter.Submit(Finish{"t0", "L", Outcome::Success()}, Lease(30 * kMicrosPerSecond));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 1; i <= 10; ++i) {
    reporter.Submit(
        Finish{"t" + std::to_string(i), "L", Outcome::Failure(ErrorClass::kTemporary, "x")},
        Lease(30 * kMicrosPerSecond));
  }
  reporter.Close(clock_.Now() + 5 * kMicrosPerSecond);
  auto calls_made = api_.finish_calls();
  ASSERT_EQ(calls_made.size(), 2u);
  EXPECT_EQ(calls_made[0].size(), 1u);
  EXPECT_EQ(calls_made[1].size(), 10u);
  EXPECT_EQ(done().size(), 11u);
}

TEST(FinishBodyTest, CarriesResultOrErrorAsTheApiWantsThem) {
  EXPECT_EQ(FinishBody(Finish{"t", "L", Outcome::Success("{\"a\":1}")}, false),
            R"({"lease":"L","result":{"a":1}})");
  EXPECT_EQ(FinishBody(Finish{"t", "L", Outcome::Success()}, true), R"({"id":"t","lease":"L"})");
  EXPECT_EQ(
      FinishBody(Finish{"t", "L", Outcome::Failure(ErrorClass::kRateLimited, "slow", 2.5)}, false),
      R"({"lease":"L","error":{"class":"rate_limited","message":"slow","retry_after_s":2.5}})");
}

TEST(ParseLeaseReplyTest, ReadsTheTasksWithRawPayloads) {
  auto tasks = ParseLeaseReply(R"({"tasks":[{"id":"0pa3k1x9q2b4c","queue":"q","action":"echo",
    "payload":{"a": [1, 2.50]},"priority":0,"state":"running","attempt":2,"max_attempts":5,"timeout_s":7,
    "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","result":null,"error":null,"lease":"tok",
    "lease_expires_at":"2026-11-22T15:51:02.123456Z","progress":null}]})");
  ASSERT_TRUE(tasks.ok()) << tasks.status().message();
  ASSERT_EQ(tasks->size(), 1u);
  const LeasedTask& t = (*tasks)[0];
  EXPECT_EQ(t.id, "0pa3k1x9q2b4c");
  EXPECT_EQ(t.queue, "q");
  EXPECT_EQ(t.action, "echo");
  EXPECT_EQ(t.payload, "{\"a\": [1, 2.50]}");
  EXPECT_EQ(t.attempt, 2);
  EXPECT_EQ(t.timeout_s, 7);
  EXPECT_EQ(t.lease, "tok");
  EXPECT_EQ(t.lease_expires_at, 1795362662123456LL);
  EXPECT_EQ(ParseLeaseReply(R"({"tasks":[]})")->size(), 0u);
  EXPECT_FALSE(ParseLeaseReply(R"({"tasks":[{"id":"x"}]})").ok());
}

TEST(ParseLeaseReplyTest, ReadsCredentialsInOrder) {
  // Given a lease item with credentials, then each (name, value) is kept; a value that
  // is no string makes the answer unreadable.
  auto tasks = ParseLeaseReply(
      R"({"tasks":[{"id":"a","lease":"L","credentials":{"api.token":"s3\"cret","db":"pw"}}]})");
  ASSERT_TRUE(tasks.ok()) << tasks.status().message();
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ((*tasks)[0].credentials, (Pairs{{"api.token", "s3\"cret"}, {"db", "pw"}}));
  EXPECT_TRUE(ParseLeaseReply(R"({"tasks":[{"id":"a","lease":"L"}]})")->at(0).credentials.empty());
  auto bad = ParseLeaseReply(R"({"tasks":[{"id":"a","lease":"L","credentials":{"x":1}}]})");
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace resonance::worker
