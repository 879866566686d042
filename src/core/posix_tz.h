#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace resonance {

// A POSIX TZ rule string as found in the footer of a TZif file (RFC 8536 §3.3), for
// instants after the file's last transition, e.g. "CET-1CEST,M3.5.0,M10.5.0/3",
// "<+0330>-3:30" or "EST5EDT,0/0,J365/25". Supports names plain or in <...>, offsets
// [+-]hh[:mm[:ss]], rule dates Mm.w.d, Jn (1..365, Feb 29 never counted) and n
// (0..365, Feb 29 counted), each with an optional /time of [+-]hhh[:mm[:ss]] in
// -167..167 hours (RFC 8536's extension). A DST name without rules takes the POSIX
// default ",M3.2.0,M11.1.0". Immutable value, thread-safe.
class PosixTz {
 public:
  // nullopt when `spec` is empty or malformed.
  static std::optional<PosixTz> Parse(std::string_view spec);

  // Offset from UTC in seconds (east positive) at `utc_seconds` since the Unix epoch.
  int32_t OffsetAt(int64_t utc_seconds) const;

  int32_t std_offset() const { return std_offset_; }
  bool has_dst() const { return has_dst_; }

 private:
  struct RuleDate {
    enum class Kind { kJulian1, kJulian0, kMonthWeekDay };
    Kind kind = Kind::kMonthWeekDay;
    int month = 0;        // kMonthWeekDay: 1..12
    int week = 0;         // kMonthWeekDay: 1..5, 5 = last
    int day = 0;          // weekday 0..6 (kMonthWeekDay), or the day number (kJulian*)
    int32_t time = 7200;  // seconds after local midnight, may be negative or > 24h
  };
  // Seconds since the epoch, in local wall time of the offset in force before the
  // change, at which `date` happens in `year`.
  static int64_t LocalSecondsOf(const RuleDate& date, int64_t year);
  static bool ParseRuleDate(std::string_view& s, RuleDate& out);

  int32_t std_offset_ = 0;
  int32_t dst_offset_ = 0;
  bool has_dst_ = false;
  RuleDate start_;  // std -> dst, in standard local time
  RuleDate end_;    // dst -> std, in daylight local time
};

}  // namespace resonance
