#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/task_id.h"

// Tracing without an SDK: W3C trace context ids and headers, a plain Span record,
// and its OTLP/HTTP JSON encoding. Sending spans is otlp_exporter.h's job.
//
// The intended shape of a task's trace (server and worker):
//   http.server (kServer) ─ task.enqueue (kProducer, span id = SpanIdForTask(id))
//                               └─ task.attempt (kConsumer, one per lease)
// The worker links task.attempt to task.enqueue through SpanIdForTask, so nothing
// beyond the task's trace_id has to be stored.
namespace resonance::trace {

// Random ids in lowercase hex: 32 characters for a trace, 16 for a span. Never all
// zero (the W3C invalid value). Thread-safe (one generator per thread, seeded from
// std::random_device). A fork()ed child that does not exec shares its parent's
// sequence; every child Resonance spawns execs.
std::string NewTraceId();
std::string NewSpanId();

// Reads a W3C `traceparent` header value: "<version>-<trace id>-<parent id>-<flags>",
// all lowercase hex, 2-32-16-2 characters. Returns false, leaving the outputs alone,
// when the value is malformed: wrong lengths or dashes, uppercase or non-hex digits,
// version "ff", an all-zero trace or parent id, or a version-00 value that is not
// exactly 55 characters. A later version (not 00) is accepted when its first 55
// characters are well formed and are followed by the end or by '-', as the W3C
// versioning rules ask. Surrounding whitespace is the caller's to strip. Either output
// may be null.
bool ParseTraceparent(std::string_view header, std::string* trace_id, std::string* parent_span_id);

// "00-<trace_id>-<span_id>-01" (sampled). The ids are written as given; pass ids from
// NewTraceId/NewSpanId/ParseTraceparent.
std::string FormatTraceparent(std::string_view trace_id, std::string_view span_id);

// The span id of a task's task.enqueue span: the 64-bit TaskId as 16 lowercase hex
// digits (zero-padded), so any process that knows the task id can name that span.
// "" for id 0 (an all-zero span id is invalid).
std::string SpanIdForTask(TaskId id);

// OTLP SpanKind values (trace.proto); 0 (UNSPECIFIED) is never written.
enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };

// One key/value of a span or resource. int64_t is written as an OTLP intValue, double
// as doubleValue (NaN and infinities as the proto3 JSON strings "NaN", "Infinity",
// "-Infinity"), bool as boolValue, string as stringValue.
struct Attribute {
  std::string key;
  std::variant<std::string, int64_t, double, bool> value;
};

// A finished span, ready to export. A plain value: copy or move it freely.
struct Span {
  std::string trace_id;        // 32 lowercase hex digits
  std::string span_id;         // 16 lowercase hex digits
  std::string parent_span_id;  // empty for a root span
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  int64_t start_unix_nano = 0;
  int64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  bool error = false;          // OTLP status code 2 (ERROR) when true, else 1 (OK)
  std::string status_message;  // written only when non-empty
};

// Nanoseconds since the Unix epoch from the system clock (span timestamps are wall
// time, unlike durations). Thread-safe.
int64_t NowUnixNano();

// The instrumentation scope written into every export. Keep kScopeVersion in step
// with project(VERSION) in CMakeLists.txt.
inline constexpr std::string_view kScopeName = "resonance";
inline constexpr std::string_view kScopeVersion = "0.1.0";

// One OTLP/HTTP JSON ExportTraceServiceRequest body holding `spans`, all under one
// resource (service.name = service_name, then resource_attributes in order) and one
// scope (kScopeName/kScopeVersion). Follows the OTLP JSON mapping: lowerCamelCase keys,
// trace and span ids as hex strings (not base64), enums as integers, 64-bit integers
// (timestamps, intValue) as decimal strings. parentSpanId is omitted for a root span.
// Spans are written in the order given. Pure function; thread-safe.
std::string EncodeOtlpJson(const std::vector<Span>& spans, std::string_view service_name,
                           const std::vector<Attribute>& resource_attributes);

}  // namespace resonance::trace
