#include "worker/json_read.h"

namespace resonance::worker::json {
namespace od = simdjson::ondemand;

namespace {
Status NotWellFormed(simdjson::error_code err) {
  return Status(Code::kInvalidJson, std::string("malformed JSON: ") + simdjson::error_message(err));
}
}  // namespace

std::string_view Trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

bool IsValid(std::string_view text) {
  text = Trim(text);
  if (text.empty()) return false;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  return !parser.parse(text.data(), text.size()).get(root);
}

Status ForEachMember(std::string_view text, const MemberFn& fn, bool validate) {
  text = Trim(text);
  if (text.empty()) return Status(Code::kInvalidJson, "empty where a JSON object was expected");
  if (validate) {
    simdjson::dom::parser validator;
    simdjson::dom::element root;
    if (auto err = validator.parse(text.data(), text.size()).get(root)) return NotWellFormed(err);
    if (!root.is_object()) return Status(Code::kInvalidArgument, "not a JSON object");
  }
  simdjson::padded_string padded(text);
  od::parser parser;
  od::document doc;
  if (auto err = parser.iterate(padded).get(doc)) return NotWellFormed(err);
  od::object obj;
  if (doc.get_object().get(obj)) return Status(Code::kInvalidArgument, "not a JSON object");
  for (auto field : obj) {
    std::string_view key;
    od::value v;
    if (auto err = field.unescaped_key().get(key)) return NotWellFormed(err);
    if (auto err = field.value().get(v)) return NotWellFormed(err);
    if (Status s = fn(key, v); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ForEachMember(Value v, const MemberFn& fn) {
  od::object obj;
  if (v.get_object().get(obj)) return Status(Code::kInvalidArgument, "not a JSON object");
  for (auto field : obj) {
    std::string_view key;
    od::value fv;
    if (auto err = field.unescaped_key().get(key)) return NotWellFormed(err);
    if (auto err = field.value().get(fv)) return NotWellFormed(err);
    if (Status s = fn(key, fv); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ForEachElement(Value v, const std::function<Status(Value)>& fn) {
  od::array arr;
  if (v.get_array().get(arr)) return Status(Code::kInvalidArgument, "not a JSON array");
  for (auto element : arr) {
    od::value ev;
    if (auto err = element.get(ev)) return NotWellFormed(err);
    if (Status s = fn(ev); !s.ok()) return s;
  }
  return Status::Ok();
}

std::optional<std::string> Raw(Value v) {
  od::json_type t;
  if (v.type().get(t)) return std::nullopt;
  std::string_view raw;
  if (t == od::json_type::object) {
    od::object o;
    if (v.get_object().get(o) || o.raw_json().get(raw)) return std::nullopt;
  } else if (t == od::json_type::array) {
    od::array a;
    if (v.get_array().get(a) || a.raw_json().get(raw)) return std::nullopt;
  } else {
    raw = v.raw_json_token();
  }
  return std::string(Trim(raw));
}

std::optional<std::string> String(Value v) {
  std::string_view s;
  if (v.get_string().get(s)) return std::nullopt;
  return std::string(s);
}

std::optional<double> Number(Value v) {
  double d;
  if (v.get_double().get(d)) return std::nullopt;
  return d;
}

std::optional<int64_t> Int(Value v) {
  int64_t i;
  if (v.get_int64().get(i)) return std::nullopt;
  return i;
}

std::optional<bool> Bool(Value v) {
  bool b;
  if (v.get_bool().get(b)) return std::nullopt;
  return b;
}

bool IsNull(Value v) {
  bool is_null = false;
  return !v.is_null().get(is_null) && is_null;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000;
    }
    bool good = len > 0 && i + len <= s.size();
    uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; good && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) good = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (good && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) good = false;
    if (good) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    }
  }
  return out;
}

}  // namespace resonance::worker::json
