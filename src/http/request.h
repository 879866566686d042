#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace resonance::http {

// One parsed HTTP request as handlers see it. Owned by the session until answered.
struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, still percent-encoded
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded
  std::vector<std::string> params;  // the {} segments of the matched route, in order
  std::string content_type;
  std::string request_id;
  std::string trace_id;   // from a valid traceparent, or freshly made
  std::string parent_span;  // the caller's span id from traceparent, empty if none
  std::string span_id;      // this request's http.server span
  std::string_view route;   // the matched route pattern ("/api/tasks/{id}"), set by Router
  int64_t start_unix_nano = 0;  // when the request was read (wall clock, for spans)
  std::string body;

  // The first value of a query parameter, nullptr when absent.
  const std::string* Query(std::string_view name) const;
};

// An answer. Content-Type is application/json unless `content_type` says otherwise.
struct Reply {
  Reply() = default;
  Reply(int s, std::string b) : status(s), body(std::move(b)) {}
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends the reply. Safe to call from any thread, exactly once.
using Respond = std::function<void(Reply)>;
using Handler = std::function<void(Request&, Respond)>;

}  // namespace resonance::http
