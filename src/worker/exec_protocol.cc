#include "worker/exec_protocol.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "core/json_writer.h"

namespace resonance::worker {

ErrorClass ClassForExitCode(int code) {
  return code == kExitValidation ? ErrorClass::kValidation : ErrorClass::kTemporary;
}

Status ReadErrorObject(json::Value v, ErrorObject& out) {
  return json::ForEachMember(v, [&](std::string_view key, json::Value fv) -> Status {
    if (json::IsNull(fv)) return Status::Ok();
    if (key == "class") {
      auto s = json::String(fv);
      if (!s) return Status(Code::kInvalidArgument, "error.class: must be a string");
      out.class_name = *s;
      out.cls = ParseErrorClass(*s);
    } else if (key == "message") {
      auto s = json::String(fv);
      if (!s) {
        auto raw = json::Raw(fv);  // tolerate a non-string message: keep its JSON text
        s = raw ? *raw : "";
      }
      out.message = std::move(*s);
    } else if (key == "retry_after_s") {
      auto d = json::Number(fv);
      if (!d || *d < 0)
        return Status(Code::kInvalidArgument, "error.retry_after_s: must be a number >= 0");
      out.retry_after_s = *d;
    }
    return Status::Ok();
  });
}

StdoutReading ReadStdout(std::string_view out, size_t total_bytes) {
  StdoutReading r;
  const bool truncated = total_bytes > out.size();
  const std::string_view text = json::Trim(out);
  if (text.empty() && !truncated) return r;
  if (!truncated && json::IsValid(text)) {
    r.result.assign(text);
    if (text.front() == '{') {
      ErrorObject err;
      bool has_error = false;
      json::ForEachMember(
          text,
          [&](std::string_view key, json::Value v) -> Status {
            if (key == "error" && !json::IsNull(v)) {
              has_error = ReadErrorObject(v, err).ok();
            }
            return Status::Ok();
          },
          /*validate=*/false);
      if (has_error) r.error = std::move(err);
    }
    return r;
  }
  JsonWriter w(r.result);
  w.BeginObject();
  if (truncated) {
    w.Key("output").String(json::SanitizeUtf8(out.substr(0, kOutputExcerptBytes)));
    w.Key("truncated").Bool(true).Key("output_bytes").Int(static_cast<int64_t>(total_bytes));
  } else {
    w.Key("output").String(json::SanitizeUtf8(out));
  }
  w.EndObject();
  return r;
}

Outcome ExecOutcome(int wait_status, const StdoutReading& out, std::string_view stderr_last) {
  auto with_stderr = [&](std::string msg) {
    if (!stderr_last.empty()) msg += ": " + json::SanitizeUtf8(stderr_last.substr(0, 500));
    return msg;
  };
  if (out.error) {
    const ErrorObject& e = *out.error;
    ErrorClass cls = e.cls.value_or(ErrorClass::kTemporary);
    std::string msg = e.message.empty() ? "handler reported an error" : e.message;
    if (!e.cls && !e.class_name.empty()) msg = "(unknown class '" + e.class_name + "') " + msg;
    return Outcome::Failure(cls, json::SanitizeUtf8(msg), e.retry_after_s);
  }
  if (WIFEXITED(wait_status)) {
    const int code = WEXITSTATUS(wait_status);
    if (code == 0) return Outcome::Success(out.result);
    return Outcome::Failure(ClassForExitCode(code),
                            with_stderr("handler exited with status " + std::to_string(code)));
  }
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    const char* name = strsignal(sig);
    return Outcome::Failure(ErrorClass::kTemporary,
                            with_stderr("handler killed by signal " + std::to_string(sig) +
                                        (name ? std::string(" (") + name + ")" : "")));
  }
  return Outcome::Failure(ErrorClass::kTemporary,
                          "handler ended with wait status " + std::to_string(wait_status));
}

std::optional<std::string> ReadProgressLine(std::string_view line) {
  line = json::Trim(line);
  if (line.empty() || line.size() > kMaxProgressBytes || line.front() != '{') return std::nullopt;
  if (!json::IsValid(line)) return std::nullopt;
  return std::string(line);
}

std::string MakeTraceparent(std::string_view trace_id, std::mt19937_64& rng) {
  static const char kHex[] = "0123456789abcdef";
  auto random_hex = [&](size_t n) {
    std::string s;
    while (s.size() < n) {
      uint64_t r = rng();
      for (int i = 0; i < 16 && s.size() < n; ++i, r >>= 4) s.push_back(kHex[r & 15]);
    }
    if (s.find_first_not_of('0') == std::string::npos) s.back() = '1';
    return s;
  };
  bool good = trace_id.size() == 32 && trace_id.find_first_not_of(kHex) == std::string_view::npos &&
              trace_id.find_first_not_of('0') != std::string_view::npos;
  std::string out = "00-";
  out += good ? std::string(trace_id) : random_hex(32);
  out += "-" + random_hex(16) + "-01";
  return out;
}

}  // namespace resonance::worker
