#include "http/task_json.h"

namespace resonance::http {
namespace {
void WriteError(JsonWriter& w, const Task& t) {
  w.Key("error");
  if (!t.has_error) {
    w.Null();
    return;
  }
  w.BeginObject().Key("class").String(ErrorClassName(t.error_class));
  w.Key("message").String(t.error_message).EndObject();
}
}  // namespace

void WriteTask(JsonWriter& w, const Task& t, bool with_lease,
               const std::vector<std::pair<std::string, std::string>>* credentials) {
  w.BeginObject();
  w.Key("id").String(t.id);
  w.Key("queue").String(t.queue);
  w.Key("action").String(t.action);
  w.Key("payload").Raw(t.payload.empty() ? std::string_view("{}") : t.payload);
  w.Key("priority").Int(t.priority);
  w.Key("state").String(TaskStateName(t.state));
  w.Key("run_at").Time(t.run_at);
  w.Key("attempt").Int(t.attempt);
  w.Key("max_attempts").Int(t.max_attempts);
  w.Key("timeout_s").Int(t.timeout_s);
  w.Key("idempotency_key").StringOrNull(t.idempotency_key);
  w.Key("requires_approval").Bool(t.requires_approval);
  w.Key("parent_id").StringOrNull(t.parent_id);
  w.Key("trace_id").StringOrNull(t.trace_id);
  w.Key("limit_key").StringOrNull(t.limit_key);
  w.Key("cost").Double(t.cost);
  w.Key("on_success").RawOrNull(t.on_success);
  w.Key("depth").Int(t.depth);
  w.Key("result").RawOrNull(t.result);
  WriteError(w, t);
  const bool running = t.state == TaskState::kRunning;
  w.Key("worker").StringOrNull(running ? std::string_view(t.worker) : std::string_view());
  w.Key("lease_expires_at").TimeOrNull(running ? t.lease_expires_at : 0);
  if (with_lease) w.Key("lease").String(t.lease);
  w.Key("cancel_requested").Bool(t.cancel_requested);
  w.Key("progress").RawOrNull(running ? std::string_view(t.progress) : std::string_view());
  w.Key("created_at").Time(t.created_at);
  w.Key("started_at").TimeOrNull(t.started_at);
  w.Key("finished_at").TimeOrNull(t.finished_at);
  w.Key("updated_at").Time(t.updated_at);
  if (!t.schedule.empty()) {  // scheduled tasks only (docs/schedules.md)
    w.Key("schedule").String(t.schedule);
    w.Key("scheduled_for").Time(t.scheduled_for);
  }
  if (credentials) {
    w.Key("credentials").BeginObject();
    for (const auto& [name, value] : *credentials) w.Key(name).String(value);
    w.EndObject();
  }
  w.EndObject();
}

std::string TaskJson(const Task& t, bool with_lease) {
  std::string out;
  out.reserve(600 + t.payload.size() + t.result.size());
  JsonWriter w(out);
  WriteTask(w, t, with_lease);
  return out;
}

void WriteResultItem(JsonWriter& w, const Task& t) {
  w.BeginObject();
  w.Key("id").String(t.id);
  w.Key("action").String(t.action);
  w.Key("queue").String(t.queue);
  w.Key("state").String(TaskStateName(t.state));
  w.Key("attempt").Int(t.attempt);
  w.Key("duration_ms");
  if (t.started_at && t.finished_at) {
    w.Int((t.finished_at - t.started_at) / 1000);
  } else {
    w.Null();
  }
  w.Key("finished_at").TimeOrNull(t.finished_at);
  if (t.state == TaskState::kSucceeded) {
    w.Key("result").RawOrNull(t.result);
  } else {
    WriteError(w, t);
  }
  w.EndObject();
}

}  // namespace resonance::http
