#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "supervise/restart_policy.h"

namespace resonance::supervise {

// One [[pools]] entry as the supervisor sees it: `workers` processes named NAME-0 ..
// NAME-(workers-1). The worker itself reads name, queues and concurrency.
struct PoolSpec {
  std::string name;
  int workers = 1;
};

// What `resonance up` and `resonance status` read from resonance.toml: data_dir, the
// [[pools]] and the [supervisor] table. The server's keys are left to the server (it
// validates the same file when it starts). Value type.
struct UpConfig {
  std::string path;  // the config file, passed on to the server and the workers
  std::string data_dir = "var";
  std::vector<PoolSpec> pools;
  SupervisorOptions options;
  // Appended to every child's command line (`up --log-level debug` passes it down).
  std::vector<std::string> child_args;
};

// Reads a TOML file. kNotFound when it does not exist; kInvalidArgument naming the file
// and the key (supervisor.KEY, pools[i].KEY) for TOML syntax, an unknown key in
// [supervisor] or [[pools]], a wrong type, a value out of range, a pool without a name,
// a name that is not [A-Za-z0-9_.-]+, or two pools with one name.
Result<UpConfig> LoadUpConfig(const std::string& path);
// The same over TOML text; `name` stands for the file in messages.
Result<UpConfig> ParseUpConfig(const std::string& text, const std::string& name);

}  // namespace resonance::supervise
