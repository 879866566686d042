#include "observe/otlp_exporter.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "observe/test_http_receiver.h"

namespace resonance::trace {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

// Polls `done` every 5 ms for up to `timeout`; true once it holds.
bool WaitUntil(const std::function<bool()>& done, milliseconds timeout = milliseconds(3000)) {
  const auto end = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

using observe_test::Listen;
using observe_test::RefusedPort;
// The exporter's peer is an OTLP/HTTP collector.
using FakeCollector = observe_test::HttpReceiver;

Span MakeSpan(int i) {
  Span s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = SpanIdForTask(static_cast<TaskId>(i + 1));
  s.name = "span-" + std::to_string(i);
  s.kind = SpanKind::kServer;
  s.start_unix_nano = 1'700'000'000'000'000'000 + i;
  s.end_unix_nano = s.start_unix_nano + 1000;
  s.attributes = {{"i", int64_t{i}}};
  return s;
}

std::vector<Span> MakeSpans(int from, int to) {
  std::vector<Span> out;
  for (int i = from; i < to; ++i) out.push_back(MakeSpan(i));
  return out;
}

size_t CountSpans(const std::string& body) {
  size_t n = 0;
  for (size_t pos = 0; (pos = body.find("\"spanId\"", pos)) != std::string::npos; ++pos) ++n;
  return n;
}

std::unique_ptr<Exporter> StartOrDie(ExporterOptions options) {
  auto e = Exporter::Start(std::move(options));
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

ExporterOptions Options(const std::string& endpoint) {
  ExporterOptions o;
  o.endpoint = endpoint;
  o.service_name = "resonance-test";
  o.resource_attributes = {{"service.instance.id", std::string("node-1")}};
  return o;
}

std::string Expected(const ExporterOptions& o, int from, int to) {
  return EncodeOtlpJson(MakeSpans(from, to), o.service_name, o.resource_attributes);
}

TEST(OtlpEndpointTest, ParsesHostPortAndPath) {
  // Given well-formed http URLs, then host, port, path and Host header come out right.
  struct Case {
    std::string url, host;
    uint16_t port;
    std::string path, host_header;
  };
  const std::vector<Case> cases = {
      {"http://127.0.0.1:4318/v1/traces", "127.0.0.1", 4318, "/v1/traces", "127.0.0.1:4318"},
      {"http://127.0.0.1:4318", "127.0.0.1", 4318, "/v1/traces", "127.0.0.1:4318"},
      {"HTTP://Collector.local", "Collector.local", 80, "/v1/traces", "Collector.local:80"},
      {"http://[::1]:4318/otlp/v1/traces?x=1", "::1", 4318, "/otlp/v1/traces?x=1", "[::1]:4318"},
      {"http://[2001:db8::7]", "2001:db8::7", 80, "/v1/traces", "[2001:db8::7]:80"},
      {"http://otel-collector_1:65535/", "otel-collector_1", 65535, "/", "otel-collector_1:65535"},
  };
  for (const Case& c : cases) {
    auto ep = ParseOtlpEndpoint(c.url);
    ASSERT_TRUE(ep.ok()) << c.url << ": " << ep.status().ToString();
    EXPECT_EQ(ep->host, c.host) << c.url;
    EXPECT_EQ(ep->port, c.port) << c.url;
    EXPECT_EQ(ep->path, c.path) << c.url;
    EXPECT_EQ(ep->host_header, c.host_header) << c.url;
  }
}

TEST(ExporterTest, StartRejectsBadEndpointsSayingWhy) {
  // Given unusable endpoints, then Start fails with kInvalidArgument and a reason.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"https://collector:4318/v1/traces", "https"},
      {"", "http://"},
      {"collector:4318", "http://"},
      {"ftp://collector/", "scheme"},
      {"http://", "no host"},
      {"http:///v1/traces", "no host"},
      {"http://:4318/v1/traces", "no host"},
      {"http://collector:abc/", "port"},
      {"http://collector:/", "port"},
      {"http://collector:0/", "port"},
      {"http://collector:65536/", "port"},
      {"http://collector:43180000/", "port"},
      {"http://collector:-1/", "port"},
      {"http://::1:4318/", "brackets"},
      {"http://[::1/", "]"},
      {"http://[not-v6]:4318/", "IPv6"},
      {"http://[::1]x/", "after ']'"},
      {"http://user@collector/", "user"},
      {"http://coll ector/", "space"},
      {"http://collector/v1/traces\r\nX: y", "control"},
      {"http://collector/#frag", "fragment"},
      {"http://coll$ector/", "host name"},
  };
  for (const auto& [url, why] : bad) {
    auto e = Exporter::Start(Options(url));
    ASSERT_FALSE(e.ok()) << url;
    EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << url;
    EXPECT_NE(e.status().message().find(why), std::string::npos)
        << url << " -> " << e.status().message();
  }
}

TEST(ExporterTest, StartRejectsBadOptions) {
  // Given zero sizes or a zero timeout, then Start refuses them.
  for (int which = 0; which < 4; ++which) {
    ExporterOptions o = Options("http://127.0.0.1:4318");
    if (which == 0) o.queue_size = 0;
    if (which == 1) o.batch_size = 0;
    if (which == 2) o.timeout_ms = 0;
    if (which == 3) o.flush_ms = -1;
    auto e = Exporter::Start(o);
    EXPECT_FALSE(e.ok()) << which;
    EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << which;
  }
}

TEST(ExporterTest, SendsOtlpJsonWithTheRightRequestLineAndHeaders) {
  // Given a collector on a custom path, then one POST arrives with HTTP/1.1, Host,
  // Content-Type, a matching Content-Length and exactly the OTLP JSON of the spans.
  FakeCollector collector;
  ASSERT_TRUE(collector.ok());
  ExporterOptions o = Options(collector.url("/custom/v1/traces"));
  o.batch_size = 2;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  exporter->Push(MakeSpan(0));
  exporter->Push(MakeSpan(1));
  ASSERT_TRUE(collector.WaitForRequests(1));
  const auto reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& r = reqs[0];
  EXPECT_EQ(r.request_line, "POST /custom/v1/traces HTTP/1.1");
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:" + std::to_string(collector.port()));
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("content-length"), std::to_string(r.body.size()));
  EXPECT_EQ(r.body, Expected(o, 0, 2));
  EXPECT_NE(r.body.find(R"("stringValue":"resonance-test")"), std::string::npos);
  EXPECT_TRUE(WaitUntil([&] { return exporter->exported() == 2; }));
  EXPECT_EQ(exporter->dropped_export_failed(), 0u);
  EXPECT_EQ(exporter->last_error(), "");
}

TEST(ExporterTest, SendsFullBatchesAtOnceAndThePartialOneOnShutdown) {
  // Given batch_size 3 and a flush time far away, when 7 spans are pushed, then two
  // POSTs of 3 spans arrive at once, in order, and Shutdown sends the last one.
  FakeCollector collector;
  ASSERT_TRUE(collector.ok());
  ExporterOptions o = Options(collector.url());
  o.batch_size = 3;
  o.flush_ms = 60'000;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  for (int i = 0; i < 7; ++i) exporter->Push(MakeSpan(i));
  ASSERT_TRUE(collector.WaitForRequests(2));
  std::this_thread::sleep_for(milliseconds(100));
  auto reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 2u);  // the 7th waits for its flush time
  EXPECT_EQ(reqs[0].body, Expected(o, 0, 3));
  EXPECT_EQ(reqs[1].body, Expected(o, 3, 6));
  exporter->Shutdown(2000);
  reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].body, Expected(o, 6, 7));
  EXPECT_EQ(exporter->exported(), 7u);
}

TEST(ExporterTest, FlushesAPartialBatchAfterFlushMs) {
  // Given batch_size 100 and flush_ms 200, when 2 spans are pushed, then nothing is
  // sent for a while, and one POST with both arrives once 200 ms have passed.
  FakeCollector collector;
  ASSERT_TRUE(collector.ok());
  ExporterOptions o = Options(collector.url());
  o.batch_size = 100;
  o.flush_ms = 200;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  const auto t0 = Clock::now();
  exporter->Push(MakeSpan(0));
  exporter->Push(MakeSpan(1));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(collector.requests().size(), 0u);
  ASSERT_TRUE(collector.WaitForRequests(1));
  EXPECT_GE(MsSince(t0), 195);
  const auto reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(CountSpans(reqs[0].body), 2u);
  EXPECT_EQ(reqs[0].body, Expected(o, 0, 2));
}

TEST(ExporterTest, ShutdownFlushesQueuedSpans) {
  // Given spans waiting for a far flush time, when Shutdown is called, then they are
  // all sent before it returns.
  FakeCollector collector;
  ASSERT_TRUE(collector.ok());
  ExporterOptions o = Options(collector.url());
  o.batch_size = 100;
  o.flush_ms = 60'000;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  for (int i = 0; i < 5; ++i) exporter->Push(MakeSpan(i));
  exporter->Shutdown(2000);
  const auto reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].body, Expected(o, 0, 5));
  EXPECT_EQ(exporter->exported(), 5u);
  // Spans pushed after Shutdown are refused and counted.
  exporter->Push(MakeSpan(5));
  EXPECT_EQ(exporter->dropped_queue_full(), 1u);
  exporter->Shutdown(0);  // again: harmless
}

// Pushes one span, waits until it is exported, and returns how many requests arrived.
void PushAndWait(Exporter& exporter, FakeCollector& collector, int i) {
  exporter.Push(MakeSpan(i));
  ASSERT_TRUE(collector.WaitForRequests(static_cast<size_t>(i) + 1)) << i;
  ASSERT_TRUE(WaitUntil([&] { return exporter.exported() == static_cast<uint64_t>(i) + 1; }))
      << "exported " << exporter.exported() << " failed " << exporter.dropped_export_failed()
      << ": " << exporter.last_error();
}

struct ReuseCase {
  FakeCollector::Answer answer;
  int connections;  // expected for three POSTs
};

class ExporterConnectionTest : public ::testing::TestWithParam<ReuseCase> {};

TEST_P(ExporterConnectionTest, ReusesOrReplacesTheConnectionAsTheCollectorAsks) {
  // Given a collector answering in one way, when three batches go out one after the
  // other, then all are exported, on one kept-alive connection when the answer allows
  // it and on fresh ones when it does not.
  FakeCollector collector(GetParam().answer);
  ASSERT_TRUE(collector.ok());
  ExporterOptions o = Options(collector.url());
  o.batch_size = 1;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  for (int i = 0; i < 3; ++i) {
    PushAndWait(*exporter, collector, i);
    // Let a closing collector's FIN arrive before the next batch, as in real life.
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(exporter->dropped_export_failed(), 0u) << exporter->last_error();
  EXPECT_EQ(collector.connections(), GetParam().connections);
  const auto reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reqs[i].body, Expected(o, i, i + 1));
}

INSTANTIATE_TEST_SUITE_P(Answers, ExporterConnectionTest,
                         ::testing::Values(ReuseCase{FakeCollector::Answer::kContentLength, 1},
                                           ReuseCase{FakeCollector::Answer::kChunked, 1},
                                           ReuseCase{FakeCollector::Answer::kConnectionClose, 3},
                                           ReuseCase{FakeCollector::Answer::kBodyToClose, 3},
                                           ReuseCase{FakeCollector::Answer::kDropIdle, 3}),
                         [](const ::testing::TestParamInfo<ReuseCase>& info) {
                           switch (info.param.answer) {
                             case FakeCollector::Answer::kContentLength:
                               return std::string("ContentLength");
                             case FakeCollector::Answer::kChunked:
                               return std::string("Chunked");
                             case FakeCollector::Answer::kConnectionClose:
                               return std::string("ConnectionClose");
                             case FakeCollector::Answer::kBodyToClose:
                               return std::string("BodyToClose");
                             case FakeCollector::Answer::kDropIdle:
                               return std::string("DropIdle");
                           }
                           return std::string("Unknown");
                         });

TEST(ExporterTest, NonSuccessAnswerCountsAsExportFailure) {
  // Given a collector that answers 500, then the batch is dropped and counted, and
  // last_error says why.
  FakeCollector collector(FakeCollector::Answer::kContentLength, 500);
  ASSERT_TRUE(collector.ok());
  ExporterOptions o = Options(collector.url());
  o.batch_size = 2;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  exporter->Push(MakeSpan(0));
  exporter->Push(MakeSpan(1));
  ASSERT_TRUE(WaitUntil([&] { return exporter->dropped_export_failed() == 2; }));
  EXPECT_EQ(exporter->exported(), 0u);
  EXPECT_EQ(collector.requests().size(), 1u);
  EXPECT_NE(exporter->last_error().find("HTTP 500"), std::string::npos) << exporter->last_error();
}

TEST(ExporterTest, RefusedConnectionCountsAsExportFailure) {
  // Given nothing listening on the endpoint, then the batch is dropped and counted.
  ExporterOptions o = Options("http://127.0.0.1:" + std::to_string(RefusedPort()));
  o.batch_size = 3;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  for (int i = 0; i < 3; ++i) exporter->Push(MakeSpan(i));
  ASSERT_TRUE(WaitUntil([&] { return exporter->dropped_export_failed() == 3; }));
  EXPECT_EQ(exporter->exported(), 0u);
  EXPECT_NE(exporter->last_error().find("refused"), std::string::npos) << exporter->last_error();
}

TEST(ExporterTest, BacksOffAfterAFailureThenDeliversOnceTheCollectorIsBack) {
  // Given a refused first POST, when more spans come during the 1 s backoff, then no
  // POST is tried before it ends (no retry storm), the spans wait, and once a collector
  // listens they are delivered.
  const uint16_t port = RefusedPort();
  ExporterOptions o = Options("http://127.0.0.1:" + std::to_string(port));
  o.batch_size = 1;
  o.flush_ms = 0;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  exporter->Push(MakeSpan(0));
  ASSERT_TRUE(WaitUntil([&] { return exporter->dropped_export_failed() == 1; }));
  const auto failed_at = Clock::now();
  exporter->Push(MakeSpan(1));
  exporter->Push(MakeSpan(2));
  FakeCollector collector(FakeCollector::Answer::kContentLength, 200, AF_INET, port);
  ASSERT_TRUE(collector.ok()) << "port " << port << " was taken meanwhile";
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(collector.requests().size(), 0u);  // still backing off
  EXPECT_EQ(exporter->dropped_export_failed(), 1u);
  ASSERT_TRUE(collector.WaitForRequests(2, milliseconds(3000)));
  EXPECT_GE(MsSince(failed_at), 950);
  ASSERT_TRUE(WaitUntil([&] { return exporter->exported() == 2; }));
  const auto reqs = collector.requests();
  EXPECT_EQ(reqs[0].body, Expected(o, 1, 2));
  EXPECT_EQ(reqs[1].body, Expected(o, 2, 3));
}

TEST(ExporterTest, CollectorThatNeverAnswersFailsThePostAfterTimeout) {
  // Given a socket that accepts connections but never reads or answers, then the POST
  // fails after about timeout_ms, not before and not never.
  uint16_t port = 0;
  const int hole = Listen(AF_INET, 0, &port);
  ASSERT_GE(hole, 0);
  ExporterOptions o = Options("http://127.0.0.1:" + std::to_string(port));
  o.batch_size = 1;
  o.timeout_ms = 300;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  const auto t0 = Clock::now();
  exporter->Push(MakeSpan(0));
  ASSERT_TRUE(WaitUntil([&] { return exporter->dropped_export_failed() == 1; }));
  const int64_t took = MsSince(t0);
  EXPECT_GE(took, 280);
  EXPECT_LT(took, 2000);
  EXPECT_NE(exporter->last_error().find("timed out"), std::string::npos) << exporter->last_error();
  exporter.reset();
  ::close(hole);
}

TEST(ExporterTest, PushStaysFastWhileThePostHangsAndShutdownAbortsIt) {
  // Given a POST hanging on a collector that never answers (timeout 5 s), then 10,000
  // Pushes take well under 200 ms in all (they never wait on the network), and
  // Shutdown(0) returns promptly, every span counted once.
  uint16_t port = 0;
  const int hole = Listen(AF_INET, 0, &port);
  ASSERT_GE(hole, 0);
  ExporterOptions o = Options("http://127.0.0.1:" + std::to_string(port));
  o.batch_size = 10;
  o.flush_ms = 0;
  o.timeout_ms = 5000;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  exporter->Push(MakeSpan(0));
  std::this_thread::sleep_for(milliseconds(100));  // the thread is now in the POST
  std::vector<Span> spans;
  for (int i = 0; i < 10'000; ++i) spans.push_back(MakeSpan(i));
  const auto t0 = Clock::now();
  for (Span& s : spans) exporter->Push(std::move(s));
  const int64_t push_ms = MsSince(t0);
  EXPECT_LT(push_ms, 200);
  EXPECT_EQ(exporter->dropped_queue_full(), 10'000u - 8192u);  // queue_size 8192
  EXPECT_EQ(exporter->dropped_export_failed(), 0u);            // the POST still hangs
  const auto t1 = Clock::now();
  exporter->Shutdown(0);
  EXPECT_LT(MsSince(t1), 500);
  EXPECT_EQ(exporter->exported(), 0u);
  EXPECT_EQ(
      exporter->exported() + exporter->dropped_queue_full() + exporter->dropped_export_failed(),
      10'001u);
  ::close(hole);
}

TEST(ExporterTest, DropsWhenTheQueueIsFull) {
  // Given queue_size 4 and nothing due to be sent, when 10 spans are pushed, then 6
  // are dropped at once; Shutdown(0) then counts the 4 queued ones as not exported.
  ExporterOptions o = Options("http://127.0.0.1:" + std::to_string(RefusedPort()));
  o.queue_size = 4;
  o.batch_size = 100;
  o.flush_ms = 60'000;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  for (int i = 0; i < 10; ++i) exporter->Push(MakeSpan(i));
  EXPECT_EQ(exporter->dropped_queue_full(), 6u);
  exporter->Shutdown(0);
  EXPECT_EQ(exporter->dropped_export_failed(), 4u);
  EXPECT_EQ(exporter->exported(), 0u);
}

TEST(ExporterTest, ShutdownGraceBoundsAHangingCollector) {
  // Given queued spans and a collector that never answers, then Shutdown(300) returns
  // after about 300 ms, the spans counted as failed.
  uint16_t port = 0;
  const int hole = Listen(AF_INET, 0, &port);
  ASSERT_GE(hole, 0);
  ExporterOptions o = Options("http://127.0.0.1:" + std::to_string(port));
  o.flush_ms = 60'000;
  o.timeout_ms = 10'000;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  for (int i = 0; i < 3; ++i) exporter->Push(MakeSpan(i));
  const auto t0 = Clock::now();
  exporter->Shutdown(300);
  const int64_t took = MsSince(t0);
  EXPECT_GE(took, 280);
  EXPECT_LT(took, 1500);
  EXPECT_EQ(exporter->dropped_export_failed(), 3u);
  ::close(hole);
}

TEST(ExporterTest, ResolvesHostNames) {
  // Given "localhost" (which may resolve to ::1 first, refused here), then the exporter
  // tries each address and delivers to the IPv4 collector.
  FakeCollector collector;
  ASSERT_TRUE(collector.ok());
  ExporterOptions o = Options("http://localhost:" + std::to_string(collector.port()));
  o.batch_size = 1;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  exporter->Push(MakeSpan(0));
  ASSERT_TRUE(collector.WaitForRequests(1));
  EXPECT_EQ(collector.requests()[0].headers.at("host"),
            "localhost:" + std::to_string(collector.port()));
  EXPECT_TRUE(WaitUntil([&] { return exporter->exported() == 1; })) << exporter->last_error();
}

TEST(ExporterTest, SendsToAnIpv6Literal) {
  // Given a collector on [::1], then spans reach it and Host carries the brackets.
  FakeCollector collector(FakeCollector::Answer::kContentLength, 200, AF_INET6);
  if (!collector.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  ExporterOptions o = Options("http://[::1]:" + std::to_string(collector.port()));
  o.batch_size = 1;
  auto exporter = StartOrDie(o);
  ASSERT_NE(exporter, nullptr);
  exporter->Push(MakeSpan(0));
  ASSERT_TRUE(collector.WaitForRequests(1));
  EXPECT_EQ(collector.requests()[0].headers.at("host"),
            "[::1]:" + std::to_string(collector.port()));
  EXPECT_TRUE(WaitUntil([&] { return exporter->exported() == 1; })) << exporter->last_error();
}

}  // namespace
}  // namespace resonance::trace
