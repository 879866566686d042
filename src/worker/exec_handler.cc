#include "worker/exec_handler.h"

#include <algorithm>

#include "observe/log.h"
#include "observe/trace.h"
#include "worker/child_io.h"
#include "worker/exec_protocol.h"
#include "worker/temp_dir.h"

namespace resonance::worker {

std::string CredentialEnvName(std::string_view name) {
  std::string out = "RESONANCE_CREDENTIAL_";
  for (char c : name) {
    if (c >= 'a' && c <= 'z') {
      out.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      out.push_back(c);
    } else {
      out.push_back('_');
    }
  }
  return out;
}

ExecHandler::ExecHandler(HandlerConfig config, Spawner& spawner, std::string worker_id)
    : config_(std::move(config)),
      spawner_(spawner),
      worker_id_(std::move(worker_id)),
      rng_(std::random_device{}()) {}

Outcome ExecHandler::Run(const LeasedTask& task, TaskContext& ctx) {
  auto tmp = TempDir::Create("resonance-" + task.id + "-");
  if (!tmp.ok()) return Outcome::Failure(ErrorClass::kTemporary, tmp.status().message());

  std::vector<std::string> env;
  for (const auto& [k, v] : config_.env) env.push_back(k + "=" + v);
  env.push_back("RESONANCE_TASK_ID=" + task.id);
  env.push_back("RESONANCE_ATTEMPT=" + std::to_string(task.attempt));
  env.push_back("RESONANCE_ACTION=" + task.action);
  env.push_back("RESONANCE_QUEUE=" + task.queue);
  env.push_back("RESONANCE_WORKER_ID=" + worker_id_);
  env.push_back("RESONANCE_TMPDIR=" + tmp->path());
  env.push_back("TRACEPARENT=" + (task.span_id.empty()
                                      ? MakeTraceparent(task.trace_id, rng_)
                                      : trace::FormatTraceparent(task.trace_id, task.span_id)));
  for (const auto& [name, value] : task.credentials) {
    env.push_back(CredentialEnvName(name) + "=" + value);
  }
  SpawnSpec spec{config_.argv, EnvironmentWith(env), config_.dir, /*progress_pipe=*/true};
  auto child = spawner_.Spawn(spec);
  if (!child.ok()) {
    return Outcome::Failure(ErrorClass::kTemporary,
                            "cannot start handler: " + child.status().message());
  }

  const size_t limit = config_.max_output_bytes;
  std::string out;
  size_t out_total = 0;
  StderrLog err("task " + task.id);
  LineSplitter progress(kMaxProgressBytes);
  auto on_progress_line = [&](std::string_view line, bool cut) {
    if (cut) return;
    if (auto p = ReadProgressLine(line)) ctx.SetProgress(std::move(*p));
  };
  ChildIo io(spawner_, ctx.clock(), *child,
             {[&](std::string_view b) {
                out_total += b.size();
                if (out.size() < limit) out.append(b.substr(0, limit - out.size()));
              },
              [&](std::string_view b) { err.Feed(b); },
              [&](std::string_view b) { progress.Feed(b, on_progress_line); }});
  io.Write(task.payload);
  io.CloseStdinWhenWritten();

  const Micros grace = SecondsToMicros(config_.kill_grace_s);
  const Clock& clock = ctx.clock();
  while (!io.Poll(std::clamp<Micros>(ctx.deadline() - clock.Now(), 0, 50 * kMicrosPerMilli))) {
    if (ctx.StopRequested()) {
      log::Info("worker", "task " + task.id + ": stopping its handler (process group " +
                              std::to_string(io.child().pid) + ")");
      io.Terminate(grace);
      return Outcome::Failure(ErrorClass::kTemporary, "handler stopped");
    }
    if (ctx.TimedOut()) {
      const std::string msg = "handler timed out after " + FormatSeconds(ctx.timeout_s()) + " s";
      log::Info("worker", "task " + task.id + ": " + msg + "; stopping its process group " +
                              std::to_string(io.child().pid));
      io.Terminate(grace);
      return Outcome::Failure(ErrorClass::kTimeout, msg);
    }
  }
  const int status = io.Finish();
  progress.Flush(on_progress_line);
  err.Flush();
  return ExecOutcome(status, ReadStdout(out, out_total), err.last_line());
}

}  // namespace resonance::worker
