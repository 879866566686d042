#include "worker/server_api.h"
#include "core/percent_encode.h"

#include "core/json_writer.h"
#include "core/time_format.h"
#include "worker/json_read.h"

namespace resonance::worker {
namespace {

constexpr Micros kCallTimeout = 10 * kMicrosPerSecond;

Code CodeForStatus(int status) {
  switch (status) {
    case 400:
      return Code::kInvalidArgument;
    case 404:
      return Code::kNotFound;
    case 409:
      return Code::kConflict;
    case 413:
      return Code::kTooLarge;
    case 422:
      return Code::kUnprocessable;
    default:
      return status >= 500 ? Code::kUnavailable : Code::kInternal;
  }
}

Code CodeForName(std::string_view name) {
  if (name == "conflict") return Code::kConflict;
  if (name == "not_found") return Code::kNotFound;
  if (name == "invalid_argument") return Code::kInvalidArgument;
  if (name == "invalid_json") return Code::kInvalidJson;
  if (name == "payload_too_large") return Code::kTooLarge;
  if (name == "unprocessable") return Code::kUnprocessable;
  if (name == "unavailable") return Code::kUnavailable;
  return Code::kInternal;
}

// {"code","message"} of an error object.
Status ReadApiError(json::Value v) {
  std::string code, message;
  json::ForEachMember(v, [&](std::string_view key, json::Value fv) -> Status {
    if (key == "code") code = json::String(fv).value_or("");
    if (key == "message") message = json::String(fv).value_or("");
    return Status::Ok();
  });
  return Status(CodeForName(code), message.empty() ? code : message);
}

// The message of an error answer {"error":{"code","message"}}, else the start of the body.
std::string ErrorMessage(int status, const std::string& body) {
  std::string message;
  json::ForEachMember(body, [&](std::string_view key, json::Value v) -> Status {
    if (key == "error") message = ReadApiError(v).message();
    return Status::Ok();
  });
  if (message.empty()) message = json::SanitizeUtf8(json::Trim(body).substr(0, 200));
  return "HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message);
}

void WriteFinishFields(JsonWriter& w, const Finish& f) {
  w.Key("lease").String(f.lease);
  if (!f.traceparent.empty()) w.Key("traceparent").String(f.traceparent);
  if (f.outcome.ok) {
    if (!f.outcome.result.empty()) w.Key("result").Raw(f.outcome.result);
  } else {
    w.Key("error").BeginObject().Key("class").String(ErrorClassName(f.outcome.error_class));
    w.Key("message").String(f.outcome.message);
    if (f.outcome.retry_after_s) w.Key("retry_after_s").Double(*f.outcome.retry_after_s);
    w.EndObject();
  }
}

Status ReadTask(json::Value v, LeasedTask& t) {
  return json::ForEachMember(v, [&](std::string_view key, json::Value fv) -> Status {
    if (json::IsNull(fv)) return Status::Ok();
    auto text = [&](std::string& out) {
      out = json::String(fv).value_or("");
      return Status::Ok();
    };
    auto integer = [&](int& out) {
      out = static_cast<int>(json::Int(fv).value_or(out));
      return Status::Ok();
    };
    if (key == "id") return text(t.id);
    if (key == "queue") return text(t.queue);
    if (key == "action") return text(t.action);
    if (key == "trace_id") return text(t.trace_id);
    if (key == "lease") return text(t.lease);
    if (key == "attempt") return integer(t.attempt);
    if (key == "max_attempts") return integer(t.max_attempts);
    if (key == "timeout_s") return integer(t.timeout_s);
    if (key == "payload") {
      auto raw = json::Raw(fv);
      if (!raw) return Status(Code::kInvalidJson, "payload: unreadable");
      t.payload = std::move(*raw);
    } else if (key == "credentials") {
      return json::ForEachMember(fv, [&](std::string_view name, json::Value cv) -> Status {
        auto value = json::String(cv);
        if (!value) return Status(Code::kInvalidJson, "credentials: values must be strings");
        t.credentials.emplace_back(std::string(name), std::move(*value));
        return Status::Ok();
      });
    } else if (key == "lease_expires_at") {
      t.lease_expires_at = ParseRfc3339(json::String(fv).value_or("")).value_or(0);
    }
    return Status::Ok();
  });
}

}  // namespace

std::string FinishBody(const Finish& f, bool with_id) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  if (with_id) w.Key("id").String(f.id);
  WriteFinishFields(w, f);
  w.EndObject();
  return body;
}

Result<std::vector<LeasedTask>> ParseLeaseReply(std::string_view body) {
  std::vector<LeasedTask> tasks;
  Status s = json::ForEachMember(
      body,
      [&](std::string_view key, json::Value v) -> Status {
        if (key != "tasks") return Status::Ok();
        return json::ForEachElement(v, [&](json::Value tv) -> Status {
          LeasedTask t;
          if (Status st = ReadTask(tv, t); !st.ok()) return st;
          if (t.id.empty() || t.lease.empty())
            return Status(Code::kInvalidArgument, "leased task without id or lease");
          tasks.push_back(std::move(t));
          return Status::Ok();
        });
      },
      /*validate=*/false);
  if (!s.ok()) return Status(s.code(), "lease answer: " + s.message());
  return tasks;
}

Result<std::unique_ptr<HttpServerApi>> HttpServerApi::Create(const std::string& server_url) {
  auto url = ParseHttpUrl(server_url);
  if (!url.ok()) return url.status();
  if (url->target != "/") {
    return Status(Code::kInvalidArgument,
                  "server URL must be http://HOST:PORT, got '" + server_url + "'");
  }
  return std::unique_ptr<HttpServerApi>(new HttpServerApi(std::move(*url)));
}

Result<std::string> HttpServerApi::Call(std::string_view method, const std::string& target,
                                        std::string_view body, Micros timeout,
                                        const std::atomic<bool>* abort) {
  std::unique_ptr<HttpConnection> conn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!conn) conn = std::make_unique<HttpConnection>(url_.host, url_.port);
  auto reply = conn->Request(method, target, body, timeout, abort);
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(conn));
  }
  if (!reply.ok()) return reply.status();
  if (reply->status >= 200 && reply->status < 300) return std::move(reply->body);
  return Status(CodeForStatus(reply->status), ErrorMessage(reply->status, reply->body));
}

Result<std::vector<LeasedTask>> HttpServerApi::Lease(const LeaseRequest& req,
                                                     const std::atomic<bool>& abort) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("worker").String(req.worker).Key("queues").BeginArray();
  for (const auto& q : req.queues) w.String(q);
  w.EndArray().Key("max").Int(req.max).Key("wait_ms").Int(req.wait_ms).EndObject();
  auto reply =
      Call("POST", "/api/lease", body, kCallTimeout + req.wait_ms * kMicrosPerMilli, &abort);
  if (!reply.ok()) return reply.status();
  return ParseLeaseReply(*reply);
}

Result<HeartbeatReply> HttpServerApi::Heartbeat(const std::string& id, const std::string& lease,
                                                const std::string& progress) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("lease").String(lease);
  if (!progress.empty()) w.Key("progress").Raw(progress);
  w.EndObject();
  auto reply = Call("POST", "/api/tasks/" + PercentEncode(id) + "/heartbeat", body, kCallTimeout);
  if (!reply.ok()) return reply.status();
  HeartbeatReply hb;
  Status s = json::ForEachMember(
      *reply,
      [&](std::string_view key, json::Value v) -> Status {
        if (key == "lease_expires_at")
          hb.lease_expires_at = ParseRfc3339(json::String(v).value_or("")).value_or(0);
        if (key == "cancel") hb.cancel = json::Bool(v).value_or(false);
        return Status::Ok();
      },
      /*validate=*/false);
  if (!s.ok()) return Status(Code::kUnavailable, "heartbeat answer: " + s.message());
  return hb;
}

FinishAnswer HttpServerApi::FinishOne(const Finish& f) {
  const std::string target =
      "/api/tasks/" + PercentEncode(f.id) + (f.outcome.ok ? "/complete" : "/fail");
  auto reply = Call("POST", target, FinishBody(f, false), kCallTimeout);
  return FinishAnswer{f.id, reply.ok() ? Status::Ok() : reply.status()};
}

std::vector<FinishAnswer> HttpServerApi::FinishBatch(const std::vector<const Finish*>& items,
                                                     bool success) {
  std::vector<FinishAnswer> answers;
  if (items.empty()) return answers;
  if (items.size() == 1) {
    answers.push_back(FinishOne(*items[0]));
    return answers;
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("tasks").BeginArray();
  for (const Finish* f : items) {
    w.BeginObject().Key("id").String(f->id);
    WriteFinishFields(w, *f);
    w.EndObject();
  }
  w.EndArray().EndObject();
  auto reply = Call("POST", success ? "/api/complete" : "/api/fail", body, kCallTimeout);
  if (!reply.ok() && reply.status().code() == Code::kUnavailable) {
    for (const Finish* f : items) answers.push_back(FinishAnswer{f->id, reply.status()});
    return answers;
  }
  if (reply.ok()) {
    Status s = json::ForEachMember(
        *reply,
        [&](std::string_view key, json::Value v) -> Status {
          if (key != "tasks") return Status::Ok();
          return json::ForEachElement(v, [&](json::Value item) -> Status {
            FinishAnswer a;
            json::ForEachMember(item, [&](std::string_view k, json::Value iv) -> Status {
              if (k == "id") a.id = json::String(iv).value_or("");
              if (k == "error") a.status = ReadApiError(iv);
              return Status::Ok();
            });
            answers.push_back(std::move(a));
            return Status::Ok();
          });
        },
        /*validate=*/false);
    bool in_order = s.ok() && answers.size() == items.size();
    for (size_t i = 0; in_order && i < items.size(); ++i) in_order = answers[i].id == items[i]->id;
    if (in_order) return answers;
  }
  // The batch as a whole was refused (too large, malformed item) or answered oddly:
  // send the items one by one so each gets its own answer.
  answers.clear();
  for (const Finish* f : items) answers.push_back(FinishOne(*f));
  return answers;
}

std::vector<FinishAnswer> HttpServerApi::FinishTasks(const std::vector<Finish>& items) {
  std::vector<const Finish*> ok, failed;
  for (const auto& f : items) (f.outcome.ok ? ok : failed).push_back(&f);
  std::vector<FinishAnswer> a = FinishBatch(ok, true);
  std::vector<FinishAnswer> b = FinishBatch(failed, false);
  std::vector<FinishAnswer> answers;
  size_t ia = 0, ib = 0;
  for (const auto& f : items) answers.push_back(f.outcome.ok ? a[ia++] : b[ib++]);
  return answers;
}

Result<RegisterReply> HttpServerApi::Register(const Registration& r) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("worker").String(r.worker);
  if (!r.pool.empty()) w.Key("pool").String(r.pool);
  w.Key("pid").Int(r.pid).Key("host").String(r.host).Key("queues").BeginArray();
  for (const auto& q : r.queues) w.String(q);
  w.EndArray().Key("concurrency").Int(r.concurrency).EndObject();
  auto reply = Call("POST", "/api/workers/register", body, kCallTimeout);
  if (!reply.ok()) return reply.status();
  RegisterReply rr;
  json::ForEachMember(
      *reply,
      [&](std::string_view key, json::Value v) -> Status {
        if (key == "heartbeat_ms")
          rr.heartbeat_ms = static_cast<int>(json::Int(v).value_or(rr.heartbeat_ms));
        if (key == "lost_after_ms")
          rr.lost_after_ms = static_cast<int>(json::Int(v).value_or(rr.lost_after_ms));
        return Status::Ok();
      },
      /*validate=*/false);
  return rr;
}

Status HttpServerApi::WorkerHeartbeat(const std::string& worker,
                                      const std::vector<std::string>& running) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("running").BeginArray();
  for (const auto& id : running) w.String(id);
  w.EndArray().EndObject();
  auto reply =
      Call("POST", "/api/workers/" + PercentEncode(worker) + "/heartbeat", body, kCallTimeout);
  return reply.ok() ? Status::Ok() : reply.status();
}

Status HttpServerApi::Deregister(const std::string& worker) {
  auto reply =
      Call("POST", "/api/workers/" + PercentEncode(worker) + "/deregister", "{}", kCallTimeout);
  return reply.ok() ? Status::Ok() : reply.status();
}

}  // namespace resonance::worker
