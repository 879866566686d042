#pragma once

#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "core/task.h"
#include "worker/handler.h"
#include "worker/json_read.h"

// The exec handler protocol (docs/workers.md) as pure functions, so each rule is tested
// on its own: exit codes, stdout, the error object, progress lines, TRACEPARENT.
namespace resonance::worker {

// sysexits.h codes with a meaning here.
constexpr int kExitValidation = 65;  // EX_DATAERR: bad input, do not retry
constexpr int kExitTemporary = 75;   // EX_TEMPFAIL: try again later

// The class of a failed attempt from its exit code (not 0): 65 validation, 75 and every
// other code temporary.
ErrorClass ClassForExitCode(int code);

// {"class","message","retry_after_s"} as a handler writes it. Unknown or missing class
// leaves `cls` empty (the caller picks the fallback); `class_name` keeps what was given.
struct ErrorObject {
  std::optional<ErrorClass> cls;
  std::string class_name;
  std::string message;
  std::optional<double> retry_after_s;
};
// kInvalidArgument when v is not an object or a member has the wrong type.
Status ReadErrorObject(json::Value v, ErrorObject& out);

// What an exec handler wrote on stdout, read as its answer.
struct StdoutReading {
  std::string result;                // raw JSON to complete with; empty: none
  std::optional<ErrorObject> error;  // stdout was {"error": {...}}
};
// How much of unparseable or oversized output is kept in {"output": ...}.
constexpr size_t kOutputExcerptBytes = 64 * 1024;
// `out` is what was kept of stdout; `total_bytes` how much the handler wrote (more than
// out.size() when it went over the limit). JSON → itself; other text → {"output":
// text}; over the limit → {"output": first kOutputExcerptBytes, "truncated": true,
// "output_bytes": total}; nothing → no result.
StdoutReading ReadStdout(std::string_view out, size_t total_bytes);

// The outcome of an exec process that ended by itself. `wait_status` is waitpid's;
// `stderr_last` (the handler's last stderr line) goes into failure messages.
Outcome ExecOutcome(int wait_status, const StdoutReading& out, std::string_view stderr_last);

// A progress line (fd 3 of an exec handler): a JSON object such as {"progress": 0.4,
// "message": "..."}, returned trimmed to travel as is; nullopt for anything else.
constexpr size_t kMaxProgressBytes = 4096;
std::optional<std::string> ReadProgressLine(std::string_view line);

// W3C traceparent for a handler: "00-<trace_id>-<new span id>-01". A trace_id that is
// not 32 hex digits (or all zero) is replaced by a random one.
std::string MakeTraceparent(std::string_view trace_id, std::mt19937_64& rng);

}  // namespace resonance::worker
