// Credential endpoints (docs/credentials.md): names, versions and expiry times only.
// No answer or error message here ever carries a value.
#include "core/json_writer.h"
#include "core/time_format.h"
#include "http/api.h"
#include "http/json_body.h"

namespace resonance::http {
namespace od = simdjson::ondemand;

namespace {

void WriteInfo(JsonWriter& w, const CredentialInfo& c) {
  w.BeginObject();
  w.Key("name").String(c.name);
  w.Key("version").Int(c.version);
  w.Key("expires_at").TimeOrNull(c.expires_at);
  w.Key("updated_at").TimeOrNull(c.updated_at);
  w.Key("state").String(CredentialStateName(c.state));
  w.Key("refresh_action").StringOrNull(c.refresh_action);
  w.Key("refresh_queue").StringOrNull(c.refresh_action.empty() ? "" : c.refresh_queue);
  if (c.refresh_action.empty()) {
    w.Key("refresh_before_s").Null();
  } else {
    w.Key("refresh_before_s").Double(static_cast<double>(c.refresh_before) / kMicrosPerSecond);
  }
  w.Key("next_refresh_at").TimeOrNull(c.next_refresh_at);
  w.Key("refresh_scheduled").Bool(c.refresh_scheduled);
  w.EndObject();
}

std::string InfoJson(const CredentialInfo& c) {
  std::string body;
  JsonWriter w(body);
  WriteInfo(w, c);
  return body;
}

const Status kNoCredentials(Code::kNotFound, "no credentials are configured on this server");

}  // namespace

void Api::ListCredentials(Request&, Respond respond) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("credentials").BeginArray();
  if (options_.credentials) {
    for (const auto& c : options_.credentials->List()) WriteInfo(w, c);
  }
  w.EndArray().EndObject();
  respond(JsonReply(200, std::move(body)));
}

void Api::GetCredential(Request& req, Respond respond) {
  if (!options_.credentials) return respond(ErrorReply(kNoCredentials));
  auto c = options_.credentials->Get(req.params[0]);
  if (!c.ok()) return respond(ErrorReply(c.status()));
  respond(JsonReply(200, InfoJson(*c)));
}

// {"value": "...", "expires_at"?: RFC 3339 | null, "expires_in_s"?: N} -> the metadata.
void Api::PutCredential(Request& req, Respond respond) {
  if (!options_.credentials) return respond(ErrorReply(kNoCredentials));
  const std::string name = req.params[0];
  if (!ValidCredentialName(name)) {
    return respond(ErrorReply(Status(
        Code::kInvalidArgument, "credential name: must be 1 to 128 characters of A-Z a-z 0-9 _ . -")));
  }
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  CredentialUpdate update;
  bool has_value = false, has_at = false, has_in = false;
  Status read = ForEachField(*obj, true, [&](std::string_view key, od::value v) {
    if (key == "value") {
      has_value = true;
      return ReadString(v, "value", update.value);
    }
    if (key == "expires_at") {
      std::string text;
      if (Status s = ReadString(v, "expires_at", text); !s.ok()) return s;
      auto at = ParseRfc3339(text);
      if (!at) return Status(Code::kInvalidArgument, "expires_at: must be an RFC 3339 time");
      update.expires_at = *at;
      has_at = true;
      return Status::Ok();
    }
    if (key == "expires_in_s") {
      double d = 0;
      if (Status s = ReadNumber(v, "expires_in_s", d); !s.ok()) return s;
      if (!(d > 0 && d <= 10.0 * 365 * 86400)) {
        return Status(Code::kInvalidArgument, "expires_in_s: must be a number above 0, at most 10 years");
      }
      update.expires_at = clock_.Now() + static_cast<Micros>(d * kMicrosPerSecond);
      has_in = true;
      return Status::Ok();
    }
    return Status(Code::kInvalidArgument,
                  "unknown field; a credential takes value, expires_at and expires_in_s");
  });
  if (!read.ok()) return respond(ErrorReply(read));
  if (!has_value) return respond(ErrorReply(Status(Code::kInvalidArgument, "value: is required")));
  if (has_at && has_in) {
    return respond(ErrorReply(
        Status(Code::kInvalidArgument, "expires_at and expires_in_s: give one, not both")));
  }
  options_.credentials->Put(name, std::move(update),
                            [this, respond](const Status& s, CredentialInfo info) {
                              OnIo([respond, s, info = std::move(info)] {
                                if (!s.ok()) return respond(ErrorReply(s));
                                respond(JsonReply(200, InfoJson(info)));
                              });
                            });
}

void Api::DeleteCredential(Request& req, Respond respond) {
  if (!options_.credentials) return respond(ErrorReply(kNoCredentials));
  const std::string name = req.params[0];
  if (!ValidCredentialName(name)) {
    return respond(ErrorReply(Status(
        Code::kInvalidArgument, "credential name: must be 1 to 128 characters of A-Z a-z 0-9 _ . -")));
  }
  options_.credentials->Delete(name, [this, respond](const Status& s, CredentialInfo info) {
    OnIo([respond, s, info = std::move(info)] {
      if (!s.ok()) return respond(ErrorReply(s));
      std::string body;
      JsonWriter w(body);
      w.BeginObject().Key("deleted").Bool(true).Key("credential");
      WriteInfo(w, info);
      w.EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

}  // namespace resonance::http
