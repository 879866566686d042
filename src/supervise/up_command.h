#pragma once

#include <string>

namespace resonance::supervise {

// `resonance up` / `resonance status` flags.
struct UpFlags {
  std::string config;  // --config: default ./resonance.toml
  std::string log_level;   // --log-level: for up itself and passed to every child
  std::string log_format;  // --log-format: likewise
};

// Runs the supervised tree until SIGTERM/SIGINT (docs/supervisor.md). Blocks SIGTERM,
// SIGINT and SIGCHLD in the calling thread; call it from main before starting threads.
// Returns the exit code: 0 after an ordered stop, 1 when another `up` holds the data dir
// (the message names its pid) or the data dir cannot be used, 2 for a bad config.
int RunUp(const UpFlags& flags);

// Prints the supervisor's state (DATA_DIR/supervisor.json) and, when the server answers,
// its /api/workers view. Returns 0 when a supervisor is running, 1 when none is (the
// last recorded state is still printed), 2 for a bad config.
int RunStatus(const UpFlags& flags);

}  // namespace resonance::supervise
