#include "core/time_zone.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/civil_days.h"
#include "core/posix_tz.h"

namespace resonance {

struct TimeZone::Data {
  std::string name;
  std::vector<int64_t> transitions;        // UTC seconds, ascending
  std::vector<int32_t> transition_offset;  // offset in force from transitions[i] on
  int32_t before_first = 0;                // offset before transitions[0]
  int32_t after_last = 0;                  // offset after the last one, without footer
  std::optional<PosixTz> footer;
};

namespace {

constexpr char kZoneInfoDir[] = "/usr/share/zoneinfo/";
constexpr size_t kMaxFileBytes = 1 << 20;

std::shared_ptr<const TimeZone::Data> MakeUtc(std::string name) {
  auto d = std::make_shared<TimeZone::Data>();
  d->name = std::move(name);
  return d;
}

// Reads big-endian fields from the file's bytes; every read is bounds-checked.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  bool Skip(uint64_t n) {
    if (n > bytes_.size() - pos_) return false;
    pos_ += n;
    return true;
  }
  bool Read(int width, int64_t& out) {
    if (static_cast<size_t>(width) > bytes_.size() - pos_) return false;
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos_ + i]);
    pos_ += width;
    // 4- and 8-byte fields are two's complement; 1-byte fields are unsigned.
    out = width == 4 ? static_cast<int32_t>(static_cast<uint32_t>(v)) : static_cast<int64_t>(v);
    return true;
  }
  std::string_view Rest() const { return bytes_.substr(pos_); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

struct Header {
  char version = 0;
  int64_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

bool ReadHeader(ByteReader& r, Header& h) {
  std::string_view rest = r.Rest();
  if (rest.size() < 44 || rest.substr(0, 4) != "TZif") return false;
  h.version = rest[4];
  r.Skip(20);
  return r.Read(4, h.isutcnt) && r.Read(4, h.isstdcnt) && r.Read(4, h.leapcnt) &&
         r.Read(4, h.timecnt) && r.Read(4, h.typecnt) && r.Read(4, h.charcnt) && h.isutcnt >= 0 &&
         h.isstdcnt >= 0 && h.leapcnt >= 0 && h.timecnt >= 0 && h.typecnt >= 1 &&
         h.typecnt <= 256 && h.charcnt >= 0 && (h.isutcnt == 0 || h.isutcnt == h.typecnt) &&
         (h.isstdcnt == 0 || h.isstdcnt == h.typecnt);
}

uint64_t DataBlockBytes(const Header& h, int time_width) {
  return static_cast<uint64_t>(h.timecnt) * (time_width + 1) + h.typecnt * 6 + h.charcnt +
         h.leapcnt * (time_width + 4) + h.isstdcnt + h.isutcnt;
}

// Parses a TZif file (RFC 8536) into `out`; an error message when malformed.
std::optional<std::string> ParseTzif(std::string_view bytes, TimeZone::Data& out) {
  ByteReader r(bytes);
  Header h;
  if (!ReadHeader(r, h)) return "not a TZif file";
  int time_width = 4;
  if (h.version >= '2') {
    if (!r.Skip(DataBlockBytes(h, 4))) return "truncated version 1 data block";
    if (!ReadHeader(r, h)) return "bad version 2+ header";
    time_width = 8;
  }
  std::vector<int64_t> times(h.timecnt);
  for (auto& t : times) {
    if (!r.Read(time_width, t)) return "truncated transition times";
  }
  for (size_t i = 1; i < times.size(); ++i) {
    if (times[i] <= times[i - 1]) return "transition times not ascending";
  }
  std::vector<int64_t> type_index(h.timecnt);
  for (auto& t : type_index) {
    if (!r.Read(1, t)) return "truncated transition types";
    if (t >= h.typecnt) return "transition type out of range";
  }
  std::vector<int32_t> offsets(h.typecnt);
  std::vector<bool> is_dst(h.typecnt);
  for (int64_t i = 0; i < h.typecnt; ++i) {
    int64_t utoff, dst, abbr;
    if (!r.Read(4, utoff) || !r.Read(1, dst) || !r.Read(1, abbr)) return "truncated types";
    if (utoff < -89999 || utoff > 93599) return "offset out of range";
    if (dst > 1) return "bad isdst flag";
    offsets[i] = static_cast<int32_t>(utoff);
    is_dst[i] = dst == 1;
  }
  if (!r.Skip(h.charcnt + h.leapcnt * (time_width + 4) + h.isstdcnt + h.isutcnt)) {
    return "truncated data block";
  }
  if (h.version >= '2') {
    std::string_view rest = r.Rest();
    if (rest.empty() || rest[0] != '\n') return "missing footer";
    size_t end = rest.find('\n', 1);
    if (end == std::string_view::npos) return "unterminated footer";
    std::string_view footer = rest.substr(1, end - 1);
    if (!footer.empty()) {
      out.footer = PosixTz::Parse(footer);
      if (!out.footer) return "bad POSIX TZ footer \"" + std::string(footer) + "\"";
    }
  }
  out.transitions = std::move(times);
  out.transition_offset.reserve(type_index.size());
  for (int64_t t : type_index) out.transition_offset.push_back(offsets[t]);
  auto first_std = std::find(is_dst.begin(), is_dst.end(), false);
  out.before_first = first_std == is_dst.end() ? offsets[0] : offsets[first_std - is_dst.begin()];
  out.after_last = out.transition_offset.empty() ? offsets[0] : out.transition_offset.back();
  return std::nullopt;
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name[0] == '/') return false;
  if (name.find("..") != std::string_view::npos) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '_' || c == '+' || c == '-' || c == '.';
  });
}

Status ZoneError(std::string_view name, const std::string& why) {
  return Status(Code::kInvalidArgument, "unknown time zone \"" + std::string(name) + "\": " + why);
}

Result<std::shared_ptr<const TimeZone::Data>> ParseZone(std::string_view name,
                                                        std::string_view bytes) {
  auto data = std::make_shared<TimeZone::Data>();
  data->name = std::string(name);
  if (auto err = ParseTzif(bytes, *data)) return ZoneError(name, *err);
  return std::shared_ptr<const TimeZone::Data>(std::move(data));
}

Result<std::shared_ptr<const TimeZone::Data>> ReadZone(const std::string& name) {
  auto fail = [&name](const std::string& why) { return ZoneError(name, why); };
  std::ifstream in(kZoneInfoDir + name, std::ios::binary);
  if (!in) return fail("no such zone in " + std::string(kZoneInfoDir));
  std::string bytes;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<size_t>(in.gcount()));
    if (bytes.size() > kMaxFileBytes) return fail("file too large");
  }
  if (in.bad()) return fail("cannot read the zone file");
  return ParseZone(name, bytes);
}

}  // namespace

TimeZone::TimeZone() : data_(Utc().data_) {}

TimeZone TimeZone::Utc() {
  static const std::shared_ptr<const Data> utc = MakeUtc("UTC");
  return TimeZone(utc);
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name == "UTC") return Utc();
  if (!ValidName(name)) {
    return Status(Code::kInvalidArgument,
                  "invalid time zone name \"" + std::string(name) +
                      "\": expected an IANA name such as Europe/Berlin or UTC");
  }
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<const Data>> cache;  // guarded by mu
  std::string key(name);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return TimeZone(it->second);
  }
  std::shared_ptr<const Data> data;
  if (name == "Etc/UTC") {
    data = MakeUtc(key);
  } else {
    auto read = ReadZone(key);
    if (!read.ok()) return read.status();
    data = std::move(read).value();
  }
  std::lock_guard<std::mutex> lock(mu);
  auto [it, inserted] = cache.emplace(key, std::move(data));
  return TimeZone(it->second);
}

Result<TimeZone> TimeZone::FromTzif(std::string_view name, std::string_view bytes) {
  auto data = ParseZone(name, bytes);
  if (!data.ok()) return data.status();
  return TimeZone(std::move(data).value());
}

const std::string& TimeZone::name() const { return data_->name; }

int32_t TimeZone::OffsetAt(Micros utc) const {
  const Data& d = *data_;
  const int64_t s = FloorDiv(utc, kMicrosPerSecond);
  if (d.transitions.empty()) return d.footer ? d.footer->OffsetAt(s) : d.after_last;
  if (s < d.transitions.front()) return d.before_first;
  if (s >= d.transitions.back()) return d.footer ? d.footer->OffsetAt(s) : d.after_last;
  auto it = std::upper_bound(d.transitions.begin(), d.transitions.end(), s);
  return d.transition_offset[(it - d.transitions.begin()) - 1];
}

CivilTime ToCivil(Micros utc, const TimeZone& tz) {
  const int64_t local = FloorDiv(utc, kMicrosPerSecond) + tz.OffsetAt(utc);
  const int64_t days = FloorDiv(local, kSecondsPerDay);
  const int64_t sod = local - days * kSecondsPerDay;
  const CivilDate date = CivilFromDays(days);
  CivilTime c;
  c.year = static_cast<int>(date.year);
  c.month = date.month;
  c.day = date.day;
  c.hour = static_cast<int>(sod / 3600);
  c.minute = static_cast<int>(sod / 60 % 60);
  c.second = static_cast<int>(sod % 60);
  c.weekday = WeekdayFromDays(days);
  return c;
}

Micros FromCivil(const CivilTime& local, const TimeZone& tz) {
  const int64_t year = static_cast<int64_t>(local.year) + FloorDiv(local.month - 1, 12);
  const int month = static_cast<int>(FloorMod(local.month - 1, 12)) + 1;
  const int64_t l = DaysFromCivil(year, month, 1) * kSecondsPerDay +
                    (static_cast<int64_t>(local.day) - 1) * kSecondsPerDay +
                    static_cast<int64_t>(local.hour) * 3600 +
                    static_cast<int64_t>(local.minute) * 60 + local.second;
  auto offset_at = [&tz](int64_t s) { return tz.OffsetAt(s * kMicrosPerSecond); };
  // The offsets a day either side bracket the one or two offsets that can apply.
  const int32_t before = offset_at(l - kSecondsPerDay);
  const int32_t after = offset_at(l + kSecondsPerDay);
  std::optional<int64_t> best;
  for (int32_t o : {before, after}) {
    const int64_t t = l - o;
    if (offset_at(t) == o && (!best || t < *best)) best = t;
  }
  // Neither reading exists: the time is in a gap; use the offset before the jump.
  const int64_t utc = best ? *best : l - before;
  return utc * kMicrosPerSecond;
}

}  // namespace resonance
