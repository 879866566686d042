#include "engine/credentials.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "observe/log.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/test_store.h"

namespace resonance {
namespace {

constexpr Micros kSecond = kMicrosPerSecond;
constexpr auto kWaitFor = std::chrono::seconds(10);

CredentialSpec Spec(std::string value, Micros expires_at = 0, std::string refresh_action = "") {
  CredentialSpec s;
  s.name = "api.token";
  s.has_value = true;
  s.value = std::move(value);
  s.expires_at = expires_at;
  s.refresh_action = std::move(refresh_action);
  s.refresh_before = 300 * kSecond;
  return s;
}

TEST(CredentialParsingTest, DurationsTakeSecondsOrOneUnit) {
  EXPECT_EQ(ParseDuration("300"), 300 * kSecond);
  EXPECT_EQ(ParseDuration("1.5"), 1500 * kMicrosPerMilli);
  EXPECT_EQ(ParseDuration("90s"), 90 * kSecond);
  EXPECT_EQ(ParseDuration("5m"), 300 * kSecond);
  EXPECT_EQ(ParseDuration("2h"), 7200 * kSecond);
  EXPECT_EQ(ParseDuration("1d"), 86400 * kSecond);
  EXPECT_EQ(ParseDuration("0"), 0);
  for (const char* bad : {"", "m", "-5", "5 m", "5min", "five", "1e300"}) {
    EXPECT_EQ(ParseDuration(bad), std::nullopt) << bad;
  }
}

TEST(CredentialParsingTest, NamesAreShortAndPlain) {
  EXPECT_TRUE(ValidCredentialName("api.token-2_B"));
  EXPECT_TRUE(ValidCredentialName(std::string(128, 'a')));
  EXPECT_FALSE(ValidCredentialName(std::string(129, 'a')));
  for (const char* bad : {"", "a b", "a/b", "a:b", "ä", "a\nb"}) {
    EXPECT_FALSE(ValidCredentialName(bad)) << bad;
  }
}

TEST(CredentialParsingTest, RefreshIsDueBeforeExpiryButNotBeforeHalfTheLifetime) {
  // Given a lifetime of at least 2 * refresh_before, the refresh is due refresh_before
  // ahead of the expiry; a shorter-lived value is refreshed at half its lifetime.
  EXPECT_EQ(RefreshDueAt(1000 * kSecond, 0, 300 * kSecond), 700 * kSecond);
  EXPECT_EQ(RefreshDueAt(600 * kSecond, 0, 300 * kSecond), 300 * kSecond);
  EXPECT_EQ(RefreshDueAt(60 * kSecond, 0, 300 * kSecond), 30 * kSecond);
  EXPECT_EQ(RefreshDueAt(160 * kSecond, 100 * kSecond, 300 * kSecond), 130 * kSecond);
  EXPECT_EQ(RefreshDueAt(100 * kSecond, 0, 0), 100 * kSecond);
  // An expired value is due at once.
  EXPECT_LE(RefreshDueAt(50 * kSecond, 100 * kSecond, 300 * kSecond), 100 * kSecond);
}

TEST(CredentialParsingTest, ConfigHashCoversValueAndExpiry) {
  const std::string h = CredentialConfigHash("v", 5);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, CredentialConfigHash("v", 5));
  EXPECT_NE(h, CredentialConfigHash("v", 6));
  EXPECT_NE(h, CredentialConfigHash("w", 5));
  EXPECT_EQ(h.find('v'), std::string::npos);
}

class CredentialsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { log::SetLevel(log::Level::kError); }

  void SetUp() override {
    dir_ = MakeTestDir("credentials-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(dir_);
  }

  void Open(std::vector<CredentialSpec> specs) {
    auto opened = OpenTestStore(dir_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    engine_ = std::make_unique<Engine>(*store_, clock_, EngineOptions{});
    ASSERT_TRUE(engine_->Recover().ok());
    credentials_ = std::make_unique<Credentials>(*engine_, *store_, clock_, std::move(specs));
    ASSERT_TRUE(credentials_->Load().ok());
    Sync();
  }
  void Stop() {
    credentials_.reset();
    if (store_) store_->Close();
    engine_.reset();
    store_.reset();
  }
  void Restart(std::vector<CredentialSpec> specs) {
    Stop();
    Open(std::move(specs));
  }
  // Waits until everything submitted so far is durable (twice: a refresh's ledger record
  // is submitted from its enqueue's callback).
  void Sync() {
    for (int i = 0; i < 2; ++i) {
      std::promise<Status> p;
      auto f = p.get_future();
      engine_->Barrier([&p](const Status& s) { p.set_value(s); });
      ASSERT_EQ(f.wait_for(kWaitFor), std::future_status::ready);
      ASSERT_TRUE(f.get().ok());
    }
  }
  Result<CredentialInfo> Put(std::string value, Micros expires_at = 0) {
    std::promise<Result<CredentialInfo>> p;
    auto f = p.get_future();
    credentials_->Put("api.token", {std::move(value), expires_at},
                      [&p](const Status& s, CredentialInfo info) {
                        p.set_value(s.ok() ? Result<CredentialInfo>(std::move(info))
                                           : Result<CredentialInfo>(s));
                      });
    EXPECT_EQ(f.wait_for(kWaitFor), std::future_status::ready);
    return f.get();
  }
  std::string Value() {
    auto v = credentials_->Values({"api.token"});
    return v.empty() ? "" : v[0].second;
  }
  std::vector<Task> RefreshTasks() {
    TaskFilter f;
    f.action = "renew";
    auto tasks = store_->ListTasks(f);
    EXPECT_TRUE(tasks.ok());
    return tasks.ok() ? *tasks : std::vector<Task>{};
  }
  std::vector<std::string> CredentialKinds() {
    auto ledger = store_->ReadLedger(0, 1000);
    std::vector<std::string> out;
    for (const auto& r : *ledger) {
      if (r.kind.rfind("credential.", 0) == 0) out.push_back(r.kind);
    }
    return out;
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Credentials> credentials_;
};

TEST_F(CredentialsTest, RenewedValueOutlivesRestartsUntilTheConfigChanges) {
  // Given config value A, then version 1 holds A.
  Open({Spec("A")});
  EXPECT_EQ(Value(), "A");
  EXPECT_EQ(credentials_->Get("api.token")->version, 1);
  // When B is put, then version 2 holds B, also after a restart with the same config.
  auto put = Put("B", clock_.Now() + 600 * kSecond);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->version, 2);
  Restart({Spec("A")});
  EXPECT_EQ(Value(), "B");
  EXPECT_EQ(credentials_->Get("api.token")->version, 2);
  EXPECT_EQ(credentials_->Get("api.token")->expires_at, clock_.Now() + 600 * kSecond);
  // When the config's value changes to C, then C wins as version 3.
  Restart({Spec("C")});
  EXPECT_EQ(Value(), "C");
  EXPECT_EQ(credentials_->Get("api.token")->version, 3);
  EXPECT_EQ(credentials_->Get("api.token")->expires_at, 0);
  // And a changed expiry alone counts as a change too.
  Restart({Spec("C", clock_.Now() + 60 * kSecond)});
  EXPECT_EQ(credentials_->Get("api.token")->version, 4);
  EXPECT_EQ(CredentialKinds(), (std::vector<std::string>{"credential.updated", "credential.updated",
                                                         "credential.updated", "credential.updated"}));
  auto ledger = store_->ReadLedger(0, 1000);
  ASSERT_TRUE(ledger.ok());
  for (const auto& r : *ledger) {
    EXPECT_EQ(r.data.find("\"A\""), std::string::npos);
    EXPECT_EQ(r.data.find("\"B\""), std::string::npos);
    EXPECT_EQ(r.data.find("\"C\""), std::string::npos);
  }
}

TEST_F(CredentialsTest, RefreshIsEnqueuedAtExpiryMinusRefreshBeforeOncePerVersion) {
  const Micros t0 = clock_.Now();
  Open({Spec("A", t0 + 600 * kSecond, "renew")});
  EXPECT_EQ(credentials_->Get("api.token")->next_refresh_at, t0 + 300 * kSecond);
  EXPECT_EQ(credentials_->Get("api.token")->state, CredentialState::kValid);
  // Given 1 s before the refresh time, then nothing is enqueued.
  clock_.Set(t0 + 299 * kSecond);
  credentials_->Tick();
  Sync();
  EXPECT_TRUE(RefreshTasks().empty());
  // At the refresh time, one task with the name and expiry; ticking again adds none.
  clock_.Set(t0 + 300 * kSecond);
  credentials_->Tick();
  Sync();
  credentials_->Tick();
  Sync();
  auto tasks = RefreshTasks();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].idempotency_key, "credential:api.token:1");
  EXPECT_EQ(tasks[0].queue, "default");
  EXPECT_NE(tasks[0].payload.find("\"credential\":\"api.token\""), std::string::npos);
  EXPECT_EQ(tasks[0].payload.find("\"A\""), std::string::npos);
  auto info = credentials_->Get("api.token");
  EXPECT_EQ(info->state, CredentialState::kExpiring);
  EXPECT_TRUE(info->refresh_scheduled);
  EXPECT_EQ(info->next_refresh_at, 0);
  // After a restart the same version is not refreshed again.
  Restart({Spec("A", t0 + 600 * kSecond, "renew")});
  credentials_->Tick();
  Sync();
  EXPECT_EQ(RefreshTasks().size(), 1u);
  EXPECT_TRUE(credentials_->Get("api.token")->refresh_scheduled);
  // A renewed version gets its own refresh when it is due.
  ASSERT_TRUE(Put("B", clock_.Now() + 600 * kSecond).ok());
  credentials_->Tick();
  Sync();
  EXPECT_EQ(RefreshTasks().size(), 1u);
  clock_.Advance(300 * kSecond);
  credentials_->Tick();
  Sync();
  tasks = RefreshTasks();
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[1].idempotency_key, "credential:api.token:2");
  EXPECT_EQ(CredentialKinds(),
            (std::vector<std::string>{"credential.updated", "credential.refresh_scheduled",
                                      "credential.updated", "credential.refresh_scheduled"}));
  // Past the expiry the state says so; the value is still handed out.
  clock_.Advance(301 * kSecond);
  EXPECT_EQ(credentials_->Get("api.token")->state, CredentialState::kExpired);
  EXPECT_EQ(Value(), "B");
}

TEST_F(CredentialsTest, AShortLivedRenewalIsRefreshedAtHalfItsLifetimeNotAtOnce) {
  // Given refresh_before 300 s and a renewal that lives 60 s, then its refresh is not due
  // at once (which would loop) but after 30 s.
  const Micros t0 = clock_.Now();
  Open({Spec("A", t0 + 600 * kSecond, "renew")});
  ASSERT_TRUE(Put("short", t0 + 60 * kSecond).ok());
  credentials_->Tick();
  Sync();
  EXPECT_TRUE(RefreshTasks().empty());
  EXPECT_EQ(credentials_->Get("api.token")->next_refresh_at, t0 + 30 * kSecond);
  clock_.Set(t0 + 30 * kSecond);
  credentials_->Tick();
  Sync();
  EXPECT_EQ(RefreshTasks().size(), 1u);
}

TEST_F(CredentialsTest, NoRefreshWithoutActionOrExpiry) {
  const Micros t0 = clock_.Now();
  CredentialSpec forever = Spec("F", 0, "renew");
  forever.name = "forever";
  CredentialSpec no_action = Spec("N", t0 + 10 * kSecond);
  no_action.name = "no_action";
  Open({forever, no_action});
  clock_.Advance(3600 * kSecond);
  credentials_->Tick();
  Sync();
  EXPECT_TRUE(RefreshTasks().empty());
  EXPECT_EQ(credentials_->Get("forever")->next_refresh_at, 0);
  EXPECT_EQ(credentials_->Get("forever")->state, CredentialState::kValid);
  EXPECT_EQ(credentials_->Get("no_action")->state, CredentialState::kExpired);
}

TEST_F(CredentialsTest, PutRefusesBadValuesAndDeleteForgets) {
  Open({});
  EXPECT_EQ(Put("").status().code(), Code::kUnprocessable);
  EXPECT_EQ(Put(std::string("a\0b", 3)).status().code(), Code::kUnprocessable);
  EXPECT_EQ(Put(std::string(kMaxCredentialValueBytes + 1, 'x')).status().code(),
            Code::kUnprocessable);
  EXPECT_EQ(Put("v", clock_.Now()).status().code(), Code::kUnprocessable);
  EXPECT_EQ(credentials_->Get("api.token").status().code(), Code::kNotFound);
  EXPECT_EQ(credentials_->Get("a b").status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(Put("v").ok());
  EXPECT_EQ(credentials_->List().size(), 1u);

  std::promise<Status> p;
  credentials_->Delete("api.token", [&p](const Status& s, CredentialInfo) { p.set_value(s); });
  EXPECT_TRUE(p.get_future().get().ok());
  EXPECT_TRUE(credentials_->List().empty());
  EXPECT_TRUE(credentials_->Values({"api.token"}).empty());
  Restart({});
  EXPECT_TRUE(credentials_->List().empty());
  EXPECT_TRUE(credentials_->Values({"api.token"}).empty());
  // A credential made again under the name goes on from the deleted one's version, so
  // its refresh tasks (keyed by name and version) never meet an old key.
  auto again_put = Put("w");
  ASSERT_TRUE(again_put.ok());
  EXPECT_EQ(again_put->version, 2);
  std::promise<Status> gone;
  credentials_->Delete("api.token", [&gone](const Status& s, CredentialInfo) { gone.set_value(s); });
  EXPECT_TRUE(gone.get_future().get().ok());
  Restart({Spec("from config")});
  EXPECT_EQ(credentials_->Get("api.token")->version, 3);
  EXPECT_EQ(Value(), "from config");
  Restart({});
  std::promise<Status> last;
  credentials_->Delete("api.token", [&last](const Status& s, CredentialInfo) { last.set_value(s); });
  EXPECT_TRUE(last.get_future().get().ok());
  std::promise<Status> again;
  credentials_->Delete("api.token", [&again](const Status& s, CredentialInfo) { again.set_value(s); });
  EXPECT_EQ(again.get_future().get().code(), Code::kNotFound);
}

}  // namespace
}  // namespace resonance
