#pragma once

#include <string>

#include "observe/metrics.h"

namespace resonance::metrics {

// Registers resonance_build_info and the resonance_process_* families (start time,
// resident memory, CPU seconds, open fds), the latter read from /proc/self at each
// scrape. On a system without /proc they read 0.
void RegisterProcessMetrics(Registry& registry, const std::string& version);

}  // namespace resonance::metrics
