#pragma once

#include <random>
#include <string>
#include <string_view>

#include "worker/handler.h"
#include "worker/handler_config.h"
#include "worker/spawner.h"

namespace resonance::worker {

// type = "exec": one process per task (docs/workers.md). The process gets the payload
// on stdin, RESONANCE_TASK_ID / _ATTEMPT / _ACTION / _QUEUE / _WORKER_ID / _TMPDIR and
// TRACEPARENT in its environment (and RESONANCE_CREDENTIAL_<NAME> for each credential
// the lease carried), and fd 3 for progress lines. Its stdout is the result,
// its exit code the class (exec_protocol.h), its stderr goes to the log. Past the
// timeout or on a stop request its whole process group gets SIGTERM, then SIGKILL after
// kill_grace_s; processes it leaves behind in its group when it exits are killed too.
// The task's temp dir is removed after every run. Not thread-safe (one slot).
// RESONANCE_CREDENTIAL_<NAME>: the name upper-cased, other than A-Z 0-9 turned into '_'
// ("api.token" -> RESONANCE_CREDENTIAL_API_TOKEN).
std::string CredentialEnvName(std::string_view name);

class ExecHandler final : public Handler {
 public:
  ExecHandler(HandlerConfig config, Spawner& spawner, std::string worker_id);
  Outcome Run(const LeasedTask& task, TaskContext& ctx) override;

 private:
  const HandlerConfig config_;
  Spawner& spawner_;
  const std::string worker_id_;
  std::mt19937_64 rng_;
};

}  // namespace resonance::worker
