#pragma once

#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace resonance::http {

// A JSON Schema subset for action payloads (docs/api.md, "Payload schemas"): type (a
// name or a list: object, array, string, number, integer, boolean, null), properties,
// required, enum, minimum, maximum, minLength, maxLength (in code points), pattern
// (ECMAScript, unanchored), items. Other keywords are refused when the schema is read,
// so a schema never silently checks less than it says. Immutable once parsed;
// thread-safe to share.
class JsonSchema {
 public:
  // kInvalidArgument naming the place ("properties.url.minLength: must be ...").
  static Result<std::shared_ptr<const JsonSchema>> Parse(std::string_view schema_json);

  struct Violation {
    std::string path;  // "payload", "payload.url", "payload.items[2]"
    std::string message;
  };
  // Every violation of `document` (valid JSON text), its paths rooted at `root`.
  std::vector<Violation> Validate(std::string_view document, const std::string& root) const;

  struct Node;  // the parsed tree (json_schema.cc)

 private:
  explicit JsonSchema(std::unique_ptr<Node> root);
  std::unique_ptr<Node> root_;
};

// The actions the config names ([actions."NAME"]) with their payload schemas, and
// whether an action it does not name is refused at enqueue (strict) or accepted (the
// worker then reports it as a validation error). Value type.
struct ActionRegistry {
  bool strict = false;
  std::set<std::string> known;
  std::map<std::string, std::shared_ptr<const JsonSchema>> schemas;

  // One task against the registry, as a Status (for follow-ups, which have no HTTP answer
  // of their own): kUnprocessable "<prefix>action: unknown action ..." when strict, or
  // "<prefix>payload: does not match the schema of action 'X': <path>: <message>; ..."
  // naming every violation.
  Status Check(const std::string& action, std::string_view payload,
               const std::string& prefix) const;
  // [actions."NAME"] credentials: the credentials a lease of the action carries.
  std::map<std::string, std::vector<std::string>> credentials;
};

}  // namespace resonance::http
