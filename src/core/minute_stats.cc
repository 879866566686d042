#include "core/minute_stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

namespace resonance {
namespace {

// 10^(k/8) ms for k = 0..51, then 1 h: 53 upper bounds in microseconds.
const std::array<int64_t, DurationHistogram::kBuckets - 1>& Bounds() {
  static const auto bounds = [] {
    std::array<int64_t, DurationHistogram::kBuckets - 1> b{};
    for (int k = 0; k < DurationHistogram::kBuckets - 2; ++k) {
      b[static_cast<size_t>(k)] = std::llround(1000.0 * std::pow(10.0, k / 8.0));
    }
    b.back() = 3600LL * kMicrosPerSecond;
    return b;
  }();
  return bounds;
}

}  // namespace

int64_t DurationHistogram::Bound(int i) {
  if (i >= kBuckets - 1) return std::numeric_limits<int64_t>::max();
  return Bounds()[static_cast<size_t>(i)];
}

int DurationHistogram::BucketOf(int64_t micros) {
  const auto& b = Bounds();
  return static_cast<int>(std::lower_bound(b.begin(), b.end(), micros) - b.begin());
}

void DurationHistogram::Add(int64_t micros) {
  micros = std::max<int64_t>(0, micros);
  ++count;
  sum_us += micros;
  max_us = std::max(max_us, micros);
  ++buckets[static_cast<size_t>(BucketOf(micros))];
}

void DurationHistogram::Merge(const DurationHistogram& o) {
  count += o.count;
  sum_us += o.sum_us;
  max_us = std::max(max_us, o.max_us);
  for (int i = 0; i < kBuckets; ++i) buckets[static_cast<size_t>(i)] += o.buckets[static_cast<size_t>(i)];
}

std::optional<double> DurationHistogram::Quantile(double q) const {
  if (count <= 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count))));
  int64_t below = 0;
  for (int i = 0; i < kBuckets; ++i) {
    const int64_t n = buckets[static_cast<size_t>(i)];
    if (below + n >= rank) {
      const double lower = i == 0 ? 0.0 : static_cast<double>(Bound(i - 1));
      const double upper = i == kBuckets - 1 ? static_cast<double>(max_us) : static_cast<double>(Bound(i));
      const double frac = static_cast<double>(rank - below) / static_cast<double>(n);
      const double v = std::min(lower + (upper - lower) * frac, static_cast<double>(max_us));
      return v / kMicrosPerSecond;
    }
    below += n;
  }
  return static_cast<double>(max_us) / kMicrosPerSecond;
}

std::optional<double> DurationHistogram::Mean() const {
  if (count <= 0) return std::nullopt;
  return static_cast<double>(sum_us) / static_cast<double>(count) / kMicrosPerSecond;
}

void MinuteStats::Record(StatsOutcome outcome, std::optional<ErrorClass> cls, Micros duration,
                         Micros wait) {
  switch (outcome) {
    case StatsOutcome::kSucceeded: ++succeeded; break;
    case StatsOutcome::kRetried: ++retried; break;
    case StatsOutcome::kDead: ++dead; break;
    case StatsOutcome::kCancelled: ++cancelled; break;
    case StatsOutcome::kLeased: break;
  }
  if (cls) {
    const auto c = static_cast<size_t>(*cls);
    if (outcome == StatsOutcome::kRetried || outcome == StatsOutcome::kDead ||
        outcome == StatsOutcome::kCancelled) {
      ++failures[c];
    }
    if (outcome == StatsOutcome::kRetried) ++retries[c];
  }
  if (duration >= 0) this->duration.Add(duration);
  if (wait >= 0) this->wait.Add(wait);
}

void MinuteStats::Merge(const MinuteStats& o) {
  succeeded += o.succeeded;
  retried += o.retried;
  dead += o.dead;
  cancelled += o.cancelled;
  for (size_t i = 0; i < failures.size(); ++i) failures[i] += o.failures[i];
  for (size_t i = 0; i < retries.size(); ++i) retries[i] += o.retries[i];
  duration.Merge(o.duration);
  wait.Merge(o.wait);
}

bool MinuteStats::empty() const {
  return succeeded == 0 && retried == 0 && dead == 0 && cancelled == 0 && duration.count == 0 &&
         wait.count == 0;
}

std::optional<double> MinuteStats::success_rate() const {
  if (succeeded + dead == 0) return std::nullopt;
  return static_cast<double>(succeeded) / static_cast<double>(succeeded + dead);
}

std::optional<double> MinuteStats::failure_rate() const {
  const int64_t attempts = succeeded + retried + dead;
  if (attempts == 0) return std::nullopt;
  return static_cast<double>(retried + dead) / static_cast<double>(attempts);
}

namespace {

// The numbers of a MinuteStats in storage order.
template <typename Stats, typename F>
void ForEachNumber(Stats& s, F&& f) {
  f(s.succeeded);
  f(s.retried);
  f(s.dead);
  f(s.cancelled);
  for (auto& v : s.failures) f(v);
  for (auto& v : s.retries) f(v);
  for (auto* h : {&s.duration, &s.wait}) {
    f(h->count);
    f(h->sum_us);
    f(h->max_us);
    for (auto& v : h->buckets) f(v);
  }
}

}  // namespace

std::string MinuteStats::Encode() const {
  std::string out = "v1";
  ForEachNumber(*this, [&](int64_t v) {
    out.push_back(' ');
    out += std::to_string(v);
  });
  return out;
}

std::optional<MinuteStats> MinuteStats::Decode(std::string_view text) {
  if (text.substr(0, 2) != "v1") return std::nullopt;
  text.remove_prefix(2);
  MinuteStats s;
  bool ok = true;
  ForEachNumber(s, [&](int64_t& v) {
    if (!ok) return;
    if (text.empty() || text.front() != ' ') {
      ok = false;
      return;
    }
    text.remove_prefix(1);
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc() || v < 0) {
      ok = false;
      return;
    }
    text.remove_prefix(static_cast<size_t>(r.ptr - text.data()));
  });
  if (!ok || !text.empty()) return std::nullopt;
  return s;
}

}  // namespace resonance
