// Operator endpoints: queues, dead letters, workers, ledger, health and readiness.
#include <sys/statvfs.h>

#include <fstream>

#include "core/json_writer.h"
#include "http/api.h"
#include "http/task_json.h"

namespace resonance::http {
namespace {

void WriteQueue(JsonWriter& w, const QueueInfo& q) {
  w.BeginObject().Key("name").String(q.name).Key("paused").Bool(q.paused);
  w.Key("scheduled").Int(q.scheduled).Key("ready").Int(q.ready).Key("running").Int(q.running);
  w.EndObject();
}

// Resident set size of this process in bytes, 0 when unknown.
int64_t RssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace

void Api::ListQueues(Request&, Respond respond) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("queues").BeginArray();
  for (const auto& q : engine_.Queues()) WriteQueue(w, q);
  w.EndArray().EndObject();
  respond(JsonReply(200, std::move(body)));
}

void Api::PauseQueue(Request& req, Respond respond, bool paused) {
  std::string name = req.params[0];
  if (name.empty() || name.size() > 200) {
    return respond(ErrorReply(Status(Code::kInvalidArgument, "queue: must be 1 to 200 characters")));
  }
  engine_.SetPaused(name, paused, [this, name, respond](const Status& s) {
    OnIo([this, name, respond, s] {
      if (!s.ok()) return respond(ErrorReply(s));
      auto q = engine_.QueueByName(name);
      std::string body;
      JsonWriter w(body);
      WriteQueue(w, q.value_or(QueueInfo{name}));
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::ListDead(Request& req, Respond respond) {
  TaskFilter f;
  f.state = TaskState::kDead;
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

void Api::RequeueDead(Request& req, Respond respond) {
  std::string id = req.params[0];
  engine_.Requeue(id, [this, id, respond](const Status& s) {
    OnIo([this, id, respond, s] {
      if (!s.ok()) return respond(ErrorReply(s));
      ReplyTask(id, 200, respond);
    });
  });
}

void Api::DeleteDead(Request& req, Respond respond) {
  std::string id = req.params[0];
  engine_.DeleteDead(id, [id, respond](const Status& s) {
    if (!s.ok()) return respond(ErrorReply(s));
    std::string body;
    JsonWriter(body).BeginObject().Key("id").String(id).Key("deleted").Bool(true).EndObject();
    respond(JsonReply(200, std::move(body)));
  });
}

void Api::Workers(Request&, Respond respond) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("workers").BeginArray();
  for (const auto& wi : engine_.Workers()) {
    const WorkerRegistration& r = wi.registration;
    w.BeginObject().Key("worker").String(wi.name).Key("name").String(wi.name);
    w.Key("registered").Bool(wi.registered);
    w.Key("pool").StringOrNull(r.pool);
    w.Key("pid");
    if (r.pid > 0) {
      w.Int(r.pid);
    } else {
      w.Null();
    }
    w.Key("host").StringOrNull(r.host);
    w.Key("queues").BeginArray();
    for (const auto& q : r.queues) w.String(q);
    w.EndArray();
    w.Key("concurrency").Int(r.concurrency);
    w.Key("started_at").TimeOrNull(wi.started_at);
    w.Key("last_seen").Time(wi.last_seen);
    w.Key("running").Int(wi.running);
    w.Key("state").String(WorkerStatusName(wi.status));
    w.EndObject();
  }
  w.EndArray().EndObject();
  respond(JsonReply(200, std::move(body)));
}

void Api::Ledger(Request& req, Respond respond) {
  auto after = QueryInt(req, "after", 0, 0, INT64_MAX);
  if (!after.ok()) return respond(ErrorReply(after.status()));
  auto limit = QueryInt(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return respond(ErrorReply(limit.status()));
  const int64_t a = *after;
  const int l = static_cast<int>(*limit);
  engine_.Barrier([this, a, l, respond](const Status&) {
    OnIo([this, a, l, respond] {
      auto events = store_.ReadLedger(a, l);
      if (!events.ok()) return respond(ErrorReply(events.status()));
      std::string body;
      JsonWriter w(body);
      w.BeginObject().Key("events").BeginArray();
      for (const auto& e : *events) {
        w.BeginObject().Key("seq").Int(e.seq).Key("ts").Time(e.ts).Key("kind").String(e.kind);
        w.Key("task_id").StringOrNull(e.task_id).Key("data").Raw(e.data.empty() ? "{}" : e.data);
        w.Key("hash").String(e.hash).EndObject();
      }
      w.EndArray().EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::Health(Request&, Respond respond) {
  const bool store_ok = engine_.healthy();
  struct statvfs vfs {};
  int64_t free_bytes = -1, total_bytes = -1;
  if (statvfs(options_.data_dir.c_str(), &vfs) == 0) {
    free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    total_bytes = static_cast<int64_t>(vfs.f_blocks) * static_cast<int64_t>(vfs.f_frsize);
  }
  const bool disk_ok = free_bytes < 0 || free_bytes > (256LL << 20);
  int64_t scheduled = 0, ready = 0, running = 0;
  for (const auto& q : engine_.Queues()) {
    scheduled += q.scheduled;
    ready += q.ready;
    running += q.running;
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("status").String(store_ok && disk_ok ? "ok" : "degraded");
  w.Key("uptime_s").Int((clock_.Now() - started_at_) / kMicrosPerSecond);
  w.Key("store").BeginObject().Key("ok").Bool(store_ok).Key("kind").String("sqlite").EndObject();
  w.Key("disk").BeginObject().Key("ok").Bool(disk_ok).Key("free_bytes").Int(free_bytes);
  w.Key("total_bytes").Int(total_bytes).EndObject();
  w.Key("memory").BeginObject().Key("rss_bytes").Int(RssBytes()).EndObject();
  w.Key("tasks").BeginObject().Key("scheduled").Int(scheduled).Key("ready").Int(ready);
  w.Key("running").Int(running).EndObject();
  w.Key("workers").Int(static_cast<int64_t>(engine_.Workers().size()));
  int64_t firing = 0;
  if (options_.alerts) {
    for (const auto& [key, n] : options_.alerts->FiringByNameAndSeverity()) firing += n;
  }
  w.Key("alerts").BeginObject().Key("firing").Int(firing).EndObject();
  w.EndObject();
  respond(JsonReply(store_ok ? 200 : 503, std::move(body)));
}

void Api::Ready(Request&, Respond respond) {
  if (ready_ && engine_.healthy()) return respond(JsonReply(200, R"({"status":"ready"})"));
  respond(Reply{503, R"({"error":{"code":"unavailable","message":"not ready"}})"});
}

}  // namespace resonance::http
