#include "http/json_body.h"

namespace resonance::http {
namespace od = simdjson::ondemand;

namespace {
Status TypeError(std::string_view name, std::string_view what) {
  return Status(Code::kInvalidArgument, std::string(name) + ": must be " + std::string(what));
}
std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' ||
                        s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}
}  // namespace

Result<od::object> ParseObject(std::string& body, od::parser& parser, od::document& doc) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status(Code::kInvalidJson, "request body is empty; a JSON object is required");
  }
  {
    thread_local simdjson::dom::parser validator;
    simdjson::dom::element root;
    auto err = validator.parse(body.data(), body.size()).get(root);
    if (err) {
      return Status(Code::kInvalidJson, std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    if (!root.is_object()) {
      return Status(Code::kInvalidArgument, "request body must be a JSON object");
    }
  }
  const size_t len = body.size();
  body.reserve(len + simdjson::SIMDJSON_PADDING);
  simdjson::padded_string_view view(body.data(), len, body.capacity());
  if (auto err = parser.iterate(view).get(doc)) {
    return Status(Code::kInvalidJson, std::string("malformed JSON: ") + simdjson::error_message(err));
  }
  od::object obj;
  if (doc.get_object().get(obj)) {
    return Status(Code::kInvalidArgument, "request body must be a JSON object");
  }
  return obj;
}

bool IsNull(od::value& v) {
  bool is_null = false;
  return !v.is_null().get(is_null) && is_null;
}

Status ReadString(od::value v, std::string_view name, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return TypeError(name, "a string");
  out.assign(s);
  return Status::Ok();
}

Status ReadInt(od::value v, std::string_view name, int64_t min, int64_t max, int64_t& out) {
  int64_t i;
  if (v.get_int64().get(i)) {
    return TypeError(name, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  if (i < min || i > max) {
    return TypeError(name, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = i;
  return Status::Ok();
}

Status ReadNumber(od::value v, std::string_view name, double& out) {
  if (v.get_double().get(out)) return TypeError(name, "a number");
  return Status::Ok();
}

Status ReadBool(od::value v, std::string_view name, bool& out) {
  if (v.get_bool().get(out)) return TypeError(name, "true or false");
  return Status::Ok();
}

Status ReadRawObject(od::value v, std::string_view name, std::string& out) {
  od::object obj;
  std::string_view raw;
  if (v.get_object().get(obj) || obj.raw_json().get(raw)) return TypeError(name, "a JSON object");
  out.assign(TrimRight(raw));
  return Status::Ok();
}

Status ReadRawAny(od::value v, std::string_view name, std::string& out) {
  od::json_type t;
  if (v.type().get(t)) return TypeError(name, "JSON");
  std::string_view raw;
  simdjson::error_code err;
  if (t == od::json_type::object) {
    od::object o;
    err = v.get_object().get(o);
    if (!err) err = o.raw_json().get(raw);
  } else if (t == od::json_type::array) {
    od::array a;
    err = v.get_array().get(a);
    if (!err) err = a.raw_json().get(raw);
  } else {
    raw = v.raw_json_token();
    err = simdjson::SUCCESS;
  }
  if (err) return TypeError(name, "JSON");
  out.assign(TrimRight(raw));
  return Status::Ok();
}

}  // namespace resonance::http
