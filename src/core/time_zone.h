#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace resonance {

// An IANA time zone read from the system's TZif files (/usr/share/zoneinfo, Debian
// package tzdata). Immutable value, thread-safe to share; copies share one loaded table.
//
// The file's 64-bit block is used when its version is 2 or later, else the 32-bit one.
// Instants before the first transition use the first non-DST local time type (as glibc
// does); instants at or after the last transition use the POSIX TZ footer when the file
// has one (Debian's files end in 2037, "slim" ones earlier), else the last type. Leap
// second records are ignored: times are POSIX times, as everywhere in Resonance.
// Loaded zones are kept in a process-wide cache, so a tzdata upgrade is seen only after
// a restart.
class TimeZone {
 public:
  // UTC.
  TimeZone();

  // "UTC" (always available, also "Etc/UTC", even without tzdata) or an IANA name such
  // as "Europe/Berlin". kInvalidArgument naming the zone when it is unknown or its file
  // is unreadable or malformed; names that are empty, contain "..", start with '/', or
  // have characters other than letters, digits and "/_+-." are refused.
  static Result<TimeZone> Load(std::string_view name);
  static TimeZone Utc();
  // A zone from the bytes of a TZif file (version 1, 2 or 3), named `name`; not cached.
  // kInvalidArgument saying what is malformed. For tests and callers with their own data.
  static Result<TimeZone> FromTzif(std::string_view name, std::string_view bytes);

  const std::string& name() const;

  // Offset from UTC in seconds (east positive) at the UTC instant (micros since the
  // Unix epoch).
  int32_t OffsetAt(Micros utc) const;

  struct Data;  // the parsed file; defined in time_zone.cc

 private:
  explicit TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;  // never null
};

// A wall-clock date and time (no zone).
struct CivilTime {
  int year = 1970;
  int month = 1;  // 1-12
  int day = 1;    // 1-31
  int hour = 0;
  int minute = 0;
  int second = 0;
  int weekday = 4;  // 0 = Sunday; set by ToCivil, ignored by FromCivil
};

// The local wall-clock time of the UTC instant in `tz` (sub-second part dropped,
// rounding toward the past).
CivilTime ToCivil(Micros utc, const TimeZone& tz);

// The UTC instant of a local wall-clock time in `tz`. Fields out of range are carried
// (minute 60 is the next hour, day 32 of January is February 1st, month 13 is January
// of the next year).
// - A time in a DST gap (it does not exist) maps to the instant it would be with the
//   offset before the jump: 02:30 on a spring-forward night in Berlin (02:00 -> 03:00)
//   becomes 01:30 UTC, which reads 03:30 local.
// - An ambiguous time (the repeated hour of fall-back) gives the FIRST occurrence.
// Assumes at most one offset change within a day either side of `local`; that holds for
// every tzdata zone since 1970 (checked against all of /usr/share/zoneinfo, 1970-2100).
Micros FromCivil(const CivilTime& local, const TimeZone& tz);

}  // namespace resonance
