// Worker endpoints: lease, heartbeat, complete and fail (one and batch).
#include "core/json_writer.h"
#include "core/task_id.h"
#include "http/api.h"
#include "http/json_body.h"
#include "http/task_json.h"
#include "observe/trace.h"

namespace resonance::http {
namespace od = simdjson::ondemand;

namespace {

// Reads {"class","message","retry_after_s"?} into req.
Status ReadError(od::value v, const std::string& name, FinishRequest& req) {
  od::object obj;
  if (v.get_object().get(obj)) return Status(Code::kInvalidArgument, name + ": must be an object");
  bool has_class = false;
  Status read = ForEachField(obj, true, [&](std::string_view key, od::value fv) {
    Status s;
    if (key == "class") {
      std::string cls;
      s = ReadString(fv, name + ".class", cls);
      if (s.ok()) {
        auto c = ParseErrorClass(cls);
        if (!c) {
          return Status(Code::kInvalidArgument,
                        name + ".class: must be one of temporary, rate_limited, timeout, "
                               "validation, cancelled");
        }
        req.error_class = *c;
        has_class = true;
      }
    } else if (key == "message") {
      s = ReadString(fv, name + ".message", req.error_message);
      if (s.ok() && req.error_message.size() > 10000) req.error_message.resize(10000);
    } else if (key == "retry_after_s") {
      double d = 0;
      s = ReadNumber(fv, name + ".retry_after_s", d);
      if (s.ok() && !(d >= 0 && d <= 1e7)) {
        s = Status(Code::kInvalidArgument, name + ".retry_after_s: must be a number >= 0");
      }
      req.retry_after_s = d;
    }
    return s;
  });
  if (!read.ok()) return read;
  if (!has_class) return Status(Code::kInvalidArgument, name + ".class: is required");
  return Status::Ok();
}

// Reads {"id"?, "lease", "result"? | "error"} for one finish. `prefix` names the item.
Status ReadFinish(od::object obj, const std::string& prefix, bool need_id, bool success,
                  FinishRequest& req, Api::SpanOrigin* origin = nullptr) {
  req.success = success;
  bool has_lease = false, has_error = false;
  Status read = ForEachField(obj, false, [&](std::string_view key, od::value v) {
    const std::string name = prefix + std::string(key);
    Status s;
    if (key == "lease") {
      s = ReadString(v, name, req.lease);
      has_lease = true;
    } else if (key == "id" && need_id) {
      s = ReadString(v, name, req.id);
    } else if (key == "result" && success) {
      s = ReadRawAny(v, name, req.result);
    } else if (key == "error" && !success) {
      s = ReadError(v, name, req);
      has_error = true;
    } else if (key == "traceparent" && origin) {
      std::string tp;
      s = ReadString(v, name, tp);
      if (s.ok() && !trace::ParseTraceparent(tp, &origin->trace_id, &origin->parent_span_id)) {
        s = Status(Code::kInvalidArgument, name + ": not a W3C traceparent");
      }
    }
    return s;
  });
  if (!read.ok()) return read;
  if (need_id && req.id.empty()) return Status(Code::kInvalidArgument, prefix + "id: is required");
  if (!has_lease) return Status(Code::kInvalidArgument, prefix + "lease: is required");
  if (!success && !has_error) return Status(Code::kInvalidArgument, prefix + "error: is required");
  return Status::Ok();
}

// Reads "queues": 1 to 100 non-empty names.
Status ReadQueueNames(od::value v, std::vector<std::string>& out) {
  const Status bad(Code::kInvalidArgument, "queues: must be an array of 1 to 100 queue names");
  od::array arr;
  if (v.get_array().get(arr)) return bad;
  out.clear();
  for (auto q : arr) {
    std::string_view name;
    if (q.get_string().get(name) || name.empty()) return bad;
    out.emplace_back(name);
  }
  if (out.empty() || out.size() > 100) return bad;
  return Status::Ok();
}

}  // namespace

void Api::Lease(Request& req, Respond respond) {
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  LeaseRequest lr;
  bool has_worker = false;
  Status read = ForEachField(*obj, true, [&](std::string_view key, od::value v) {
    Status s;
    int64_t i = 0;
    if (key == "worker") {
      s = ReadString(v, "worker", lr.worker);
      has_worker = true;
    } else if (key == "queues") {
      s = ReadQueueNames(v, lr.queues);
    } else if (key == "max") {
      s = ReadInt(v, "max", 1, 1000, i);
      lr.max = static_cast<int>(i);
    } else if (key == "wait_ms") {
      s = ReadInt(v, "wait_ms", 0, 60000, i);
      lr.wait_ms = static_cast<int>(i);
    }
    return s;
  });
  if (!read.ok()) return respond(ErrorReply(read));
  if (!has_worker || lr.worker.empty() || lr.worker.size() > 200) {
    return respond(ErrorReply(Status(Code::kInvalidArgument, "worker: must be 1 to 200 characters")));
  }
  engine_.Lease(std::move(lr), [this, respond](const Status& s, std::vector<LeasedTask> leased) {
    OnIo([this, respond, s, leased = std::move(leased)] {
      if (!s.ok()) return respond(ErrorReply(s));
      std::string body;
      JsonWriter w(body);
      w.BeginObject().Key("tasks").BeginArray();
      if (!leased.empty()) {
        std::vector<std::string> ids;
        ids.reserve(leased.size());
        for (const auto& l : leased) ids.push_back(l.id);
        auto tasks = store_.GetTasks(ids);
        if (!tasks.ok()) return respond(ErrorReply(tasks.status()));
        body.reserve(tasks->size() * 700);
        size_t j = 0;
        for (Task& t : *tasks) {
          while (j < leased.size() && leased[j].id != t.id) ++j;
          if (j < leased.size()) {
            t.lease = leased[j].lease;
            t.lease_expires_at = leased[j].lease_expires_at;
          }
          // The one answer that carries credential values: to the worker, never logged.
          const std::vector<std::string>* names = nullptr;
          if (options_.credentials && options_.actions) {
            auto c = options_.actions->credentials.find(t.action);
            if (c != options_.actions->credentials.end()) names = &c->second;
          }
          if (names) {
            const auto values = options_.credentials->Values(*names);
            WriteTask(w, t, true, &values);
          } else {
            WriteTask(w, t, true);
          }
        }
      }
      w.EndArray().EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::Heartbeat(Request& req, Respond respond) {
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  std::string lease, progress;
  bool has_lease = false;
  Status read = ForEachField(*obj, false, [&](std::string_view key, od::value v) {
    Status s;
    if (key == "lease") {
      s = ReadString(v, "lease", lease);
      has_lease = true;
    } else if (key == "progress") {
      s = ReadRawAny(v, "progress", progress);
      if (s.ok() && progress.size() > 65536) {
        s = Status(Code::kInvalidArgument, "progress: at most 64 KiB");
      }
    }
    return s;
  });
  if (!read.ok()) return respond(ErrorReply(read));
  if (!has_lease) return respond(ErrorReply(Status(Code::kInvalidArgument, "lease: is required")));
  engine_.Heartbeat(req.params[0], lease, std::move(progress),
                    [respond](const Status& s, HeartbeatReply r) {
                      if (!s.ok()) return respond(ErrorReply(s));
                      std::string body;
                      JsonWriter(body).BeginObject().Key("lease_expires_at").Time(r.lease_expires_at)
                          .Key("cancel").Bool(r.cancel).EndObject();
                      respond(JsonReply(200, std::move(body)));
                    });
}

void Api::RegisterWorker(Request& req, Respond respond) {
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  WorkerRegistration r;
  bool has_worker = false;
  Status read = ForEachField(*obj, true, [&](std::string_view key, od::value v) {
    Status s;
    if (key == "worker") {
      s = ReadString(v, "worker", r.name);
      has_worker = true;
    } else if (key == "pool") {
      s = ReadString(v, "pool", r.pool);
    } else if (key == "host") {
      s = ReadString(v, "host", r.host);
    } else if (key == "pid") {
      s = ReadInt(v, "pid", 1, INT32_MAX, r.pid);
    } else if (key == "concurrency") {
      s = ReadInt(v, "concurrency", 1, 10000, r.concurrency);
    } else if (key == "queues") {
      s = ReadQueueNames(v, r.queues);
    }
    return s;
  });
  if (!read.ok()) return respond(ErrorReply(read));
  if (!has_worker || r.name.empty() || r.name.size() > 200) {
    return respond(ErrorReply(Status(Code::kInvalidArgument, "worker: must be 1 to 200 characters")));
  }
  std::string name = r.name;
  engine_.RegisterWorker(std::move(r), [this, name, respond](const Status& s) {
    if (!s.ok()) return respond(ErrorReply(s));
    std::string body;
    JsonWriter(body).BeginObject().Key("worker").String(name)
        .Key("heartbeat_ms").Int(engine_.worker_heartbeat() / kMicrosPerMilli)
        .Key("lost_after_ms").Int(engine_.worker_lost_after() / kMicrosPerMilli).EndObject();
    respond(JsonReply(200, std::move(body)));
  });
}

void Api::WorkerHeartbeat(Request& req, Respond respond) {
  // The body ({"running": [...]}) is informational today; the lease table is the truth.
  if (Status s = engine_.WorkerHeartbeat(req.params[0]); !s.ok()) return respond(ErrorReply(s));
  respond(JsonReply(200, R"({"ok":true})"));
}

void Api::DeregisterWorker(Request& req, Respond respond) {
  engine_.DeregisterWorker(req.params[0], [respond](const Status& s) {
    if (!s.ok()) return respond(ErrorReply(s));
    respond(JsonReply(200, R"({"ok":true})"));
  });
}

void Api::Complete(Request& req, Respond respond) { FinishSingle(req, std::move(respond), true); }

void Api::Fail(Request& req, Respond respond) { FinishSingle(req, std::move(respond), false); }

void Api::FinishSingle(Request& req, Respond respond, bool success) {
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  FinishRequest fr;
  // The body's traceparent (the attempt's span) wins over the request's own trace.
  SpanOrigin origin;
  if (Status s = ReadFinish(*obj, "", false, success, fr, &origin); !s.ok()) {
    return respond(ErrorReply(s));
  }
  // Else the request's trace, if the caller named one: a trace made up for this request
  // alone would hold a task.finish detached from its task.
  if (origin.trace_id.empty() && !req.parent_span.empty()) {
    origin = {req.trace_id, req.span_id, 0};
  }
  origin.start_unix_nano = req.start_unix_nano;
  fr.id = req.params[0];
  std::string id = fr.id;
  engine_.Finish({std::move(fr)}, [this, id, respond, success, origin = std::move(origin)](
                                      const Status& s, std::vector<Result<TaskState>> out) {
    OnIo([this, id, respond, s, success, origin, out = std::move(out)] {
      if (!s.ok()) return respond(ErrorReply(s));
      TraceFinished(origin, id, success, out.front());
      if (!out.front().ok()) return respond(ErrorReply(out.front().status()));
      ReplyTask(id, 200, respond);
    });
  });
}

void Api::FinishBatch(Request& req, Respond respond, bool success) {
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  std::vector<FinishRequest> items;
  std::vector<SpanOrigin> origins;  // per item, from its optional "traceparent"
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
      const std::string prefix = "tasks[" + std::to_string(i) + "].";
      od::object o;
      if (i >= 1000) {
        return respond(ErrorReply(Status(Code::kInvalidArgument, "tasks: at most 1000 items")));
      }
      if (item.get_object().get(o)) {
        return respond(ErrorReply(
            Status(Code::kInvalidArgument, "tasks[" + std::to_string(i) + "]: must be an object")));
      }
      FinishRequest fr;
      SpanOrigin origin;
      if (Status s = ReadFinish(o, prefix, true, success, fr, &origin); !s.ok()) {
        return respond(ErrorReply(s));
      }
      origin.start_unix_nano = req.start_unix_nano;
      origins.push_back(std::move(origin));
      items.push_back(std::move(fr));
      ++i;
    }
  }
  if (!seen || items.empty()) {
    return respond(ErrorReply(Status(Code::kInvalidArgument, "tasks: must be a non-empty array")));
  }
  std::vector<std::string> ids;
  ids.reserve(items.size());
  for (const auto& it : items) ids.push_back(it.id);
  engine_.Finish(std::move(items), [this, ids = std::move(ids), respond, success,
                                    origins = std::move(origins)](
                                       const Status& s, std::vector<Result<TaskState>> out) {
    OnIo([this, respond, s, ids, success, origins, out = std::move(out)] {
      if (!s.ok()) return respond(ErrorReply(s));
      for (size_t i = 0; i < out.size(); ++i) TraceFinished(origins[i], ids[i], success, out[i]);
      std::string body;
      body.reserve(ids.size() * 48);
      JsonWriter w(body);
      w.BeginObject().Key("tasks").BeginArray();
      for (size_t i = 0; i < out.size(); ++i) {
        w.BeginObject().Key("id").String(ids[i]);
        if (out[i].ok()) {
          w.Key("state").String(TaskStateName(*out[i]));
        } else {
          w.Key("error").BeginObject().Key("code").String(CodeName(out[i].status().code()));
          w.Key("message").String(out[i].status().message()).EndObject();
        }
        w.EndObject();
      }
      w.EndArray().EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

}  // namespace resonance::http
