#include "http/error_mapping.h"

#include "core/json_writer.h"

namespace resonance::http {

int ToHttpStatus(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kInvalidJson: return 400;
    case Code::kNotFound: return 404;
    case Code::kConflict: return 409;
    case Code::kTooLarge: return 413;
    case Code::kUnsupportedMedia: return 415;
    case Code::kUnprocessable: return 422;
    case Code::kUnavailable: return 503;
    case Code::kInternal: return 500;
  }
  return 500;
}

std::string ErrorBody(std::string_view code_name, std::string_view message) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("error").BeginObject();
  w.Key("code").String(code_name).Key("message").String(message);
  w.EndObject().EndObject();
  return out;
}

std::string ErrorBody(Code code, std::string_view message) {
  return ErrorBody(CodeName(code), message);
}

}  // namespace resonance::http
