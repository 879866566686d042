#include "observe/alert_sinks.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "observe/log.h"
#include "observe/test_http_receiver.h"

namespace resonance::alerts {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using observe_test::HttpReceiver;
using std::chrono::milliseconds;

constexpr Micros kT0 = 1795370400000000;  // 2026-11-22T18:00:00Z
constexpr Micros kT1 = 1795370460000000;  // 2026-11-22T18:01:00Z
constexpr Micros kT2 = 1795370850000000;  // 2026-11-22T18:07:30Z
constexpr char kGenerator[] = "http://resonance.local:8080/alerts";

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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

Alert Firing(const std::string& queue = "rpa") {
  Alert a;
  a.name = "QueueDepthCritical";
  a.severity = "critical";
  a.labels = {{"queue", queue}};
  a.annotations = {{"description", "Ready tasks in " + queue + ": 25"},
                   {"summary", "25 ready tasks in queue " + queue + " (critical at 21 or more)"}};
  a.state = AlertState::kFiring;
  a.value = 25;
  a.threshold = 21;
  a.active_since = kT0;
  a.firing_since = kT1;
  a.fingerprint = Fingerprint(a.name, a.labels);
  return a;
}

Alert Resolved(const std::string& queue = "rpa") {
  Alert a = Firing(queue);
  a.state = AlertState::kResolved;
  a.value = 4;
  a.resolved_at = kT2;
  return a;
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it; the
// process-wide logger writes to log.jsonl in it while the test runs.
class SinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/alert_sinks_test.XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    log::Options o;
    o.file = dir_ + "/log.jsonl";
    ASSERT_TRUE(log::Configure(o).ok());
  }
  void TearDown() override {
    log::Flush();
    ASSERT_TRUE(log::Configure(log::Options{}).ok());
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::vector<std::string> LogLines() {
    log::Flush();
    return Lines(ReadFile(dir_ + "/log.jsonl"));
  }
  // Log lines holding `text`.
  std::vector<std::string> LogLinesWith(const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& line : LogLines()) {
      if (line.find(text) != std::string::npos) out.push_back(line);
    }
    return out;
  }

  std::string dir_;
};

// The part of a JSON log line after its timestamp.
std::string AfterTs(const std::string& line) {
  const size_t at = line.find("\"level\"");
  return at == std::string::npos ? line : line.substr(at);
}

TEST_F(SinkTest, LogSinkWarnsOnFiringErrorsOnCriticalInformsOnResolved) {
  // Given a warning and a critical alert firing and one resolving, then three lines at
  // warn, error and info, msg AlertText, with the alert's fields.
  LogSink sink;
  EXPECT_EQ(sink.name(), "log");
  Alert warning = Firing();
  warning.name = "QueueDepthWarning";
  warning.severity = "warning";
  warning.fingerprint = "0123456789abcdef";
  sink.Deliver(warning);
  sink.Deliver(Firing());
  sink.Deliver(Resolved());
  const auto lines = LogLinesWith("\"module\":\"alerts\"");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(AfterTs(lines[0]),
            R"j("level":"warn","msg":"[FIRING] QueueDepthWarning (warning) queue=rpa: 25 ready )j"
            R"j(tasks in queue rpa (critical at 21 or more)","module":"alerts",)j"
            R"j("alert":"QueueDepthWarning","state":"firing","severity":"warning",)j"
            R"j("fingerprint":"0123456789abcdef","value":25})j");
  EXPECT_EQ(AfterTs(lines[1]),
            R"j("level":"error","msg":"[FIRING] QueueDepthCritical (critical) queue=rpa: 25 )j"
            R"j(ready tasks in queue rpa (critical at 21 or more)","module":"alerts",)j"
            R"j("alert":"QueueDepthCritical","state":"firing","severity":"critical",)j"
            R"j("fingerprint":"16802cc81ace4792","value":25})j");
  EXPECT_EQ(AfterTs(lines[2]),
            R"j("level":"info","msg":"[RESOLVED] QueueDepthCritical (critical) queue=rpa: 25 )j"
            R"j(ready tasks in queue rpa (critical at 21 or more)","module":"alerts",)j"
            R"j("alert":"QueueDepthCritical","state":"resolved","severity":"critical",)j"
            R"j("fingerprint":"16802cc81ace4792","value":4})j");
}

TEST_F(SinkTest, FileSinkWritesThenUpdatesOneFilePerAlert) {
  // Given a missing directory, when an alert fires and then resolves, then the
  // directory is made and holds one file, <name>-<fingerprint>.json, with the firing
  // JSON and then the resolved JSON; no temporary file is left behind.
  const std::string dir = dir_ + "/data/alerts";
  FileSink sink(dir);
  EXPECT_EQ(sink.name(), "file:" + dir);
  const std::string path = dir + "/QueueDepthCritical-16802cc81ace4792.json";
  sink.Deliver(Firing());
  EXPECT_EQ(ReadFile(path),
            R"j({"name":"QueueDepthCritical","state":"firing","severity":"critical",)j"
            R"j("labels":{"queue":"rpa"},"annotations":{"description":"Ready tasks in rpa: 25",)j"
            R"j("summary":"25 ready tasks in queue rpa (critical at 21 or more)"},)j"
            R"j("value":25,"threshold":21,"active_since":"2026-11-22T18:00:00.000000Z",)j"
            R"j("firing_since":"2026-11-22T18:01:00.000000Z","resolved_at":null,)j"
            R"j("fingerprint":"16802cc81ace4792"})j"
            "\n");
  sink.Deliver(Resolved());
  EXPECT_EQ(ReadFile(path),
            R"j({"name":"QueueDepthCritical","state":"resolved","severity":"critical",)j"
            R"j("labels":{"queue":"rpa"},"annotations":{"description":"Ready tasks in rpa: 25",)j"
            R"j("summary":"25 ready tasks in queue rpa (critical at 21 or more)"},)j"
            R"j("value":4,"threshold":21,"active_since":"2026-11-22T18:00:00.000000Z",)j"
            R"j("firing_since":"2026-11-22T18:01:00.000000Z",)j"
            R"j("resolved_at":"2026-11-22T18:07:30.000000Z","fingerprint":"16802cc81ace4792"})j"
            "\n");
  sink.Deliver(Firing("rpb"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"QueueDepthCritical-16802bc81ace45df.json",
                                             "QueueDepthCritical-16802cc81ace4792.json"}));
  EXPECT_TRUE(LogLinesWith("alert file").empty());
}

TEST(FileSinkTest, FileNamesStayInTheDirectory) {
  Alert a = Firing();
  EXPECT_EQ(FileSink::FileName(a), "QueueDepthCritical-16802cc81ace4792.json");
  a.name = "../etc/passwd x";
  a.fingerprint = "0123456789abcdef";
  EXPECT_EQ(FileSink::FileName(a), ".._etc_passwd_x-0123456789abcdef.json");
  a.name = "";
  EXPECT_EQ(FileSink::FileName(a), "alert-0123456789abcdef.json");
}

TEST_F(SinkTest, FileSinkLogsAWriteErrorOncePerFileAndNeverThrows) {
  // Given a "directory" that is a regular file, when two alerts are delivered twice
  // each, then nothing throws and one error is logged per file.
  const std::string blocked = dir_ + "/not-a-dir";
  std::ofstream(blocked) << "x";
  FileSink sink(blocked + "/alerts");
  EXPECT_NO_THROW({
    sink.Deliver(Firing());
    sink.Deliver(Resolved());
    sink.Deliver(Firing("rpb"));
    sink.Deliver(Firing("rpb"));
  });
  const auto lines = LogLinesWith("alert file not written");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(R"j("level":"error")j"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("QueueDepthCritical-16802cc81ace4792.json"), std::string::npos);
  EXPECT_NE(lines[1].find("QueueDepthCritical-16802bc81ace45df.json"), std::string::npos);
}

std::unique_ptr<WebhookSink> StartOrDie(WebhookOptions o) {
  auto s = WebhookSink::Start(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

WebhookOptions Options(const std::string& url,
                       WebhookOptions::Format format = WebhookOptions::Format::kAlertmanager) {
  WebhookOptions o;
  o.url = url;
  o.format = format;
  o.generator_url = kGenerator;
  o.backoff_ms = 10;
  return o;
}

TEST(WebhookSinkTest, StartRejectsBadUrlsAndOptions) {
  for (const std::string url : {"", "https://am:9093", "http://", "http://am:0", "am:9093"}) {
    auto s = WebhookSink::Start(Options(url));
    ASSERT_FALSE(s.ok()) << url;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << url;
    EXPECT_EQ(s.status().message().rfind("webhook URL \"" + url + "\": ", 0), 0u)
        << s.status().message();
  }
  for (int which = 0; which < 4; ++which) {
    WebhookOptions o = Options("http://127.0.0.1:9093");
    if (which == 0) o.queue_size = 0;
    if (which == 1) o.timeout_ms = 0;
    if (which == 2) o.max_attempts = 0;
    if (which == 3) o.backoff_ms = -1;
    auto s = WebhookSink::Start(o);
    ASSERT_FALSE(s.ok()) << which;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << which;
  }
}

TEST(WebhookSinkTest, NamesAndPaths) {
  // Given Alertmanager base URLs, then /api/v2/alerts is appended once; given a plain
  // webhook, then its path is used as written.
  struct Case {
    std::string url, path;
  };
  for (const Case& c : std::vector<Case>{
           {"http://127.0.0.1:9093", "/api/v2/alerts"},
           {"http://127.0.0.1:9093/", "/api/v2/alerts"},
           {"http://am.local/prefix/", "/prefix/api/v2/alerts"},
           {"http://am.local/api/v2/alerts", "/api/v2/alerts"},
           {"http://am.local/x/api/v2/alerts?tenant=a", "/x/api/v2/alerts?tenant=a"},
           {"http://am.local/x?tenant=a", "/x/api/v2/alerts?tenant=a"},
       }) {
    auto sink = StartOrDie(Options(c.url));
    ASSERT_NE(sink, nullptr);
    EXPECT_EQ(sink->path(), c.path) << c.url;
    EXPECT_EQ(sink->name(), "alertmanager:" + c.url);
  }
  auto hook =
      StartOrDie(Options("http://hooks.local/services/T0/B0/x?y=1", WebhookOptions::Format::kJson));
  ASSERT_NE(hook, nullptr);
  EXPECT_EQ(hook->path(), "/services/T0/B0/x?y=1");
  EXPECT_EQ(hook->name(), "webhook:http://hooks.local/services/T0/B0/x?y=1");
  hook = StartOrDie(Options("http://hooks.local:8080", WebhookOptions::Format::kJson));
  ASSERT_NE(hook, nullptr);
  EXPECT_EQ(hook->path(), "/");
}

TEST(WebhookSinkTest, AlertmanagerFormatPostsPostableAlerts) {
  // Given an Alertmanager at a base URL, when an alert fires and resolves, then two
  // POSTs to /api/v2/alerts carry a one-element array of postable alerts each, with
  // endsAt only on the resolved one.
  HttpReceiver am;
  ASSERT_TRUE(am.ok());
  auto sink = StartOrDie(Options(am.url()));
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing());
  sink->Deliver(Resolved());
  ASSERT_TRUE(am.WaitForRequests(2));
  const auto reqs = am.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].request_line, "POST /api/v2/alerts HTTP/1.1");
  EXPECT_EQ(reqs[0].headers.at("host"), "127.0.0.1:" + std::to_string(am.port()));
  EXPECT_EQ(reqs[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(
      reqs[0].body,
      R"j([{"labels":{"alertname":"QueueDepthCritical","severity":"critical","queue":"rpa"},)j"
      R"j("annotations":{"description":"Ready tasks in rpa: 25",)j"
      R"j("summary":"25 ready tasks in queue rpa (critical at 21 or more)"},)j"
      R"j("startsAt":"2026-11-22T18:01:00.000000Z",)j"
      R"j("generatorURL":"http://resonance.local:8080/alerts"}])j");
  EXPECT_EQ(
      reqs[1].body,
      R"j([{"labels":{"alertname":"QueueDepthCritical","severity":"critical","queue":"rpa"},)j"
      R"j("annotations":{"description":"Ready tasks in rpa: 25",)j"
      R"j("summary":"25 ready tasks in queue rpa (critical at 21 or more)"},)j"
      R"j("startsAt":"2026-11-22T18:01:00.000000Z","endsAt":"2026-11-22T18:07:30.000000Z",)j"
      R"j("generatorURL":"http://resonance.local:8080/alerts"}])j");
  EXPECT_TRUE(WaitUntil([&] { return sink->delivered() == 2; }));
  EXPECT_EQ(am.connections(), 1);  // kept alive
  EXPECT_EQ(sink->failed(), 0u);
  EXPECT_EQ(sink->dropped(), 0u);
}

TEST(WebhookSinkTest, AlertmanagerJsonLeavesOutWhatIsUnset) {
  // Given labels named alertname/severity, no severity, no times and no generator URL,
  // then those are left out rather than sent empty or twice.
  Alert a;
  a.name = "CanaryFailing";
  a.labels = {{"alertname", "Other"}, {"queue", "q"}, {"severity", "x"}};
  a.state = AlertState::kResolved;
  EXPECT_EQ(AlertmanagerJson({a}, ""),
            R"j([{"labels":{"alertname":"CanaryFailing","queue":"q"},"annotations":{}}])j");
  a.active_since = kT0;
  EXPECT_EQ(AlertmanagerJson({a, Firing()}, ""),
            R"j([{"labels":{"alertname":"CanaryFailing","queue":"q"},"annotations":{},)j"
            R"j("startsAt":"2026-11-22T18:00:00.000000Z"},)j"
            R"j({"labels":{"alertname":"QueueDepthCritical","severity":"critical","queue":"rpa"},)j"
            R"j("annotations":{"description":"Ready tasks in rpa: 25",)j"
            R"j("summary":"25 ready tasks in queue rpa (critical at 21 or more)"},)j"
            R"j("startsAt":"2026-11-22T18:01:00.000000Z"}])j");
  EXPECT_EQ(AlertmanagerJson({}, kGenerator), "[]");
}

TEST(WebhookSinkTest, RefreshSendsAllFiringAlertsInOnePost) {
  // Given three alerts, one of them resolved, when Refresh is called, then one POST
  // carries the two firing ones; an empty Refresh sends nothing.
  HttpReceiver am;
  ASSERT_TRUE(am.ok());
  auto sink = StartOrDie(Options(am.url()));
  ASSERT_NE(sink, nullptr);
  sink->Refresh({});
  sink->Refresh({Firing("a"), Resolved("b"), Firing("c")});
  ASSERT_TRUE(am.WaitForRequests(1));
  ASSERT_TRUE(WaitUntil([&] { return sink->delivered() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));
  const auto reqs = am.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].request_line, "POST /api/v2/alerts HTTP/1.1");
  EXPECT_EQ(reqs[0].body, AlertmanagerJson({Firing("a"), Firing("c")}, kGenerator));
}

TEST(WebhookSinkTest, JsonFormatPostsTextAndAlertToTheUrlAsGiven) {
  // Given a Slack-style webhook URL, then each delivery is one POST to that path with
  // {"text":..., "alert":...}; Refresh sends nothing.
  HttpReceiver hook;
  ASSERT_TRUE(hook.ok());
  auto sink = StartOrDie(Options(hook.url("/services/T0/B0/x"), WebhookOptions::Format::kJson));
  ASSERT_NE(sink, nullptr);
  sink->Refresh({Firing()});
  sink->Deliver(Firing());
  ASSERT_TRUE(hook.WaitForRequests(1));
  ASSERT_TRUE(WaitUntil([&] { return sink->delivered() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));
  const auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].request_line, "POST /services/T0/B0/x HTTP/1.1");
  EXPECT_EQ(reqs[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(reqs[0].body,
            R"j({"text":"[FIRING] QueueDepthCritical (critical) queue=rpa: 25 ready tasks in )j"
            R"j(queue rpa (critical at 21 or more)","alert":{"name":"QueueDepthCritical",)j"
            R"j("state":"firing","severity":"critical","labels":{"queue":"rpa"},)j"
            R"j("annotations":{"description":"Ready tasks in rpa: 25",)j"
            R"j("summary":"25 ready tasks in queue rpa (critical at 21 or more)"},)j"
            R"j("value":25,"threshold":21,"active_since":"2026-11-22T18:00:00.000000Z",)j"
            R"j("firing_since":"2026-11-22T18:01:00.000000Z","resolved_at":null,)j"
            R"j("fingerprint":"16802cc81ace4792"}})j");
  EXPECT_EQ(reqs[0].body, WebhookJson(Firing()));
}

TEST(WebhookSinkTest, RetriesWithDoublingBackoffUntilDelivered) {
  // Given a receiver answering 500 twice and then 200, with backoff_ms 40, then the
  // same body arrives three times, at least 40 and then 80 ms apart, and counts as
  // delivered once.
  HttpReceiver am;
  ASSERT_TRUE(am.ok());
  am.AnswerWith({500, 500});
  WebhookOptions o = Options(am.url());
  o.backoff_ms = 40;
  auto sink = StartOrDie(o);
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing());
  ASSERT_TRUE(am.WaitForRequests(3));
  ASSERT_TRUE(WaitUntil([&] { return sink->delivered() == 1; }));
  const auto reqs = am.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].body, reqs[1].body);
  EXPECT_EQ(reqs[0].body, reqs[2].body);
  EXPECT_GE(reqs[1].at - reqs[0].at, milliseconds(38));
  EXPECT_GE(reqs[2].at - reqs[1].at, milliseconds(78));
  EXPECT_EQ(sink->failed(), 0u);
}

TEST_F(SinkTest, WebhookGivesUpAfterMaxAttemptsAndWarnsOnce) {
  // Given a receiver that always answers 500, with max_attempts 3, then exactly three
  // POSTs arrive, the alert counts as failed and one warning says why.
  HttpReceiver am(HttpReceiver::Answer::kContentLength, 500);
  ASSERT_TRUE(am.ok());
  WebhookOptions o = Options(am.url());
  o.max_attempts = 3;
  auto sink = StartOrDie(o);
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing());
  ASSERT_TRUE(WaitUntil([&] { return sink->failed() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(am.requests().size(), 3u);
  EXPECT_EQ(sink->delivered(), 0u);
  const auto lines = LogLinesWith("gave up");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"j("level":"warn")j"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("gave up sending QueueDepthCritical (firing) after 3 attempts: "
                          "answered HTTP 500"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find(R"j("fingerprint":"16802cc81ace4792")j"), std::string::npos);
}

TEST(WebhookSinkTest, EndpointDownCountsAsFailedAfterMaxAttempts) {
  // Given nothing listening, then each delivery fails after max_attempts, and the
  // next one is tried too.
  WebhookOptions o = Options("http://127.0.0.1:" + std::to_string(observe_test::RefusedPort()));
  o.max_attempts = 2;
  auto sink = StartOrDie(o);
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing("a"));
  sink->Deliver(Firing("b"));
  ASSERT_TRUE(WaitUntil([&] { return sink->failed() == 2; }));
  EXPECT_EQ(sink->delivered(), 0u);
  EXPECT_EQ(sink->dropped(), 0u);
}

TEST(WebhookSinkTest, DeliverNeverWaitsOnAHangingEndpointAndTheDestructorStopsPromptly) {
  // Given a POST hanging on an endpoint that never answers (timeout 5 s), then 10,000
  // Delivers take well under 200 ms, the queue keeps 1024 and drops the rest, and
  // destroying the sink takes well under a second.
  uint16_t port = 0;
  const int hole = observe_test::Listen(AF_INET, 0, &port);
  ASSERT_GE(hole, 0);
  WebhookOptions o = Options("http://127.0.0.1:" + std::to_string(port));
  o.timeout_ms = 5000;
  auto sink = StartOrDie(o);
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing());
  std::this_thread::sleep_for(milliseconds(100));  // the thread is now in the POST
  const Alert a = Firing();
  const auto t0 = Clock::now();
  for (int i = 0; i < 10'000; ++i) sink->Deliver(a);
  EXPECT_LT(MsSince(t0), 200);
  EXPECT_EQ(sink->dropped(), 10'000u - 1024u);
  EXPECT_EQ(sink->failed(), 0u);  // the POST still hangs
  const auto t1 = Clock::now();
  sink.reset();
  EXPECT_LT(MsSince(t1), 1000);
  ::close(hole);
}

TEST(WebhookSinkTest, DestructorCutsABackoffShort) {
  // Given a failed POST waiting 10 s before its retry, then the destructor returns at
  // once.
  HttpReceiver am(HttpReceiver::Answer::kContentLength, 500);
  ASSERT_TRUE(am.ok());
  WebhookOptions o = Options(am.url());
  o.backoff_ms = 10'000;
  auto sink = StartOrDie(o);
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing());
  ASSERT_TRUE(am.WaitForRequests(1));
  std::this_thread::sleep_for(milliseconds(50));
  const auto t0 = Clock::now();
  sink.reset();
  EXPECT_LT(MsSince(t0), 1000);
  EXPECT_EQ(am.requests().size(), 1u);
}

// The queue label of every alert in an Alertmanager body, in order, each followed by a space.
std::string Queues(const std::string& body) {
  std::string out;
  for (size_t at = 0; (at = body.find(R"j("queue":")j", at)) != std::string::npos;) {
    at += 9;
    out += body.substr(at, body.find('"', at) - at) + " ";
  }
  return out;
}

TEST(WebhookSinkTest, FullQueueDropsTheOldest) {
  // Given a POST in flight and queue_size 3, when four more alerts come, then the
  // oldest waiting one is dropped and the others are sent in order once the receiver
  // answers.
  HttpReceiver am;
  ASSERT_TRUE(am.ok());
  am.Hold();
  WebhookOptions o = Options(am.url());
  o.queue_size = 3;
  auto sink = StartOrDie(o);
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing("a"));
  ASSERT_TRUE(am.WaitForRequests(1));
  for (const char* q : {"b", "c", "d", "e"}) sink->Deliver(Firing(q));
  EXPECT_EQ(sink->dropped(), 1u);
  am.Release();
  ASSERT_TRUE(am.WaitForRequests(4));
  ASSERT_TRUE(WaitUntil([&] { return sink->delivered() == 4; }));
  std::string order;
  for (const auto& r : am.requests()) order += Queues(r.body);
  EXPECT_EQ(order, "a c d e ");
  EXPECT_EQ(sink->failed(), 0u);
}

TEST(WebhookSinkTest, ARefreshReplacesAWaitingOne) {
  // Given a POST in flight, when two Refreshes come, then only the later one is sent
  // (after the Deliver queued between them) and the earlier counts as dropped.
  HttpReceiver am;
  ASSERT_TRUE(am.ok());
  am.Hold();
  auto sink = StartOrDie(Options(am.url()));
  ASSERT_NE(sink, nullptr);
  sink->Deliver(Firing("a"));
  ASSERT_TRUE(am.WaitForRequests(1));
  sink->Refresh({Firing("x")});
  sink->Deliver(Resolved("b"));
  sink->Refresh({Firing("y"), Firing("z")});
  EXPECT_EQ(sink->dropped(), 1u);
  am.Release();
  ASSERT_TRUE(WaitUntil([&] { return sink->delivered() == 3; }));
  std::string order;
  for (const auto& r : am.requests()) order += Queues(r.body) + "| ";
  EXPECT_EQ(order, "a | b | y z | ");
}

TEST(WebhookSinkTest, ThreadBlocksSignals) {
  // Given a running sink, then its thread blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1,
  // so a process that waits for them with sigwait gets them.
  auto sink = StartOrDie(Options("http://127.0.0.1:9"));
  ASSERT_NE(sink, nullptr);
  std::string status;
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
      if (ReadFile(task.path().string() + "/comm") == "resonance-alert\n") {
        status = ReadFile(task.path().string() + "/status");
      }
    }
    return !status.empty();
  })) << "no thread named resonance-alert";
  const size_t at = status.find("SigBlk:");
  ASSERT_NE(at, std::string::npos);
  const uint64_t blocked = std::strtoull(status.c_str() + at + 7, nullptr, 16);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    EXPECT_TRUE(blocked & (uint64_t{1} << (sig - 1))) << "signal " << sig;
  }
}

}  // namespace
}  // namespace resonance::alerts
