#pragma once

// A minimal HTTP/1.1 server on the loopback address for tests of code that POSTs
// (the OTLP exporter, the webhook alert sink). Header-only; test binaries only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace resonance::observe_test {

// A listening TCP socket on the loopback address, port 0 unless given. -1 on failure.
inline int Listen(int family, uint16_t port, uint16_t* bound_port, bool listen = true) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || (listen && ::listen(fd, 16) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *bound_port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}

// A loopback port nothing listens on: connecting to it is refused.
inline uint16_t RefusedPort() {
  uint16_t port = 0;
  const int fd = Listen(AF_INET, 0, &port, /*listen=*/false);
  if (fd >= 0) ::close(fd);
  return port;
}

// Accepts one connection at a time, reads HTTP/1.1 requests with Content-Length
// bodies, records them, and answers in the chosen way: `status` (or the scripted
// statuses, see AnswerWith), unless held (see Hold).
class HttpReceiver {
 public:
  enum class Answer {
    kContentLength,    // 200 with Content-Length, connection kept
    kChunked,          // 200 with a chunked body (two chunks, an extension, a trailer)
    kConnectionClose,  // 200 with "Connection: close", then close
    kBodyToClose,      // 200 without a length: the body runs to the close
    kDropIdle,         // 200 with Content-Length, then close without saying so
  };
  struct Request {
    std::string request_line;
    std::map<std::string, std::string> headers;  // names lowercased
    std::string body;
    int connection = 0;                        // 1-based index of the connection it came on
    std::chrono::steady_clock::time_point at;  // when it was fully read
  };

  explicit HttpReceiver(Answer answer = Answer::kContentLength, int status = 200,
                        int family = AF_INET, uint16_t port = 0)
      : answer_(answer), status_(status) {
    listen_fd_ = Listen(family, port, &port_);
    if (listen_fd_ >= 0) thread_ = std::thread([this] { Run(); });
  }
  ~HttpReceiver() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  bool ok() const { return listen_fd_ >= 0; }
  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_; }
  // The first requests are answered with these statuses, in order; later ones with
  // the constructor's status. Call before the requests arrive.
  void AnswerWith(std::vector<int> statuses) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(statuses);
  }
  // While held, requests are recorded as they arrive but not answered (the client
  // waits); Release answers the waiting one and lets the next ones through.
  void Hold() { hold_ = true; }
  void Release() { hold_ = false; }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  bool WaitForRequests(size_t n,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      const int index = ++connections_;
      Serve(fd, index);
      ::close(fd);
    }
  }

  // Reads more bytes into *buf; false on close, error or stop.
  bool ReadMore(int fd, std::string* buf) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int n = ::poll(&p, 1, 20);
      if (n == 0) continue;
      if (n < 0) return false;
      char tmp[8192];
      const ssize_t got = ::recv(fd, tmp, sizeof tmp, 0);
      if (got <= 0) return false;
      buf->append(tmp, static_cast<size_t>(got));
      return true;
    }
    return false;
  }

  void Serve(int fd, int index) {
    std::string buf;
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!ReadMore(fd, &buf)) return;
      }
      Request req;
      req.connection = index;
      const std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      size_t pos = head.find("\r\n");
      req.request_line = head.substr(0, pos);
      while (pos != std::string::npos) {
        const size_t next = head.find("\r\n", pos + 2);
        const std::string line =
            head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        const size_t colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        req.headers[name] = value;
        pos = next;
      }
      const size_t length =
          std::stoul(req.headers.count("content-length") ? req.headers["content-length"] : "0");
      while (buf.size() < length) {
        if (!ReadMore(fd, &buf)) return;
      }
      req.body = buf.substr(0, length);
      buf.erase(0, length);
      req.at = std::chrono::steady_clock::now();
      int status = status_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (requests_.size() < script_.size()) status = script_[requests_.size()];
        requests_.push_back(std::move(req));
      }
      cv_.notify_all();
      while (hold_ && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (stop_) return;

      const std::string status_line = "HTTP/1.1 " + std::to_string(status) +
                                      (status == 200 ? " OK" : " Error") +
                                      "\r\nContent-Type: application/json\r\n";
      std::string answer;
      bool close_after = false;
      switch (answer_) {
        case Answer::kContentLength:
          answer = status_line + "Content-Length: 2\r\n\r\n{}";
          break;
        case Answer::kChunked:
          answer =
              status_line +
              "Transfer-Encoding: chunked\r\n\r\n1;ext=1\r\n{\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n";
          break;
        case Answer::kConnectionClose:
          answer = status_line + "Connection: close\r\nContent-Length: 2\r\n\r\n{}";
          close_after = true;
          break;
        case Answer::kBodyToClose:
          answer = status_line + "\r\n{}";
          close_after = true;
          break;
        case Answer::kDropIdle:
          answer = status_line + "Content-Length: 2\r\n\r\n{}";
          close_after = true;
          break;
      }
      if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(answer.size())) {
        return;
      }
      if (close_after) return;
    }
  }

  const Answer answer_;
  const int status_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> hold_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;  // guarded by mu_
  std::vector<int> script_;        // guarded by mu_
  std::thread thread_;
};

}  // namespace resonance::observe_test
