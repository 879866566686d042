#include "core/posix_tz.h"

#include "core/civil_days.h"

namespace resonance {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads 1..max_digits digits as a number; false when there is none.
bool ReadNumber(std::string_view& s, int max_digits, int& out) {
  size_t n = 0;
  int v = 0;
  while (n < s.size() && IsDigit(s[n])) {
    if (static_cast<int>(n) == max_digits) return false;
    v = v * 10 + (s[n] - '0');
    ++n;
  }
  if (n == 0) return false;
  out = v;
  s.remove_prefix(n);
  return true;
}

// A zone abbreviation: alphabetic (3+ letters) or quoted as <...> with letters, digits
// and signs.
bool ReadName(std::string_view& s) {
  if (!s.empty() && s[0] == '<') {
    size_t close = s.find('>');
    if (close == std::string_view::npos || close < 2) return false;
    for (size_t i = 1; i < close; ++i) {
      char c = s[i];
      bool ok =
          IsDigit(c) || c == '+' || c == '-' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
      if (!ok) return false;
    }
    s.remove_prefix(close + 1);
    return true;
  }
  size_t n = 0;
  while (n < s.size() && ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))) ++n;
  if (n < 3) return false;
  s.remove_prefix(n);
  return true;
}

// [+-]h[h...][:mm[:ss]] as signed seconds; hours at most max_hours.
bool ReadHms(std::string_view& s, int max_hours, int32_t& out) {
  int sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    if (s[0] == '-') sign = -1;
    s.remove_prefix(1);
  }
  int h = 0, m = 0, sec = 0;
  if (!ReadNumber(s, 3, h) || h > max_hours) return false;
  if (!s.empty() && s[0] == ':') {
    s.remove_prefix(1);
    if (!ReadNumber(s, 2, m) || m > 59) return false;
    if (!s.empty() && s[0] == ':') {
      s.remove_prefix(1);
      if (!ReadNumber(s, 2, sec) || sec > 59) return false;
    }
  }
  out = sign * (h * 3600 + m * 60 + sec);
  return true;
}

}  // namespace

bool PosixTz::ParseRuleDate(std::string_view& s, RuleDate& out) {
  RuleDate d;
  if (!s.empty() && s[0] == 'M') {
    s.remove_prefix(1);
    d.kind = RuleDate::Kind::kMonthWeekDay;
    if (!ReadNumber(s, 2, d.month) || d.month < 1 || d.month > 12) return false;
    if (s.empty() || s[0] != '.') return false;
    s.remove_prefix(1);
    if (!ReadNumber(s, 1, d.week) || d.week < 1 || d.week > 5) return false;
    if (s.empty() || s[0] != '.') return false;
    s.remove_prefix(1);
    if (!ReadNumber(s, 1, d.day) || d.day > 6) return false;
  } else if (!s.empty() && s[0] == 'J') {
    s.remove_prefix(1);
    d.kind = RuleDate::Kind::kJulian1;
    if (!ReadNumber(s, 3, d.day) || d.day < 1 || d.day > 365) return false;
  } else {
    d.kind = RuleDate::Kind::kJulian0;
    if (!ReadNumber(s, 3, d.day) || d.day > 365) return false;
  }
  if (!s.empty() && s[0] == '/') {
    s.remove_prefix(1);
    if (!ReadHms(s, 167, d.time)) return false;
  }
  out = d;
  return true;
}

std::optional<PosixTz> PosixTz::Parse(std::string_view s) {
  PosixTz tz;
  int32_t posix_offset = 0;
  if (!ReadName(s) || !ReadHms(s, 24, posix_offset)) return std::nullopt;
  tz.std_offset_ = -posix_offset;  // POSIX counts west of Greenwich as positive
  if (s.empty()) return tz;
  if (!ReadName(s)) return std::nullopt;
  tz.has_dst_ = true;
  tz.dst_offset_ = tz.std_offset_ + 3600;
  if (!s.empty() && s[0] != ',') {
    if (!ReadHms(s, 24, posix_offset)) return std::nullopt;
    tz.dst_offset_ = -posix_offset;
  }
  if (s.empty()) {
    // POSIX leaves the default rule to the implementation; this is the US rule.
    tz.start_ = RuleDate{RuleDate::Kind::kMonthWeekDay, 3, 2, 0, 7200};
    tz.end_ = RuleDate{RuleDate::Kind::kMonthWeekDay, 11, 1, 0, 7200};
    return tz;
  }
  if (s[0] != ',') return std::nullopt;
  s.remove_prefix(1);
  if (!ParseRuleDate(s, tz.start_)) return std::nullopt;
  if (s.empty() || s[0] != ',') return std::nullopt;
  s.remove_prefix(1);
  if (!ParseRuleDate(s, tz.end_) || !s.empty()) return std::nullopt;
  return tz;
}

int64_t PosixTz::LocalSecondsOf(const RuleDate& date, int64_t year) {
  int64_t days = 0;
  switch (date.kind) {
    case RuleDate::Kind::kJulian1:
      days = DaysFromCivil(year, 1, 1) + date.day - 1;
      if (IsLeapYear(year) && date.day >= 60) ++days;  // Feb 29 is not counted
      break;
    case RuleDate::Kind::kJulian0:
      days = DaysFromCivil(year, 1, 1) + date.day;
      break;
    case RuleDate::Kind::kMonthWeekDay: {
      const int64_t first = DaysFromCivil(year, date.month, 1);
      int mday = 1 + static_cast<int>(FloorMod(date.day - WeekdayFromDays(first), 7)) +
                 (date.week - 1) * 7;
      while (mday > DaysInMonth(year, date.month)) mday -= 7;
      days = first + mday - 1;
      break;
    }
  }
  return days * kSecondsPerDay + date.time;
}

int32_t PosixTz::OffsetAt(int64_t utc_seconds) const {
  if (!has_dst_) return std_offset_;
  const int64_t year = CivilFromDays(FloorDiv(utc_seconds + std_offset_, kSecondsPerDay)).year;
  const int64_t start = LocalSecondsOf(start_, year) - std_offset_;
  const int64_t end = LocalSecondsOf(end_, year) - dst_offset_;
  bool dst;
  if (start < end) {
    dst = start <= utc_seconds && utc_seconds < end;
  } else {
    dst = !(end <= utc_seconds && utc_seconds < start);
  }
  return dst ? dst_offset_ : std_offset_;
}

}  // namespace resonance
