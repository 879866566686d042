#pragma once

#include <optional>
#include <vector>

#include "core/minute_stats.h"

namespace resonance {

// How baselines are learned (docs/stats.md, "Baselines").
struct BaselineOptions {
  int lookback_hours = 168;      // 7 days of complete hours
  int min_hours = 24;            // hours with samples before the learned value counts
  int min_samples = 5;           // tasks in an hour for it to be a sample
  double success_floor = 0.70;   // the success threshold is never below this
};

// What history says is normal for one queue and action, from hourly samples:
//   success: the success rate of each hour with at least min_samples tasks that
//            succeeded or went dead; threshold = max(mean - 2 sigma, floor) once there
//            are min_hours such hours, the floor before.
//   duration: the p95 attempt duration of each hour with at least min_samples attempts;
//            threshold = mean + 2 sigma once there are min_hours such hours, none before.
// sigma is the population standard deviation of the hourly samples. Value type.
struct Baseline {
  int success_hours = 0;
  std::optional<double> success_mean;
  std::optional<double> success_stddev;
  double success_threshold = 0.70;
  bool success_learned = false;  // success_hours >= min_hours
  int duration_hours = 0;
  std::optional<double> p95_mean;    // seconds
  std::optional<double> p95_stddev;  // seconds
  std::optional<double> p95_threshold;
  bool duration_learned = false;
};

// `hours` holds one MinuteStats per complete hour of the look-back (empty hours may be
// left out); their order does not matter.
Baseline ComputeBaseline(const std::vector<MinuteStats>& hours, const BaselineOptions& options);

// Mean and population standard deviation; nullopt for no values.
std::optional<std::pair<double, double>> MeanAndStddev(const std::vector<double>& values);

}  // namespace resonance
