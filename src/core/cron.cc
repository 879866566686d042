#include "core/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <vector>

#include "core/civil_days.h"

namespace resonance {
namespace {

constexpr int64_t kSearchDays = 5 * 366 + 2;
// Slots are not searched past the end of year 9999 or before year 1, which keeps all
// arithmetic far from overflow.
constexpr Micros kMaxInstant = 253'402'300'800LL * kMicrosPerSecond;
constexpr Micros kMinInstant = -62'135'596'800LL * kMicrosPerSecond;
constexpr int64_t kMaxEverySeconds = 3650LL * kSecondsPerDay;

struct Field {
  const char* name;
  int min;
  int max;
  const std::array<const char*, 12>* names;  // names[i] is value i + name_base
  int name_base;
};

constexpr std::array<const char*, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 12> kDayNames = {
    "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", nullptr, nullptr, nullptr, nullptr, nullptr};

constexpr Field kFields[5] = {
    {"minute", 0, 59, nullptr, 0},        {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},  {"month", 1, 12, &kMonthNames, 1},
    {"day-of-week", 0, 7, &kDayNames, 0},
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string_view> SplitBlanks(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsBlank(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !IsBlank(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

// A plain decimal number of at most 9 digits.
std::optional<int64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

class FieldParser {
 public:
  FieldParser(std::string_view spec, const Field& field, std::string_view text)
      : spec_(spec), field_(field), text_(text) {}

  // Sets the bits of every value the field matches; an error naming the token.
  Status Parse(uint64_t& bits) {
    bits = 0;
    size_t pos = 0;
    while (true) {
      size_t comma = text_.find(',', pos);
      std::string_view item =
          text_.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
      Status s = ParseItem(item, bits);
      if (!s.ok()) return s;
      if (comma == std::string_view::npos) return Status::Ok();
      pos = comma + 1;
    }
  }

 private:
  Status Error(std::string_view token, const std::string& why) const {
    return Status(Code::kInvalidArgument,
                  "invalid cron spec \"" + std::string(spec_) + "\": " + field_.name + " field \"" +
                      std::string(text_) + "\": \"" + std::string(token) + "\" " + why);
  }

  std::string RangeText() const {
    std::string r = std::to_string(field_.min) + "-" + std::to_string(field_.max);
    if (field_.names == &kMonthNames) r += " or JAN-DEC";
    if (field_.names == &kDayNames) r += " or SUN-SAT";
    return r;
  }

  Status ParseValue(std::string_view token, int& out) const {
    if (auto n = ParseDecimal(token)) {
      if (*n < field_.min || *n > field_.max) return Error(token, "is out of range " + RangeText());
      out = static_cast<int>(*n);
      return Status::Ok();
    }
    if (field_.names != nullptr) {
      for (size_t i = 0; i < field_.names->size(); ++i) {
        const char* name = (*field_.names)[i];
        if (name != nullptr && EqualsIgnoreCase(token, name)) {
          out = static_cast<int>(i) + field_.name_base;
          return Status::Ok();
        }
      }
    }
    return Error(token, token.empty() ? "is empty" : "is not a value in " + RangeText());
  }

  Status ParseItem(std::string_view item, uint64_t& bits) const {
    if (item.empty()) return Error(item, "is empty (stray comma?)");
    std::string_view range = item;
    int step = 1;
    bool has_step = false;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      auto n = ParseDecimal(item.substr(slash + 1));
      if (!n || *n < 1 || *n > field_.max) {
        return Error(item, "has a bad step: expected 1-" + std::to_string(field_.max));
      }
      step = static_cast<int>(*n);
      has_step = true;
    }
    int lo = 0, hi = 0;
    if (range == "*") {
      lo = field_.min;
      hi = field_.max;
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
      Status s = ParseValue(range.substr(0, dash), lo);
      if (!s.ok()) return s;
      s = ParseValue(range.substr(dash + 1), hi);
      if (!s.ok()) return s;
      if (lo > hi) return Error(item, "is a range that ends before it starts");
    } else {
      Status s = ParseValue(range, lo);
      if (!s.ok()) return s;
      hi = has_step ? field_.max : lo;
    }
    for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << v;
    return Status::Ok();
  }

  std::string_view spec_;
  const Field& field_;
  std::string_view text_;
};

// "1h30m" as seconds; an error message when malformed.
Result<int64_t> ParseEvery(std::string_view spec, std::string_view d) {
  auto fail = [&](const std::string& why) {
    return Status(Code::kInvalidArgument, "invalid cron spec \"" + std::string(spec) +
                                              "\": @every duration \"" + std::string(d) + "\" " +
                                              why);
  };
  if (d.empty()) return fail("is missing: expected e.g. 30s, 5m, 1h30m, 2d");
  int64_t total = 0;
  size_t i = 0;
  while (i < d.size()) {
    size_t start = i;
    while (i < d.size() && d[i] >= '0' && d[i] <= '9') ++i;
    auto n = ParseDecimal(d.substr(start, i - start));
    if (!n) return fail("is not a sum of <number><unit> with units d, h, m, s");
    if (i == d.size()) return fail("has a number without a unit (d, h, m or s)");
    int64_t unit = 0;
    switch (d[i]) {
      case 'd':
        unit = kSecondsPerDay;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'm':
        unit = 60;
        break;
      case 's':
        unit = 1;
        break;
      default:
        return fail("has an unknown unit '" + std::string(1, d[i]) + "' (use d, h, m or s)");
    }
    ++i;
    total += *n * unit;
    if (total > kMaxEverySeconds) return fail("is longer than 3650d");
  }
  if (total < 1) return fail("is shorter than 1s");
  return total;
}

std::optional<std::string_view> MacroExpansion(std::string_view macro) {
  static constexpr std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  for (const auto& [name, expansion] : kMacros) {
    if (EqualsIgnoreCase(macro, name)) return std::string_view(expansion);
  }
  return std::nullopt;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view spec, std::string_view time_zone) {
  while (!spec.empty() && IsBlank(spec.front())) spec.remove_prefix(1);
  while (!spec.empty() && IsBlank(spec.back())) spec.remove_suffix(1);
  auto zone = TimeZone::Load(time_zone);
  if (!zone.ok()) return zone.status();
  CronSchedule c;
  c.spec_ = std::string(spec);
  c.time_zone_ = std::string(time_zone);
  c.zone_ = *zone;
  if (spec.empty()) {
    return Status(Code::kInvalidArgument,
                  "invalid cron spec \"\": expected 5 fields \"minute hour day-of-month month "
                  "day-of-week\", a macro such as @daily, or \"@every 5m\"");
  }
  std::vector<std::string_view> tokens = SplitBlanks(spec);
  if (tokens[0][0] == '@') {
    if (EqualsIgnoreCase(tokens[0], "@every")) {
      if (tokens.size() != 2) {
        return Status(Code::kInvalidArgument, "invalid cron spec \"" + c.spec_ +
                                                  "\": expected \"@every <duration>\", e.g. "
                                                  "\"@every 1h30m\"");
      }
      auto seconds = ParseEvery(spec, tokens[1]);
      if (!seconds.ok()) return seconds.status();
      c.every_ = *seconds * kMicrosPerSecond;
      return c;
    }
    auto expansion = MacroExpansion(tokens[0]);
    if (!expansion) {
      return Status(Code::kInvalidArgument,
                    "invalid cron spec \"" + c.spec_ + "\": unknown macro \"" +
                        std::string(tokens[0]) +
                        "\" (known: @yearly @annually @monthly @weekly @daily @midnight "
                        "@hourly @every)");
    }
    if (tokens.size() != 1) {
      return Status(Code::kInvalidArgument, "invalid cron spec \"" + c.spec_ + "\": macro " +
                                                std::string(tokens[0]) + " takes no fields");
    }
    tokens = SplitBlanks(*expansion);
  }
  if (tokens.size() != 5) {
    return Status(Code::kInvalidArgument,
                  "invalid cron spec \"" + c.spec_ + "\": has " + std::to_string(tokens.size()) +
                      " fields, expected 5: minute hour day-of-month month day-of-week");
  }
  uint64_t bits[5];
  for (int i = 0; i < 5; ++i) {
    Status s = FieldParser(c.spec_, kFields[i], tokens[i]).Parse(bits[i]);
    if (!s.ok()) return s;
  }
  c.minutes_ = bits[0];
  c.hours_ = static_cast<uint32_t>(bits[1]);
  c.mdays_ = static_cast<uint32_t>(bits[2]);
  c.months_ = static_cast<uint32_t>(bits[3]);
  c.wdays_ = static_cast<uint32_t>((bits[4] | (bits[4] >> 7)) & 0x7f);  // 7 is Sunday
  c.mday_restricted_ = tokens[2] != "*";
  c.wday_restricted_ = tokens[4] != "*";
  return c;
}

bool CronSchedule::DayMatches(int64_t days) const {
  const CivilDate date = CivilFromDays(days);
  if (!(months_ >> date.month & 1)) return false;
  const bool mday = mdays_ >> date.day & 1;
  const bool wday = wdays_ >> WeekdayFromDays(days) & 1;
  if (mday_restricted_ && wday_restricted_) return mday || wday;
  return mday && wday;
}

bool CronSchedule::Matches(const CivilTime& local) const {
  if (every_ > 0 || local.month < 1 || local.month > 12 || local.day < 1 ||
      local.day > DaysInMonth(local.year, local.month) || local.hour < 0 || local.hour > 23 ||
      local.minute < 0 || local.minute > 59) {
    return false;
  }
  return DayMatches(DaysFromCivil(local.year, local.month, local.day)) &&
         (hours_ >> local.hour & 1) && (minutes_ >> local.minute & 1);
}

CronSchedule::OffsetRange CronSchedule::OffsetsAround(int64_t days) const {
  // FromCivil reads offsets a day either side of a wall time, and a wall time is up to
  // a day from its instant; sampling each midnight from two days before the local day
  // to three days after it covers every offset FromCivil can use for that day.
  OffsetRange r{INT32_MAX, INT32_MIN};
  for (int64_t d = days - 2; d <= days + 3; ++d) {
    const int32_t o = zone_.OffsetAt(d * kSecondsPerDay * kMicrosPerSecond);
    r.min = std::min(r.min, o);
    r.max = std::max(r.max, o);
  }
  return r;
}

Micros CronSchedule::SlotOf(int64_t days, int hour, int minute) const {
  const CivilDate date = CivilFromDays(days);
  CivilTime local;
  local.year = static_cast<int>(date.year);
  local.month = date.month;
  local.day = date.day;
  local.hour = hour;
  local.minute = minute;
  return FromCivil(local, zone_);
}

std::optional<Micros> CronSchedule::FirstOnDayAfter(int64_t days, Micros after) const {
  // Each slot is its wall time minus an offset in `r`; on a steady day (one offset) that
  // is a subtraction and local order is UTC order, else FromCivil decides and the
  // bounds tell when no later wall time can do better.
  const OffsetRange r = OffsetsAround(days);
  const bool steady = r.min == r.max;
  std::optional<Micros> best;
  for (int h = 0; h < 24; ++h) {
    if (!(hours_ >> h & 1)) continue;
    const int64_t hour_start = days * kSecondsPerDay + h * 3600;
    if ((hour_start + 59 * 60 - r.min) * kMicrosPerSecond <= after) continue;
    for (int m = 0; m < 60; ++m) {
      if (!(minutes_ >> m & 1)) continue;
      const int64_t local = hour_start + m * 60;
      if (best && (local - r.max) * kMicrosPerSecond >= *best) return best;
      const Micros t = steady ? (local - r.min) * kMicrosPerSecond : SlotOf(days, h, m);
      if (t <= after) continue;
      if (!best || t < *best) best = t;
    }
  }
  return best;
}

std::optional<Micros> CronSchedule::LastOnDayAtOrBefore(int64_t days, Micros at) const {
  const OffsetRange r = OffsetsAround(days);
  const bool steady = r.min == r.max;
  std::optional<Micros> best;
  for (int h = 23; h >= 0; --h) {
    if (!(hours_ >> h & 1)) continue;
    const int64_t hour_start = days * kSecondsPerDay + h * 3600;
    if ((hour_start - r.max) * kMicrosPerSecond > at) continue;
    for (int m = 59; m >= 0; --m) {
      if (!(minutes_ >> m & 1)) continue;
      const int64_t local = hour_start + m * 60;
      if (best && (local - r.min) * kMicrosPerSecond <= *best) return best;
      const Micros t = steady ? (local - r.min) * kMicrosPerSecond : SlotOf(days, h, m);
      if (t > at) continue;
      if (!best || t > *best) best = t;
    }
  }
  return best;
}

std::optional<Micros> CronSchedule::Next(Micros after) const {
  if (after >= kMaxInstant) return std::nullopt;
  if (every_ > 0) {
    const Micros next = FloorDiv(std::max(after, kMinInstant), every_) * every_ + every_;
    return next < kMaxInstant ? std::optional<Micros>(next) : std::nullopt;
  }
  after = std::max(after, kMinInstant);
  const CivilTime now = ToCivil(after, zone_);
  // Start a day early: a nonexistent time late on the previous local day can map past
  // `after`. Once a day has a slot, the next day is checked too, as a gap can push a
  // slot of one day past the first slots of the next.
  const int64_t first = DaysFromCivil(now.year, now.month, now.day) - 1;
  std::optional<Micros> best;
  int64_t found_day = 0;
  for (int64_t d = first; d <= first + kSearchDays; ++d) {
    if (best && d > found_day + 1) break;
    if (!DayMatches(d)) continue;
    std::optional<Micros> t = FirstOnDayAfter(d, after);
    if (!t) continue;
    if (!best) found_day = d;
    if (!best || *t < *best) best = t;
  }
  if (best && *best >= kMaxInstant) return std::nullopt;
  return best;
}

std::optional<Micros> CronSchedule::Previous(Micros at) const {
  if (at < kMinInstant) return std::nullopt;
  at = std::min(at, kMaxInstant);
  if (every_ > 0) return FloorDiv(at, every_) * every_;
  const CivilTime now = ToCivil(at, zone_);
  const int64_t last = DaysFromCivil(now.year, now.month, now.day) + 1;
  std::optional<Micros> best;
  int64_t found_day = 0;
  for (int64_t d = last; d >= last - kSearchDays; --d) {
    if (best && d < found_day - 1) break;
    if (!DayMatches(d)) continue;
    std::optional<Micros> t = LastOnDayAtOrBefore(d, at);
    if (!t) continue;
    if (!best) found_day = d;
    if (!best || *t > *best) best = t;
  }
  return best;
}

}  // namespace resonance
