#include "http/json_schema.h"

#include <simdjson.h>

#include <cmath>
#include <set>

namespace resonance::http {
namespace dom = simdjson::dom;

struct JsonSchema::Node {
  std::set<std::string> types;  // empty: any
  std::map<std::string, std::unique_ptr<Node>> properties;
  std::vector<std::string> required;
  std::vector<std::string> enum_values;  // minified JSON of each allowed value
  std::optional<double> minimum, maximum;
  std::optional<int64_t> min_length, max_length;
  std::optional<std::regex> pattern;
  std::string pattern_text;
  std::unique_ptr<Node> items;
};

namespace {

using Node = JsonSchema::Node;

Status Bad(const std::string& where, const std::string& msg) {
  return Status(Code::kInvalidArgument, (where.empty() ? std::string("schema") : where) + ": " + msg);
}

std::string Join(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

Result<std::unique_ptr<Node>> ParseNode(dom::element e, const std::string& where) {
  dom::object obj;
  if (e.get_object().get(obj)) return Bad(where, "a schema must be a JSON object");
  auto node = std::make_unique<Node>();
  static const std::set<std::string> kTypes = {"object", "array",   "string", "number",
                                               "integer", "boolean", "null"};
  for (auto [key_view, value] : obj) {
    const std::string key(key_view);
    const std::string at = Join(where, key);
    if (key == "type") {
      std::vector<std::string> names;
      std::string_view one;
      dom::array many;
      if (!value.get_string().get(one)) {
        names.emplace_back(one);
      } else if (!value.get_array().get(many)) {
        for (auto t : many) {
          if (t.get_string().get(one)) return Bad(at, "must be a type name or a list of them");
          names.emplace_back(one);
        }
      } else {
        return Bad(at, "must be a type name or a list of them");
      }
      for (const auto& n : names) {
        if (!kTypes.count(n)) return Bad(at, "unknown type '" + n + "'");
        node->types.insert(n);
      }
    } else if (key == "properties") {
      dom::object props;
      if (value.get_object().get(props)) return Bad(at, "must be an object of schemas");
      for (auto [name, sub] : props) {
        auto child = ParseNode(sub, Join(at, std::string(name)));
        if (!child.ok()) return child.status();
        node->properties[std::string(name)] = std::move(*child);
      }
    } else if (key == "required") {
      dom::array names;
      if (value.get_array().get(names)) return Bad(at, "must be a list of property names");
      for (auto n : names) {
        std::string_view s;
        if (n.get_string().get(s)) return Bad(at, "must be a list of property names");
        node->required.emplace_back(s);
      }
    } else if (key == "enum") {
      dom::array values;
      if (value.get_array().get(values) || values.size() == 0) {
        return Bad(at, "must be a non-empty list");
      }
      for (auto v : values) node->enum_values.push_back(simdjson::minify(v));
    } else if (key == "minimum" || key == "maximum") {
      double d = 0;
      if (value.get_double().get(d)) {
        int64_t i = 0;
        if (value.get_int64().get(i)) return Bad(at, "must be a number");
        d = static_cast<double>(i);
      }
      (key == "minimum" ? node->minimum : node->maximum) = d;
    } else if (key == "minLength" || key == "maxLength") {
      int64_t n = 0;
      if (value.get_int64().get(n) || n < 0) return Bad(at, "must be an integer >= 0");
      (key == "minLength" ? node->min_length : node->max_length) = n;
    } else if (key == "pattern") {
      std::string_view p;
      if (value.get_string().get(p)) return Bad(at, "must be a string");
      try {
        node->pattern.emplace(std::string(p), std::regex::ECMAScript);
      } catch (const std::regex_error& err) {
        return Bad(at, std::string("not a valid regular expression: ") + err.what());
      }
      node->pattern_text = std::string(p);
    } else if (key == "items") {
      auto child = ParseNode(value, at);
      if (!child.ok()) return child.status();
      node->items = std::move(*child);
    } else if (key == "$schema" || key == "title" || key == "description") {
      // annotations only
    } else {
      return Bad(at, "keyword not supported (supported: type, properties, required, enum, "
                     "minimum, maximum, minLength, maxLength, pattern, items)");
    }
  }
  return node;
}

const char* TypeOf(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: return "object";
    case dom::element_type::ARRAY: return "array";
    case dom::element_type::STRING: return "string";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return "integer";
    case dom::element_type::DOUBLE: return "number";
    case dom::element_type::BOOL: return "boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "null";
}

bool TypeMatches(const std::set<std::string>& types, dom::element e) {
  if (types.empty()) return true;
  const std::string t = TypeOf(e);
  if (types.count(t)) return true;
  if (t == "integer" && types.count("number")) return true;
  if (t == "number" && types.count("integer")) {  // 2.0 is an integer too
    double d = 0;
    return !e.get_double().get(d) && std::floor(d) == d;
  }
  return false;
}

int64_t CodePoints(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Number(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

void Check(const Node& n, dom::element e, const std::string& path,
           std::vector<JsonSchema::Violation>& out) {
  if (!TypeMatches(n.types, e)) {
    std::string want;
    for (const auto& t : n.types) want += (want.empty() ? "" : " or ") + t;
    out.push_back({path, std::string("must be ") + want + ", is " + TypeOf(e)});
    return;  // the other checks would only repeat it
  }
  if (!n.enum_values.empty()) {
    const std::string v = simdjson::minify(e);
    bool found = false;
    for (const auto& allowed : n.enum_values) found = found || allowed == v;
    if (!found) {
      std::string list;
      for (const auto& allowed : n.enum_values) list += (list.empty() ? "" : ", ") + allowed;
      out.push_back({path, "must be one of " + list});
    }
  }
  double d = 0;
  if ((e.is_int64() || e.is_uint64() || e.is_double()) && !e.get_double().get(d)) {
    if (n.minimum && d < *n.minimum) out.push_back({path, "must be >= " + Number(*n.minimum)});
    if (n.maximum && d > *n.maximum) out.push_back({path, "must be <= " + Number(*n.maximum)});
  }
  std::string_view s;
  if (!e.get_string().get(s)) {
    const int64_t len = CodePoints(s);
    if (n.min_length && len < *n.min_length) {
      out.push_back({path, "must be at least " + std::to_string(*n.min_length) + " characters"});
    }
    if (n.max_length && len > *n.max_length) {
      out.push_back({path, "must be at most " + std::to_string(*n.max_length) + " characters"});
    }
    if (n.pattern && !std::regex_search(std::string(s), *n.pattern)) {
      out.push_back({path, "must match " + n.pattern_text});
    }
  }
  dom::object obj;
  if (!e.get_object().get(obj)) {
    for (const auto& r : n.required) {
      dom::element ignored;
      if (obj.at_key(r).get(ignored)) out.push_back({path + "." + r, "is required"});
    }
    for (const auto& [name, sub] : n.properties) {
      dom::element child;
      if (!obj.at_key(name).get(child)) Check(*sub, child, path + "." + name, out);
    }
  }
  dom::array arr;
  if (n.items && !e.get_array().get(arr)) {
    size_t i = 0;
    for (auto item : arr) Check(*n.items, item, path + "[" + std::to_string(i++) + "]", out);
  }
}

}  // namespace

JsonSchema::JsonSchema(std::unique_ptr<Node> root) : root_(std::move(root)) {}

Result<std::shared_ptr<const JsonSchema>> JsonSchema::Parse(std::string_view schema_json) {
  dom::parser parser;
  dom::element root;
  if (parser.parse(schema_json.data(), schema_json.size()).get(root)) {
    return Status(Code::kInvalidArgument, "schema: not valid JSON");
  }
  auto node = ParseNode(root, "");
  if (!node.ok()) return node.status();
  return std::shared_ptr<const JsonSchema>(new JsonSchema(std::move(*node)));
}

std::vector<JsonSchema::Violation> JsonSchema::Validate(std::string_view document,
                                                        const std::string& root) const {
  std::vector<Violation> out;
  dom::parser parser;
  dom::element e;
  if (parser.parse(document.data(), document.size()).get(e)) {
    out.push_back({root, "is not valid JSON"});
    return out;
  }
  Check(*root_, e, root, out);
  return out;
}

Status ActionRegistry::Check(const std::string& action, std::string_view payload,
                             const std::string& prefix) const {
  if (strict && !known.count(action)) {
    return Status(Code::kUnprocessable, prefix + "action: unknown action '" + action +
                                            "' (the action registry is strict)");
  }
  auto it = schemas.find(action);
  if (it == schemas.end()) return Status::Ok();
  auto violations = it->second->Validate(payload, prefix + "payload");
  if (violations.empty()) return Status::Ok();
  std::string msg = prefix + "payload: does not match the schema of action '" + action + "': ";
  for (size_t i = 0; i < violations.size(); ++i) {
    if (i) msg += "; ";
    msg += violations[i].path + ": " + violations[i].message;
  }
  return Status(Code::kUnprocessable, std::move(msg));
}

}  // namespace resonance::http
