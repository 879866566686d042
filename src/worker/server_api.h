#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "worker/handler.h"
#include "worker/http_connection.h"
#include "worker/leased_task.h"

namespace resonance::worker {

struct LeaseRequest {
  std::string worker;
  std::vector<std::string> queues;
  int max = 1;
  int wait_ms = 0;
};

struct HeartbeatReply {
  Micros lease_expires_at = 0;
  bool cancel = false;
};

// One attempt's outcome on its way to the server.
struct Finish {
  std::string id;
  std::string lease;
  Outcome outcome;
  std::string traceparent = {};  // the attempt's span, so the server's task.finish joins it
};

// The server's answer about one Finish: ok, or kConflict (stale lease), kNotFound,
// kInvalidArgument / kTooLarge (refused as sent), kUnavailable (try again).
struct FinishAnswer {
  std::string id;
  Status status;
};

struct Registration {
  std::string worker;
  std::string pool;
  int pid = 0;
  std::string host;
  std::vector<std::string> queues;
  int concurrency = 1;
};

struct RegisterReply {
  int heartbeat_ms = 5000;
  int lost_after_ms = 15000;
};

// The worker's side of the HTTP API (docs/api.md "Workers", api-spec "Worker
// registry"). Every call maps the answer to a Code: 404 kNotFound, 409 kConflict,
// 400/422 kInvalidArgument, 413 kTooLarge, 5xx and transport failures kUnavailable.
// Thread-safe: calls may run at once from several threads. An interface so tests can
// stand in for the server.
class ServerApi {
 public:
  virtual ~ServerApi() = default;
  // POST /api/lease; long-polls up to wait_ms. Ends early (kUnavailable "aborted") when
  // *abort turns true.
  virtual Result<std::vector<LeasedTask>> Lease(const LeaseRequest& req,
                                                const std::atomic<bool>& abort) = 0;
  // POST /api/tasks/{id}/heartbeat; `progress` is raw JSON or empty.
  virtual Result<HeartbeatReply> Heartbeat(const std::string& id, const std::string& lease,
                                           const std::string& progress) = 0;
  // Completes / fails each item: POST /api/tasks/{id}/complete|fail for one, the batch
  // forms for more. One answer per item, in order; kUnavailable for an item whose fate
  // is unknown (try it again).
  virtual std::vector<FinishAnswer> FinishTasks(const std::vector<Finish>& items) = 0;
  // POST /api/workers/register: kConflict when a live worker holds the id, kNotFound
  // when the server has no registry (older server).
  virtual Result<RegisterReply> Register(const Registration& r) = 0;
  // POST /api/workers/{id}/heartbeat: kNotFound when the server does not know the id
  // (restarted, or marked it lost): register again.
  virtual Status WorkerHeartbeat(const std::string& worker,
                                 const std::vector<std::string>& running) = 0;
  // POST /api/workers/{id}/deregister.
  virtual Status Deregister(const std::string& worker) = 0;
};

// ServerApi over HTTP: a small pool of keep-alive connections, one per concurrent call.
class HttpServerApi final : public ServerApi {
 public:
  // kInvalidArgument for a URL that is not http://host:port.
  static Result<std::unique_ptr<HttpServerApi>> Create(const std::string& server_url);

  Result<std::vector<LeasedTask>> Lease(const LeaseRequest& req,
                                        const std::atomic<bool>& abort) override;
  Result<HeartbeatReply> Heartbeat(const std::string& id, const std::string& lease,
                                   const std::string& progress) override;
  std::vector<FinishAnswer> FinishTasks(const std::vector<Finish>& items) override;
  Result<RegisterReply> Register(const Registration& r) override;
  Status WorkerHeartbeat(const std::string& worker,
                         const std::vector<std::string>& running) override;
  Status Deregister(const std::string& worker) override;

 private:
  explicit HttpServerApi(HttpUrl url) : url_(std::move(url)) {}
  // Sends one request on a pooled connection; maps the status as the class says.
  Result<std::string> Call(std::string_view method, const std::string& target,
                           std::string_view body, Micros timeout,
                           const std::atomic<bool>* abort = nullptr);
  // One batch of completions or of failures; falls back to single calls when the batch
  // as a whole is refused.
  std::vector<FinishAnswer> FinishBatch(const std::vector<const Finish*>& items, bool success);
  FinishAnswer FinishOne(const Finish& f);

  const HttpUrl url_;
  std::mutex mu_;
  std::vector<std::unique_ptr<HttpConnection>> idle_;  // guarded by mu_
};

// The body of a Finish for the single endpoints ({"lease","result"} / {"lease","error"}).
std::string FinishBody(const Finish& f, bool with_id);
// Reads a lease answer {"tasks":[...]}. kInvalidJson / kInvalidArgument when malformed.
Result<std::vector<LeasedTask>> ParseLeaseReply(std::string_view body);

}  // namespace resonance::worker
