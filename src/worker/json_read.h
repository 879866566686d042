#pragma once

#include <simdjson.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

// Reading the JSON the worker receives: server replies, handler output, task payloads.
// simdjson On-Demand underneath, so values such as a payload or a result keep their raw
// text. (The server's http/json_body.h does the same for request bodies; the worker
// does not link the http module, DESIGN.md §1.)
namespace resonance::worker::json {

using Value = simdjson::ondemand::value;
using MemberFn = std::function<Status(std::string_view key, Value value)>;

// True when text is exactly one well-formed JSON value (valid UTF-8), whitespace around
// it allowed.
bool IsValid(std::string_view text);

// Calls fn for each member of the JSON object in `text`, in order; a non-ok Status from
// fn stops the walk and is returned. kInvalidJson when text is not well-formed (checked
// in full first when `validate`), kInvalidArgument when it is not an object.
Status ForEachMember(std::string_view text, const MemberFn& fn, bool validate = true);
// The same over an object value met during a walk; kInvalidArgument if v is no object.
Status ForEachMember(Value v, const MemberFn& fn);
// Calls fn for each element of an array value; kInvalidArgument if v is no array.
Status ForEachElement(Value v, const std::function<Status(Value)>& fn);

// Readers of one value; nullopt on a type mismatch.
std::optional<std::string> Raw(Value v);  // its JSON text, trimmed
std::optional<std::string> String(Value v);
std::optional<double> Number(Value v);
std::optional<int64_t> Int(Value v);
std::optional<bool> Bool(Value v);
bool IsNull(Value v);

// Without leading and trailing JSON whitespace.
std::string_view Trim(std::string_view s);
// s with every byte sequence that is not valid UTF-8 replaced by U+FFFD, so it can be
// written as a JSON string the server will accept.
std::string SanitizeUtf8(std::string_view s);

}  // namespace resonance::worker::json
