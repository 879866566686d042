#include "worker/builtin_handlers.h"

#include <cmath>
#include <cstdlib>

#include "core/json_writer.h"
#include "worker/child_io.h"
#include "worker/http_connection.h"
#include "worker/json_read.h"

namespace resonance::worker {
namespace {

Outcome Invalid(const std::string& msg) { return Outcome::Failure(ErrorClass::kValidation, msg); }

class NoopHandler final : public Handler {
 public:
  Outcome Run(const LeasedTask&, TaskContext&) override { return Outcome::Success(); }
};

class CanaryHandler final : public Handler {
 public:
  explicit CanaryHandler(std::string result) : result_(std::move(result)) {}
  Outcome Run(const LeasedTask&, TaskContext&) override { return Outcome::Success(result_); }

 private:
  std::string result_;
};

class SleepHandler final : public Handler {
 public:
  Outcome Run(const LeasedTask& task, TaskContext& ctx) override {
    double seconds = 0;
    Status s =
        json::ForEachMember(task.payload, [&](std::string_view key, json::Value v) -> Status {
          if (key != "seconds") return Status::Ok();
          auto d = json::Number(v);
          if (!d || !(*d >= 0) || *d > 7 * 86400)
            return Status(Code::kInvalidArgument, "seconds: must be a number from 0 to 604800");
          seconds = *d;
          return Status::Ok();
        });
    if (!s.ok()) return Invalid("sleep: " + s.message());
    const Micros until = ctx.clock().Now() + SecondsToMicros(seconds);
    if (!ctx.SleepUntil(std::min(until, ctx.deadline()))) {
      return Outcome::Failure(ErrorClass::kTemporary, "handler stopped");
    }
    if (until > ctx.deadline()) {
      return Outcome::Failure(ErrorClass::kTimeout,
                              "handler timed out after " + FormatSeconds(ctx.timeout_s()) + " s");
    }
    std::string result;
    JsonWriter(result).BeginObject().Key("slept_s").Double(seconds).EndObject();
    return Outcome::Success(std::move(result));
  }
};

class FailHandler final : public Handler {
 public:
  Outcome Run(const LeasedTask& task, TaskContext&) override {
    std::string cls = "temporary", message = "failed by the fail handler";
    std::optional<double> retry_after;
    Status s =
        json::ForEachMember(task.payload, [&](std::string_view key, json::Value v) -> Status {
          if (json::IsNull(v)) return Status::Ok();
          if (key == "class" || key == "message") {
            auto str = json::String(v);
            if (!str)
              return Status(Code::kInvalidArgument, std::string(key) + ": must be a string");
            (key == "class" ? cls : message) = std::move(*str);
          } else if (key == "retry_after_s") {
            retry_after = json::Number(v);
            if (!retry_after || *retry_after < 0)
              return Status(Code::kInvalidArgument, "retry_after_s: must be a number >= 0");
          }
          return Status::Ok();
        });
    if (!s.ok()) return Invalid("fail: " + s.message());
    auto c = ParseErrorClass(cls);
    if (!c) return Invalid("fail: unknown class '" + cls + "'");
    return Outcome::Failure(*c, message, retry_after);
  }
};

class HttpHandler final : public Handler {
 public:
  Outcome Run(const LeasedTask& task, TaskContext& ctx) override {
    std::string url, method, body, content_type = "application/json";
    bool has_method = false;
    Status s =
        json::ForEachMember(task.payload, [&](std::string_view key, json::Value v) -> Status {
          if (json::IsNull(v)) return Status::Ok();
          if (key == "url" || key == "method") {
            auto str = json::String(v);
            if (!str)
              return Status(Code::kInvalidArgument, std::string(key) + ": must be a string");
            (key == "url" ? url : method) = std::move(*str);
            if (key == "method") has_method = true;
          } else if (key == "body") {
            if (auto str = json::String(v)) {
              body = std::move(*str);
              content_type = "text/plain; charset=utf-8";
            } else {
              body = json::Raw(v).value_or("");
            }
          }
          return Status::Ok();
        });
    if (!s.ok()) return Invalid("http: " + s.message());
    if (url.empty()) return Invalid("http: url: is required");
    if (!has_method) method = body.empty() ? "GET" : "POST";
    for (char& c : method) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
    auto parsed = ParseHttpUrl(url);
    if (!parsed.ok()) return Invalid("http: " + parsed.status().message());

    HttpConnection conn(parsed->host, parsed->port);
    const Micros left = ctx.deadline() - ctx.clock().Now();
    auto reply =
        conn.Request(method, parsed->target, body, left, &ctx.stop_flag(), content_type, 1 << 20);
    if (!reply.ok()) {
      if (ctx.StopRequested()) return Outcome::Failure(ErrorClass::kTemporary, "handler stopped");
      if (ctx.TimedOut()) {
        return Outcome::Failure(ErrorClass::kTimeout,
                                "http: no answer within " + FormatSeconds(ctx.timeout_s()) + " s");
      }
      return Outcome::Failure(ErrorClass::kTemporary, "http: " + reply.status().message());
    }
    const int status = reply->status;
    const std::string excerpt = json::SanitizeUtf8(json::Trim(reply->body).substr(0, 200));
    if (status == 429) {
      std::optional<double> retry_after;
      if (!reply->retry_after.empty()) {
        char* end = nullptr;
        double d = std::strtod(reply->retry_after.c_str(), &end);
        if (end && *end == '\0' && d >= 0) retry_after = d;  // seconds; an HTTP date is not read
      }
      return Outcome::Failure(ErrorClass::kRateLimited, "http: 429 from " + url, retry_after);
    }
    if (status >= 500)
      return Outcome::Failure(ErrorClass::kTemporary, "http: " + std::to_string(status) + " from " +
                                                          url +
                                                          (excerpt.empty() ? "" : ": " + excerpt));
    if (status >= 400)
      return Invalid("http: " + std::to_string(status) + " from " + url +
                     (excerpt.empty() ? "" : ": " + excerpt));
    std::string result;
    JsonWriter w(result);
    w.BeginObject().Key("status").Int(status).Key("body");
    std::string_view text = json::Trim(reply->body);
    if (text.empty()) {
      w.Null();
    } else if (text.size() <= kBodyExcerpt && json::IsValid(text)) {
      w.Raw(text);
    } else {
      w.String(json::SanitizeUtf8(text.substr(0, kBodyExcerpt)));
    }
    w.EndObject();
    return Outcome::Success(std::move(result));
  }

 private:
  static constexpr size_t kBodyExcerpt = 64 * 1024;
};

}  // namespace

std::unique_ptr<Handler> MakeBuiltinHandler(const HandlerConfig& config) {
  switch (config.type) {
    case HandlerType::kNoop:
      return std::make_unique<NoopHandler>();
    case HandlerType::kSleep:
      return std::make_unique<SleepHandler>();
    case HandlerType::kFail:
      return std::make_unique<FailHandler>();
    case HandlerType::kHttp:
      return std::make_unique<HttpHandler>();
    default:
      return nullptr;
  }
}

std::unique_ptr<Handler> MakeCanaryHandler(const std::string& worker_id) {
  std::string result;
  JsonWriter(result).BeginObject().Key("canary").String("ok").Key("worker").String(worker_id).EndObject();
  return std::make_unique<CanaryHandler>(std::move(result));
}

}  // namespace resonance::worker
