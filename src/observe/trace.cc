#include "observe/trace.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <thread>

#include "core/json_writer.h"

namespace resonance::trace {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void AppendHex64(std::string& out, uint64_t v) {
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHexDigits[(v >> shift) & 15]);
}

uint64_t NonZeroRandom64() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{
        rd(),
        rd(),
        rd(),
        rd(),
        static_cast<unsigned>(std::hash<std::thread::id>()(std::this_thread::get_id())),
        static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count())};
    return std::mt19937_64(seq);
  }();
  uint64_t v;
  do {
    v = rng();
  } while (v == 0);
  return v;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

bool IsAllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

void WriteAnyValue(JsonWriter& w, const Attribute& a) {
  w.BeginObject();
  if (const auto* s = std::get_if<std::string>(&a.value)) {
    w.Key("stringValue").String(*s);
  } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
    w.Key("intValue").String(std::to_string(*i));
  } else if (const auto* d = std::get_if<double>(&a.value)) {
    w.Key("doubleValue");
    if (std::isnan(*d)) {
      w.String("NaN");
    } else if (std::isinf(*d)) {
      w.String(*d > 0 ? "Infinity" : "-Infinity");
    } else {
      w.Double(*d);
    }
  } else {
    w.Key("boolValue").Bool(std::get<bool>(a.value));
  }
  w.EndObject();
}

void WriteAttribute(JsonWriter& w, const Attribute& a) {
  w.BeginObject().Key("key").String(a.key).Key("value");
  WriteAnyValue(w, a);
  w.EndObject();
}

void WriteSpan(JsonWriter& w, const Span& s) {
  w.BeginObject();
  w.Key("traceId").String(s.trace_id);
  w.Key("spanId").String(s.span_id);
  if (!s.parent_span_id.empty()) w.Key("parentSpanId").String(s.parent_span_id);
  w.Key("name").String(s.name);
  w.Key("kind").Int(static_cast<int>(s.kind));
  w.Key("startTimeUnixNano").String(std::to_string(s.start_unix_nano));
  w.Key("endTimeUnixNano").String(std::to_string(s.end_unix_nano));
  w.Key("attributes").BeginArray();
  for (const Attribute& a : s.attributes) WriteAttribute(w, a);
  w.EndArray();
  w.Key("status").BeginObject().Key("code").Int(s.error ? 2 : 1);
  if (!s.status_message.empty()) w.Key("message").String(s.status_message);
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::string NewTraceId() {
  std::string id;
  id.reserve(32);
  AppendHex64(id, NonZeroRandom64());
  AppendHex64(id, NonZeroRandom64());
  return id;
}

std::string NewSpanId() {
  std::string id;
  id.reserve(16);
  AppendHex64(id, NonZeroRandom64());
  return id;
}

bool ParseTraceparent(std::string_view header, std::string* trace_id, std::string* parent_span_id) {
  constexpr size_t kLength = 55;  // "vv-" + 32 + "-" + 16 + "-" + "ff"
  if (header.size() < kLength) return false;
  const std::string_view version = header.substr(0, 2);
  const std::string_view tid = header.substr(3, 32);
  const std::string_view pid = header.substr(36, 16);
  const std::string_view flags = header.substr(53, 2);
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return false;
  if (!IsLowerHex(version) || version == "ff") return false;
  if (!IsLowerHex(tid) || !IsLowerHex(pid) || !IsLowerHex(flags)) return false;
  if (IsAllZero(tid) || IsAllZero(pid)) return false;
  if (version == "00") {
    if (header.size() != kLength) return false;
  } else if (header.size() > kLength && header[kLength] != '-') {
    return false;
  }
  if (trace_id != nullptr) trace_id->assign(tid);
  if (parent_span_id != nullptr) parent_span_id->assign(pid);
  return true;
}

std::string FormatTraceparent(std::string_view trace_id, std::string_view span_id) {
  std::string out;
  out.reserve(55);
  out.append("00-").append(trace_id).append("-").append(span_id).append("-01");
  return out;
}

std::string SpanIdForTask(TaskId id) {
  if (id == 0) return "";
  std::string out;
  out.reserve(16);
  AppendHex64(out, id);
  return out;
}

int64_t NowUnixNano() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string EncodeOtlpJson(const std::vector<Span>& spans, std::string_view service_name,
                           const std::vector<Attribute>& resource_attributes) {
  std::string out;
  out.reserve(256 + spans.size() * 384);
  JsonWriter w(out);
  w.BeginObject().Key("resourceSpans").BeginArray().BeginObject();
  w.Key("resource").BeginObject().Key("attributes").BeginArray();
  WriteAttribute(w, Attribute{"service.name", std::string(service_name)});
  for (const Attribute& a : resource_attributes) WriteAttribute(w, a);
  w.EndArray().EndObject();
  w.Key("scopeSpans").BeginArray().BeginObject();
  w.Key("scope").BeginObject().Key("name").String(kScopeName);
  w.Key("version").String(kScopeVersion).EndObject();
  w.Key("spans").BeginArray();
  for (const Span& s : spans) WriteSpan(w, s);
  w.EndArray();
  w.EndObject().EndArray();  // scopeSpans
  w.EndObject().EndArray();  // resourceSpans
  w.EndObject();
  return out;
}

}  // namespace resonance::trace
