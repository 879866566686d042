#pragma once

#include <string>
#include <vector>

namespace resonance::trace {
class Exporter;
}

namespace resonance::worker {

// `resonance worker` flags. Empty / zero means "not given".
struct WorkerFlags {
  std::string server = "http://127.0.0.1:8091";  // --server
  std::string pool;                              // --pool: registry name; defaults from [[pools]]
  std::string worker_id;                         // --id: default <hostname>-<pid>
  std::vector<std::string> queues;               // --queues a,b: default the pool's, else default
  int concurrency = 0;                           // --concurrency: default the pool's, else 1
  std::string config;                            // --config: default ./resonance.toml if present
  double drain_grace_s = 30;  // --drain-grace: seconds running tasks get on SIGTERM
  int lease_wait_ms = 5000;   // --lease-wait-ms: long-poll of one lease call
  trace::Exporter* tracer = nullptr;  // from [tracing] (set by the cli); not owned
};

// Runs a worker until SIGTERM/SIGINT and its drain (docs/workers.md). Blocks SIGTERM and
// SIGINT in the calling thread (so in every thread it starts) and ignores SIGPIPE.
// Returns the process exit code: 0 after a drain, 2 for bad flags or config, 3 when
// the server's registry refuses the worker id (another live worker holds it).
int RunWorker(const WorkerFlags& flags);

}  // namespace resonance::worker
