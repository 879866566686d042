#pragma once

// <utility> before Asio: Boost 1.74 coroutines + g++ 12 need std::exchange declared
// (clang-format would sort it after Boost).
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace resonance::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// Spare bytes kept after every response body so simdjson can parse it in place
// (simdjson::SIMDJSON_PADDING is 64; this is checked by a static_assert in the .cc).
constexpr size_t kBodyPadding = 64;

// Resolves "HOST:PORT" (numeric IPv4/IPv6 or a name) to one TCP endpoint.
// Throws std::runtime_error naming the address when it cannot.
asio::ip::tcp::endpoint ResolveServer(const std::string& host_port);

// One response, reused across requests so steady-state requests allocate nothing.
// `body` always has kBodyPadding bytes of capacity past its size.
struct HttpResponse {
  int status = 0;
  std::string body;
};

// One HTTP/1.1 keep-alive connection to the server, used from C++20 coroutines.
// Not thread-safe: one request at a time, from coroutines on the executor it was made
// with. Connects lazily; if the server answers `Connection: close` or a request fails,
// the connection is dropped and the next request opens a new one (counted in
// connects(), so a phase can report that keep-alive was not held).
class HttpClient {
 public:
  HttpClient(asio::any_io_executor ex, asio::ip::tcp::endpoint server);

  // Sends one request (body sent as application/json when non-empty or when the
  // method is POST) and reads the whole response into `out`. `timeout` bounds the
  // exchange including a connect. Throws boost::system::system_error on connect/IO
  // failure or timeout; the connection is closed then. A request on a reused
  // connection that the server had already closed (EOF/reset before any response
  // byte) is retried once on a fresh connection.
  asio::awaitable<void> Request(http::verb method, std::string_view target, std::string_view body,
                                HttpResponse& out, std::chrono::milliseconds timeout);

  asio::awaitable<void> Post(std::string_view target, std::string_view body, HttpResponse& out,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return Request(http::verb::post, target, body, out, timeout);
  }
  asio::awaitable<void> Get(std::string_view target, HttpResponse& out,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return Request(http::verb::get, target, {}, out, timeout);
  }

  // TCP connections opened so far (1 when keep-alive held for the whole run).
  int connects() const { return connects_; }
  void Close();

 private:
  asio::awaitable<void> Exchange(http::verb method, std::string_view target, std::string_view body,
                                 HttpResponse& out);

  asio::ip::tcp::endpoint server_;
  std::string host_header_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::string head_;  // request line + headers, rebuilt in place per request
  bool open_ = false;
  int connects_ = 0;
};

}  // namespace resonance::load
