#pragma once

#include <string>

#include "core/status.h"

namespace resonance::cli {

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// One blocking HTTP/1.1 request (new connection each call) with a timeout.
// kUnavailable with the reason when the server cannot be reached.
// `server` is "http://host:port" (or "host:port").
Result<HttpAnswer> HttpRequest(const std::string& server, const std::string& method,
                               const std::string& target, const std::string& body,
                               int timeout_ms = 30000);

}  // namespace resonance::cli
