#include "cli/http_client.h"

#include <utility>  // before Asio: Boost 1.74 + g++ 12

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace resonance::cli {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

Result<HttpAnswer> HttpRequest(const std::string& server, const std::string& method,
                               const std::string& target, const std::string& body,
                               int timeout_ms) {
  std::string hostport = server;
  if (hostport.rfind("http://", 0) == 0) hostport = hostport.substr(7);
  while (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  auto colon = hostport.rfind(':');
  std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  try {
    net::io_context io;
    net::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    stream.connect(resolver.resolve(host, port));
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::user_agent, "resonance-cli");
    if (!body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    beast::error_code ec;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    return HttpAnswer{static_cast<int>(res.result_int()), std::move(res.body())};
  } catch (const std::exception& e) {
    return Status(Code::kUnavailable, "cannot reach the server at " + server + ": " + e.what());
  }
}

}  // namespace resonance::cli
