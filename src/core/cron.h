#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"
#include "core/time_zone.h"

namespace resonance {

// A schedule spec. Immutable value, thread-safe. Forms:
//
// - 5-field cron "minute hour day-of-month month day-of-week", fields separated by
//   blanks. Each field is "*" or a comma list of items; an item is a value, a range
//   "a-b" (a <= b), or either of those or "*" with a step "/n" (n >= 1; "a/n" means
//   "a-max/n"). Ranges: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or
//   JAN-DEC, day-of-week 0-7 or SUN-SAT (0 and 7 are Sunday). Names are
//   case-insensitive and may be range ends ("MON-FRI").
//   Day rule (as Vixie cron): when both day-of-month and day-of-week are restricted a
//   day matches if EITHER matches ("0 0 1 * MON" = the 1st and every Monday); when one
//   of them is "*" only the other one counts. A field counts as restricted unless it is
//   exactly "*" ("*/2" restricts, as in most modern implementations).
// - Macros: @yearly = @annually = "0 0 1 1 *", @monthly = "0 0 1 * *",
//   @weekly = "0 0 * * 0", @daily = @midnight = "0 0 * * *", @hourly = "0 * * * *".
// - "@every D" with D a sum of <number><unit>, unit d, h, m or s (30s, 5m, 1h30m, 2d),
//   from 1s to 3650d. Slots are the multiples of D since the Unix epoch, so they do not
//   depend on when the server started; the time zone does not apply.
//
// Cron fields are matched against local wall time in the schedule's time zone; a slot
// is the UTC instant of a matching local minute as FromCivil (time_zone.h) gives it:
// - spring forward: a matching local time that does not exist runs at the instant it
//   would be with the offset before the jump, so a daily "30 2 * * *" still runs once
//   on that day, at 03:30 local (Berlin); several nonexistent times that land on the
//   same instant give one slot;
// - fall back: a matching local time that happens twice runs once, at its first
//   occurrence (so "0 * * * *" fires once for the repeated 02:00 hour).
// Next and Previous visit local days and, in each matching day, only the matching hours
// and minutes, so sparse specs cost at most a few thousand day checks.
class CronSchedule {
 public:
  // kInvalidArgument with a message naming the bad field or token, or the unknown zone
  // (time_zone is checked for @every too).
  static Result<CronSchedule> Parse(std::string_view spec, std::string_view time_zone = "UTC");

  // The first slot strictly after `after` (UTC micros); nullopt if there is none within
  // 5 years (e.g. "0 0 30 2 *") or after the year 9999.
  std::optional<Micros> Next(Micros after) const;
  // The last slot at or before `at`; nullopt if none within 5 years back.
  std::optional<Micros> Previous(Micros at) const;

  // Whether the local wall time (date, hour and minute; its weekday field is ignored
  // and recomputed) matches the cron fields. Always false for "@every".
  bool Matches(const CivilTime& local) const;

  // The spec as given (surrounding blanks removed) and the zone name as given.
  const std::string& spec() const { return spec_; }
  const std::string& time_zone() const { return time_zone_; }
  // The period of an "@every" spec; 0 for cron specs.
  Micros every() const { return every_; }

 private:
  CronSchedule() = default;

  bool DayMatches(int64_t days) const;
  // The earliest slot on local day `days` strictly after `after` / the latest at or
  // before `at`.
  std::optional<Micros> FirstOnDayAfter(int64_t days, Micros after) const;
  std::optional<Micros> LastOnDayAtOrBefore(int64_t days, Micros at) const;
  // The least and greatest UTC offsets FromCivil can apply to wall times of the local
  // day; equal on the days far from any offset change.
  struct OffsetRange {
    int32_t min;
    int32_t max;
  };
  OffsetRange OffsetsAround(int64_t days) const;
  Micros SlotOf(int64_t days, int hour, int minute) const;

  std::string spec_;
  std::string time_zone_;
  TimeZone zone_;
  Micros every_ = 0;
  uint64_t minutes_ = 0;  // bit m: minute m matches
  uint32_t hours_ = 0;    // bit h
  uint32_t mdays_ = 0;    // bit d, 1..31
  uint32_t months_ = 0;   // bit m, 1..12
  uint32_t wdays_ = 0;    // bit d, 0..6 (Sunday = 0)
  bool mday_restricted_ = false;
  bool wday_restricted_ = false;
};

}  // namespace resonance
