#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace resonance {

// "2026-11-22T15:51:02.123456Z": RFC 3339 in UTC with microseconds.
std::string FormatRfc3339(Micros t);
// Appends the same text to out (no allocation beyond out's growth).
void AppendRfc3339(std::string& out, Micros t);

// Parses RFC 3339 with a 'Z' or numeric offset and optional fraction.
// Returns nullopt on any malformed input.
std::optional<Micros> ParseRfc3339(std::string_view s);

}  // namespace resonance
