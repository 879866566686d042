#include "supervise/supervisor_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace resonance::supervise {
namespace {

class SupervisorLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("sup-lock-" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SupervisorLockTest, SecondAcquireConflictsNamingHolder) {
  // Given one lock held, then a second on the same dir fails with kConflict naming this
  // pid, and Holder reports it; once released, the dir can be locked again.
  SupervisorLock first;
  ASSERT_TRUE(first.Acquire(dir_).ok());
  const std::string me = std::to_string(::getpid());
  EXPECT_EQ(SupervisorLock::Holder(dir_), ::getpid());
  SupervisorLock second;
  Status s = second.Acquire(dir_);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_NE(s.message().find("pid " + me), std::string::npos) << s.message();
  first.Release();
  EXPECT_EQ(SupervisorLock::Holder(dir_), 0);
  EXPECT_TRUE(second.Acquire(dir_).ok());
}

TEST_F(SupervisorLockTest, StaleFileDoesNotBlock) {
  // Given a lock file left by a dead supervisor (a pid, no flock), then Acquire succeeds
  // and writes this pid.
  std::ofstream(dir_ + "/supervisor.lock") << "999999\n";
  EXPECT_EQ(SupervisorLock::Holder(dir_), 0);
  SupervisorLock lock;
  ASSERT_TRUE(lock.Acquire(dir_).ok());
  std::ifstream f(dir_ + "/supervisor.lock");
  std::string pid;
  f >> pid;
  EXPECT_EQ(pid, std::to_string(::getpid()));
}

}  // namespace
}  // namespace resonance::supervise
