#include "core/time_zone.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <string>

#include "core/posix_tz.h"
#include "core/time_format.h"

namespace resonance {
namespace {

Micros At(const char* rfc3339) {
  std::optional<Micros> t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(0);
}

TimeZone Zone(const char* name) {
  auto z = TimeZone::Load(name);
  EXPECT_TRUE(z.ok()) << z.status().ToString();
  return z.ok() ? *z : TimeZone::Utc();
}

CivilTime Civil(int y, int mo, int d, int h, int mi, int s = 0) {
  CivilTime c;
  c.year = y;
  c.month = mo;
  c.day = d;
  c.hour = h;
  c.minute = mi;
  c.second = s;
  return c;
}

constexpr int32_t kHour = 3600;

TEST(TimeZoneTest, UtcIsAlwaysThere) {
  // Given "UTC" and "Etc/UTC", then both load with offset 0 and keep their names.
  for (const char* name : {"UTC", "Etc/UTC"}) {
    auto z = TimeZone::Load(name);
    ASSERT_TRUE(z.ok()) << z.status().ToString();
    EXPECT_EQ(z->name(), name);
    EXPECT_EQ(z->OffsetAt(At("2026-07-01T12:00:00Z")), 0);
  }
  EXPECT_EQ(TimeZone::Utc().name(), "UTC");
  EXPECT_EQ(TimeZone().name(), "UTC");
}

TEST(TimeZoneTest, RefusesBadAndUnknownNames) {
  // Given names that are unknown, escape the zone directory, or are not zone files,
  // then each is kInvalidArgument and the message names the zone.
  for (const char* name : {"Nowhere/Zone", "../../etc/passwd", "Europe/../UTC", "/etc/localtime",
                           "", "Europe", "zone.tab", "Europe/Berlin ", "Europe\\Berlin"}) {
    auto z = TimeZone::Load(name);
    ASSERT_FALSE(z.ok()) << name;
    EXPECT_EQ(z.status().code(), Code::kInvalidArgument) << name;
    EXPECT_NE(z.status().message().find(std::string("\"") + name + "\""), std::string::npos)
        << z.status().message();
  }
}

TEST(TimeZoneTest, BerlinAround2026Transitions) {
  // Given Berlin, then CET turns to CEST at 2026-03-29 01:00 UTC and back at
  // 2026-10-25 01:00 UTC.
  TimeZone berlin = Zone("Europe/Berlin");
  EXPECT_EQ(berlin.name(), "Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(At("2026-03-29T00:59:59Z")), 1 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2026-03-29T01:00:00Z")), 2 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2026-03-29T01:00:00Z") - 1), 1 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2026-10-25T00:59:59Z")), 2 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2026-10-25T01:00:00Z")), 1 * kHour);
}

TEST(TimeZoneTest, NewYorkAround2026Transitions) {
  // Given New York, then EST turns to EDT at 2026-03-08 07:00 UTC and back at
  // 2026-11-01 06:00 UTC.
  TimeZone ny = Zone("America/New_York");
  EXPECT_EQ(ny.OffsetAt(At("2026-03-08T06:59:59Z")), -5 * kHour);
  EXPECT_EQ(ny.OffsetAt(At("2026-03-08T07:00:00Z")), -4 * kHour);
  EXPECT_EQ(ny.OffsetAt(At("2026-11-01T05:59:59Z")), -4 * kHour);
  EXPECT_EQ(ny.OffsetAt(At("2026-11-01T06:00:00Z")), -5 * kHour);
}

TEST(TimeZoneTest, FarFutureUsesTheFooterRule) {
  // Given 2090, past the last transition in any file, then the POSIX footer gives the
  // transitions: Berlin on 2090-03-26 and 2090-10-29, New York on 2090-03-12 and
  // 2090-11-05.
  TimeZone berlin = Zone("Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(At("2090-01-15T12:00:00Z")), 1 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2090-03-26T00:59:59Z")), 1 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2090-03-26T01:00:00Z")), 2 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2090-10-29T00:59:59Z")), 2 * kHour);
  EXPECT_EQ(berlin.OffsetAt(At("2090-10-29T01:00:00Z")), 1 * kHour);
  TimeZone ny = Zone("America/New_York");
  EXPECT_EQ(ny.OffsetAt(At("2090-03-12T06:59:59Z")), -5 * kHour);
  EXPECT_EQ(ny.OffsetAt(At("2090-03-12T07:00:00Z")), -4 * kHour);
  EXPECT_EQ(ny.OffsetAt(At("2090-11-05T05:59:59Z")), -4 * kHour);
  EXPECT_EQ(ny.OffsetAt(At("2090-11-05T06:00:00Z")), -5 * kHour);
}

TEST(TimeZoneTest, ToCivilGivesLocalWallTime) {
  // Given instants around the Berlin spring-forward, then the wall time jumps from
  // 01:59:59 to 03:00:00 and weekdays are right (2026-03-29 is a Sunday).
  TimeZone berlin = Zone("Europe/Berlin");
  CivilTime c = ToCivil(At("2026-03-29T00:59:59.999Z"), berlin);
  EXPECT_EQ(c.year, 2026);
  EXPECT_EQ(c.month, 3);
  EXPECT_EQ(c.day, 29);
  EXPECT_EQ(c.hour, 1);
  EXPECT_EQ(c.minute, 59);
  EXPECT_EQ(c.second, 59);
  EXPECT_EQ(c.weekday, 0);
  c = ToCivil(At("2026-03-29T01:00:00Z"), berlin);
  EXPECT_EQ(c.hour, 3);
  EXPECT_EQ(c.minute, 0);
  // Before the epoch: 1969-12-31T23:59:59 UTC was a Wednesday.
  c = ToCivil(-1, TimeZone::Utc());
  EXPECT_EQ(c.year, 1969);
  EXPECT_EQ(c.day, 31);
  EXPECT_EQ(c.second, 59);
  EXPECT_EQ(c.weekday, 3);
}

TEST(TimeZoneTest, FromCivilGapMapsWithTheOffsetBeforeTheJump) {
  // Given 02:30 on spring-forward nights (does not exist), then it maps to the instant
  // that reads 03:30 local.
  TimeZone berlin = Zone("Europe/Berlin");
  EXPECT_EQ(FromCivil(Civil(2026, 3, 29, 2, 30), berlin), At("2026-03-29T01:30:00Z"));
  EXPECT_EQ(ToCivil(At("2026-03-29T01:30:00Z"), berlin).hour, 3);
  TimeZone ny = Zone("America/New_York");
  EXPECT_EQ(FromCivil(Civil(2026, 3, 8, 2, 30), ny), At("2026-03-08T07:30:00Z"));
  // Either side of the gap maps plainly.
  EXPECT_EQ(FromCivil(Civil(2026, 3, 29, 1, 59), berlin), At("2026-03-29T00:59:00Z"));
  EXPECT_EQ(FromCivil(Civil(2026, 3, 29, 3, 0), berlin), At("2026-03-29T01:00:00Z"));
}

TEST(TimeZoneTest, FromCivilAmbiguousGivesTheFirst) {
  // Given 02:30 on the Berlin fall-back night (happens at 00:30 and 01:30 UTC) and
  // 01:30 in New York (05:30 and 06:30 UTC), then the first occurrence is returned.
  TimeZone berlin = Zone("Europe/Berlin");
  EXPECT_EQ(FromCivil(Civil(2026, 10, 25, 2, 30), berlin), At("2026-10-25T00:30:00Z"));
  EXPECT_EQ(FromCivil(Civil(2026, 10, 25, 3, 0), berlin), At("2026-10-25T02:00:00Z"));
  TimeZone ny = Zone("America/New_York");
  EXPECT_EQ(FromCivil(Civil(2026, 11, 1, 1, 30), ny), At("2026-11-01T05:30:00Z"));
}

TEST(TimeZoneTest, FromCivilCarriesOutOfRangeFields) {
  // Given fields past their range, then they carry into the next unit.
  TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(FromCivil(Civil(2026, 1, 32, 0, 0), utc), At("2026-02-01T00:00:00Z"));
  EXPECT_EQ(FromCivil(Civil(2026, 13, 1, 0, 0), utc), At("2027-01-01T00:00:00Z"));
  EXPECT_EQ(FromCivil(Civil(2026, 2, 28, 23, 60), utc), At("2026-03-01T00:00:00Z"));
  EXPECT_EQ(FromCivil(Civil(2026, 0, 1, 0, 0), utc), At("2025-12-01T00:00:00Z"));
}

TEST(TimeZoneTest, FromCivilRoundTripsEveryExistingMinute) {
  // Given every fifth minute of 2026 in Berlin and New York, then FromCivil(ToCivil(t))
  // is t except in the second pass of the repeated hour, where it is one hour earlier.
  for (const char* name : {"Europe/Berlin", "America/New_York"}) {
    TimeZone z = Zone(name);
    int repeated = 0;
    for (Micros t = At("2026-01-01T00:00:00Z"); t < At("2027-01-01T00:00:00Z");
         t += 5 * 60 * kMicrosPerSecond) {
      Micros back = FromCivil(ToCivil(t, z), z);
      if (back != t) {
        ASSERT_EQ(back, t - kHour * kMicrosPerSecond) << name << " " << FormatRfc3339(t);
        ++repeated;
      }
    }
    EXPECT_EQ(repeated, 12) << name;
  }
}

// Runs `check` with TZ set to `zone` for glibc, restoring TZ afterwards.
class ScopedTz {
 public:
  explicit ScopedTz(const char* zone) {
    const char* old = std::getenv("TZ");
    if (old != nullptr) old_ = old;
    setenv("TZ", zone, 1);
    tzset();
  }
  ~ScopedTz() {
    if (old_) {
      setenv("TZ", old_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::optional<std::string> old_;
};

TEST(TimeZoneTest, AgreesWithGlibcLocaltime) {
  // Given random instants from 1900 to 2150 in zones with assorted rules (southern
  // hemisphere, half and quarter hours, negative DST, DST on a negative or over-24h
  // time, a skipped day), then ToCivil and OffsetAt agree with glibc's localtime_r.
  // Single-threaded: it sets TZ.
  std::mt19937_64 rng(20261122);
  std::uniform_int_distribution<int64_t> secs(-2'208'988'800LL, 5'680'281'600LL);
  for (const char* name :
       {"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham",
        "America/Sao_Paulo", "Africa/Casablanca", "Europe/Dublin", "America/Nuuk", "Pacific/Apia",
        "Asia/Tehran", "America/St_Johns", "Antarctica/Troll", "America/Santiago",
        "Europe/London"}) {
    TimeZone z = Zone(name);
    ScopedTz tz(name);
    for (int i = 0; i < 3000; ++i) {
      const int64_t s = secs(rng);
      const Micros t = s * kMicrosPerSecond + 123;
      std::time_t tt = static_cast<std::time_t>(s);
      std::tm tm{};
      ASSERT_NE(localtime_r(&tt, &tm), nullptr);
      CivilTime c = ToCivil(t, z);
      ASSERT_EQ(z.OffsetAt(t), tm.tm_gmtoff) << name << " " << FormatRfc3339(t);
      ASSERT_EQ(c.year, tm.tm_year + 1900) << name << " " << FormatRfc3339(t);
      ASSERT_EQ(c.month, tm.tm_mon + 1);
      ASSERT_EQ(c.day, tm.tm_mday);
      ASSERT_EQ(c.hour, tm.tm_hour);
      ASSERT_EQ(c.minute, tm.tm_min);
      ASSERT_EQ(c.second, tm.tm_sec);
      ASSERT_EQ(c.weekday, tm.tm_wday);
    }
  }
}

// Big-endian bytes for a hand-made TZif file.
void Put(std::string& out, int64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A TZif header with the six counts (isutcnt isstdcnt leapcnt timecnt typecnt charcnt).
std::string Header(char version, int timecnt, int typecnt, int charcnt) {
  std::string h = "TZif";
  h.push_back(version);
  h.append(15, '\0');
  for (int v : {0, 0, 0, timecnt, typecnt, charcnt}) Put(h, v, 4);
  return h;
}

TEST(TimeZoneTest, ReadsVersion1Files) {
  // Given a version 1 file with one transition from +01 to +02 at t = 1000 s, then the
  // 32-bit block is used: before it +01, from it on +02 (no footer).
  std::string f = Header('\0', 1, 2, 8);
  Put(f, 1000, 4);
  Put(f, 1, 1);
  for (int off : {3600, 7200}) {
    Put(f, off, 4);
    Put(f, 0, 1);
    Put(f, 0, 1);
  }
  f.append("ABC\0DEF\0", 8);
  auto z = TimeZone::FromTzif("Test/V1", f);
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->OffsetAt(999 * kMicrosPerSecond), 3600);
  EXPECT_EQ(z->OffsetAt(1000 * kMicrosPerSecond), 7200);
  EXPECT_EQ(z->OffsetAt(At("2090-01-01T00:00:00Z")), 7200);
}

TEST(TimeZoneTest, SlimVersion2FileUsesFooterAfterItsOnlyTransition) {
  // Given a slim version 2 file (empty v1 block) whose 64-bit block has one transition
  // in 2000 and a footer with EU rules, then 2026 follows the footer, and instants
  // before the first transition take the first non-DST type (type 1 here; type 0 is
  // DST).
  std::string f = Header('2', 0, 1, 0);
  Put(f, 0, 4);
  Put(f, 0, 1);
  Put(f, 0, 1);
  f += Header('2', 1, 2, 10);
  Put(f, 946'684'800, 8);  // 2000-01-01
  Put(f, 1, 1);
  Put(f, 7200, 4);
  Put(f, 1, 1);
  Put(f, 0, 1);
  Put(f, 3600, 4);
  Put(f, 0, 1);
  Put(f, 5, 1);
  f.append("CEST\0CET\0\0", 10);
  f += "\nCET-1CEST,M3.5.0,M10.5.0/3\n";
  auto z = TimeZone::FromTzif("Test/Slim", f);
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->OffsetAt(At("1999-07-01T00:00:00Z")), 3600);
  EXPECT_EQ(z->OffsetAt(At("2026-03-29T00:59:59Z")), 3600);
  EXPECT_EQ(z->OffsetAt(At("2026-03-29T01:00:00Z")), 7200);
  EXPECT_EQ(z->OffsetAt(At("2026-10-25T01:00:00Z")), 3600);
}

TEST(TimeZoneTest, RefusesMalformedFiles) {
  // Given truncated or inconsistent files, then FromTzif says what is wrong.
  std::string good = Header('\0', 0, 1, 4);
  Put(good, 0, 4);
  Put(good, 0, 1);
  Put(good, 0, 1);
  good.append("UTC\0", 4);
  ASSERT_TRUE(TimeZone::FromTzif("ok", good).ok());
  struct Case {
    std::string bytes;
    const char* why;
  };
  std::string bad_type = Header('\0', 1, 1, 4);
  Put(bad_type, 0, 4);
  Put(bad_type, 3, 1);  // type 3 of 1
  Put(bad_type, 0, 4);
  Put(bad_type, 0, 1);
  Put(bad_type, 0, 1);
  bad_type.append("UTC\0", 4);
  // Version 2: an empty v1 block (one type), then `good` as the 64-bit block.
  std::string bad_footer = Header('2', 0, 1, 0);
  bad_footer.append(6, '\0');
  bad_footer += Header('2', 0, 1, 4) + good.substr(44) + "\nnot a rule\n";
  for (const Case& c :
       {Case{"", "not a TZif file"}, Case{"TZif2", "not a TZif file"},
        Case{good.substr(0, good.size() - 2), "truncated"},
        Case{bad_type, "transition type out of range"}, Case{bad_footer, "bad POSIX TZ footer"}}) {
    auto z = TimeZone::FromTzif("bad", c.bytes);
    ASSERT_FALSE(z.ok()) << c.why;
    EXPECT_NE(z.status().message().find(c.why), std::string::npos) << z.status().message();
  }
}

TEST(PosixTzTest, FixedOffsets) {
  // Given rules without DST, then the offset is constant and POSIX's sign is flipped.
  auto plus = PosixTz::Parse("<+0330>-3:30");
  ASSERT_TRUE(plus.has_value());
  EXPECT_EQ(plus->OffsetAt(0), 3 * kHour + 1800);
  auto minus = PosixTz::Parse("EST5");
  ASSERT_TRUE(minus.has_value());
  EXPECT_EQ(minus->OffsetAt(2'000'000'000), -5 * kHour);
  EXPECT_FALSE(minus->has_dst());
}

int64_t Secs(const char* rfc3339) { return At(rfc3339) / kMicrosPerSecond; }

TEST(PosixTzTest, RuleForms) {
  // Given each rule date form, then the switch happens at the right local time.
  // Mm.w.d with the default 02:00 and the US rule: 2026-03-08 and 2026-11-01.
  auto us = PosixTz::Parse("EST5EDT,M3.2.0,M11.1.0");
  ASSERT_TRUE(us.has_value());
  EXPECT_EQ(us->OffsetAt(Secs("2026-03-08T06:59:59Z")), -5 * kHour);
  EXPECT_EQ(us->OffsetAt(Secs("2026-03-08T07:00:00Z")), -4 * kHour);
  EXPECT_EQ(us->OffsetAt(Secs("2026-11-01T06:00:00Z")), -5 * kHour);
  // A DST name without rules takes the same US default.
  auto def = PosixTz::Parse("EST5EDT");
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->OffsetAt(Secs("2026-07-01T00:00:00Z")), -4 * kHour);
  // Jn never counts Feb 29: J60 is March 1st even in a leap year (2028).
  auto jul = PosixTz::Parse("XST0XDT,J60,J300");
  ASSERT_TRUE(jul.has_value());
  EXPECT_EQ(jul->OffsetAt(Secs("2028-03-01T01:59:59Z")), 0);
  EXPECT_EQ(jul->OffsetAt(Secs("2028-03-01T02:00:00Z")), kHour);
  // n counts Feb 29: day 59 is Feb 29 in 2028 and March 1st in 2027.
  auto zero = PosixTz::Parse("XST0XDT,59,300");
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(zero->OffsetAt(Secs("2028-02-29T02:00:00Z")), kHour);
  EXPECT_EQ(zero->OffsetAt(Secs("2027-02-28T12:00:00Z")), 0);
  EXPECT_EQ(zero->OffsetAt(Secs("2027-03-01T02:00:00Z")), kHour);
  // Negative times (America/Nuuk): "M3.5.0/-1" is the last Sunday of March at -1:00,
  // i.e. Saturday 23:00 at -02, which is 01:00 UTC on Sunday 2026-03-29.
  auto nuuk = PosixTz::Parse("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
  ASSERT_TRUE(nuuk.has_value());
  EXPECT_EQ(nuuk->OffsetAt(Secs("2026-03-29T00:59:59Z")), -2 * kHour);
  EXPECT_EQ(nuuk->OffsetAt(Secs("2026-03-29T01:00:00Z")), -1 * kHour);
  EXPECT_EQ(nuuk->OffsetAt(Secs("2026-10-25T00:59:59Z")), -1 * kHour);
  EXPECT_EQ(nuuk->OffsetAt(Secs("2026-10-25T01:00:00Z")), -2 * kHour);
}

TEST(PosixTzTest, AllYearDstAndSouthernRules) {
  // Given "EST5EDT,0/0,J365/25" (DST all year, RFC 8536 §3.3.1), then it is EDT in
  // every season, also around new year.
  auto all = PosixTz::Parse("EST5EDT,0/0,J365/25");
  ASSERT_TRUE(all.has_value());
  for (const char* t : {"2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z", "2026-07-01T00:00:00Z",
                        "2026-12-31T23:59:59Z", "2028-12-31T12:00:00Z"}) {
    EXPECT_EQ(all->OffsetAt(Secs(t)), -4 * kHour) << t;
  }
  // Sydney: DST from the first Sunday of October to the first Sunday of April.
  auto syd = PosixTz::Parse("AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(syd.has_value());
  EXPECT_EQ(syd->OffsetAt(Secs("2026-01-15T00:00:00Z")), 11 * kHour);
  EXPECT_EQ(syd->OffsetAt(Secs("2026-07-15T00:00:00Z")), 10 * kHour);
  EXPECT_EQ(syd->OffsetAt(Secs("2026-04-04T15:59:59Z")), 11 * kHour);
  EXPECT_EQ(syd->OffsetAt(Secs("2026-04-04T16:00:00Z")), 10 * kHour);
  // Dublin: "negative DST", winter time is the DST part of the rule.
  auto dub = PosixTz::Parse("IST-1GMT0,M10.5.0,M3.5.0/1");
  ASSERT_TRUE(dub.has_value());
  EXPECT_EQ(dub->OffsetAt(Secs("2026-01-15T00:00:00Z")), 0);
  EXPECT_EQ(dub->OffsetAt(Secs("2026-07-15T00:00:00Z")), kHour);
}

TEST(PosixTzTest, RefusesMalformedRules) {
  for (const char* s : {"", "C-1", "CET", "CET-1CEST,M3.5", "CET-1CEST,M13.1.0,M10.5.0", "CET-25",
                        "CET-1CEST,M3.5.0", "CET-1CEST,M3.5.0,M10.5.0/168", "CET-1CEST,J0,J10",
                        "CET-1CEST,366,10", "<>1", "<AB>", "CET-1CEST,M3.6.0,M10.5.0",
                        "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,M3.5.0,M10.5.0x"}) {
    EXPECT_FALSE(PosixTz::Parse(s).has_value()) << s;
  }
}

}  // namespace
}  // namespace resonance
