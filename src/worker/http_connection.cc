#include "worker/http_connection.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <utility>  // before Asio: Boost 1.74 + g++ 12

namespace resonance::worker {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  HttpUrl out;
  std::string_view rest = url;
  if (rest.rfind("https://", 0) == 0)
    return Status(Code::kInvalidArgument, "https is not supported: " + std::string(url));
  if (rest.rfind("http://", 0) == 0) rest.remove_prefix(7);
  const size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) out.target = std::string(rest.substr(slash));
  if (hostport.empty())
    return Status(Code::kInvalidArgument, "no host in URL '" + std::string(url) + "'");
  size_t colon = hostport.rfind(':');
  if (hostport.front() == '[') {  // [v6]:port
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos)
      return Status(Code::kInvalidArgument, "bad host in URL '" + std::string(url) + "'");
    out.host = std::string(hostport.substr(1, close - 1));
    colon = hostport.size() > close + 1 && hostport[close + 1] == ':' ? close + 1
                                                                      : std::string_view::npos;
  } else {
    out.host = std::string(hostport.substr(0, colon));
  }
  if (colon != std::string_view::npos) {
    out.port = std::string(hostport.substr(colon + 1));
    if (out.port.empty() || out.port.size() > 5 ||
        out.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(out.port) > 65535) {
      return Status(Code::kInvalidArgument, "bad port in URL '" + std::string(url) + "'");
    }
  }
  if (out.host.empty())
    return Status(Code::kInvalidArgument, "no host in URL '" + std::string(url) + "'");
  return out;
}

struct HttpConnection::Impl {
  Impl(std::string h, std::string p, std::string ua)
      : host(std::move(h)), port(std::move(p)), user_agent(std::move(ua)) {}

  // Runs the io context until the pending operation completes; cancels it when *abort
  // turns true.
  void Run(const std::atomic<bool>* abort) {
    io.restart();
    if (!abort) {
      io.run();
      return;
    }
    bool cancelled = false;
    while (!io.stopped()) {
      io.run_for(std::chrono::milliseconds(50));
      if (!cancelled && abort->load()) {
        cancelled = true;
        if (stream) stream->cancel();
      }
    }
  }

  void Close() {
    if (stream) {
      beast::error_code ec;
      stream->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream->close();
    }
    stream.reset();
  }

  std::string Describe(const beast::error_code& ec, const std::atomic<bool>* abort,
                       Micros timeout) {
    if (abort && abort->load()) return "aborted";
    if (ec == beast::error::timeout)
      return "timed out after " + std::to_string(timeout / 1000) + " ms";
    return ec.message();
  }

  Result<HttpReply> Once(std::string_view method, std::string_view target, std::string_view body,
                         Micros timeout, const std::atomic<bool>* abort,
                         std::string_view content_type, size_t max_body, beast::error_code& ec) {
    const auto budget = std::chrono::microseconds(std::max<Micros>(timeout, 1000));
    const std::string where = host + ":" + port;
    if (!stream) {
      tcp::resolver resolver(io);
      auto endpoints = resolver.resolve(host, port, ec);
      if (ec) return Status(Code::kUnavailable, "cannot resolve " + where + ": " + ec.message());
      stream.emplace(io);
      stream->expires_after(budget);
      stream->async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
      Run(abort);
      if (ec) {
        std::string why = Describe(ec, abort, timeout);
        Close();
        return Status(Code::kUnavailable, "cannot connect to " + where + ": " + why);
      }
      stream->socket().set_option(tcp::no_delay(true), ec);
    }
    bhttp::request<bhttp::string_body> req{
        bhttp::string_to_verb(beast::string_view(method.data(), method.size())),
        beast::string_view(target.data(), target.size()), 11};
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::user_agent, user_agent);
    if (!body.empty() || method == "POST" || method == "PUT") {
      req.set(bhttp::field::content_type,
              beast::string_view(content_type.data(), content_type.size()));
      req.body().assign(body.data(), body.size());
    }
    req.prepare_payload();
    stream->expires_after(budget);
    bhttp::async_write(*stream, req, [&](beast::error_code e, size_t) { ec = e; });
    Run(abort);
    if (ec)
      return Status(Code::kUnavailable,
                    "sending to " + where + ": " + Describe(ec, abort, timeout));
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_body);
    bhttp::async_read(*stream, buffer, parser, [&](beast::error_code e, size_t) { ec = e; });
    Run(abort);
    if (ec)
      return Status(Code::kUnavailable,
                    "reading from " + where + ": " + Describe(ec, abort, timeout));
    auto res = parser.release();
    HttpReply reply;
    reply.status = static_cast<int>(res.result_int());
    if (auto it = res.find(bhttp::field::retry_after); it != res.end())
      reply.retry_after = std::string(it->value());
    reply.body = std::move(res.body());
    if (!res.keep_alive()) Close();
    return reply;
  }

  net::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::string host;
  std::string port;
  std::string user_agent;
};

HttpConnection::HttpConnection(std::string host, std::string port, std::string user_agent)
    : impl_(std::make_unique<Impl>(std::move(host), std::move(port), std::move(user_agent))) {}

HttpConnection::~HttpConnection() { impl_->Close(); }

void HttpConnection::Close() { impl_->Close(); }

Result<HttpReply> HttpConnection::Request(std::string_view method, std::string_view target,
                                          std::string_view body, Micros timeout,
                                          const std::atomic<bool>* abort,
                                          std::string_view content_type, size_t max_body) {
  for (int attempt = 0;; ++attempt) {
    const bool reused = impl_->stream.has_value();
    beast::error_code ec;
    auto r = impl_->Once(method, target, body, timeout, abort, content_type, max_body, ec);
    if (r.ok()) return r;
    impl_->Close();
    impl_->buffer.clear();
    const bool stale = ec == bhttp::error::end_of_stream || ec == net::error::eof ||
                       ec == net::error::connection_reset || ec == net::error::broken_pipe;
    if (attempt > 0 || !reused || !stale || (abort && abort->load())) return r;
  }
}

}  // namespace resonance::worker
