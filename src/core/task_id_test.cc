#include "core/task_id.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace resonance {
namespace {

constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;

class TaskIdTest : public ::testing::Test {
 protected:
  FakeClock clock_{kT0};
};

TEST_F(TaskIdTest, FormatIsThirteenLowercaseCharacters) {
  // Given an id from the generator, then its text is 13 characters of the alphabet.
  TaskIdGenerator gen(clock_);
  const std::string s = FormatTaskId(gen.Next());
  ASSERT_EQ(s.size(), 13u);
  for (char c : s) {
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) << s;
    EXPECT_EQ(std::string("ilou").find(c), std::string::npos) << s;
  }
}

TEST_F(TaskIdTest, GeneratedIdRoundTrips) {
  // Given an id made at a present-day time (top character above '1'), then parsing
  // its text gives the same number back.
  TaskIdGenerator gen(clock_);
  const TaskId id = gen.Next();
  const std::string text = FormatTaskId(id);
  auto parsed = ParseTaskId(text);
  ASSERT_TRUE(parsed.has_value()) << text;
  EXPECT_EQ(*parsed, id);
}

TEST_F(TaskIdTest, ExtremeIdsRoundTrip) {
  // Given 0, 1, 2^61 and the largest 64-bit id, then each parses back to itself.
  for (TaskId id : {TaskId{0}, TaskId{1}, TaskId{1} << 61, TaskId{31} << 55,
                    std::numeric_limits<TaskId>::max()}) {
    auto parsed = ParseTaskId(FormatTaskId(id));
    ASSERT_TRUE(parsed.has_value()) << FormatTaskId(id);
    EXPECT_EQ(*parsed, id);
  }
  EXPECT_EQ(FormatTaskId(0), "0000000000000");
  EXPECT_EQ(FormatTaskId(std::numeric_limits<TaskId>::max()), "fzzzzzzzzzzzz");
}

TEST_F(TaskIdTest, MalformedIdsRejected) {
  // Given wrong length, characters outside the alphabet, upper case or a value over
  // 64 bits, then ParseTaskId returns nullopt.
  EXPECT_FALSE(ParseTaskId(""));
  EXPECT_FALSE(ParseTaskId("000000000000"));    // 12
  EXPECT_FALSE(ParseTaskId("00000000000000"));  // 14
  EXPECT_FALSE(ParseTaskId("000000000000i"));
  EXPECT_FALSE(ParseTaskId("000000000000l"));
  EXPECT_FALSE(ParseTaskId("000000000000o"));
  EXPECT_FALSE(ParseTaskId("000000000000u"));
  EXPECT_FALSE(ParseTaskId("000000000000A"));
  EXPECT_FALSE(ParseTaskId("000000000000-"));
  EXPECT_FALSE(ParseTaskId(std::string("000000000000\0", 13)));
  EXPECT_FALSE(ParseTaskId("gzzzzzzzzzzzz"));  // 2^64: one bit too many
  EXPECT_FALSE(ParseTaskId("zzzzzzzzzzzzz"));
}

TEST_F(TaskIdTest, IdsIncreaseWhenClockStandsStill) {
  // Given a clock that never moves, then 1000 ids are strictly increasing as numbers
  // and as strings.
  TaskIdGenerator gen(clock_);
  TaskId prev = gen.Next();
  for (int i = 0; i < 1000; ++i) {
    TaskId next = gen.Next();
    ASSERT_GT(next, prev);
    ASSERT_GT(FormatTaskId(next), FormatTaskId(prev));
    prev = next;
  }
}

TEST_F(TaskIdTest, IdsIncreaseWhenClockGoesBack) {
  // Given the clock steps back an hour between ids, then ids still increase.
  TaskIdGenerator gen(clock_);
  const TaskId a = gen.Next();
  clock_.Advance(-3600 * kMicrosPerSecond);
  const TaskId b = gen.Next();
  const TaskId c = gen.Next();
  EXPECT_GT(b, a);
  EXPECT_GT(c, b);
  EXPECT_GT(FormatTaskId(b), FormatTaskId(a));
  EXPECT_GT(FormatTaskId(c), FormatTaskId(b));
}

TEST_F(TaskIdTest, IdsFollowTheClockForward) {
  // Given the clock moves a second forward, then the next id carries the new time.
  TaskIdGenerator gen(clock_);
  const TaskId a = gen.Next();
  clock_.Advance(kMicrosPerSecond);
  const TaskId b = gen.Next();
  EXPECT_EQ(a >> 22, static_cast<TaskId>(kT0 / kMicrosPerMilli));
  EXPECT_EQ(b >> 22, static_cast<TaskId>(kT0 / kMicrosPerMilli + 1000));
}

TEST_F(TaskIdTest, FloorKeepsIdsAboveRecoveredMaximum) {
  // Given a floor far in the future (a recovered id), then new ids are above it, also
  // after RaiseFloor with a higher one, and a lower RaiseFloor does not lower it.
  const TaskId floor = (static_cast<TaskId>(kT0 / kMicrosPerMilli) + 1'000'000) << 22;
  TaskIdGenerator gen(clock_, floor);
  const TaskId a = gen.Next();
  EXPECT_GT(a, floor);
  gen.RaiseFloor(a + 100);
  const TaskId b = gen.Next();
  EXPECT_GT(b, a + 100);
  gen.RaiseFloor(1);
  EXPECT_GT(gen.Next(), b);
}

}  // namespace
}  // namespace resonance
