#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace resonance {

// Appends JSON text to a string, one token at a time. No validation of structure:
// the caller opens and closes what it writes. Raw() inserts text that is already
// valid JSON (payloads and results travel as raw text, never re-serialised).
// Not thread-safe; cheap to construct over an existing buffer.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Double(double v);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  JsonWriter& Raw(std::string_view json);
  JsonWriter& Time(Micros t);  // RFC 3339 string
  // Null when the string is empty / the time is zero.
  JsonWriter& StringOrNull(std::string_view s) { return s.empty() ? Null() : String(s); }
  JsonWriter& TimeOrNull(Micros t) { return t == 0 ? Null() : Time(t); }
  JsonWriter& RawOrNull(std::string_view j) { return j.empty() ? Null() : Raw(j); }

 private:
  void Separate();
  std::string& out_;
  bool need_comma_ = false;
};

// Appends s as a JSON string literal (with quotes) to out.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace resonance
