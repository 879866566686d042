#pragma once

#include <string>

#include "core/status.h"

namespace resonance::http {

// The one place a Code becomes an HTTP status. Adding a Code means adding its row here.
int ToHttpStatus(Code code);

// {"error":{"code":"...","message":"..."}}
std::string ErrorBody(Code code, std::string_view message);
std::string ErrorBody(std::string_view code_name, std::string_view message);

}  // namespace resonance::http
