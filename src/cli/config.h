#pragma once

#include <string>

#include "core/retry_policy.h"
#include "core/status.h"
#include "store/store.h"

namespace resonance {

// Everything `resonance server` reads from resonance.toml (docs/configuration.md lists
// every key with its default). Value type.
struct Config {
  std::string listen = "127.0.0.1:8091";
  std::string data_dir = "var";
  Durability durability = Durability::kFsync;
  int64_t max_body_bytes = 1 << 20;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 30000;
  int sweep_interval_ms = 50;
  int io_threads = 1;
  int shutdown_grace_ms = 10000;
  int64_t ledger_checkpoint_every = 100000;
  int worker_heartbeat_ms = 5000;
  int worker_lost_after_ms = 15000;
  RetryPolicies retry;
};

// Reads a TOML file. kInvalidArgument naming the key (and the file) on a wrong type,
// an unknown key or a value out of range; kNotFound when the file does not exist.
Result<Config> LoadConfig(const std::string& path);

// Splits "host:port". kInvalidArgument when malformed.
Status SplitHostPort(const std::string& listen, std::string& host, uint16_t& port);

}  // namespace resonance
