#include "http/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <cmath>
#include <optional>
#include <random>

#include "http/error_mapping.h"
#include "observe/log.h"
#include "observe/otlp_exporter.h"
#include "observe/trace.h"

namespace resonance::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;


class Server::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server& server) : stream_(std::move(socket)), server_(server) {}

  void Start() { ReadHeader(); }

  // Server shutdown: ends a streaming reply now (posted to the session's strand).
  void EndStreamSoon() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stream_ending_ = true;
      self->EndStream();
    });
  }

 private:
  void ReadHeader() {
    if (server_.stopping_) return Close();
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(server_.options_.max_body_bytes);
    stream_.expires_after(std::chrono::milliseconds(server_.options_.header_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    started_ = std::chrono::steady_clock::now();
    start_unix_nano_ = trace::NowUnixNano();
    if (ec == bhttp::error::header_limit) {
      return WriteEarlyError(431, "header_too_large", "request header over 16 KiB");
    }
    // Beast checks Content-Length against the body limit while reading the header.
    boost::optional<uint64_t> length;
    if (parser_->is_header_done()) length = parser_->content_length();
    if (ec == bhttp::error::body_limit ||
        (!ec && length && *length > server_.options_.max_body_bytes)) {
      return WriteEarlyError(413, "payload_too_large",
                             "body over the limit of " +
                                 std::to_string(server_.options_.max_body_bytes) + " bytes");
    }
    if (ec) return Close();  // end of stream, timeout, reset, garbage
    stream_.expires_after(std::chrono::milliseconds(server_.options_.body_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->OnBody(ec);
                      });
  }

  void OnBody(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return WriteEarlyError(413, "payload_too_large",
                             "body over the limit of " +
                                 std::to_string(server_.options_.max_body_bytes) + " bytes");
    }
    if (ec) return Close();
    stream_.expires_never();
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    req_ = Request{};
    req_.method = std::string(msg.method_string());
    auto bt = msg.target();
    std::string_view target(bt.data(), bt.size());
    size_t qpos = target.find('?');
    req_.path = std::string(target.substr(0, qpos));  // the router decodes segments
    if (qpos != std::string_view::npos) req_.query = ParseQuery(target.substr(qpos + 1));
    req_.content_type = std::string(msg[bhttp::field::content_type]);
    auto rid = msg["X-Request-ID"];
    req_.request_id = !rid.empty() && rid.size() <= 200 && IsPrintable(rid)
                          ? std::string(rid)
                          : trace::NewSpanId();
    req_.last_event_id = std::string(msg["Last-Event-ID"]);
    auto tp = msg["traceparent"];
    if (!trace::ParseTraceparent(std::string_view(tp.data(), tp.size()), &req_.trace_id,
                                 &req_.parent_span)) {
      req_.trace_id = trace::NewTraceId();
      req_.parent_span.clear();
    }
    req_.span_id = trace::NewSpanId();
    req_.start_unix_nano = start_unix_nano_;
    req_.body = std::move(msg.body());
    Dispatch();
  }

  void Dispatch() {
    ++server_.in_flight_;
    auto self = shared_from_this();
    Respond respond = [self](Reply r) {
      net::post(self->stream_.get_executor(),
                [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    };
    const Handler* handler = nullptr;
    std::string allow;
    switch (server_.router_.Find(req_, &handler, &allow)) {
      case Router::Match::kFound: {
        // Content types we read: JSON, none, or curl -d's default form type.
        if (!req_.body.empty() && !req_.content_type.empty()) {
          std::string_view ct = req_.content_type;
          ct = ct.substr(0, ct.find(';'));
          while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
          beast::string_view bct(ct.data(), ct.size());
          if (!beast::iequals(bct, "application/json") &&
              !beast::iequals(bct, "application/x-www-form-urlencoded")) {
            Reply r{415, ErrorBody(Code::kUnsupportedMedia,
                                   "Content-Type " + std::string(ct) +
                                       " is not read; send application/json")};
            return respond(std::move(r));
          }
        }
        try {
          (*handler)(req_, std::move(respond));
        } catch (const std::exception& e) {
          log::Error("http", std::string("handler threw: ") + e.what());
          Write(Reply{500, ErrorBody(Code::kInternal, "internal error")});
        }
        return;
      }
      case Router::Match::kWrongMethod: {
        Reply r{405, ErrorBody("method_not_allowed",
                               "method " + req_.method + " is not allowed on " + req_.path +
                                   "; allowed: " + allow)};
        r.headers.emplace_back("Allow", allow);
        return respond(std::move(r));
      }
      case Router::Match::kNoRoute:
        return respond(Reply{404, ErrorBody(Code::kNotFound, "no route " + req_.path)});
    }
  }

  // Status and the headers every answer carries, plus the reply's own.
  template <typename Response>
  void SetHeaders(Response& res, const Reply& r) {
    res.version(11);
    res.result(static_cast<unsigned>(r.status));
    res.set(bhttp::field::server, "resonance");
    res.set(bhttp::field::content_type, r.content_type);
    res.set("X-Request-ID", req_.request_id);
    res.set("X-Trace-ID", req_.trace_id);
    res.set("traceparent", trace::FormatTraceparent(req_.trace_id, req_.span_id));
    for (const auto& [k, v] : r.headers) res.set(k, v);
  }

  void Write(Reply r) {
    if (r.stream) return WriteStream(std::move(r));
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    SetHeaders(*res, r);
    res->body() = std::move(r.body);
    Observe(r.status, res->body().size());
    if (server_.stopping_) keep_alive_ = false;
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](beast::error_code ec, size_t) {
                         --self->server_.in_flight_;
                         // end_of_stream only says the message asked to close.
                         if (ec && ec != bhttp::error::end_of_stream) return self->Close();
                         if (self->linger_) return self->Linger();
                         if (!self->keep_alive_) return self->Close();
                         self->ReadHeader();
                       });
  }

  // A streaming reply (Server-Sent Events). The header goes out without Content-Length
  // and with Connection: close; the body is whatever the source produces, one write in
  // flight at a time, until it ends, the client goes away or the server stops. Close-
  // delimited rather than chunked: an event stream is never followed by another request
  // on its connection, so chunk framing would buy nothing, and every HTTP/1.x client
  // and proxy reads a close-delimited body. Counted, logged and traced when it ends.
  void WriteStream(Reply r) {
    auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
    SetHeaders(*res, r);
    res->keep_alive(false);
    keep_alive_ = false;
    source_ = std::move(r.stream);
    stream_status_ = r.status;
    if (!server_.AddStream(shared_from_this())) stream_ending_ = true;  // stopping
    keepalive_ = std::make_unique<net::steady_timer>(stream_.get_executor());
    source_->Start([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->Wake();
    });
    stream_writing_ = true;
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](beast::error_code ec, size_t) {
                         // end_of_stream only says the message asked to close.
                         if (ec == bhttp::error::end_of_stream) ec = {};
                         self->OnStreamWritten(ec, 0, false);
                       });
    WatchClient();
  }

  void WriteChunk(std::string chunk, bool last) {
    stream_writing_ = true;
    auto buf = std::make_shared<std::string>(std::move(chunk));
    net::async_write(stream_, net::buffer(*buf),
                     [self = shared_from_this(), buf, last](beast::error_code ec, size_t n) {
                       self->OnStreamWritten(ec, n, last);
                     });
  }

  void OnStreamWritten(beast::error_code ec, size_t n, bool last) {
    stream_writing_ = false;
    stream_bytes_ += n;
    last_write_ = std::chrono::steady_clock::now();
    if (ec || last || stream_ending_) return EndStream();
    Pump();
  }

  // Asks for a Pump on the strand; from any thread. One post at a time.
  void Wake() {
    if (wake_posted_.exchange(true)) return;
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Pump(); });
  }

  void Pump() {
    wake_posted_ = false;
    if (stream_done_) return;
    if (stream_ending_ || source_->Abandoned()) return EndStream();
    if (stream_writing_) return;
    std::string chunk;
    const StreamSource::State state = source_->Pull(&chunk);
    const bool last = state == StreamSource::State::kEnd;
    if (!chunk.empty()) return WriteChunk(std::move(chunk), last);
    if (last) return EndStream();
    if (state == StreamSource::State::kMore) return Wake();  // yield to other work first
    ArmKeepAlive();
  }

  // Writes the source's keep-alive once keepalive_ms passed since the last write.
  void ArmKeepAlive() {
    const int ms = source_->keepalive_ms();
    if (ms <= 0 || keepalive_armed_ || stream_done_) return;
    keepalive_armed_ = true;
    keepalive_->expires_at(last_write_ + std::chrono::milliseconds(ms));
    keepalive_->async_wait([self = shared_from_this(), ms](beast::error_code ec) {
      self->keepalive_armed_ = false;
      // A write under way re-arms through Pump when it is done.
      if (ec || self->stream_done_ || self->stream_writing_) return;
      if (std::chrono::steady_clock::now() - self->last_write_ < std::chrono::milliseconds(ms)) {
        return self->ArmKeepAlive();
      }
      self->WriteChunk(self->source_->KeepAlive(), false);
    });
  }

  // A stream's client sends nothing more; end or error means it went away.
  void WatchClient() {
    if (!discard_) discard_ = std::make_unique<std::array<char, 16384>>();
    stream_.async_read_some(net::buffer(*discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->EndStream();
                              self->WatchClient();
                            });
  }

  void EndStream() {
    if (stream_done_) return;
    stream_done_ = true;
    source_->Stop();
    server_.RemoveStream(this);
    if (keepalive_) keepalive_->cancel();
    Observe(stream_status_, stream_bytes_);
    --server_.in_flight_;
    Close();
  }

  // An answer before the body was read: the connection cannot be reused. The unread
  // body is drained after the answer (Linger) so the client sees the answer instead of
  // a reset.
  void WriteEarlyError(int status, std::string_view code, std::string message) {
    ++server_.in_flight_;
    keep_alive_ = false;
    linger_ = true;
    req_ = Request{};
    // The request line is parsed before the headers, so the method is known here
    // unless the line itself was too long.
    req_.method = parser_ ? std::string(parser_->get().method_string()) : std::string();
    req_.route = "early";
    req_.request_id = trace::NewSpanId();
    req_.trace_id = trace::NewTraceId();
    req_.span_id = trace::NewSpanId();
    req_.start_unix_nano = start_unix_nano_;
    Write(Reply{status, ErrorBody(code, message)});
  }

  // Counts, logs and traces one answer (called as it is written).
  void Observe(int status, size_t bytes) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const std::string_view route = req_.route.empty() ? std::string_view("unmatched") : req_.route;
    if (server_.requests_) {
      const std::string_view method = MethodLabel(req_.method);
      server_.requests_->With({route, method, std::to_string(status)}).Inc();
      server_.durations_->With({route, method}).Observe(seconds);
    }
    if (server_.options_.access_log && log::Enabled(log::Level::kInfo)) {
      log::Info("http", "request",
                {{"method", req_.method},
                 {"route", route},
                 {"path", req_.path},
                 {"status", status},
                 {"bytes", bytes},
                 {"duration_ms", std::round(seconds * 1e6) / 1e3},  // µs precision
                 {"request_id", req_.request_id},
                 {"trace_id", req_.trace_id},
                 {"span_id", req_.span_id}});
    }
    if (server_.options_.tracer) {
      trace::Span span;
      span.trace_id = req_.trace_id;
      span.span_id = req_.span_id;
      span.parent_span_id = req_.parent_span;
      span.name = "http.server";
      span.kind = trace::SpanKind::kServer;
      span.start_unix_nano = req_.start_unix_nano;
      span.end_unix_nano = trace::NowUnixNano();
      span.attributes = {{"http.request.method", req_.method},
                         {"http.route", std::string(route)},
                         {"url.path", req_.path},
                         {"http.response.status_code", static_cast<int64_t>(status)},
                         {"http.request_id", req_.request_id}};
      span.error = status >= 500;
      server_.options_.tracer->Push(std::move(span));
    }
  }

  // Methods are client text: anything unusual counts as "other" (bounded labels).
  static std::string_view MethodLabel(std::string_view m) {
    for (std::string_view known : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}) {
      if (m == known) return m;
    }
    return "other";
  }

  static bool IsPrintable(beast::string_view v) {
    for (char c : v) {
      if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
  }

  // Half-closes and discards what the client still sends, for up to 2 s or 64 MiB.
  void Linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    if (!discard_) discard_ = std::make_unique<std::array<char, 16384>>();
    stream_.async_read_some(net::buffer(*discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > (64u << 20)) return self->Close();
                              self->Linger();
                            });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Server& server_;
  Request req_;
  bool keep_alive_ = true;
  bool linger_ = false;
  size_t lingered_ = 0;
  std::unique_ptr<std::array<char, 16384>> discard_;
  std::chrono::steady_clock::time_point started_;
  int64_t start_unix_nano_ = 0;
  // A streaming reply; on the strand except wake_posted_.
  std::shared_ptr<StreamSource> source_;
  std::unique_ptr<net::steady_timer> keepalive_;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  int stream_status_ = 200;
  size_t stream_bytes_ = 0;
  bool stream_writing_ = false;
  bool stream_ending_ = false;  // the server is stopping: end at the next chance
  bool stream_done_ = false;
  bool keepalive_armed_ = false;
  std::atomic<bool> wake_posted_{false};
};

Server::Server(const Router& router, ServerOptions options)
    : router_(router), options_(std::move(options)), acceptor_(io_) {
  if (options_.metrics) {
    requests_ = &options_.metrics->AddCounter("resonance_http_requests_total",
                                              "Answered HTTP requests.",
                                              {"route", "method", "status"});
    durations_ = &options_.metrics->AddHistogram(
        "resonance_http_request_duration_seconds",
        "HTTP requests, from the request header to the answer queued for writing (long polls "
        "include their wait).",
        {"route", "method"}, metrics::HttpSecondsBuckets());
  }
}

Server::~Server() = default;

Status Server::Listen() {
  beast::error_code ec;
  auto address = net::ip::make_address(options_.host, ec);
  if (ec) return Status(Code::kInvalidArgument, "listen address " + options_.host + ": " + ec.message());
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kUnavailable, "cannot listen on " + options_.host + ":" +
                                          std::to_string(options_.port) + ": " + ec.message());
  }
  bound_port_ = acceptor_.local_endpoint().port();
  Accept();
  return Status::Ok();
}

void Server::Accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (!acceptor_.is_open()) return;
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), *this)->Start();
    }
    Accept();
  });
}

void Server::Run() {
  std::vector<std::thread> extra;
  for (int i = 1; i < options_.threads; ++i) extra.emplace_back([this] { io_.run(); });
  io_.run();
  for (auto& t : extra) t.join();
}

void Server::Shutdown(int grace_ms) {
  net::post(io_, [this, grace_ms] {
    if (stopping_.exchange(true)) return;
    beast::error_code ec;
    acceptor_.close(ec);
    // Streams never finish on their own: end them so the drain is not held up.
    std::vector<std::shared_ptr<Session>> streams;
    {
      std::lock_guard lock(streams_mu_);
      for (auto& [ptr, weak] : streams_) {
        if (auto s = weak.lock()) streams.push_back(std::move(s));
      }
    }
    for (auto& s : streams) s->EndStreamSoon();
    drain_timer_ = std::make_unique<net::steady_timer>(io_);
    DrainThenStop(std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms));
  });
}

bool Server::AddStream(const std::shared_ptr<Session>& s) {
  std::lock_guard lock(streams_mu_);
  if (stopping_) return false;
  streams_.emplace(s.get(), s);
  return true;
}

void Server::RemoveStream(Session* s) {
  std::lock_guard lock(streams_mu_);
  streams_.erase(s);
}

void Server::DrainThenStop(std::chrono::steady_clock::time_point deadline) {
  if (in_flight_ == 0 || std::chrono::steady_clock::now() >= deadline) {
    io_.stop();
    return;
  }
  drain_timer_->expires_after(std::chrono::milliseconds(5));
  drain_timer_->async_wait([this, deadline](beast::error_code) { DrainThenStop(deadline); });
}

}  // namespace resonance::http
