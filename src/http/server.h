#pragma once

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "http/router.h"
#include "observe/metrics.h"

namespace resonance::trace {
class Exporter;
}

namespace resonance::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8091;  // 0 picks a free port; see bound_port()
  size_t max_body_bytes = 1 << 20;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 30000;
  int idle_timeout_ms = 60000;  // keep-alive connection with no request
  int threads = 1;              // io threads; one beat two in our measurements
  // Not owned; nullptr turns each off. Requests are counted in
  // resonance_http_requests_total and resonance_http_request_duration_seconds.
  metrics::Registry* metrics = nullptr;
  // Receives one http.server span per request.
  trace::Exporter* tracer = nullptr;
  bool access_log = true;  // an info line per answered request
};

// HTTP/1.1 server on Boost.Beast: keep-alive, header and body read timeouts, a body
// limit (413), 404/405 from the router, X-Request-ID, X-Trace-ID and traceparent on
// every answer (the traceparent names this request's http.server span). Each answered
// request is counted, timed, logged (access line) and traced when those are on.
// Handlers may answer later from any thread (the answer is posted back to the
// connection). A reply may be a stream (Reply::stream, request.h): it is counted,
// logged and traced when it ends, with the bytes streamed. Start/Stop from one thread;
// the router must outlive the server, and whatever stream sources hold must outlive
// the server too (sessions are destroyed with its io context).
class Server {
 public:
  Server(const Router& router, ServerOptions options);
  ~Server();

  // Binds and listens. kUnavailable with the reason when the address cannot be bound.
  Status Listen();
  uint16_t bound_port() const { return bound_port_; }
  boost::asio::io_context& io() { return io_; }

  // Runs the io threads until Stop; blocks the caller (which is one of them).
  void Run();
  // Stops accepting, ends every streaming reply at once, lets in-flight requests
  // finish (up to grace_ms), then stops the io threads. Safe from any thread (e.g. a
  // signal handler's strand).
  void Shutdown(int grace_ms);

  // Open connections and requests being answered (for health and shutdown).
  size_t in_flight() const { return in_flight_.load(); }

 private:
  class Session;
  void Accept();
  void DrainThenStop(std::chrono::steady_clock::time_point deadline);
  // Streaming sessions, ended by Shutdown. AddStream is false once stopping.
  bool AddStream(const std::shared_ptr<Session>& s);
  void RemoveStream(Session* s);

  const Router& router_;
  ServerOptions options_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t bound_port_ = 0;
  std::atomic<size_t> in_flight_{0};
  std::atomic<bool> stopping_{false};
  std::unique_ptr<boost::asio::steady_timer> drain_timer_;
  std::mutex streams_mu_;
  std::unordered_map<Session*, std::weak_ptr<Session>> streams_;  // guarded by streams_mu_
  metrics::Family<metrics::Counter>* requests_ = nullptr;
  metrics::Family<metrics::Histogram>* durations_ = nullptr;
};

}  // namespace resonance::http
