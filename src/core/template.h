#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace resonance::tmpl {

// Placeholders in follow-up task specs (docs/follow-ups.md, "Templates").
//
// A placeholder is "{{" ROOT ("." SEGMENT)* "}}" with optional spaces inside the braces.
// ROOT is one of result, payload, task; a SEGMENT is 1 to 200 characters from
// [A-Za-z0-9_-$@] and picks an object's field by name or, on an array, the element at
// that decimal index ("items.0"). "{{" followed by any other word is plain text (so
// payloads may carry Mustache text of their own); "{{" followed by a root but not by a
// well-formed placeholder is an error. There is no escape.
//
// Rendering a JSON document fills in every string value (object keys are left alone):
// a string that is exactly one placeholder becomes the referenced JSON value with its
// type (number, object, ...); a placeholder inside a longer string is replaced by the
// value's text (a string without quotes, anything else as compact JSON).
//
// Pure functions over their arguments; thread-safe.

// The fields of the `task` root (the finished parent task).
inline constexpr std::string_view kTaskFields[] = {"id", "action", "queue", "depth", "trace_id",
                                                   "attempt"};

// True when `json` may hold a placeholder (it has "{{" or an escaped "{"). A cheap test:
// false means rendering would give the text back unchanged.
bool MayHavePlaceholders(std::string_view json);

// Checks the placeholders of every string of the JSON document `json` (valid JSON) without
// rendering: each is well-formed and a task placeholder names a field of kTaskFields.
// kInvalidArgument "<where>.a.b: ..." naming the string's place.
Status CheckJson(std::string_view json, const std::string& where);
// The same for one string (for fields such as idempotency_key). kInvalidArgument "<where>: ...".
Status CheckText(std::string_view text, const std::string& where);

class Scope;
Result<std::string> RenderJson(std::string_view json, const Scope& scope, const std::string& where);
Result<std::string> RenderText(std::string_view text, const Scope& scope, const std::string& where);

// The named JSON documents placeholders resolve against. Not thread-safe; owns copies of
// the documents it parsed.
class Scope {
 public:
  Scope();
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  // Sets a root (result, payload or task) to a JSON document. Empty `json` = the root has
  // no value: every reference into it is missing. kInvalidArgument when `json` is not
  // valid JSON or the root is not one of the three.
  Status Set(std::string_view root, std::string_view json);

  struct Impl;

 private:
  friend Result<std::string> RenderJson(std::string_view, const Scope&, const std::string&);
  friend Result<std::string> RenderText(std::string_view, const Scope&, const std::string&);
  std::unique_ptr<Impl> impl_;
};

// `json` (valid JSON) with its placeholders filled in from `scope`, as compact JSON (the
// text comes back unchanged when MayHavePlaceholders is false). kNotFound "<where>.a:
// {{result.x}}: result has no field x" when a placeholder refers to nothing;
// kInvalidArgument for a malformed placeholder.
Result<std::string> RenderJson(std::string_view json, const Scope& scope, const std::string& where);
// One string with its placeholders filled in: always text (a lone placeholder of a
// non-string value gives its compact JSON). Errors as RenderJson.
Result<std::string> RenderText(std::string_view text, const Scope& scope, const std::string& where);

}  // namespace resonance::tmpl
