#include "worker/persistent_handler.h"

#include <sys/wait.h>

#include <algorithm>

#include "core/json_writer.h"
#include "observe/log.h"
#include "observe/trace.h"
#include "worker/exec_protocol.h"
#include "worker/json_read.h"

namespace resonance::worker {
namespace {

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

// One line of the process's answer about a task.
struct Reply {
  std::string id;
  bool has_result = false;
  std::string result;
  bool has_error = false;
  ErrorObject error;
  bool has_progress = false;
};

Status ReadReply(std::string_view line, Reply& r) {
  return json::ForEachMember(line, [&](std::string_view key, json::Value v) -> Status {
    if (key == "id") {
      auto s = json::String(v);
      if (!s) return Status(Code::kInvalidArgument, "id: must be a string");
      r.id = std::move(*s);
    } else if (key == "result") {
      auto raw = json::Raw(v);
      if (!raw) return Status(Code::kInvalidArgument, "result: unreadable");
      r.has_result = true;
      if (*raw != "null") r.result = std::move(*raw);
    } else if (key == "error" && !json::IsNull(v)) {
      r.has_error = true;
      return ReadErrorObject(v, r.error);
    } else if (key == "progress") {
      r.has_progress = true;
    }
    return Status::Ok();
  });
}

}  // namespace

PersistentHandler::PersistentHandler(HandlerConfig config, Spawner& spawner, const Clock& clock,
                                     std::string worker_id, int slot)
    : config_(std::move(config)),
      spawner_(spawner),
      clock_(clock),
      worker_id_(std::move(worker_id)),
      slot_(slot),
      rng_(std::random_device{}()),
      restart_backoff_(HandlerRestartBackoff(rng_())),
      lines_(config_.max_output_bytes),
      err_("persistent handler " + config_.action) {}

PersistentHandler::~PersistentHandler() {
  if (!io_) return;
  io_->CloseStdinWhenWritten();
  const Micros until = clock_.Now() + kMicrosPerSecond;
  while (!io_->Poll(50 * kMicrosPerMilli) && clock_.Now() < until) {
  }
  StopProcess(SecondsToMicros(config_.kill_grace_s));
}

Status PersistentHandler::Start() {
  auto tmp = TempDir::Create("resonance-" + config_.action + "-" + std::to_string(slot_) + "-");
  if (!tmp.ok()) return tmp.status();
  std::vector<std::string> env;
  for (const auto& [k, v] : config_.env) env.push_back(k + "=" + v);
  env.push_back("RESONANCE_ACTION=" + config_.action);
  env.push_back("RESONANCE_WORKER_ID=" + worker_id_);
  env.push_back("RESONANCE_SLOT=" + std::to_string(slot_));
  env.push_back("RESONANCE_TMPDIR=" + tmp->path());
  SpawnSpec spec{config_.argv, EnvironmentWith(env), config_.dir, /*progress_pipe=*/false};
  auto child = spawner_.Spawn(spec);
  if (!child.ok()) return child.status();
  tmp_ = std::move(*tmp);
  ready_lines_.clear();
  lines_ = LineSplitter(config_.max_output_bytes);
  io_ = std::make_unique<ChildIo>(
      spawner_, clock_, *child,
      ChildIo::Sinks{[this](std::string_view b) {
                       lines_.Feed(b, [this](std::string_view line, bool cut) {
                         ready_lines_.emplace_back(std::string(line), cut);
                       });
                     },
                     [this](std::string_view b) { err_.Feed(b); }, nullptr});
  log::Info("worker", "persistent handler " + config_.action + " (slot " + std::to_string(slot_) +
                          ") started as pid " + std::to_string(child->pid));
  return Status::Ok();
}

void PersistentHandler::Reaped(int status, const std::string& why, bool expected) {
  log::Write(expected ? log::Level::kInfo : log::Level::kWarn, "worker",
             "persistent handler " + config_.action + " (pid " + std::to_string(io_->child().pid) +
                 ") " + DescribeStatus(status) + why);
  io_.reset();
  tmp_.reset();
  err_.Flush();
}

void PersistentHandler::StopProcess(Micros grace) {
  if (!io_) return;
  const int status = io_->Terminate(grace);
  Reaped(status, "", /*expected=*/true);
}

Outcome PersistentHandler::Run(const LeasedTask& task, TaskContext& ctx) {
  const Micros grace = SecondsToMicros(config_.kill_grace_s);
  if (io_ && io_->Poll(0)) Reaped(io_->Finish(), " while idle; restarting it");
  if (!io_) {
    if (next_start_ > clock_.Now() && !ctx.SleepUntil(std::min(next_start_, ctx.deadline()))) {
      return Outcome::Failure(ErrorClass::kTemporary, "handler stopped");
    }
    if (ctx.TimedOut()) {
      return Outcome::Failure(ErrorClass::kTimeout,
                              "persistent handler not restarted within the timeout of " +
                                  FormatSeconds(ctx.timeout_s()) + " s");
    }
    if (Status s = Start(); !s.ok()) {
      next_start_ = clock_.Now() + restart_backoff_.Next();
      log::Warn("worker", "cannot start persistent handler " + config_.action + ": " + s.message());
      return Outcome::Failure(ErrorClass::kTemporary,
                              "cannot start persistent handler: " + s.message());
    }
  }
  err_.set_source("task " + task.id);
  std::string request;
  JsonWriter w(request);
  w.BeginObject().Key("id").String(task.id).Key("action").String(task.action);
  w.Key("queue").String(task.queue).Key("payload").Raw(task.payload);
  w.Key("attempt")
      .Int(task.attempt)
      .Key("traceparent")
      .String(task.span_id.empty() ? MakeTraceparent(task.trace_id, rng_)
                                   : trace::FormatTraceparent(task.trace_id, task.span_id));
  if (!task.credentials.empty()) {
    w.Key("credentials").BeginObject();
    for (const auto& [name, value] : task.credentials) w.Key(name).String(value);
    w.EndObject();
  }
  w.EndObject();
  request.push_back('\n');
  io_->Write(request);

  // The reply to this task among the lines read so far, if there is one.
  auto take_reply = [&]() -> std::optional<Outcome> {
    while (!ready_lines_.empty()) {
      auto [line, cut] = std::move(ready_lines_.front());
      ready_lines_.pop_front();
      if (cut) {
        return Outcome::Failure(ErrorClass::kValidation,
                                "persistent handler answered with a line over " +
                                    std::to_string(config_.max_output_bytes) + " bytes");
      }
      Reply reply;
      if (Status s = ReadReply(line, reply); !s.ok()) {
        log::Warn("worker", "persistent handler " + config_.action +
                                ": ignoring a line that is no reply (" + s.message() +
                                "): " + json::SanitizeUtf8(line.substr(0, 200)));
        continue;
      }
      if (reply.id != task.id) {
        log::Warn("worker", "persistent handler " + config_.action +
                                ": ignoring a reply for task '" + json::SanitizeUtf8(reply.id) +
                                "' while running " + task.id);
        continue;
      }
      if (reply.has_error) {
        const ErrorObject& e = reply.error;
        std::string msg = e.message.empty() ? "handler reported an error" : e.message;
        if (!e.cls && !e.class_name.empty()) msg = "(unknown class '" + e.class_name + "') " + msg;
        return Outcome::Failure(e.cls.value_or(ErrorClass::kTemporary), json::SanitizeUtf8(msg),
                                e.retry_after_s);
      }
      if (reply.has_result || !reply.has_progress) {
        restart_backoff_.Reset();
        return Outcome::Success(std::move(reply.result));
      }
      ctx.SetProgress(std::string(json::Trim(line)));
    }
    return std::nullopt;
  };

  for (;;) {
    if (auto outcome = take_reply()) return std::move(*outcome);
    if (io_->exited()) {
      const int status = io_->Finish();  // reads what is left of its output
      std::optional<Outcome> last = take_reply();
      const std::string how = DescribeStatus(status);
      Reaped(status, " while running task " + task.id + "; restarting it for the next task");
      if (last) return std::move(*last);
      next_start_ = clock_.Now() + restart_backoff_.Next();
      return Outcome::Failure(ErrorClass::kTemporary, "persistent handler " + how);
    }
    if (ctx.StopRequested()) {
      StopProcess(grace);
      return Outcome::Failure(ErrorClass::kTemporary, "handler stopped");
    }
    if (ctx.TimedOut()) {
      const std::string msg = "handler timed out after " + FormatSeconds(ctx.timeout_s()) + " s";
      log::Info("worker",
                "task " + task.id + ": " + msg + "; stopping persistent handler " + config_.action);
      StopProcess(grace);
      return Outcome::Failure(ErrorClass::kTimeout, msg);
    }
    io_->Poll(std::clamp<Micros>(ctx.deadline() - clock_.Now(), 0, 50 * kMicrosPerMilli));
  }
}

}  // namespace resonance::worker
