#include "core/baselines.h"

#include <algorithm>
#include <cmath>

namespace resonance {

std::optional<std::pair<double, double>> MeanAndStddev(const std::vector<double>& values) {
  if (values.empty()) return std::nullopt;
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  double sq = 0;
  for (double v : values) sq += (v - mean) * (v - mean);
  return std::make_pair(mean, std::sqrt(sq / static_cast<double>(values.size())));
}

Baseline ComputeBaseline(const std::vector<MinuteStats>& hours, const BaselineOptions& options) {
  std::vector<double> success, p95;
  for (const MinuteStats& h : hours) {
    if (h.succeeded + h.dead >= options.min_samples) success.push_back(*h.success_rate());
    if (h.duration.count >= options.min_samples) p95.push_back(*h.duration.Quantile(0.95));
  }
  Baseline b;
  b.success_threshold = options.success_floor;
  b.success_hours = static_cast<int>(success.size());
  if (auto ms = MeanAndStddev(success)) {
    b.success_mean = ms->first;
    b.success_stddev = ms->second;
    b.success_learned = b.success_hours >= options.min_hours;
    if (b.success_learned) {
      b.success_threshold = std::max(ms->first - 2 * ms->second, options.success_floor);
    }
  }
  b.duration_hours = static_cast<int>(p95.size());
  if (auto ms = MeanAndStddev(p95)) {
    b.p95_mean = ms->first;
    b.p95_stddev = ms->second;
    b.duration_learned = b.duration_hours >= options.min_hours;
    if (b.duration_learned) b.p95_threshold = ms->first + 2 * ms->second;
  }
  return b;
}

}  // namespace resonance
