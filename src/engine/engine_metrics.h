#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/task.h"
#include "observe/metrics.h"

namespace resonance {

class Engine;

// The engine's metric families (docs/metrics.md, "Tasks" and "Workers") and a cache of
// the children each (queue, action) pair uses, so a state change costs a hash lookup
// and an atomic add. Not thread-safe: the engine calls it under its mutex. The
// registry must outlive it.
class EngineMetrics {
 public:
  // Past max_actions distinct actions (max_queues queues, kMaxPools pools) the label
  // becomes "other".
  static constexpr size_t kMaxPools = 100;
  EngineMetrics(metrics::Registry& registry, size_t max_actions, size_t max_queues);

  enum Outcome { kSucceeded, kRetried, kDead, kCancelled, kOutcomeCount };

  struct PerQueue {
    metrics::Counter* leased;
    metrics::Counter* leases_expired;
    metrics::Histogram* wait;
  };
  struct PerAction {
    metrics::Counter* enqueued;
    metrics::Counter* finished[kOutcomeCount];
    metrics::Counter* retries[kErrorClassCount];
    metrics::Counter* failures[kErrorClassCount];
    metrics::Counter* rate_limited;
    metrics::Histogram* duration;
  };

  // Indices are the engine's queue and action indices; names are needed on first use.
  PerQueue& Queue(uint32_t queue, const std::string& queue_name);
  PerAction& Action(uint32_t queue, const std::string& queue_name, uint32_t action,
                    const std::string& action_name);

  enum FollowupOutcome { kFollowupCreated, kFollowupDuplicate, kFollowupRefused,
                         kFollowupFailed, kFollowupOutcomeCount };
  void Followup(FollowupOutcome o) { followup_[o]->Inc(); }

  void WorkerRestarted(const std::string& pool);
  void WorkerLost(const std::string& pool);

  // Registers the scrape-time gauges (queue depth, paused, workers by pool and state)
  // read from the engine at each scrape. `pools` (the configured ones) always show an
  // active count, 0 when none is registered. The engine must outlive the registry's use.
  void CollectFrom(Engine& engine, std::vector<std::string> pools);

 private:
  const std::string& QueueLabel(uint32_t queue, const std::string& name);

  metrics::Registry& registry_;
  metrics::BoundedLabel action_labels_;
  metrics::BoundedLabel queue_labels_;
  metrics::BoundedLabel pool_labels_;  // workers name their pools: bounded too
  std::vector<std::string> queue_label_;  // by queue index, "" until first use
  metrics::Family<metrics::Counter>& enqueued_;
  metrics::Family<metrics::Counter>& leased_;
  metrics::Family<metrics::Counter>& finished_;
  metrics::Family<metrics::Counter>& retries_;
  metrics::Family<metrics::Counter>& failures_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Family<metrics::Histogram>& wait_;
  metrics::Family<metrics::Counter>& leases_expired_;
  metrics::Family<metrics::Counter>& rate_limited_;
  metrics::Family<metrics::Gauge>& depth_;
  metrics::Family<metrics::Gauge>& paused_;
  metrics::Family<metrics::Gauge>& workers_;
  metrics::Family<metrics::Counter>& restarts_;
  metrics::Family<metrics::Counter>& lost_;
  metrics::Family<metrics::Counter>& followups_;
  metrics::Counter* followup_[kFollowupOutcomeCount];
  std::vector<PerQueue> queues_;                          // by queue index
  std::unordered_map<uint64_t, PerAction> actions_;       // by queue << 32 | action
};

}  // namespace resonance
