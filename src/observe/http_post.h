#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace resonance {

// Where an HTTP server listens, taken apart from its URL.
struct HttpUrl {
  std::string host;  // a name or an IP literal, without IPv6 brackets
  uint16_t port = 80;
  std::string path;         // as written, query included; "" when the URL has none
  std::string host_header;  // "host:port", IPv6 in brackets
};

// Reads "http://host[:port][/path]". host is a DNS name, an IPv4 literal or an IPv6
// literal in brackets; port defaults to 80 and must be 1..65535; the path is kept as
// written (query included), "" when there is none, and a bare "?query" becomes
// "/?query". kInvalidArgument, saying what is wrong, for: another scheme (https
// included: there is no TLS here), no host, user info, a bad port, an IPv6 address
// without brackets, a fragment, spaces or control characters. Messages start with
// `what` and the URL in quotes: `OTLP endpoint "ftp://x": scheme must be http`.
Result<HttpUrl> ParseHttpUrl(std::string_view url, std::string_view what = "URL");

// The steady clock in nanoseconds: the time base of every deadline below.
int64_t SteadyNowNs();

// Words that make HttpPoster's error messages read right where they end up (an
// exporter's last_error, a sink's log line).
struct HttpPosterOptions {
  std::string peer = "server";   // "connection closed by the server"
  std::string owner = "client";  // "aborted: client shutting down"
  std::string user_agent = "resonance";
};

// A client for POSTs to one HTTP/1.1 server over plain TCP (no TLS). Post is called
// by one thread at a time (it is not thread-safe); AbortAt may be called from any
// thread, at any time while the poster exists.
//
// One connection is kept alive between POSTs when the server allows it; a connection
// found closed while idle is replaced before use, and a POST whose reused connection
// dies before any answer byte is tried once more on a new one. Every wait (connect,
// send, receive) is a poll() bounded by the POST's deadline and by the abort deadline,
// and wakes early when AbortAt is called. Answers may use Content-Length, chunked
// encoding or run to the close; their body is read and thrown away (at most 4 MiB,
// headers at most 64 KiB). Names are resolved with getaddrinfo at each connect.
// BUG: getaddrinfo has no timeout, so a stuck resolver can hold Post past its deadline.
class HttpPoster {
 public:
  // kInternal if the wake-up pipe cannot be made. Connects only on the first Post.
  static Result<std::unique_ptr<HttpPoster>> Create(HttpUrl server, HttpPosterOptions options = {});
  ~HttpPoster();

  HttpPoster(const HttpPoster&) = delete;
  HttpPoster& operator=(const HttpPoster&) = delete;

  // POSTs `body` to `path` (which must start with '/'; the URL's own path is not
  // used) with the given Content-Type and reads the whole answer, before deadline_ns
  // (steady clock, see SteadyNowNs). Returns the status code, 2xx or not, or
  // kUnavailable saying why there is none: resolve or connect failure, timeout,
  // abort, a connection closed early, a malformed answer.
  Result<int> Post(std::string_view path, std::string_view content_type, std::string_view body,
                   int64_t deadline_ns);

  // From now on, every wait of Post (the one in flight and later ones) ends at
  // stop_ns at the latest, failing with "aborted: <owner> shutting down". Only ever
  // lowers the abort deadline (a later call with a later time changes nothing).
  // Thread-safe.
  void AbortAt(int64_t stop_ns);

  const HttpUrl& server() const { return server_; }

 private:
  HttpPoster(HttpUrl server, HttpPosterOptions options, int wake_read_fd, int wake_write_fd);

  Status Connect(int64_t deadline_ns);
  Status Wait(short events, int64_t deadline_ns);
  Status SendAll(std::string_view data, int64_t deadline_ns);
  Status ReadMore(int64_t deadline_ns);
  Status ReadLine(std::string* line, int64_t deadline_ns);
  Status Skip(size_t n, int64_t deadline_ns);
  Status ReadResponse(int64_t deadline_ns, int* code, bool* keep_alive);
  bool IdleConnectionUsable() const;
  void Close();

  const HttpUrl server_;
  const HttpPosterOptions options_;
  const int wake_read_fd_;   // polled beside the socket
  const int wake_write_fd_;  // AbortAt writes a byte here
  // Steady ns after which every wait fails; INT64_MAX until AbortAt.
  std::atomic<int64_t> stop_ns_;

  // Used only by the thread in Post.
  int fd_ = -1;
  std::string in_;            // received, not yet consumed
  bool peer_closed_ = false;  // the last failure was EOF/reset/EPIPE from the peer
  size_t received_ = 0;       // answer bytes received for the current POST
};

}  // namespace resonance
