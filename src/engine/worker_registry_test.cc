#include "engine/worker_registry.h"

#include <gtest/gtest.h>

namespace resonance {
namespace {

constexpr Micros kLostAfter = 15 * kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;

WorkerRegistration Reg(const std::string& name, int64_t pid) {
  WorkerRegistration r;
  r.name = name;
  r.pid = pid;
  r.pool = "rpa";
  return r;
}

TEST(WorkerRegistryTest, SameNameFromAnotherPidIsRefusedWhileAlive) {
  // Given w1 registered by pid 1, then pid 2 is refused until w1 has been silent for
  // lost_after, and the same pid may register again at any time.
  WorkerRegistry reg(kLostAfter);
  uint32_t w = 0;
  ASSERT_TRUE(reg.Register(Reg("w1", 1), kT0, &w).ok());
  EXPECT_EQ(reg.Register(Reg("w1", 2), kT0 + kMicrosPerSecond, &w).code(), Code::kConflict);
  EXPECT_TRUE(reg.Register(Reg("w1", 1), kT0 + kMicrosPerSecond, &w).ok());
  EXPECT_TRUE(reg.Register(Reg("w1", 2), kT0 + kMicrosPerSecond + kLostAfter, &w).ok());
}

TEST(WorkerRegistryTest, SilentRegisteredWorkersAreMarkedLostOnce) {
  // Given a registered worker and one that only leased, when both stay silent past
  // lost_after, then only the registered one is marked lost, and only once.
  WorkerRegistry reg(kLostAfter);
  uint32_t w = 0;
  ASSERT_TRUE(reg.Register(Reg("w1", 1), kT0, &w).ok());
  const uint32_t leaser = reg.Intern("leaser");
  reg.Touch(leaser, kT0);
  EXPECT_TRUE(reg.MarkLost(kT0 + kLostAfter - 1).empty());
  EXPECT_EQ(reg.MarkLost(kT0 + kLostAfter), std::vector<uint32_t>{w});
  EXPECT_TRUE(reg.MarkLost(kT0 + 2 * kLostAfter).empty());
  EXPECT_EQ(reg.Heartbeat("w1", kT0 + 2 * kLostAfter).code(), Code::kNotFound);
}

TEST(WorkerRegistryTest, HeartbeatsKeepAWorkerActive) {
  // Given a worker that heartbeats every 10 s, then it is never marked lost.
  WorkerRegistry reg(kLostAfter);
  uint32_t w = 0;
  ASSERT_TRUE(reg.Register(Reg("w1", 1), kT0, &w).ok());
  for (int i = 1; i <= 10; ++i) {
    const Micros now = kT0 + i * 10 * kMicrosPerSecond;
    ASSERT_TRUE(reg.Heartbeat("w1", now).ok());
    EXPECT_TRUE(reg.MarkLost(now + kMicrosPerSecond).empty());
  }
  EXPECT_EQ(reg.List().front().status, WorkerStatus::kActive);
}

TEST(WorkerRegistryTest, DeregisteredWorkerIsGoneAndUnknownIsNotFound) {
  // Given w1 deregisters, then it is listed gone, heartbeats get kNotFound, and
  // deregistering a name never seen gets kNotFound.
  WorkerRegistry reg(kLostAfter);
  uint32_t w = 0;
  ASSERT_TRUE(reg.Register(Reg("w1", 1), kT0, &w).ok());
  ASSERT_TRUE(reg.Deregister("w1", kT0 + 1, &w).ok());
  EXPECT_EQ(reg.List().front().status, WorkerStatus::kGone);
  EXPECT_EQ(reg.Heartbeat("w1", kT0 + 2).code(), Code::kNotFound);
  EXPECT_EQ(reg.Deregister("ghost", kT0 + 2, &w).code(), Code::kNotFound);
}

}  // namespace
}  // namespace resonance
