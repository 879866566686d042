#include "supervise/server_probe.h"
#include "core/percent_encode.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace resonance::supervise {
namespace {

Micros MonoNow() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kMicrosPerSecond + ts.tv_nsec / 1000;
}

// Waits until fd is ready for events or the deadline passes.
bool WaitFd(int fd, short events, Micros deadline) {
  for (;;) {
    const Micros left = deadline - MonoNow();
    if (left <= 0) return false;
    struct pollfd p {
      fd, events, 0
    };
    int r = ::poll(&p, 1, static_cast<int>(left / 1000) + 1);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}


}  // namespace

Result<HttpAnswer> HttpCall(const std::string& host_port, const std::string& method,
                            const std::string& target, Micros timeout) {
  const Micros deadline = MonoNow() + timeout;
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return Status(Code::kInvalidArgument, "bad address " + host_port);
  std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  struct addrinfo hints;
  ::memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    return Status(Code::kUnavailable, "cannot resolve " + host_port);
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return Status(Code::kUnavailable, std::string("socket: ") + strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (rc != 0 && errno != EINPROGRESS) {
    return Status(Code::kUnavailable, "connect " + host_port + ": " + strerror(errno));
  }
  if (rc != 0) {
    if (!WaitFd(fd, POLLOUT, deadline))
      return Status(Code::kUnavailable, "connect " + host_port + ": timeout");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status(Code::kUnavailable, "connect " + host_port + ": " + strerror(err));
  }
  const std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host_port +
                          "\r\nUser-Agent: resonance-supervisor\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFd(fd, POLLOUT, deadline)) return Status(Code::kUnavailable, "send: timeout");
    } else {
      return Status(Code::kUnavailable, std::string("send: ") + strerror(errno));
    }
  }
  std::string raw;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > (16 << 20)) return Status(Code::kUnavailable, "answer too large");
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!WaitFd(fd, POLLIN, deadline)) return Status(Code::kUnavailable, "recv: timeout");
    } else {
      return Status(Code::kUnavailable, std::string("recv: ") + strerror(errno));
    }
  }
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"; the server sends Content-Length, and closing
  // the connection ends the body, so no chunked decoding is needed.
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12)
    return Status(Code::kUnavailable, "malformed answer");
  HttpAnswer answer;
  answer.status = std::atoi(raw.c_str() + 9);
  auto body = raw.find("\r\n\r\n");
  if (body != std::string::npos) answer.body = raw.substr(body + 4);
  return answer;
}

bool HttpServerProbe::Ready(const std::string& host_port) {
  auto r = HttpCall(host_port, "GET", "/readyz", 2 * kMicrosPerSecond);
  return r.ok() && r->status == 200;
}

Status HttpServerProbe::Deregister(const std::string& host_port, const std::string& worker_id) {
  auto r = HttpCall(host_port, "POST", "/api/workers/" + PercentEncode(worker_id) + "/deregister",
                    5 * kMicrosPerSecond);
  if (!r.ok()) return r.status();
  if (r->status == 200 || r->status == 404) return Status::Ok();
  return Status(Code::kUnavailable,
                "deregister " + worker_id + ": HTTP " + std::to_string(r->status));
}

}  // namespace resonance::supervise
