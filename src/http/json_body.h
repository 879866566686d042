#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace resonance::http {

// Request bodies: validated in full (simdjson DOM), then read field by field with
// simdjson On-Demand so payloads and results keep their raw text (never re-serialised).
//
// ParseObject pads `body` in place (grows its capacity) and returns the object to
// iterate. kInvalidJson when the body is not well-formed JSON, kInvalidArgument when it
// is not an object. The returned object points into `body` and `parser`.
Result<simdjson::ondemand::object> ParseObject(std::string& body,
                                               simdjson::ondemand::parser& parser,
                                               simdjson::ondemand::document& doc);

// Typed field readers. Each returns kInvalidArgument "<name>: must be ..." on a type
// mismatch. `name` is the field's full path for the message, e.g. "tasks[2].priority".
Status ReadString(simdjson::ondemand::value v, std::string_view name, std::string& out);
Status ReadInt(simdjson::ondemand::value v, std::string_view name, int64_t min, int64_t max,
               int64_t& out);
Status ReadNumber(simdjson::ondemand::value v, std::string_view name, double& out);
Status ReadBool(simdjson::ondemand::value v, std::string_view name, bool& out);
// Raw JSON text of an object (for payloads).
Status ReadRawObject(simdjson::ondemand::value v, std::string_view name, std::string& out);
// Raw JSON text of any value (for results and progress).
Status ReadRawAny(simdjson::ondemand::value v, std::string_view name, std::string& out);
bool IsNull(simdjson::ondemand::value& v);

// Calls fn(key, value) -> Status for each field of obj in order and returns the first
// error fn returns. With nulls_are_defaults, fields whose value is null are skipped
// (null means "use the default"). kInvalidJson when a key or value cannot be read.
template <typename Fn>
Status ForEachField(simdjson::ondemand::object obj, bool nulls_are_defaults, Fn&& fn) {
  for (auto field : obj) {
    std::string_view key;
    simdjson::ondemand::value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) {
      return Status(Code::kInvalidJson, "malformed field");
    }
    if (nulls_are_defaults && IsNull(v)) continue;
    if (Status s = fn(key, v); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace resonance::http
