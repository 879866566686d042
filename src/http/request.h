#pragma once

#include <functional>
#include <memory>
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
  std::string last_event_id;  // the Last-Event-ID header (SSE resume), empty if none
  std::string trace_id;   // from a valid traceparent, or freshly made
  std::string parent_span;  // the caller's span id from traceparent, empty if none
  std::string span_id;      // this request's http.server span
  std::string_view route;   // the matched route pattern ("/api/tasks/{id}"), set by Router
  int64_t start_unix_nano = 0;  // when the request was read (wall clock, for spans)
  std::string body;

  // The first value of a query parameter, nullptr when absent.
  const std::string* Query(std::string_view name) const;
};

// A response body produced over time (Server-Sent Events). The session owns it and
// calls it on the connection's strand, one call at a time: Start once as the header is
// queued; Abandoned on every wake; Pull whenever no write is in flight and it was woken
// (or asked for kMore); KeepAlive after keepalive_ms() without a write; Stop exactly
// once at the end (Pull said kEnd, the client went away, or the server is stopping).
// The body is written as it comes, without Content-Length or chunking, and ends when
// the connection closes.
class StreamSource {
 public:
  virtual ~StreamSource() = default;

  enum class State {
    kMore,  // call Pull again once *out is written (out may be empty: yield, then call)
    kIdle,  // nothing more now: call Pull again after wake
    kEnd,   // the stream ends after *out
  };
  // wake asks for another Pull. Safe from any thread, cheap, and harmless after Stop.
  virtual void Start(std::function<void()> wake) = 0;
  // Appends what is ready to *out.
  virtual State Pull(std::string* out) = 0;
  // True when the source gave up (its client fell behind): checked on every wake, the
  // stream ends at once, even with a write in flight.
  virtual bool Abandoned() const = 0;
  virtual void Stop() = 0;
  // Bytes to write after keepalive_ms() of silence (0 = never).
  virtual int keepalive_ms() const = 0;
  virtual std::string KeepAlive() = 0;
};

// An answer. Content-Type is application/json unless `content_type` says otherwise.
// With `stream` set the body is that stream (and `body` is ignored); the connection
// closes when it ends.
struct Reply {
  Reply() = default;
  Reply(int s, std::string b) : status(s), body(std::move(b)) {}
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<StreamSource> stream;
};

// Sends the reply. Safe to call from any thread, exactly once.
using Respond = std::function<void(Reply)>;
using Handler = std::function<void(Request&, Respond)>;

}  // namespace resonance::http
