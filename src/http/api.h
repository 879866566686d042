#pragma once

#include <utility>  // before Asio: Boost 1.74 + g++ 12

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <atomic>
#include <string>

#include "core/baselines.h"
#include "core/clock.h"
#include "engine/credentials.h"
#include "engine/engine.h"
#include "engine/followups.h"
#include "http/json_schema.h"
#include "http/request.h"
#include "http/router.h"
#include "observe/alert_engine.h"
#include "observe/metrics.h"
#include "store/store.h"

namespace resonance::trace {
class Exporter;
}
namespace resonance {
class Scheduler;
}

namespace resonance::http {

// The v1 JSON API (docs/api.md) over the engine and the store. Handlers parse and
// validate the request, call the engine, and answer once the engine says the change is
// durable. Work after the engine's callback (store reads, rendering) is posted back to
// the io context so the store's writer thread only writes.
// Thread-safe as the engine and store are; owns nothing it is given.
class Api {
 public:
  struct Options {
    std::string data_dir;  // for disk figures in /api/health
    // Not owned. With a registry, GET /metrics renders it (else the route is absent).
    metrics::Registry* metrics = nullptr;
    // Receives task.enqueue and task.finish spans; nullptr = off.
    trace::Exporter* tracer = nullptr;
    // Live event streams write a keep-alive comment after this much silence.
    int sse_keepalive_ms = 15000;
    BaselineOptions baselines;  // GET /api/baselines
    // GET /api/alerts reads it; nullptr = alerting is off (the route answers empty lists).
    const alerts::AlertEngine* alerts = nullptr;
    // Payload schemas and strictness at enqueue; nullptr = every action accepted as is.
    const ActionRegistry* actions = nullptr;
    // Schedules, target sets and gaps (api_schedules.cc); nullptr = those routes are absent.
    Scheduler* scheduler = nullptr;
    // /api/credentials and the credentials lease answers carry; nullptr = the routes
    // answer with empty lists and 404s, leases carry none. Not owned.
    Credentials* credentials = nullptr;
  };
  // Where a span about a task hangs in its trace.
  struct SpanOrigin {
    std::string trace_id;
    std::string parent_span_id;
    int64_t start_unix_nano = 0;
  };
  Api(Engine& engine, Store& store, const Clock& clock, boost::asio::io_context& io,
      Options options);

  void Register(Router& router);
  // /readyz answers 200 only after this (set once recovery is done).
  void SetReady(bool ready) { ready_ = ready; }

 private:
  // Producers (api_producers.cc).
  void Enqueue(Request& req, Respond respond);
  // The 422 answer for a task the action registry refuses (unknown action when strict,
  // payload against its schema unless !check_payload); nullopt when it passes. `prefix`
  // names the item.
  std::optional<Reply> CheckRegistry(const NewTask& t, const std::string& prefix,
                                     bool check_payload = true) const;
  // CheckRegistry for each follow-up spec (all ok) of a task; payloads with placeholders
  // are checked only when the follow-up is created (docs/follow-ups.md).
  std::optional<Reply> CheckFollowups(const std::vector<FollowupSpec>& specs,
                                      const std::string& prefix) const;
  void EnqueueBatch(Request& req, Respond respond);
  void GetTask(Request& req, Respond respond);
  void ListTasks(Request& req, Respond respond);
  void CancelTask(Request& req, Respond respond);
  void Results(Request& req, Respond respond);
  // Workers (api_workers.cc).
  void Lease(Request& req, Respond respond);
  void Heartbeat(Request& req, Respond respond);
  void Complete(Request& req, Respond respond);
  void Fail(Request& req, Respond respond);
  void RegisterWorker(Request& req, Respond respond);
  void WorkerHeartbeat(Request& req, Respond respond);
  void DeregisterWorker(Request& req, Respond respond);
  void FinishSingle(Request& req, Respond respond, bool success);
  void FinishBatch(Request& req, Respond respond, bool success);
  // Operators (api_operators.cc).
  void ListQueues(Request& req, Respond respond);
  void PauseQueue(Request& req, Respond respond, bool paused);
  void ListDead(Request& req, Respond respond);
  void RequeueDead(Request& req, Respond respond);
  void DeleteDead(Request& req, Respond respond);
  void Workers(Request& req, Respond respond);
  void Ledger(Request& req, Respond respond);
  void Health(Request& req, Respond respond);
  // History (api_stats.cc).
  void Stats(Request& req, Respond respond);
  void Baselines(Request& req, Respond respond);
  void Alerts(Request& req, Respond respond);
  void Flow(Request& req, Respond respond);      // api_flow.cc
  void Breakers(Request& req, Respond respond);
  void Ready(Request& req, Respond respond);
  // Schedules, target sets and gaps (api_schedules.cc).
  void CreateSchedule(Request& req, Respond respond);
  void ListSchedules(Request& req, Respond respond);
  void GetSchedule(Request& req, Respond respond);
  void PauseSchedule(Request& req, Respond respond, bool paused);
  void DeleteSchedule(Request& req, Respond respond);
  void ListTargetSets(Request& req, Respond respond);
  void GetTargetSet(Request& req, Respond respond);
  void PutTargetSet(Request& req, Respond respond);
  void DeleteTargetSet(Request& req, Respond respond);
  void ListGaps(Request& req, Respond respond);
  // Credentials (api_credentials.cc): metadata only, never a value.
  void ListCredentials(Request& req, Respond respond);
  void GetCredential(Request& req, Respond respond);
  void PutCredential(Request& req, Respond respond);
  void DeleteCredential(Request& req, Respond respond);
  // Live events over SSE (api_events.cc).
  void Events(Request& req, Respond respond);
  void TaskEvents(Request& req, Respond respond);

  // Runs fn on the io context: at once when called there (the server delivers store
  // callbacks on it), else posted (from the store's writer thread, say).
  template <typename F>
  void OnIo(F&& fn) {
    if (io_.get_executor().running_in_this_thread()) {
      fn();
    } else {
      boost::asio::post(io_, std::forward<F>(fn));
    }
  }
  // Tracing (api_tracing.cc). task.enqueue spans for the created tasks, children of
  // the enqueue request's span, each with the span id the task's id implies.
  void TraceEnqueued(const SpanOrigin& origin, const std::vector<EnqueueOutcome>& out);
  // A task.finish span for one finished task.
  void TraceFinished(const SpanOrigin& origin, const std::string& id, bool success,
                     const Result<TaskState>& outcome);
  void MetricsText(Request& req, Respond respond);

  // Answers with the task as stored now (200), or the store's error.
  void ReplyTask(const std::string& id, int status, Respond respond);

  Engine& engine_;
  Store& store_;
  const Clock& clock_;
  boost::asio::io_context& io_;
  Options options_;
  std::atomic<bool> ready_{false};
  Micros started_at_;
};

// Helpers shared by the handler files.
Reply ErrorReply(const Status& s);
Reply JsonReply(int status, std::string body);
// Reads an optional integer query parameter. kInvalidArgument naming it when malformed
// or out of [min, max].
Result<int64_t> QueryInt(const Request& req, std::string_view name, int64_t def, int64_t min,
                         int64_t max);

}  // namespace resonance::http
