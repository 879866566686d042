#pragma once

#include "cli/observability.h"
#include "worker/worker.h"

#include <string>

namespace resonance::cli {

struct ServerFlags {
  std::string config;  // empty: ./resonance.toml if present, else defaults
  std::string listen;
  std::string data_dir;
  LogFlags log;
};

// Runs the server until SIGTERM/SIGINT. Returns the process exit code.
int RunServer(const ServerFlags& flags);

// `resonance worker`: reads [logging] and [tracing] from the worker's config file (the
// file's `file` key is the server's: a worker logs to stderr unless --log-file), then
// runs the worker with the tracer.
int RunWorkerWithObservability(worker::WorkerFlags flags, const LogFlags& log_flags);

// `resonance ledger verify`: 0 when the chain is whole, 1 naming the first bad record.
int VerifyLedger(const std::string& data_dir);

// Client verbs: each prints the server's JSON answer on stdout and returns 0, or prints
// a message on stderr and returns 1 (server down, HTTP error, bad input).
struct ClientFlags {
  std::string server;  // http://host:port
};
int ClientCall(const ClientFlags& flags, const std::string& method, const std::string& target,
               const std::string& body);

}  // namespace resonance::cli
