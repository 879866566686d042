#include "observe/http_post.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <limits>
#include <system_error>

namespace resonance {

namespace {

constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr size_t kMaxResponseHeaderBytes = 64 << 10;
constexpr size_t kMaxResponseBodyBytes = 4 << 20;

Status Invalid(std::string_view what, std::string_view url, std::string_view why) {
  return Status(Code::kInvalidArgument,
                std::string(what) + " \"" + std::string(url) + "\": " + std::string(why));
}

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated header value holds `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimSpaces(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

}  // namespace

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<HttpUrl> ParseHttpUrl(std::string_view url, std::string_view what) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return Invalid(what, url, "must start with http://");
  const std::string_view scheme = url.substr(0, scheme_end);
  if (EqualsIgnoreCase(scheme, "https")) {
    return Invalid(
        what, url,
        "https is not supported (no TLS); use http://, through a local proxy if need be");
  }
  if (!EqualsIgnoreCase(scheme, "http")) return Invalid(what, url, "scheme must be http");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Invalid(what, url, "has a space or control character");
    }
  }
  if (url.find('#') != std::string_view::npos) return Invalid(what, url, "has a fragment ('#')");

  std::string_view rest = url.substr(scheme_end + 3);
  const size_t path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path =
      path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) {
    return Invalid(what, url, "user info ('user@') is not supported");
  }
  if (authority.empty()) return Invalid(what, url, "no host");

  HttpUrl ep;
  bool ipv6 = false;
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid(what, url, "IPv6 address without ']'");
    ep.host.assign(authority.substr(1, close - 1));
    in6_addr addr;
    if (inet_pton(AF_INET6, ep.host.c_str(), &addr) != 1) {
      return Invalid(what, url, "\"" + ep.host + "\" is not an IPv6 address");
    }
    ipv6 = true;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Invalid(what, url, "unexpected text after ']'");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return Invalid(what, url, "an IPv6 address must be in brackets, as http://[::1]:4318");
    }
    ep.host.assign(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (ep.host.empty()) return Invalid(what, url, "no host");
    if (ep.host.size() > 253 || !std::all_of(ep.host.begin(), ep.host.end(), IsHostNameChar)) {
      return Invalid(what, url, "\"" + ep.host + "\" is not a host name or IPv4 address");
    }
  }
  if (has_port) {
    int port = 0;
    bool ok = !port_text.empty() && port_text.size() <= 5;
    for (char c : port_text) {
      if (c < '0' || c > '9') ok = false;
      port = ok ? port * 10 + (c - '0') : 0;
    }
    if (!ok || port < 1 || port > 65535) {
      return Invalid(
          what, url,
          "port must be a number from 1 to 65535, not \"" + std::string(port_text) + "\"");
    }
    ep.port = static_cast<uint16_t>(port);
  }
  if (!path.empty() && path.front() == '?') {
    ep.path = "/" + std::string(path);
  } else {
    ep.path.assign(path);
  }
  ep.host_header = (ipv6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
  return ep;
}

HttpPoster::HttpPoster(HttpUrl server, HttpPosterOptions options, int wake_read_fd,
                       int wake_write_fd)
    : server_(std::move(server)),
      options_(std::move(options)),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      stop_ns_(std::numeric_limits<int64_t>::max()) {}

Result<std::unique_ptr<HttpPoster>> HttpPoster::Create(HttpUrl server, HttpPosterOptions options) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return Status(Code::kInternal, "pipe: " + ErrnoText(errno));
  }
  return std::unique_ptr<HttpPoster>(
      new HttpPoster(std::move(server), std::move(options), fds[0], fds[1]));
}

HttpPoster::~HttpPoster() {
  Close();
  ::close(wake_read_fd_);
  ::close(wake_write_fd_);
}

void HttpPoster::AbortAt(int64_t stop_ns) {
  int64_t current = stop_ns_.load();
  while (stop_ns < current && !stop_ns_.compare_exchange_weak(current, stop_ns)) {
  }
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_fd_, &byte, 1);  // full pipe: already woken
}

void HttpPoster::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
}

bool HttpPoster::IdleConnectionUsable() const {
  // An idle connection must have nothing to read: readable means the server closed
  // it (EOF) or sent something unasked.
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 0;
}

Status HttpPoster::Wait(short events, int64_t deadline_ns) {
  for (;;) {
    const int64_t stop = stop_ns_.load();
    const int64_t limit = std::min(deadline_ns, stop);
    const int64_t now = SteadyNowNs();
    if (now >= limit) {
      return Status(Code::kUnavailable, limit == stop && stop < deadline_ns
                                            ? "aborted: " + options_.owner + " shutting down"
                                            : "timed out");
    }
    const int64_t wait_ms = std::min<int64_t>((limit - now + kNanosPerMilli - 1) / kNanosPerMilli,
                                              std::numeric_limits<int>::max());
    pollfd p[2] = {{fd_, events, 0}, {wake_read_fd_, POLLIN, 0}};
    const int n = ::poll(p, 2, static_cast<int>(wait_ms));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(Code::kUnavailable, "poll: " + ErrnoText(errno));
    }
    if (p[1].revents != 0) {
      char buf[64];
      while (::read(wake_read_fd_, buf, sizeof buf) > 0) {
      }
    }
    // Errors and hang-ups count as ready: the next call on the socket reports them.
    if (p[0].revents != 0) return Status::Ok();
  }
}

Status HttpPoster::Connect(int64_t deadline_ns) {
  Close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(server_.port);
  const int gai = ::getaddrinfo(server_.host.c_str(), port.c_str(), &hints, &list);
  if (gai != 0) {
    return Status(Code::kUnavailable, "resolve " + server_.host + ": " + ::gai_strerror(gai));
  }
  std::string why = "no address";
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    fd_ = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd_ < 0) {
      why = "socket: " + ErrnoText(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd_, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        Status st = Wait(POLLOUT, deadline_ns);
        if (!st.ok()) {
          Close();
          ::freeaddrinfo(list);
          return Status(Code::kUnavailable,
                        "connect to " + server_.host_header + ": " + st.message());
        }
        socklen_t len = sizeof err;
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
    if (err == 0) {
      const int one = 1;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::freeaddrinfo(list);
      return Status::Ok();
    }
    why = ErrnoText(err);
    Close();
  }
  ::freeaddrinfo(list);
  return Status(Code::kUnavailable, "connect to " + server_.host_header + ": " + why);
}

Status HttpPoster::SendAll(std::string_view data, int64_t deadline_ns) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    const int err = n < 0 ? errno : EPIPE;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      Status st = Wait(POLLOUT, deadline_ns);
      if (!st.ok()) return Status(Code::kUnavailable, "send: " + st.message());
      continue;
    }
    peer_closed_ = err == EPIPE || err == ECONNRESET;
    return Status(Code::kUnavailable, "send: " + ErrnoText(err));
  }
  return Status::Ok();
}

Status HttpPoster::ReadMore(int64_t deadline_ns) {
  char buf[16 << 10];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      received_ += static_cast<size_t>(n);
      return Status::Ok();
    }
    if (n == 0) {
      peer_closed_ = true;
      return Status(Code::kUnavailable, "connection closed by the " + options_.peer);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      peer_closed_ = errno == ECONNRESET;
      return Status(Code::kUnavailable, "receive: " + ErrnoText(errno));
    }
    Status st = Wait(POLLIN, deadline_ns);
    if (!st.ok()) return Status(Code::kUnavailable, "waiting for the answer: " + st.message());
  }
}

Status HttpPoster::ReadLine(std::string* line, int64_t deadline_ns) {
  size_t eol;
  while ((eol = in_.find("\r\n")) == std::string::npos) {
    if (in_.size() > kMaxResponseHeaderBytes) {
      return Status(Code::kUnavailable, "answer line too long");
    }
    Status st = ReadMore(deadline_ns);
    if (!st.ok()) return st;
  }
  line->assign(in_, 0, eol);
  in_.erase(0, eol + 2);
  return Status::Ok();
}

Status HttpPoster::Skip(size_t n, int64_t deadline_ns) {
  while (in_.size() < n) {
    n -= in_.size();
    in_.clear();
    Status st = ReadMore(deadline_ns);
    if (!st.ok()) return st;
  }
  in_.erase(0, n);
  return Status::Ok();
}

Status HttpPoster::ReadResponse(int64_t deadline_ns, int* code, bool* keep_alive) {
  auto broken = [](std::string why) {
    return Status(Code::kUnavailable, "malformed answer: " + std::move(why));
  };
  std::string line;
  for (;;) {  // once per answer; 1xx interim answers are skipped
    Status st = ReadLine(&line, deadline_ns);
    if (!st.ok()) return st;
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ' ||
        !std::isdigit(static_cast<unsigned char>(line[9])) ||
        !std::isdigit(static_cast<unsigned char>(line[10])) ||
        !std::isdigit(static_cast<unsigned char>(line[11])) ||
        (line.size() > 12 && line[12] != ' ')) {
      return broken("status line \"" + line.substr(0, 80) + "\"");
    }
    const bool http10 = line[7] == '0';
    *code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');

    bool chunked = false, has_length = false, close = http10, keep = false;
    size_t length = 0;
    size_t header_bytes = 0;
    for (;;) {
      st = ReadLine(&line, deadline_ns);
      if (!st.ok()) return st;
      if (line.empty()) break;
      header_bytes += line.size();
      if (header_bytes > kMaxResponseHeaderBytes) return broken("headers too large");
      const size_t colon = line.find(':');
      if (colon == std::string::npos) return broken("header without ':'");
      const std::string_view name = TrimSpaces(std::string_view(line).substr(0, colon));
      const std::string_view value = TrimSpaces(std::string_view(line).substr(colon + 1));
      if (EqualsIgnoreCase(name, "content-length")) {
        size_t v = 0;
        if (value.empty() || value.size() > 12) return broken("Content-Length");
        for (char c : value) {
          if (c < '0' || c > '9') return broken("Content-Length");
          v = v * 10 + static_cast<size_t>(c - '0');
        }
        if (has_length && v != length) return broken("two Content-Lengths");
        has_length = true;
        length = v;
      } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
        chunked = HasToken(value, "chunked");
        if (!chunked) return broken("unsupported Transfer-Encoding");
      } else if (EqualsIgnoreCase(name, "connection")) {
        if (HasToken(value, "close")) close = true;
        if (HasToken(value, "keep-alive")) keep = true;
      }
    }
    if (*code >= 100 && *code < 200) {
      if (*code == 101) return broken("unexpected 101 Switching Protocols");
      continue;
    }
    *keep_alive = http10 ? (keep && !close) : !close;
    if (*code == 204 || *code == 304) return Status::Ok();
    if (chunked) {
      size_t total = 0;
      for (;;) {
        st = ReadLine(&line, deadline_ns);
        if (!st.ok()) return st;
        const std::string_view size_text =
            TrimSpaces(std::string_view(line).substr(0, line.find(';')));
        size_t size = 0;
        if (size_text.empty() || size_text.size() > 8) return broken("chunk size");
        for (char c : size_text) {
          const char l = Lower(c);
          const int digit = (l >= '0' && l <= '9')   ? l - '0'
                            : (l >= 'a' && l <= 'f') ? l - 'a' + 10
                                                     : -1;
          if (digit < 0) return broken("chunk size");
          size = size * 16 + static_cast<size_t>(digit);
        }
        if (size == 0) break;
        total += size;
        if (total > kMaxResponseBodyBytes) return broken("body too large");
        st = Skip(size, deadline_ns);
        if (st.ok()) st = ReadLine(&line, deadline_ns);
        if (!st.ok()) return st;
        if (!line.empty()) return broken("chunk not followed by CRLF");
      }
      do {  // trailers, up to the empty line
        st = ReadLine(&line, deadline_ns);
        if (!st.ok()) return st;
      } while (!line.empty());
    } else if (has_length) {
      if (length > kMaxResponseBodyBytes) return broken("body too large");
      st = Skip(length, deadline_ns);
      if (!st.ok()) return st;
    } else {
      // The body runs to the end of the connection.
      *keep_alive = false;
      for (;;) {
        in_.clear();
        if (received_ > kMaxResponseBodyBytes + kMaxResponseHeaderBytes) {
          return broken("body too large");
        }
        st = ReadMore(deadline_ns);
        if (!st.ok()) {
          if (peer_closed_) return Status::Ok();
          return st;
        }
      }
    }
    // Bytes beyond the answer were never asked for: do not reuse the connection.
    if (!in_.empty()) *keep_alive = false;
    return Status::Ok();
  }
}

Result<int> HttpPoster::Post(std::string_view path, std::string_view content_type,
                             std::string_view body, int64_t deadline_ns) {
  if (path.empty()) path = "/";
  std::string request;
  request.reserve(body.size() + path.size() + 256);
  request.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ");
  request.append(server_.host_header);
  request.append("\r\nContent-Type: ").append(content_type);
  request.append("\r\nContent-Length: ").append(std::to_string(body.size()));
  request.append("\r\nUser-Agent: ").append(options_.user_agent).append("\r\n\r\n");
  request.append(body);

  bool reused = fd_ >= 0;
  if (reused && !IdleConnectionUsable()) {
    Close();
    reused = false;
  }
  for (;;) {
    peer_closed_ = false;
    received_ = 0;
    in_.clear();
    Status st;
    if (fd_ < 0) st = Connect(deadline_ns);
    if (st.ok()) st = SendAll(request, deadline_ns);
    int code = 0;
    bool keep_alive = false;
    if (st.ok()) st = ReadResponse(deadline_ns, &code, &keep_alive);
    if (st.ok()) {
      if (!keep_alive) Close();
      return code;
    }
    // A kept-alive connection the server dropped just as we reused it: one more try
    // on a fresh connection. Anything else (a timeout, a partial answer) is a failure.
    const bool retry = reused && peer_closed_ && received_ == 0;
    Close();
    if (!retry) return st;
    reused = false;
  }
}

}  // namespace resonance
