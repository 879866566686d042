#include "observe/trace.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace resonance::trace {
namespace {

bool IsLowerHexOfLength(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsAllZero(const std::string& s) { return s.find_first_not_of('0') == std::string::npos; }

TEST(TraceIdTest, NewIdsAreLowercaseHexOfTheRightLengthAndNeverZero) {
  // Given many fresh ids, then each is lowercase hex of 32 / 16 characters, not all zero.
  for (int i = 0; i < 1000; ++i) {
    const std::string t = NewTraceId();
    const std::string s = NewSpanId();
    ASSERT_TRUE(IsLowerHexOfLength(t, 32)) << t;
    ASSERT_TRUE(IsLowerHexOfLength(s, 16)) << s;
    ASSERT_FALSE(IsAllZero(t));
    ASSERT_FALSE(IsAllZero(s));
  }
}

TEST(TraceIdTest, NewIdsAreRandom) {
  // Given 1000 ids of each kind, then none repeats, and every hex digit shows up in the
  // first and the last position (a stuck nibble would miss 15 of them; a fair source
  // misses one with probability ~1e-27).
  std::set<std::string> traces, spans;
  std::set<char> trace_first, trace_last, span_first, span_last;
  for (int i = 0; i < 1000; ++i) {
    const std::string t = NewTraceId();
    const std::string s = NewSpanId();
    traces.insert(t);
    spans.insert(s);
    trace_first.insert(t.front());
    trace_last.insert(t.back());
    span_first.insert(s.front());
    span_last.insert(s.back());
  }
  EXPECT_EQ(traces.size(), 1000u);
  EXPECT_EQ(spans.size(), 1000u);
  EXPECT_EQ(trace_first.size(), 16u);
  EXPECT_EQ(trace_last.size(), 16u);
  EXPECT_EQ(span_first.size(), 16u);
  EXPECT_EQ(span_last.size(), 16u);
  // The two halves of a trace id are not the same draw.
  const std::string t = NewTraceId();
  EXPECT_NE(t.substr(0, 16), t.substr(16));
}

TEST(TraceIdTest, ThreadsDoNotShareASequence) {
  // Given ids made on two threads at once, then they differ (per-thread generators are
  // seeded separately).
  std::vector<std::string> a, b;
  std::thread ta([&] {
    for (int i = 0; i < 100; ++i) a.push_back(NewSpanId());
  });
  std::thread tb([&] {
    for (int i = 0; i < 100; ++i) b.push_back(NewSpanId());
  });
  ta.join();
  tb.join();
  std::set<std::string> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 200u);
}

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kParent[] = "00f067aa0ba902b7";

TEST(TraceparentTest, AcceptsWellFormedHeaders) {
  // Given headers valid per W3C Trace Context (incl. later versions with more fields),
  // then the trace id and parent id come out.
  const std::vector<std::string> good = {
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",  // not sampled
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",  // other flag bits
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // later version, 55 chars
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
      "fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
  };
  for (const std::string& h : good) {
    std::string trace = "unset", parent = "unset";
    EXPECT_TRUE(ParseTraceparent(h, &trace, &parent)) << h;
    EXPECT_EQ(trace, kTrace) << h;
    EXPECT_EQ(parent, kParent) << h;
  }
  // Null outputs are allowed.
  EXPECT_TRUE(ParseTraceparent(good[0], nullptr, nullptr));
}

TEST(TraceparentTest, RejectsMalformedHeadersAndLeavesOutputsAlone) {
  // Given each malformed value from the W3C rules, then it is refused and the outputs
  // keep what they held.
  const std::vector<std::string> bad = {
      "",
      "00",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",      // short flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",    // v00 with more
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",    // v00 too long
      " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // leading space
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version ff
      "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version not hex
      "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version uppercase
      "0-04bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version 1 char
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     // trace uppercase
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",     // parent uppercase
      "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",     // trace not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",     // parent not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",     // flags not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-AB",     // flags uppercase
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     // zero parent id
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",     // wrong separators
      "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",     // dash misplaced
      "00-4bf92f3577b34da6a3ce929d0e0e47360-0f067aa0ba902b7-01",     // dash misplaced
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b701-",     // dash misplaced
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",  // v00 with more
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what-the-future",
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
      "cc-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01-x",  // later version, upper
  };
  for (const std::string& h : bad) {
    std::string trace = "unset", parent = "unset";
    EXPECT_FALSE(ParseTraceparent(h, &trace, &parent)) << "\"" << h << "\"";
    EXPECT_EQ(trace, "unset") << h;
    EXPECT_EQ(parent, "unset") << h;
  }
}

TEST(TraceparentTest, FormatRoundTrips) {
  // Given fresh ids, then the formatted header is version 00, sampled, 55 characters,
  // and parses back to the same ids.
  const std::string trace = NewTraceId(), span = NewSpanId();
  const std::string h = FormatTraceparent(trace, span);
  EXPECT_EQ(h, "00-" + trace + "-" + span + "-01");
  EXPECT_EQ(h.size(), 55u);
  std::string t, p;
  ASSERT_TRUE(ParseTraceparent(h, &t, &p)) << h;
  EXPECT_EQ(t, trace);
  EXPECT_EQ(p, span);
  EXPECT_EQ(FormatTraceparent(kTrace, kParent),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

TEST(TraceIdTest, SpanIdForTaskIsTheTaskIdInHex) {
  // Given known task ids, then the span id is their 16 zero-padded lowercase hex digits;
  // id 0 has none.
  EXPECT_EQ(SpanIdForTask(0x0123456789abcdefULL), "0123456789abcdef");
  EXPECT_EQ(SpanIdForTask(1), "0000000000000001");
  EXPECT_EQ(SpanIdForTask(std::numeric_limits<TaskId>::max()), "ffffffffffffffff");
  EXPECT_EQ(SpanIdForTask(0), "");
  // A task id made now (42 bits of ms + 22 bits of sequence) maps the same way.
  const TaskId id = (TaskId{1'700'000'000'000} << 22) | 5;
  EXPECT_EQ(SpanIdForTask(id), "62f3f95a00000005");
  std::string parent;
  EXPECT_TRUE(ParseTraceparent(FormatTraceparent(kTrace, SpanIdForTask(id)), nullptr, &parent));
  EXPECT_EQ(parent, "62f3f95a00000005");
}

TEST(TraceIdTest, NowUnixNanoIsWallClockNanoseconds) {
  // Then it is after 2023-11-14 and before 2100, in nanoseconds, and does not go back
  // between two close calls.
  const int64_t a = NowUnixNano();
  const int64_t b = NowUnixNano();
  EXPECT_GT(a, 1'700'000'000LL * 1'000'000'000LL);
  EXPECT_LT(a, 4'102'444'800LL * 1'000'000'000LL);
  EXPECT_LE(a, b);
}

TEST(OtlpJsonTest, EncodesSpansPerTheOtlpJsonMapping) {
  // Given a root span with attributes of each type and a failed child, then the body is
  // exactly the OTLP JSON: hex ids, decimal-string nanos and intValues, integer kind,
  // parentSpanId only on the child, status code 1/2 with a message only when set, and
  // JSON escaping of strings.
  Span root;
  root.trace_id = kTrace;
  root.span_id = kParent;
  root.name = "task.enqueue";
  root.kind = SpanKind::kProducer;
  root.start_unix_nano = 1'700'000'000'123'456'789;
  root.end_unix_nano = 1'700'000'000'223'456'789;
  root.attributes = {
      {"queue", std::string("q\"1\"\n")},
      {"attempt", int64_t{3}},
      {"big", int64_t{-9'007'199'254'740'993}},
      {"ratio", 0.25},
      {"ok", true},
  };
  Span child;
  child.trace_id = kTrace;
  child.span_id = "b7ad6b7169203331";
  child.parent_span_id = kParent;
  child.name = "task.attempt";
  child.kind = SpanKind::kConsumer;
  child.start_unix_nano = 1;
  child.end_unix_nano = 2;
  child.error = true;
  child.status_message = "exit 75: \\tmp\t";

  const std::string json =
      EncodeOtlpJson({root, child}, "resonance",
                     {{"service.instance.id", std::string("node-1")}, {"pid", int64_t{4242}}});
  EXPECT_EQ(
      json,
      R"json({"resourceSpans":[{"resource":{"attributes":[)json"
      R"json({"key":"service.name","value":{"stringValue":"resonance"}},)json"
      R"json({"key":"service.instance.id","value":{"stringValue":"node-1"}},)json"
      R"json({"key":"pid","value":{"intValue":"4242"}}]},)json"
      R"json("scopeSpans":[{"scope":{"name":"resonance","version":"0.1.0"},"spans":[)json"
      R"json({"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",)json"
      R"json("name":"task.enqueue","kind":4,)json"
      R"json("startTimeUnixNano":"1700000000123456789","endTimeUnixNano":"1700000000223456789",)json"
      R"json("attributes":[{"key":"queue","value":{"stringValue":"q\"1\"\n"}},)json"
      R"json({"key":"attempt","value":{"intValue":"3"}},)json"
      R"json({"key":"big","value":{"intValue":"-9007199254740993"}},)json"
      R"json({"key":"ratio","value":{"doubleValue":0.25}},)json"
      R"json({"key":"ok","value":{"boolValue":true}}],"status":{"code":1}},)json"
      R"json({"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"b7ad6b7169203331",)json"
      R"json("parentSpanId":"00f067aa0ba902b7","name":"task.attempt","kind":5,)json"
      R"json("startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[],)json"
      R"json("status":{"code":2,"message":"exit 75: \\tmp\t"}}]}]}]})json");
}

TEST(OtlpJsonTest, NonFiniteDoublesUseProto3Strings) {
  // Given NaN and infinite double attributes, then they are written as the proto3 JSON
  // strings (bare NaN is not JSON).
  Span s;
  s.trace_id = kTrace;
  s.span_id = kParent;
  s.attributes = {{"a", std::nan("")},
                  {"b", std::numeric_limits<double>::infinity()},
                  {"c", -std::numeric_limits<double>::infinity()}};
  const std::string json = EncodeOtlpJson({s}, "svc", {});
  EXPECT_NE(json.find(R"({"key":"a","value":{"doubleValue":"NaN"}})"), std::string::npos) << json;
  EXPECT_NE(json.find(R"({"key":"b","value":{"doubleValue":"Infinity"}})"), std::string::npos);
  EXPECT_NE(json.find(R"({"key":"c","value":{"doubleValue":"-Infinity"}})"), std::string::npos);
  EXPECT_NE(json.find(R"("kind":1)"), std::string::npos);  // the default kind is INTERNAL
}

TEST(OtlpJsonTest, NoSpansStillMakesAWholeRequest) {
  // Given no spans, then the envelope is complete with an empty span list.
  EXPECT_EQ(EncodeOtlpJson({}, "svc", {}),
            R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",)"
            R"("value":{"stringValue":"svc"}}]},"scopeSpans":[{"scope":{"name":"resonance",)"
            R"("version":"0.1.0"},"spans":[]}]}]})");
}

}  // namespace
}  // namespace resonance::trace
