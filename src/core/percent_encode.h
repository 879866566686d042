#pragma once

#include <string>
#include <string_view>

namespace resonance {

// Percent-encodes everything but RFC 3986's unreserved characters (A-Z a-z 0-9 - _ . ~),
// so the result is safe as one URL path segment or query value.
std::string PercentEncode(std::string_view s);

}  // namespace resonance
