#include "http_client.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <stdexcept>
#include <tuple>

namespace resonance::load {

static_assert(kBodyPadding >= simdjson::SIMDJSON_PADDING);

namespace {

constexpr uint64_t kMaxResponseBody = 256ull << 20;

bool StaleConnection(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof;
}

void AppendInt(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

asio::ip::tcp::endpoint ResolveServer(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("no port in " + host_port);
  std::string host = host_port.substr(0, colon);
  std::string port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) {
    throw std::runtime_error("cannot resolve " + host_port + ": " + ec.message());
  }
  return results.begin()->endpoint();
}

HttpClient::HttpClient(asio::any_io_executor ex, asio::ip::tcp::endpoint server)
    : server_(server), stream_(std::move(ex)) {
  host_header_ = server_.address().to_string() + ":" + std::to_string(server_.port());
  head_.reserve(256);
}

void HttpClient::Close() {
  if (!open_) return;
  boost::system::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
  buffer_.clear();
  open_ = false;
}

asio::awaitable<void> HttpClient::Request(http::verb method, std::string_view target,
                                          std::string_view body, HttpResponse& out,
                                          std::chrono::milliseconds timeout) {
  bool reused = open_;
  bool retry = false;
  stream_.expires_after(timeout);
  try {
    co_await Exchange(method, target, body, out);
  } catch (const boost::system::system_error& e) {
    Close();
    if (!reused || !StaleConnection(e.code())) throw;
    retry = true;
  }
  if (retry) {
    stream_.expires_after(timeout);
    try {
      co_await Exchange(method, target, body, out);
    } catch (...) {
      Close();
      throw;
    }
  }
  stream_.expires_never();
}

asio::awaitable<void> HttpClient::Exchange(http::verb method, std::string_view target,
                                           std::string_view body, HttpResponse& out) {
  if (!open_) {
    co_await stream_.async_connect(server_, asio::use_awaitable);
    stream_.socket().set_option(asio::ip::tcp::no_delay(true));
    buffer_.clear();
    open_ = true;
    ++connects_;
  }

  head_.clear();
  auto verb = http::to_string(method);
  head_.append(verb.data(), verb.size());
  head_.push_back(' ');
  head_.append(target);
  head_.append(" HTTP/1.1\r\nHost: ");
  head_.append(host_header_);
  head_.append("\r\n");
  if (!body.empty() || method == http::verb::post) {
    head_.append("Content-Type: application/json\r\nContent-Length: ");
    AppendInt(head_, body.size());
    head_.append("\r\n");
  }
  head_.append("\r\n");
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head_), asio::buffer(body)};
  co_await asio::async_write(stream_, bufs, asio::use_awaitable);

  // The parser adopts out.body (cleared, capacity kept) and hands it back filled.
  out.body.clear();
  http::response_parser<http::string_body> parser(std::piecewise_construct,
                                                  std::forward_as_tuple(std::move(out.body)));
  parser.body_limit(kMaxResponseBody);
  co_await http::async_read(stream_, buffer_, parser, asio::use_awaitable);
  auto& msg = parser.get();
  out.status = static_cast<int>(msg.result_int());
  out.body = std::move(msg.body());
  if (out.body.capacity() < out.body.size() + kBodyPadding) {
    out.body.reserve(out.body.size() + kBodyPadding);
  }
  if (!parser.keep_alive()) Close();
}

}  // namespace resonance::load
