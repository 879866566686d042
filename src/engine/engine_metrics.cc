#include "engine/engine_metrics.h"

#include <map>

#include "engine/engine.h"

namespace resonance {

using metrics::Counter;
using metrics::Histogram;

namespace {
const char* const kOutcomeNames[] = {"succeeded", "retried", "dead", "cancelled"};
}  // namespace

EngineMetrics::EngineMetrics(metrics::Registry& r, size_t max_actions, size_t max_queues)
    : registry_(r),
      action_labels_(max_actions),
      queue_labels_(max_queues),
      pool_labels_(kMaxPools),
      enqueued_(r.AddCounter("resonance_tasks_enqueued_total", "Tasks created, by queue and action.",
                             {"queue", "action"})),
      leased_(r.AddCounter("resonance_tasks_leased_total",
                           "Attempts started (tasks handed to a worker), by queue.", {"queue"})),
      finished_(r.AddCounter(
          "resonance_tasks_finished_total",
          "Attempts and cancellations by outcome: succeeded, retried (failed, will run again), "
          "dead (to the dead-letter queue), cancelled.",
          {"queue", "action", "outcome"})),
      retries_(r.AddCounter("resonance_task_retries_total",
                            "Failed attempts that will run again, by error class.",
                            {"queue", "action", "class"})),
      failures_(r.AddCounter("resonance_task_failures_total",
                             "Failed attempts (retried or dead), by error class.",
                             {"queue", "action", "class"})),
      duration_(r.AddHistogram("resonance_task_duration_seconds",
                               "One attempt, from lease to complete or fail.", {"queue", "action"},
                               metrics::TaskSecondsBuckets())),
      wait_(r.AddHistogram("resonance_task_wait_seconds",
                           "Time from due (enqueue, or the end of a delay or retry backoff) to "
                           "lease.",
                           {"queue"}, metrics::TaskSecondsBuckets())),
      leases_expired_(r.AddCounter("resonance_leases_expired_total",
                                   "Leases that ran out, or whose worker was lost.", {"queue"})),
      rate_limited_(r.AddCounter("resonance_rate_limited_total",
                                 "Attempts that failed with class rate_limited.",
                                 {"queue", "action"})),
      depth_(r.AddGauge("resonance_queue_depth", "Tasks per queue and state.", {"queue", "state"})),
      paused_(r.AddGauge("resonance_queue_paused", "1 when the queue is paused.", {"queue"})),
      workers_(r.AddGauge("resonance_workers", "Registered workers by pool and state.",
                          {"pool", "state"})),
      restarts_(r.AddCounter("resonance_worker_restarts_total",
                             "Registrations of a worker id that had registered before.",
                             {"pool"})),
      lost_(r.AddCounter("resonance_workers_lost_total",
                         "Workers marked lost after worker_lost_after_ms of silence.",
                         {"pool"})),
      followups_(r.AddCounter("resonance_followups_total",
                              "Follow-ups a successful task asked for, by outcome: created, "
                              "duplicate (known idempotency key), refused (past max_depth), "
                              "failed (bad spec, missing value, schema).",
                              {"outcome"})) {
  static const char* const kFollowupOutcomes[] = {"created", "duplicate", "refused", "failed"};
  for (int i = 0; i < kFollowupOutcomeCount; ++i) {
    followup_[i] = &followups_.With({kFollowupOutcomes[i]});
  }
}

const std::string& EngineMetrics::QueueLabel(uint32_t queue, const std::string& name) {
  if (queue >= queue_label_.size()) queue_label_.resize(queue + 1);
  if (queue_label_[queue].empty()) queue_label_[queue] = queue_labels_.Map(name);
  return queue_label_[queue];
}

EngineMetrics::PerQueue& EngineMetrics::Queue(uint32_t queue, const std::string& queue_name) {
  if (queue >= queues_.size()) queues_.resize(queue + 1, PerQueue{nullptr, nullptr, nullptr});
  PerQueue& q = queues_[queue];
  if (!q.leased) {
    const std::string& label = QueueLabel(queue, queue_name);
    q.leased = &leased_.With({label});
    q.leases_expired = &leases_expired_.With({label});
    q.wait = &wait_.With({label});
  }
  return q;
}

EngineMetrics::PerAction& EngineMetrics::Action(uint32_t queue, const std::string& queue_name,
                                                uint32_t action, const std::string& action_name) {
  const uint64_t key = static_cast<uint64_t>(queue) << 32 | action;
  auto it = actions_.find(key);
  if (it != actions_.end()) return it->second;
  const std::string q = QueueLabel(queue, queue_name);
  const std::string a = action_labels_.Map(action_name);
  PerAction p;
  p.enqueued = &enqueued_.With({q, a});
  for (int o = 0; o < kOutcomeCount; ++o) p.finished[o] = &finished_.With({q, a, kOutcomeNames[o]});
  for (int c = 0; c < kErrorClassCount; ++c) {
    const char* cls = ErrorClassName(static_cast<ErrorClass>(c));
    p.retries[c] = &retries_.With({q, a, cls});
    p.failures[c] = &failures_.With({q, a, cls});
  }
  p.rate_limited = &rate_limited_.With({q, a});
  p.duration = &duration_.With({q, a});
  return actions_.emplace(key, p).first->second;
}

void EngineMetrics::WorkerRestarted(const std::string& pool) {
  restarts_.With({pool_labels_.Map(pool.empty() ? "none" : pool)}).Inc();
}

void EngineMetrics::WorkerLost(const std::string& pool) {
  lost_.With({pool_labels_.Map(pool.empty() ? "none" : pool)}).Inc();
}

void EngineMetrics::CollectFrom(Engine& engine, std::vector<std::string> pools) {
  // Configured pools show zeroed counters from the start, so increase() sees the first.
  for (const std::string& pool : pools) {
    restarts_.With({pool_labels_.Map(pool)});
    lost_.With({pool_labels_.Map(pool)});
  }
  registry_.OnScrape([this, &engine, pools = std::move(pools)] {
    auto queues = engine.Queues(/*include_empty=*/true);
    depth_.Clear();
    paused_.Clear();
    // Queues past the label bound add up under "other".
    std::map<std::string, QueueInfo> by_label;
    for (const QueueInfo& q : queues) {
      QueueInfo& sum = by_label[queue_labels_.Map(q.name)];
      sum.scheduled += q.scheduled;
      sum.ready += q.ready;
      sum.running += q.running;
      sum.paused = sum.paused || q.paused;
    }
    for (const auto& [label, q] : by_label) {
      depth_.With({label, "scheduled"}).Set(static_cast<double>(q.scheduled));
      depth_.With({label, "ready"}).Set(static_cast<double>(q.ready));
      depth_.With({label, "running"}).Set(static_cast<double>(q.running));
      paused_.With({label}).Set(q.paused ? 1 : 0);
    }
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const std::string& pool : pools) counts[{pool_labels_.Map(pool), "active"}] = 0;
    for (const WorkerInfo& w : engine.Workers()) {
      if (!w.registered || w.status == WorkerStatus::kGone) continue;
      const std::string& pool = w.registration.pool;
      ++counts[{pool_labels_.Map(pool.empty() ? "none" : pool), WorkerStatusName(w.status)}];
    }
    workers_.Clear();
    for (const auto& [key, n] : counts) workers_.With({key.first, key.second}).Set(n);
  });
}

}  // namespace resonance
