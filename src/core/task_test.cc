#include "core/task.h"

#include <gtest/gtest.h>

#include <string>

#include "core/status.h"

namespace resonance {
namespace {

constexpr TaskState kAllStates[] = {
    TaskState::kPendingApproval, TaskState::kScheduled, TaskState::kReady,
    TaskState::kRunning,         TaskState::kSucceeded, TaskState::kDead,
    TaskState::kCancelled,       TaskState::kRejected,
};

TEST(TaskStateTest, NamesRoundTrip) {
  // Given every state, then parsing its name gives it back.
  for (TaskState s : kAllStates) {
    auto parsed = ParseTaskState(TaskStateName(s));
    ASSERT_TRUE(parsed.has_value()) << TaskStateName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_STREQ(TaskStateName(TaskState::kPendingApproval), "pending_approval");
  EXPECT_STREQ(TaskStateName(TaskState::kSucceeded), "succeeded");
}

TEST(TaskStateTest, UnknownNamesRejected) {
  // Given unknown, differently cased or padded names, then nullopt.
  EXPECT_FALSE(ParseTaskState(""));
  EXPECT_FALSE(ParseTaskState("unknown"));
  EXPECT_FALSE(ParseTaskState("Ready"));
  EXPECT_FALSE(ParseTaskState("ready "));
  EXPECT_FALSE(ParseTaskState("done"));
}

TEST(TaskStateTest, TerminalStates) {
  // Given each state, then only succeeded, dead, cancelled and rejected are terminal.
  for (TaskState s : kAllStates) {
    const bool terminal = s == TaskState::kSucceeded || s == TaskState::kDead ||
                          s == TaskState::kCancelled || s == TaskState::kRejected;
    EXPECT_EQ(IsTerminal(s), terminal) << TaskStateName(s);
  }
}

TEST(ErrorClassTest, NamesRoundTrip) {
  // Given every error class, then parsing its name gives it back.
  for (int i = 0; i < kErrorClassCount; ++i) {
    const auto c = static_cast<ErrorClass>(i);
    auto parsed = ParseErrorClass(ErrorClassName(c));
    ASSERT_TRUE(parsed.has_value()) << ErrorClassName(c);
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_STREQ(ErrorClassName(ErrorClass::kRateLimited), "rate_limited");
  EXPECT_STREQ(ErrorClassName(ErrorClass::kTimeout), "timeout");
}

TEST(ErrorClassTest, UnknownNamesRejected) {
  // Given unknown or differently cased names, then nullopt.
  EXPECT_FALSE(ParseErrorClass(""));
  EXPECT_FALSE(ParseErrorClass("Temporary"));
  EXPECT_FALSE(ParseErrorClass("fatal"));
  EXPECT_FALSE(ParseErrorClass("rate-limited"));
}

TEST(StatusTest, OkAndErrors) {
  // Given an ok and an error Status, then ok(), code and ToString say so.
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  Status s(Code::kConflict, "stale lease");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.ToString(), "conflict: stale lease");
  EXPECT_STREQ(CodeName(Code::kTooLarge), "payload_too_large");
}

TEST(StatusTest, ResultHoldsValueOrStatus) {
  // Given a Result from a value and one from a Status, then ok() tells them apart.
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(Code::kNotFound, "no task");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace resonance
