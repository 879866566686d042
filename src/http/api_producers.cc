// Producer endpoints: enqueue (one and batch), get, list, cancel, results.
#include <memory>

#include "core/json_writer.h"
#include "core/task_id.h"
#include "core/time_format.h"
#include "http/api.h"
#include "http/json_body.h"
#include "http/task_json.h"

namespace resonance::http {
namespace od = simdjson::ondemand;

namespace {

// Reads one task spec. Error messages start with the field's name; a batch puts
// "tasks[i]." in front.
Status ReadNewTask(od::object obj, NewTask& t) {
  bool has_action = false;
  Status read = ForEachField(obj, true, [&](std::string_view key, od::value v) {
    const std::string_view name = key;
    Status s;
    int64_t i = 0;
    if (key == "action") {
      s = ReadString(v, name, t.action);
      has_action = true;
    } else if (key == "queue") {
      s = ReadString(v, name, t.queue);
    } else if (key == "payload") {
      s = ReadRawObject(v, name, t.payload);
    } else if (key == "priority") {
      s = ReadInt(v, name, -1000000, 1000000, i);
      t.priority = static_cast<int32_t>(i);
    } else if (key == "delay_s") {
      double d = 0;
      s = ReadNumber(v, name, d);
      if (s.ok() && !(d >= 0 && d <= 1e9)) {
        s = Status(Code::kInvalidArgument, "delay_s: must be a number >= 0");
      }
      t.delay_s = d;
    } else if (key == "run_at") {
      std::string text;
      s = ReadString(v, name, text);
      if (s.ok()) {
        t.run_at = ParseRfc3339(text);
        if (!t.run_at) s = Status(Code::kInvalidArgument, "run_at: must be an RFC 3339 time");
      }
    } else if (key == "max_attempts") {
      s = ReadInt(v, name, 1, 1000, i);
      t.max_attempts = static_cast<int32_t>(i);
    } else if (key == "timeout_s") {
      s = ReadInt(v, name, 1, 86400, i);
      t.timeout_s = static_cast<int32_t>(i);
    } else if (key == "idempotency_key") {
      s = ReadString(v, name, t.idempotency_key);
    } else if (key == "requires_approval") {
      s = ReadBool(v, name, t.requires_approval);
    } else if (key == "parent_id") {
      s = ReadString(v, name, t.parent_id);
    } else if (key == "limit_key") {
      s = ReadString(v, name, t.limit_key);
    } else if (key == "cost") {
      s = ReadNumber(v, name, t.cost);
    }
    return s;
  });
  if (!read.ok()) return read;
  if (!has_action) {
    return Status(Code::kInvalidArgument, "action: is required");
  }
  return ValidateNewTask(t);
}

}  // namespace

std::optional<Reply> Api::CheckRegistry(const NewTask& t, const std::string& prefix) const {
  if (!options_.actions) return std::nullopt;
  const ActionRegistry& reg = *options_.actions;
  if (reg.strict && !reg.known.count(t.action)) {
    return ErrorReply(Status(Code::kUnprocessable,
                             prefix + "action: unknown action '" + t.action +
                                 "' (the action registry is strict: add [actions.\"" + t.action +
                                 "\"] to the config)"));
  }
  auto it = reg.schemas.find(t.action);
  if (it == reg.schemas.end()) return std::nullopt;
  auto violations = it->second->Validate(t.payload, prefix + "payload");
  if (violations.empty()) return std::nullopt;
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("error").BeginObject().Key("code").String(CodeName(Code::kUnprocessable));
  w.Key("message").String(prefix + "payload: does not match the schema of action '" + t.action +
                          "' (" + std::to_string(violations.size()) + " violation" +
                          (violations.size() == 1 ? "" : "s") + ")");
  w.Key("violations").BeginArray();
  for (const auto& v : violations) {
    w.BeginObject().Key("path").String(v.path).Key("message").String(v.message).EndObject();
  }
  w.EndArray().EndObject().EndObject();
  return Reply{422, std::move(body)};
}

void Api::Enqueue(Request& req, Respond respond) {
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  NewTask t;
  t.trace_id = req.trace_id;
  if (Status s = ReadNewTask(*obj, t); !s.ok()) return respond(ErrorReply(s));
  if (auto refused = CheckRegistry(t, "")) return respond(std::move(*refused));
  std::vector<NewTask> tasks;
  tasks.push_back(std::move(t));
  SpanOrigin origin{req.trace_id, req.span_id, req.start_unix_nano};
  engine_.Enqueue(std::move(tasks), [this, respond, origin = std::move(origin)](
                                        const Status& s, std::vector<EnqueueOutcome> out) {
    OnIo([this, respond, s, origin, out = std::move(out)]() {
      if (!s.ok()) return respond(ErrorReply(s));
      TraceEnqueued(origin, out);
      const EnqueueOutcome& o = out.front();
      if (o.created) return respond(JsonReply(201, TaskJson(*o.task)));
      ReplyTask(o.id, 200, respond);
    });
  });
}

void Api::EnqueueBatch(Request& req, Respond respond) {
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  std::vector<NewTask> tasks;
  bool seen = false;
  for (auto field : *obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) || key != "tasks") continue;
    seen = true;
    od::array arr;
    if (field.value().get_array().get(arr)) {
      return respond(ErrorReply(Status(Code::kInvalidArgument, "tasks: must be an array")));
    }
    size_t i = 0;
    for (auto item : arr) {
      if (i >= 1000) {
        return respond(ErrorReply(Status(Code::kInvalidArgument, "tasks: at most 1000 items")));
      }
      od::object o;
      if (item.get_object().get(o)) {
        return respond(ErrorReply(
            Status(Code::kInvalidArgument, "tasks[" + std::to_string(i) + "]: must be an object")));
      }
      NewTask t;
      t.trace_id = req.trace_id;
      if (Status s = ReadNewTask(o, t); !s.ok()) {
        return respond(ErrorReply(
            Status(s.code(), "tasks[" + std::to_string(i) + "]." + s.message())));
      }
      if (auto refused = CheckRegistry(t, "tasks[" + std::to_string(i) + "].")) {
        return respond(std::move(*refused));
      }
      tasks.push_back(std::move(t));
      ++i;
    }
  }
  if (!seen || tasks.empty()) {
    return respond(ErrorReply(Status(Code::kInvalidArgument, "tasks: must be a non-empty array")));
  }
  SpanOrigin origin{req.trace_id, req.span_id, req.start_unix_nano};
  engine_.Enqueue(std::move(tasks), [this, respond, origin = std::move(origin)](
                                        const Status& s, std::vector<EnqueueOutcome> out) {
    OnIo([this, respond, s, origin, out = std::move(out)]() {
      if (!s.ok()) return respond(ErrorReply(s));
      TraceEnqueued(origin, out);
      std::string body;
      body.reserve(out.size() * 700);
      JsonWriter w(body);
      w.BeginObject().Key("tasks").BeginArray();
      for (const auto& o : out) {
        if (o.created) {
          WriteTask(w, *o.task);
          continue;
        }
        auto t = store_.GetTask(o.id);
        if (!t.ok()) return respond(ErrorReply(t.status()));
        WriteTask(w, *t);
      }
      w.EndArray().EndObject();
      respond(JsonReply(201, std::move(body)));
    });
  });
}

void Api::GetTask(Request& req, Respond respond) {
  std::string id = req.params[0];
  if (!ParseTaskId(id)) return respond(ErrorReply(Status(Code::kNotFound, "no task " + id)));
  engine_.Barrier([this, id, respond](const Status&) {
    OnIo([this, id, respond] { ReplyTask(id, 200, respond); });
  });
}

void Api::ListTasks(Request& req, Respond respond) {
  TaskFilter f;
  if (const std::string* st = req.Query("state"); st && !st->empty()) {
    f.state = ParseTaskState(*st);
    if (!f.state) {
      return respond(ErrorReply(Status(Code::kInvalidArgument, "state: unknown state " + *st)));
    }
  }
  if (const std::string* q = req.Query("queue")) f.queue = *q;
  if (const std::string* a = req.Query("action")) f.action = *a;
  if (const std::string* a = req.Query("after")) f.after = *a;
  auto limit = QueryInt(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return respond(ErrorReply(limit.status()));
  f.limit = static_cast<int>(*limit);
  engine_.Barrier([this, f, respond](const Status&) {
    OnIo([this, f, respond] {
      auto tasks = store_.ListTasks(f);
      if (!tasks.ok()) return respond(ErrorReply(tasks.status()));
      std::string body;
      JsonWriter w(body);
      w.BeginObject().Key("tasks").BeginArray();
      for (const Task& t : *tasks) WriteTask(w, t);
      w.EndArray().Key("next_after");
      if (static_cast<int>(tasks->size()) == f.limit) {
        w.String(tasks->back().id);
      } else {
        w.Null();
      }
      w.EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::CancelTask(Request& req, Respond respond) {
  std::string id = req.params[0];
  engine_.Cancel(id, [this, id, respond](const Status& s) {
    OnIo([this, id, respond, s] {
      if (!s.ok()) return respond(ErrorReply(s));
      ReplyTask(id, 200, respond);
    });
  });
}

void Api::Results(Request& req, Respond respond) {
  auto count = QueryInt(req, "count", 20, 1, 1000);
  if (!count.ok()) return respond(ErrorReply(count.status()));
  const int n = static_cast<int>(*count);
  engine_.Barrier([this, n, respond](const Status&) {
    OnIo([this, n, respond] {
      auto tasks = store_.RecentFinished(n);
      if (!tasks.ok()) return respond(ErrorReply(tasks.status()));
      std::string body;
      JsonWriter w(body);
      w.BeginObject().Key("results").BeginArray();
      int succeeded = 0;
      for (const Task& t : *tasks) {
        WriteResultItem(w, t);
        if (t.state == TaskState::kSucceeded) ++succeeded;
      }
      w.EndArray().Key("success_rate");
      if (tasks->empty()) {
        w.Null();
      } else {
        w.Double(static_cast<double>(succeeded) / static_cast<double>(tasks->size()));
      }
      w.EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

}  // namespace resonance::http
