#pragma once

#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace resonance::supervise {

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// One blocking HTTP/1.1 request (Connection: close) to "host:port" or "[v6]:port",
// bounded by timeout. kUnavailable with the reason when the server cannot be reached,
// the timeout passes or the answer is malformed. Thread-compatible (no shared state).
Result<HttpAnswer> HttpCall(const std::string& host_port, const std::string& method,
                            const std::string& target, Micros timeout);

// What the supervisor asks the server it runs. The real one speaks HTTP (HttpServerProbe);
// tests fake it. Not thread-safe.
class ServerProbe {
 public:
  virtual ~ServerProbe() = default;
  // True when GET /readyz at host_port answers 200.
  virtual bool Ready(const std::string& host_port) = 0;
  // POST /api/workers/{id}/deregister, so a restarted worker can register its id at once.
  // Ok also for 404 (the id is not registered); kUnavailable otherwise.
  virtual Status Deregister(const std::string& host_port, const std::string& worker_id) = 0;
};

class HttpServerProbe final : public ServerProbe {
 public:
  bool Ready(const std::string& host_port) override;
  Status Deregister(const std::string& host_port, const std::string& worker_id) override;
};

}  // namespace resonance::supervise
