#include "core/time_format.h"

#include <gtest/gtest.h>

#include <string>

namespace resonance {
namespace {

// 2023-11-14T22:13:20Z
constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;

TEST(TimeFormatTest, FormatsUtcWithMicroseconds) {
  // Given a time with a fraction, then it is written in UTC with six fraction digits.
  EXPECT_EQ(FormatRfc3339(kT0 + 123'456), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatRfc3339(kT0 + 7), "2023-11-14T22:13:20.000007Z");
}

TEST(TimeFormatTest, FormatsTimesBeforeTheEpoch) {
  // Given one microsecond before the epoch, then the fraction is not negative.
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(TimeFormatTest, AppendAddsToExistingText) {
  // Given a buffer with text, then AppendRfc3339 appends after it.
  std::string out = "at ";
  AppendRfc3339(out, kT0);
  EXPECT_EQ(out, "at 2023-11-14T22:13:20.000000Z");
}

TEST(TimeFormatTest, RoundTrips) {
  // Given assorted times (leap day, end of year, before the epoch), then parsing the
  // formatted text gives the same time.
  for (Micros t : {Micros{0}, kT0, kT0 + 999'999, Micros{-1}, Micros{951'782'400'000'001},
                   Micros{1'735'689'599'999'999}, Micros{4'102'444'800'000'000}}) {
    auto parsed = ParseRfc3339(FormatRfc3339(t));
    ASSERT_TRUE(parsed.has_value()) << FormatRfc3339(t);
    EXPECT_EQ(*parsed, t) << FormatRfc3339(t);
  }
}

TEST(TimeFormatTest, ParsesWithoutFractionAndLowercase) {
  // Given no fraction, or lowercase t and z, or a space separator, then the same time.
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20Z"), kT0);
  EXPECT_EQ(ParseRfc3339("2023-11-14t22:13:20z"), kT0);
  EXPECT_EQ(ParseRfc3339("2023-11-14 22:13:20Z"), kT0);
}

TEST(TimeFormatTest, ParsesShortAndLongFractions) {
  // Given one fraction digit, then tenths; given nine digits, then truncated to micros.
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.5Z"), kT0 + 500'000);
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.123456789Z"), kT0 + 123'456);
}

TEST(TimeFormatTest, ParsesNumericOffsets) {
  // Given +01:00, -05:30 and +00:00 offsets naming the same instant, then all equal kT0.
  EXPECT_EQ(ParseRfc3339("2023-11-14T23:13:20+01:00"), kT0);
  EXPECT_EQ(ParseRfc3339("2023-11-14T16:43:20-05:30"), kT0);
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20+00:00"), kT0);
  EXPECT_EQ(ParseRfc3339("2023-11-15T00:13:20.25+02:00"), kT0 + 250'000);
}

TEST(TimeFormatTest, RejectsGarbage) {
  // Given malformed text, then nullopt.
  for (const char* bad : {
           "",
           "garbage",
           "2023-11-14",
           "2023-11-14T22:13:20",         // no zone
           "2023-11-14T22:13:20.Z",       // empty fraction
           "2023-11-14T22:13:20+0100",    // offset without colon
           "2023-11-14T22:13:20+01",      // offset cut short
           "2023-11-14T22:13:20Zjunk",    // trailing text
           "2023-11-14T22:13:20Z ",       // trailing space
           "2023-13-14T22:13:20Z",        // month 13
           "2023-00-14T22:13:20Z",        // month 0
           "2023-11-00T22:13:20Z",        // day 0
           "2023-11-32T22:13:20Z",        // day 32
           "2023-11-14T24:13:20Z",        // hour 24
           "2023-11-14T22:60:20Z",        // minute 60
           "2023-11-14X22:13:20Z",        // bad separator
           "2023/11/14T22:13:20Z",
           "20231114T221320Z",
           "2023-11-14T22:13:2aZ",
           "+023-11-14T22:13:20Z",
       }) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
}

TEST(TimeFormatTest, RejectsDaysPastTheEndOfTheMonth) {
  // Given a day the month does not have (Feb 30, Apr 31, Feb 29 of a common year),
  // then nullopt: the header promises nullopt on any malformed input.
  EXPECT_FALSE(ParseRfc3339("2023-02-30T00:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2023-04-31T00:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2023-02-29T00:00:00Z").has_value());
  // A leap day is fine.
  EXPECT_TRUE(ParseRfc3339("2024-02-29T00:00:00Z").has_value());
}

TEST(TimeFormatTest, RejectsOutOfRangeOffsets) {
  // Given an offset hour above 23 or minute above 59 (RFC 3339 time-numoffset), then
  // nullopt rather than a time shifted by a day or more.
  EXPECT_FALSE(ParseRfc3339("2023-11-14T22:13:20+24:00").has_value());
  EXPECT_FALSE(ParseRfc3339("2023-11-14T22:13:20+99:00").has_value());
  EXPECT_FALSE(ParseRfc3339("2023-11-14T22:13:20-01:60").has_value());
  EXPECT_TRUE(ParseRfc3339("2023-11-14T22:13:20+23:59").has_value());
}

}  // namespace
}  // namespace resonance
