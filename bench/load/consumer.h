#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "http_client.h"
#include "load_runtime.h"

// The consumer side shared by drain and mixed: a loop of POST /api/lease on one queue
// followed by one POST /api/complete (batch form) for everything leased, with no work
// in between.
namespace resonance::load {

// State shared by the consumers (and, in mixed, the producers) of one phase. Every
// mutable field is atomic: consumers may run on different io threads. The run owner
// sets the const-like fields before spawning and reads the results after IoPool::Run.
struct ConsumeRun {
  ConsumeRun(std::string phase_name, int64_t capacity);

  std::string phase;
  std::string queue;
  int max = 1;      // lease max
  int wait_ms = 0;  // lease wait_ms
  // Give up when leases come back empty this long after the last progress once the
  // producers are done (tasks lost or stuck in someone else's lease).
  int64_t idle_limit_us = 5'000'000;

  // Tasks to complete before the phase is done; known once producers_done is set.
  std::atomic<int64_t> expected{std::numeric_limits<int64_t>::max()};
  std::atomic<bool> producers_done{false};
  std::atomic<int64_t> last_progress_us{0};  // last non-empty lease or producers_done

  std::atomic<int64_t> leased{0};
  std::atomic<int64_t> completed{0};   // items the server answered "succeeded"
  std::atomic<int64_t> duplicates{0};  // a seq leased a second time
  std::atomic<int64_t> foreign{0};     // a task whose payload seq is not ours
  std::atomic<int64_t> last_complete_us{0};
  std::atomic<bool> stop{false};
  ErrorCounter errors;

  // seen[seq] != 0 once task seq was leased. Sized to `capacity` (max seq + 1).
  std::unique_ptr<std::atomic<uint8_t>[]> seen;
  int64_t capacity;

  // Per consumer: lease answer arrival minus the task's payload sent_us, µs.
  std::vector<LatencySample> wait_latency;

  // Tasks the consumers never saw (expected minus distinct seqs leased).
  int64_t Lost() const;
  // Marks the producer side finished with `created` tasks to consume.
  void FinishProducing(int64_t created);
};

// One consumer on its own keep-alive connection; index selects its worker name
// ("bench-<index>") and its wait_latency slot. Returns when run->stop is set (by the
// consumer that completes the last expected task, or on giving up).
asio::awaitable<void> ConsumerLoop(ConsumeRun* run, asio::ip::tcp::endpoint server, int index);

}  // namespace resonance::load
