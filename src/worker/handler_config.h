#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace resonance::worker {

enum class HandlerType { kExec, kPersistent, kNoop, kSleep, kFail, kHttp };
const char* HandlerTypeName(HandlerType t);

// One [handlers."ACTION"] table of resonance.toml (docs/workers.md lists the keys).
// Value type.
struct HandlerConfig {
  std::string action;
  HandlerType type = HandlerType::kExec;
  std::vector<std::string> argv;                         // exec, persistent: required
  std::vector<std::pair<std::string, std::string>> env;  // added to the worker's env
  std::string dir;                                       // working dir; empty: the worker's
  double timeout_s = 0;                                  // 0: the task's timeout_s
  double kill_grace_s = 5;                               // SIGTERM, then SIGKILL this much later
  size_t max_output_bytes = 1 << 20;                     // stdout kept / longest reply line
};

// The part of a [[pools]] entry a worker reads: defaults for --queues and --concurrency.
// (The supervisor reads the rest.)
struct PoolConfig {
  std::string name;
  std::vector<std::string> queues;
  int concurrency = 0;  // 0: not given
};

// What `resonance worker` reads from the shared resonance.toml: [handlers.*] and the
// [[pools]] fields above. Other keys belong to the server and are ignored. Value type.
struct WorkerConfig {
  std::map<std::string, HandlerConfig, std::less<>> handlers;
  std::vector<PoolConfig> pools;

  const HandlerConfig* Find(std::string_view action) const;
  const PoolConfig* FindPool(std::string_view name) const;
};

// Reads a TOML file. kNotFound when it does not exist; kInvalidArgument naming the file
// and the key (handlers."ACTION".KEY) for TOML syntax, an unknown key, a wrong type, a
// value out of range, or a key that does not fit the handler's type.
Result<WorkerConfig> LoadWorkerConfig(const std::string& path);
// The same over TOML text; `name` stands for the file in messages.
Result<WorkerConfig> ParseWorkerConfig(const std::string& text, const std::string& name);

}  // namespace resonance::worker
