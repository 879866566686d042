#include "http/api.h"

#include <boost/asio/post.hpp>
#include <charconv>

#include "http/error_mapping.h"
#include "http/task_json.h"

namespace resonance::http {

Reply ErrorReply(const Status& s) { return Reply{ToHttpStatus(s.code()), ErrorBody(s.code(), s.message())}; }

Reply JsonReply(int status, std::string body) { return Reply{status, std::move(body)}; }

Result<int64_t> QueryInt(const Request& req, std::string_view name, int64_t def, int64_t min,
                         int64_t max) {
  const std::string* v = req.Query(name);
  if (!v || v->empty()) return def;
  int64_t out = 0;
  auto r = std::from_chars(v->data(), v->data() + v->size(), out);
  if (r.ec != std::errc() || r.ptr != v->data() + v->size() || out < min || out > max) {
    return Status(Code::kInvalidArgument, std::string(name) + ": must be an integer from " +
                                              std::to_string(min) + " to " + std::to_string(max));
  }
  return out;
}

Api::Api(Engine& engine, Store& store, const Clock& clock, boost::asio::io_context& io,
         Options options)
    : engine_(engine), store_(store), clock_(clock), io_(io), options_(std::move(options)),
      started_at_(clock.Now()) {}

void Api::ReplyTask(const std::string& id, int status, Respond respond) {
  auto t = store_.GetTask(id);
  if (!t.ok()) return respond(ErrorReply(t.status()));
  respond(JsonReply(status, TaskJson(*t)));
}

void Api::Register(Router& r) {
  auto bind = [this](void (Api::*fn)(Request&, Respond)) {
    return [this, fn](Request& req, Respond respond) { (this->*fn)(req, std::move(respond)); };
  };
  r.Add("POST", "/api/tasks", bind(&Api::Enqueue));
  r.Add("GET", "/api/tasks", bind(&Api::ListTasks));
  r.Add("POST", "/api/tasks/batch", bind(&Api::EnqueueBatch));
  r.Add("GET", "/api/tasks/{id}", bind(&Api::GetTask));
  r.Add("GET", "/api/tasks/{id}/events", bind(&Api::TaskEvents));
  r.Add("POST", "/api/tasks/{id}/cancel", bind(&Api::CancelTask));
  r.Add("POST", "/api/tasks/{id}/heartbeat", bind(&Api::Heartbeat));
  r.Add("POST", "/api/tasks/{id}/complete", bind(&Api::Complete));
  r.Add("POST", "/api/tasks/{id}/fail", bind(&Api::Fail));
  r.Add("GET", "/api/results", bind(&Api::Results));
  r.Add("POST", "/api/lease", bind(&Api::Lease));
  r.Add("POST", "/api/complete", [this](Request& req, Respond respond) {
    FinishBatch(req, std::move(respond), true);
  });
  r.Add("POST", "/api/fail", [this](Request& req, Respond respond) {
    FinishBatch(req, std::move(respond), false);
  });
  r.Add("GET", "/api/queues", bind(&Api::ListQueues));
  r.Add("POST", "/api/queues/{name}/pause", [this](Request& req, Respond respond) {
    PauseQueue(req, std::move(respond), true);
  });
  r.Add("POST", "/api/queues/{name}/resume", [this](Request& req, Respond respond) {
    PauseQueue(req, std::move(respond), false);
  });
  r.Add("GET", "/api/dlq", bind(&Api::ListDead));
  r.Add("POST", "/api/dlq/{id}/requeue", bind(&Api::RequeueDead));
  r.Add("DELETE", "/api/dlq/{id}", bind(&Api::DeleteDead));
  r.Add("GET", "/api/workers", bind(&Api::Workers));
  r.Add("POST", "/api/workers/register", bind(&Api::RegisterWorker));
  r.Add("POST", "/api/workers/{id}/heartbeat", bind(&Api::WorkerHeartbeat));
  r.Add("POST", "/api/workers/{id}/deregister", bind(&Api::DeregisterWorker));
  r.Add("GET", "/api/ledger", bind(&Api::Ledger));
  r.Add("GET", "/api/events", bind(&Api::Events));
  r.Add("GET", "/api/health", bind(&Api::Health));
  r.Add("GET", "/api/stats", bind(&Api::Stats));
  r.Add("GET", "/api/baselines", bind(&Api::Baselines));
  r.Add("GET", "/api/alerts", bind(&Api::Alerts));
  r.Add("GET", "/api/flow", bind(&Api::Flow));
  r.Add("GET", "/api/breakers", bind(&Api::Breakers));
  r.Add("GET", "/api/credentials", bind(&Api::ListCredentials));
  r.Add("GET", "/api/credentials/{name}", bind(&Api::GetCredential));
  r.Add("PUT", "/api/credentials/{name}", bind(&Api::PutCredential));
  r.Add("DELETE", "/api/credentials/{name}", bind(&Api::DeleteCredential));
  r.Add("GET", "/healthz", [](Request&, Respond respond) {
    respond(JsonReply(200, R"({"status":"ok"})"));
  });
  r.Add("GET", "/readyz", bind(&Api::Ready));
  if (options_.metrics) r.Add("GET", "/metrics", bind(&Api::MetricsText));
  if (options_.scheduler) {
    r.Add("POST", "/api/schedules", bind(&Api::CreateSchedule));
    r.Add("GET", "/api/schedules", bind(&Api::ListSchedules));
    r.Add("GET", "/api/schedules/{name}", bind(&Api::GetSchedule));
    r.Add("DELETE", "/api/schedules/{name}", bind(&Api::DeleteSchedule));
    r.Add("POST", "/api/schedules/{name}/pause", [this](Request& req, Respond respond) {
      PauseSchedule(req, std::move(respond), true);
    });
    r.Add("POST", "/api/schedules/{name}/resume", [this](Request& req, Respond respond) {
      PauseSchedule(req, std::move(respond), false);
    });
    r.Add("GET", "/api/target-sets", bind(&Api::ListTargetSets));
    r.Add("GET", "/api/target-sets/{name}", bind(&Api::GetTargetSet));
    r.Add("PUT", "/api/target-sets/{name}", bind(&Api::PutTargetSet));
    r.Add("DELETE", "/api/target-sets/{name}", bind(&Api::DeleteTargetSet));
    r.Add("GET", "/api/gaps", bind(&Api::ListGaps));
  }
}

}  // namespace resonance::http
