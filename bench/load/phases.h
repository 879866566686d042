#pragma once

#include <cstdint>
#include <string>

#include "http_client.h"
#include "load_runtime.h"
#include "options.h"

// The benchmark phases. Each one runs against a live server on a queue of its own
// (FreshQueueName), prints its figure lines to stdout and returns true when it was
// clean: every request answered as the spec says, nothing lost, nothing leased twice.
// Connection counts, batch sizes and lease parameters are printed in the line so a
// figure is never quoted without its setup.
namespace resonance::load {

using Endpoint = asio::ip::tcp::endpoint;

// --- enqueue_phases.cc -------------------------------------------------------------

// What one closed-loop enqueue run did (each connection sends its next request as
// soon as the previous answer arrived).
struct EnqueueOutcome {
  int64_t created = 0;    // tasks the server confirmed (201)
  int64_t errors = 0;     // failed requests, wrong status or malformed answers
  int connects = 0;       // TCP connects over all connections (== conns with keep-alive)
  double seconds = 0;     // first request sent .. last answer read
  LatencySample latency;  // per request, µs
};

// Enqueues tasks seq 0..total-1 onto `queue` over `conns` connections: one task per
// POST /api/tasks when batch == 0, else POST /api/tasks/batch with `batch` tasks.
EnqueueOutcome EnqueueTasks(const LoadOptions& opt, const Endpoint& server,
                            const std::string& phase, const std::string& queue, int64_t total,
                            int batch, int conns);

// enqueue_single: opt.tasks single POSTs over opt.conns connections.
bool RunEnqueueSingle(const LoadOptions& opt, const Endpoint& server);
// enqueue_batch: opt.tasks in batches of opt.batch over opt.batch_conns connections.
bool RunEnqueueBatch(const LoadOptions& opt, const Endpoint& server);
// fill: like enqueue_batch, default 1,000,000 tasks, for the memory/recovery figures.
// The tasks stay in the queue (nothing consumes them).
bool RunFill(const LoadOptions& opt, const Endpoint& server);

// --- drain_phase.cc ------------------------------------------------------------------

// drain: prefill opt.tasks (batches, untimed, reported as drain_prefill), then
// opt.consumers consumers lease (max opt.drain_max, wait_ms opt.drain_wait_ms) and
// batch-complete with no work until all are done; the rate is completions/s.
bool RunDrain(const LoadOptions& opt, const Endpoint& server);

// --- mixed_phase.cc ------------------------------------------------------------------

// mixed: open-loop producers offer opt.rate tasks/s for opt.seconds while
// opt.consumers long-poll (max opt.mixed_max, wait_ms opt.mixed_wait_ms) and complete.
// Reports enqueue-to-lease latency (payload sent_us → lease answer arrival) p50/p99/max
// and the enqueue request latency measured from each task's scheduled send time (so a
// slow server is not hidden by the producer falling behind).
bool RunMixed(const LoadOptions& opt, const Endpoint& server);

// wait_ready: polls GET /readyz every 2 ms until it answers 200 (true) or opt.seconds
// pass (false); prints `wait_ready seconds=…`. Connection refused counts as not ready.
bool RunWaitReady(const LoadOptions& opt, const Endpoint& server);

}  // namespace resonance::load
