#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// resonance-load command line. Every figure the tool prints can be reproduced from
// the flags alone; defaults are the workload of the benchmark issue (20k tasks,
// 64 connections, batches of 1000, 8 consumers, 1000 tasks/s for 10 s).
namespace resonance::load {

struct LoadOptions {
  std::string server = "127.0.0.1:8091";  // HOST:PORT, loopback in practice
  // Phases to run, in order. "all" expands to the four measured phases
  // (enqueue_single, enqueue_batch, drain, mixed); "fill" and "wait_ready" only run
  // when named.
  std::vector<std::string> phases;
  int64_t tasks = 20'000;    // per phase (mixed ignores it: rate * seconds)
  bool tasks_given = false;  // fill defaults to 1,000,000 when --tasks is absent
  int conns = 64;            // enqueue_single connections
  int batch = 1000;          // tasks per POST /api/tasks/batch (1..1000)
  int batch_conns = 4;       // connections for enqueue_batch, fill and prefills
  int consumers = 8;         // drain and mixed consumers (one connection each)
  int drain_max = 250;       // lease max in drain
  int drain_wait_ms = 50;    // lease wait_ms in drain
  int mixed_max = 10;        // lease max in mixed
  int mixed_wait_ms = 1000;  // lease wait_ms (long poll) in mixed
  int producers = 16;        // mixed producer connections
  double rate = 1000;        // mixed offered enqueue rate, tasks/s
  double seconds = 10;       // mixed duration; wait_ready timeout
  int threads = 1;           // io threads, each with its own io_context
  int payload_bytes = 100;   // approximate size of each task's payload JSON
  std::string queue_prefix = "bench";
};

// Parses argv into `out`. Returns nullopt to go on, otherwise the exit code the
// process should end with (0 after --help, 2 after a usage error; both printed).
std::optional<int> ParseOptions(int argc, char** argv, LoadOptions& out);

}  // namespace resonance::load
