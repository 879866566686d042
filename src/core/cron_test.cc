#include "core/cron.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/civil_days.h"
#include "core/time_format.h"

namespace resonance {
namespace {

constexpr Micros kMinute = 60 * kMicrosPerSecond;

Micros At(const char* rfc3339) {
  std::optional<Micros> t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(0);
}

CronSchedule MustParse(const char* spec, const char* zone = "UTC") {
  auto c = CronSchedule::Parse(spec, zone);
  EXPECT_TRUE(c.ok()) << spec << ": " << c.status().ToString();
  if (!c.ok()) return *CronSchedule::Parse("* * * * *");
  return *c;
}

// The first `n` slots after `from`, as RFC 3339 text.
std::vector<std::string> Slots(const CronSchedule& c, const char* from, int n) {
  std::vector<std::string> out;
  Micros t = At(from);
  for (int i = 0; i < n; ++i) {
    std::optional<Micros> next = c.Next(t);
    if (!next) break;
    out.push_back(FormatRfc3339(*next).substr(0, 19) + "Z");
    t = *next;
  }
  return out;
}

using V = std::vector<std::string>;

TEST(CronTest, StepsListsAndRanges) {
  // Given each field form, then the slots are exactly the listed ones.
  EXPECT_EQ(Slots(MustParse("*/15 * * * *"), "2026-05-01T10:07:00Z", 4),
            (V{"2026-05-01T10:15:00Z", "2026-05-01T10:30:00Z", "2026-05-01T10:45:00Z",
               "2026-05-01T11:00:00Z"}));
  EXPECT_EQ(Slots(MustParse("5,10-12,50-59/4 9 * * *"), "2026-05-01T00:00:00Z", 8),
            (V{"2026-05-01T09:05:00Z", "2026-05-01T09:10:00Z", "2026-05-01T09:11:00Z",
               "2026-05-01T09:12:00Z", "2026-05-01T09:50:00Z", "2026-05-01T09:54:00Z",
               "2026-05-01T09:58:00Z", "2026-05-02T09:05:00Z"}));
  EXPECT_EQ(Slots(MustParse("0 9-17/4 * * *"), "2026-05-01T00:00:00Z", 4),
            (V{"2026-05-01T09:00:00Z", "2026-05-01T13:00:00Z", "2026-05-01T17:00:00Z",
               "2026-05-02T09:00:00Z"}));
  EXPECT_EQ(Slots(MustParse("0 0 */10 * *"), "2026-01-01T00:00:00Z", 4),
            (V{"2026-01-11T00:00:00Z", "2026-01-21T00:00:00Z", "2026-01-31T00:00:00Z",
               "2026-02-01T00:00:00Z"}));
  EXPECT_EQ(Slots(MustParse("0 0 1 */3 *"), "2026-01-01T00:00:00Z", 4),
            (V{"2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z",
               "2027-01-01T00:00:00Z"}));
  // "a/n" runs from a to the end of the range.
  EXPECT_EQ(Slots(MustParse("30/10 * * * *"), "2026-05-01T10:00:00Z", 4),
            (V{"2026-05-01T10:30:00Z", "2026-05-01T10:40:00Z", "2026-05-01T10:50:00Z",
               "2026-05-01T11:30:00Z"}));
  // Blanks around and between fields do not matter.
  EXPECT_EQ(Slots(MustParse("  0\t12  * * *  "), "2026-05-01T00:00:00Z", 1),
            (V{"2026-05-01T12:00:00Z"}));
  EXPECT_EQ(MustParse("  0\t12  * * *  ").spec(), "0\t12  * * *");
}

TEST(CronTest, MonthAndDayNames) {
  // Given names in any case, then they mean their numbers; 7 and SUN are Sunday too.
  // 2026-01-05 is a Monday.
  EXPECT_EQ(Slots(MustParse("0 12 * JAN,jul MON-fri"), "2026-01-08T13:00:00Z", 3),
            (V{"2026-01-09T12:00:00Z", "2026-01-12T12:00:00Z", "2026-01-13T12:00:00Z"}));
  EXPECT_EQ(Slots(MustParse("0 12 * JAN,jul MON-fri"), "2026-01-30T13:00:00Z", 1),
            (V{"2026-07-01T12:00:00Z"}));
  const V sundays = {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"};
  EXPECT_EQ(Slots(MustParse("0 0 * * 0"), "2026-01-01T00:00:00Z", 2), sundays);
  EXPECT_EQ(Slots(MustParse("0 0 * * 7"), "2026-01-01T00:00:00Z", 2), sundays);
  EXPECT_EQ(Slots(MustParse("0 0 * * Sun"), "2026-01-01T00:00:00Z", 2), sundays);
  // 5-7 is Friday, Saturday, Sunday.
  EXPECT_EQ(Slots(MustParse("0 0 * * 5-7"), "2026-01-01T00:00:00Z", 4),
            (V{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
               "2026-01-09T00:00:00Z"}));
  EXPECT_EQ(Slots(MustParse("0 0 1 dec-DEC *"), "2026-01-01T00:00:00Z", 1),
            (V{"2026-12-01T00:00:00Z"}));
}

TEST(CronTest, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // Given both day fields restricted, then either matching is enough: the 13th, and
  // every Friday (2026-02-06 and 2026-02-13 are Fridays).
  EXPECT_EQ(Slots(MustParse("0 0 13 * FRI"), "2026-02-01T00:00:00Z", 4),
            (V{"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z",
               "2026-02-27T00:00:00Z"}));
  EXPECT_EQ(Slots(MustParse("0 0 13 * FRI"), "2026-03-07T00:00:00Z", 2),
            (V{"2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z"}));
  // Given one of them "*", then only the other counts.
  EXPECT_EQ(Slots(MustParse("0 0 13 * *"), "2026-02-01T00:00:00Z", 2),
            (V{"2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"}));
  EXPECT_EQ(Slots(MustParse("0 0 * * FRI"), "2026-02-07T00:00:00Z", 1),
            (V{"2026-02-13T00:00:00Z"}));
  // "*/2" restricts: odd days or Mondays (2026-02-02 is a Monday).
  EXPECT_EQ(Slots(MustParse("0 0 */2 * MON"), "2026-02-01T00:00:00Z", 3),
            (V{"2026-02-02T00:00:00Z", "2026-02-03T00:00:00Z", "2026-02-05T00:00:00Z"}));
}

TEST(CronTest, MacrosMeanTheirExpansion) {
  // Given each macro, then its slots are those of its five-field expansion.
  const std::pair<const char*, const char*> kCases[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},
  };
  for (const auto& [macro, fields] : kCases) {
    EXPECT_EQ(Slots(MustParse(macro, "Europe/Berlin"), "2026-03-20T05:06:07Z", 5),
              Slots(MustParse(fields, "Europe/Berlin"), "2026-03-20T05:06:07Z", 5))
        << macro;
  }
  EXPECT_EQ(Slots(MustParse("@weekly"), "2026-01-01T00:00:00Z", 1), (V{"2026-01-04T00:00:00Z"}));
}

TEST(CronTest, EveryIsAlignedToTheEpoch) {
  // Given "@every 5m", then slots are multiples of 5 minutes since the epoch, whatever
  // the start; Previous of a slot is the slot itself.
  CronSchedule c = MustParse("@every 5m");
  EXPECT_EQ(c.every(), 5 * kMinute);
  EXPECT_EQ(c.Next(At("2026-05-01T10:07:30Z")), At("2026-05-01T10:10:00Z"));
  EXPECT_EQ(c.Next(At("2026-05-01T10:10:00Z")), At("2026-05-01T10:15:00Z"));
  EXPECT_EQ(c.Previous(At("2026-05-01T10:10:00Z")), At("2026-05-01T10:10:00Z"));
  EXPECT_EQ(c.Previous(At("2026-05-01T10:09:59.999999Z")), At("2026-05-01T10:05:00Z"));
  // 1h30m = 5400 s: slots at multiples of 5400 s, also before the epoch.
  CronSchedule ninety = MustParse("@every 1h30m");
  for (Micros t : {At("2026-05-01T10:07:30Z"), Micros{-7'000'000'123}, Micros{0}}) {
    Micros next = *ninety.Next(t);
    EXPECT_EQ(FloorMod(next, 5400 * kMicrosPerSecond), 0);
    EXPECT_GT(next, t);
    EXPECT_LE(next - t, 5400 * kMicrosPerSecond);
  }
  // The zone does not apply: "@every 1d" in Berlin fires at 00:00 UTC.
  CronSchedule day = MustParse("@every 1d", "Europe/Berlin");
  EXPECT_EQ(day.Next(At("2026-07-01T12:00:00Z")), At("2026-07-02T00:00:00Z"));
  EXPECT_EQ(day.time_zone(), "Europe/Berlin");
  EXPECT_EQ(MustParse("@every 2d").Next(0), 2 * kSecondsPerDay * kMicrosPerSecond);
  EXPECT_EQ(MustParse("@every 30s").Next(1), 30 * kMicrosPerSecond);
  EXPECT_EQ(MustParse("@every 1m30s").every(), 90 * kMicrosPerSecond);
  // A cron spec has no period and @every matches no wall time.
  EXPECT_EQ(MustParse("* * * * *").every(), 0);
  EXPECT_FALSE(c.Matches(CivilTime{}));
}

TEST(CronTest, BerlinDstDays) {
  // Given "30 2 * * *" in Berlin, then on spring-forward day (02:30 does not exist) it
  // runs once at 03:30 CEST (01:30 UTC), and on fall-back day (02:30 happens twice)
  // once at the first 02:30 (00:30 UTC).
  CronSchedule c = MustParse("30 2 * * *", "Europe/Berlin");
  EXPECT_EQ(Slots(c, "2026-03-27T12:00:00Z", 3),
            (V{"2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"}));
  EXPECT_EQ(Slots(c, "2026-10-23T12:00:00Z", 3),
            (V{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}));
  // Given "0 * * * *", then the missing 02:00 lands on 03:00 CEST (one slot), and the
  // repeated 02:00 fires once: no slot at 01:00 UTC on 2026-10-25.
  CronSchedule hourly = MustParse("0 * * * *", "Europe/Berlin");
  EXPECT_EQ(Slots(hourly, "2026-03-28T22:30:00Z", 4),
            (V{"2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z",
               "2026-03-29T02:00:00Z"}));
  EXPECT_EQ(Slots(hourly, "2026-10-24T22:30:00Z", 4),
            (V{"2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z",
               "2026-10-25T03:00:00Z"}));
  EXPECT_EQ(hourly.Previous(At("2026-10-25T01:59:00Z")), At("2026-10-25T00:00:00Z"));
}

TEST(CronTest, NewYorkDstDays) {
  // Given "30 2 * * *" in New York, then 2026-03-08 02:30 (nonexistent) runs at 03:30
  // EDT (07:30 UTC); on 2026-11-01 02:30 exists once (the repeated hour is 01:00).
  CronSchedule c = MustParse("30 2 * * *", "America/New_York");
  EXPECT_EQ(Slots(c, "2026-03-07T00:00:00Z", 3),
            (V{"2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"}));
  EXPECT_EQ(Slots(c, "2026-10-31T00:00:00Z", 2),
            (V{"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z"}));
  CronSchedule hourly = MustParse("0 * * * *", "America/New_York");
  EXPECT_EQ(Slots(hourly, "2026-11-01T03:30:00Z", 4),
            (V{"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z",
               "2026-11-01T08:00:00Z"}));
  EXPECT_EQ(Slots(hourly, "2026-03-08T05:30:00Z", 3),
            (V{"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}));
}

TEST(CronTest, ImpossibleSpecsHaveNoSlot) {
  // Given days that never exist, then Next and Previous are nullopt (searched 5 years).
  for (const char* spec : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 *"}) {
    CronSchedule c = MustParse(spec, "Europe/Berlin");
    EXPECT_FALSE(c.Next(At("2026-01-01T00:00:00Z")).has_value()) << spec;
    EXPECT_FALSE(c.Previous(At("2026-01-01T00:00:00Z")).has_value()) << spec;
  }
  // Feb 29 is rare but within reach: 2028 forward, 2024 back.
  CronSchedule leap = MustParse("0 0 29 2 *");
  EXPECT_EQ(leap.Next(At("2026-01-01T00:00:00Z")), At("2028-02-29T00:00:00Z"));
  EXPECT_EQ(leap.Previous(At("2026-01-01T00:00:00Z")), At("2024-02-29T00:00:00Z"));
  // Past year 9999 nothing is searched.
  EXPECT_FALSE(MustParse("* * * * *").Next(At("9999-12-31T23:59:00Z")).has_value());
}

// Every slot of `c` between local days around [from, to), by scanning each local
// minute with Matches and mapping it with FromCivil: independent of Next's day and
// hour skipping.
std::vector<Micros> BruteForceSlots(const CronSchedule& c, const TimeZone& tz, Micros from,
                                    Micros to) {
  const CivilTime a = ToCivil(from, tz);
  const CivilTime b = ToCivil(to, tz);
  std::set<Micros> slots;
  for (int64_t d = DaysFromCivil(a.year, a.month, a.day) - 1;
       d <= DaysFromCivil(b.year, b.month, b.day) + 1; ++d) {
    const CivilDate date = CivilFromDays(d);
    for (int minute = 0; minute < 24 * 60; ++minute) {
      CivilTime local;
      local.year = static_cast<int>(date.year);
      local.month = date.month;
      local.day = date.day;
      local.hour = minute / 60;
      local.minute = minute % 60;
      if (c.Matches(local)) slots.insert(FromCivil(local, tz));
    }
  }
  return {slots.begin(), slots.end()};
}

TEST(CronTest, NextAndPreviousMatchBruteForce) {
  // Given assorted specs and zones over windows around DST changes (Lord Howe's are half
  // an hour: its spring gap maps 02:15 to after 02:30), then for random
  // instants Next is the first brute-forced slot after t, Previous the last at or
  // before t, Previous(Next(t)) == Next(t) and no slot lies strictly between them.
  const char* kSpecs[] = {"* * * * *",      "*/7 3-5 * * *",       "30 2 * * *",   "0 * * * *",
                          "15 1,2,3 * * 0", "59 23 * * *",         "0 0 * * *",    "0 12 13 * 5",
                          "*/20 0-3 * * *", "0,30 * 28-31 3,10 *", "15,30 2 * * *"};
  struct Window {
    const char* zone;
    const char* from;
  };
  const Window kWindows[] = {
      {"UTC", "2026-02-25T00:00:00Z"},
      {"Europe/Berlin", "2026-03-26T00:00:00Z"},
      {"Europe/Berlin", "2026-10-22T00:00:00Z"},
      {"America/New_York", "2026-03-05T00:00:00Z"},
      {"America/New_York", "2026-10-29T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-02T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-10-01T00:00:00Z"},
      {"America/Santiago", "2026-09-03T00:00:00Z"},
      {"Europe/Berlin", "2090-03-23T00:00:00Z"},
  };
  std::mt19937_64 rng(7);
  for (const Window& w : kWindows) {
    TimeZone tz = *TimeZone::Load(w.zone);
    const Micros from = At(w.from);
    const Micros to = from + 6 * kSecondsPerDay * kMicrosPerSecond;
    std::uniform_int_distribution<Micros> pick(from + kSecondsPerDay * kMicrosPerSecond,
                                               to - kSecondsPerDay * kMicrosPerSecond);
    for (const char* spec : kSpecs) {
      CronSchedule c = MustParse(spec, w.zone);
      const std::vector<Micros> slots = BruteForceSlots(c, tz, from, to);
      for (int i = 0; i < 200; ++i) {
        // Half the probes sit exactly on a minute, where off-by-one errors live.
        Micros t = pick(rng);
        if (i % 2 == 0) t -= FloorMod(t, kMinute);
        auto after = std::upper_bound(slots.begin(), slots.end(), t);
        std::optional<Micros> next = c.Next(t);
        const std::string where = std::string(spec) + " in " + w.zone + " at " + FormatRfc3339(t);
        if (after != slots.end() && *after < to - kSecondsPerDay * kMicrosPerSecond / 2) {
          ASSERT_TRUE(next.has_value()) << where;
          ASSERT_EQ(FormatRfc3339(*next), FormatRfc3339(*after)) << where;
          ASSERT_EQ(c.Previous(*next), next) << where;
        } else if (next) {
          ASSERT_GE(*next, to - kSecondsPerDay * kMicrosPerSecond / 2) << where;
        }
        if (after != slots.begin() &&
            *std::prev(after) > from + kSecondsPerDay * kMicrosPerSecond / 2) {
          std::optional<Micros> prev = c.Previous(t);
          ASSERT_TRUE(prev.has_value()) << where;
          ASSERT_EQ(FormatRfc3339(*prev), FormatRfc3339(*std::prev(after))) << where;
        }
      }
    }
  }
}

TEST(CronTest, NextNeverSkipsASlotOnAMinuteScan) {
  // Given a UTC minute scan as the plainest oracle, then walking Next from the start
  // visits exactly the minutes whose wall time matches.
  for (const char* spec : {"*/13 */5 * * *", "0 0 13 * FRI", "7 7 7 7 *", "0 0 * * 1-5"}) {
    CronSchedule c = MustParse(spec);
    const Micros from = At("2026-07-05T00:00:00Z");
    const Micros to = from + 20 * kSecondsPerDay * kMicrosPerSecond;
    std::vector<Micros> scanned;
    for (Micros t = from + kMinute; t < to; t += kMinute) {
      if (c.Matches(ToCivil(t, TimeZone::Utc()))) scanned.push_back(t);
    }
    std::vector<Micros> walked;
    for (std::optional<Micros> t = c.Next(from); t && *t < to; t = c.Next(*t)) walked.push_back(*t);
    EXPECT_EQ(walked, scanned) << spec;
    EXPECT_FALSE(walked.empty()) << spec;
  }
}

TEST(CronTest, BadSpecsSayWhatIsWrong) {
  // Given malformed specs, then Parse is kInvalidArgument and the message names the
  // field or token.
  const std::pair<const char*, const char*> kCases[] = {
      {"", "expected 5 fields"},
      {"   ", "expected 5 fields"},
      {"* * * *", "has 4 fields"},
      {"* * * * * *", "has 6 fields"},
      {"60 * * * *", "minute field \"60\": \"60\" is out of range 0-59"},
      {"* 24 * * *", "hour field \"24\""},
      {"* * 0 * *", "day-of-month field \"0\": \"0\" is out of range 1-31"},
      {"* * 32 * *", "day-of-month field"},
      {"* * * 13 *", "month field \"13\": \"13\" is out of range 1-12 or JAN-DEC"},
      {"* * * * 8", "day-of-week field \"8\": \"8\" is out of range 0-7 or SUN-SAT"},
      {"*/0 * * * *", "\"*/0\" has a bad step"},
      {"*/60 * * * *", "\"*/60\" has a bad step"},
      {"*/ * * * *", "has a bad step"},
      {"5-1 * * * *", "\"5-1\" is a range that ends before it starts"},
      {"1,,2 * * * *", "is empty"},
      {"1, * * * *", "is empty"},
      {"a * * * *", "minute field \"a\": \"a\" is not a value in 0-59"},
      {"-1 * * * *", "minute field \"-1\""},
      {"1-2-3 * * * *", "\"2-3\" is not a value"},
      {"* * * FOO *", "\"FOO\" is not a value in 1-12 or JAN-DEC"},
      {"* * * * MON-FOO", "\"FOO\" is not a value in 0-7 or SUN-SAT"},
      {"* * * * JAN", "day-of-week field \"JAN\""},
      {"* * * MON *", "month field \"MON\""},
      {"0 JAN * * *", "hour field \"JAN\""},
      {"1.5 * * * *", "minute field \"1.5\""},
      {"? * * * *", "minute field \"?\""},
      {"@reboot", "unknown macro \"@reboot\""},
      {"@daily 5", "macro @daily takes no fields"},
      {"@every", "expected \"@every <duration>\""},
      {"@every 1h 5m", "expected \"@every <duration>\""},
      {"@every 0s", "\"0s\" is shorter than 1s"},
      {"@every 5", "\"5\" has a number without a unit"},
      {"@every 5x", "unknown unit 'x'"},
      {"@every h", "\"h\" is not a sum of <number><unit>"},
      {"@every 4000d", "is longer than 3650d"},
      {"@every 9999999999999s", "is not a sum"},
  };
  for (const auto& [spec, why] : kCases) {
    auto c = CronSchedule::Parse(spec);
    ASSERT_FALSE(c.ok()) << spec;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << spec;
    EXPECT_NE(c.status().message().find(why), std::string::npos)
        << spec << " -> " << c.status().message();
  }
  // An unknown zone is refused too, for @every as well.
  for (const char* spec : {"* * * * *", "@every 5m"}) {
    auto c = CronSchedule::Parse(spec, "Mars/Olympus_Mons");
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find("Mars/Olympus_Mons"), std::string::npos);
  }
}

TEST(CronTest, KeepsSpecAndZone) {
  CronSchedule c = MustParse("@hourly", "America/New_York");
  EXPECT_EQ(c.spec(), "@hourly");
  EXPECT_EQ(c.time_zone(), "America/New_York");
  EXPECT_EQ(MustParse("* * * * *").time_zone(), "UTC");
}

}  // namespace
}  // namespace resonance
