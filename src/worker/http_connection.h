#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace resonance::worker {

// "http://host[:port][/path?query]" (or "host:port"). Only plain http: the worker talks
// to a Resonance server on a trusted network and the http handler is meant for canaries.
struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";  // path and query
};
// kInvalidArgument naming the problem (https, no host, bad port).
Result<HttpUrl> ParseHttpUrl(std::string_view url);

struct HttpReply {
  int status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, empty when absent
};

// One keep-alive HTTP/1.1 connection to one host, opened on first use and reopened when
// it breaks. Blocking calls bounded by a timeout; an abort flag set by another thread
// ends a call within ~50 ms. Not thread-safe: one caller at a time.
class HttpConnection {
 public:
  HttpConnection(std::string host, std::string port, std::string user_agent = "resonance-worker");
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends one request and reads the whole answer (its body up to max_body bytes).
  // kUnavailable with the reason when the host cannot be reached, the connection breaks,
  // the timeout passes, the answer is too large, or *abort becomes true. A request that
  // meets a connection the server had closed while idle is sent once more on a fresh one.
  Result<HttpReply> Request(std::string_view method, std::string_view target, std::string_view body,
                            Micros timeout, const std::atomic<bool>* abort = nullptr,
                            std::string_view content_type = "application/json",
                            size_t max_body = 8 << 20);
  // Drops the connection (the next request opens a new one).
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resonance::worker
