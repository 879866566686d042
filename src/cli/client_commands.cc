#include <simdjson.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/http_client.h"

namespace resonance::cli {

int ClientCall(const ClientFlags& flags, const std::string& method, const std::string& target,
               const std::string& body) {
  auto answer = HttpRequest(flags.server, method, target, body);
  if (!answer.ok()) {
    std::cerr << "resonance: " << answer.status().message() << "\n";
    return 1;
  }
  if (answer->status >= 200 && answer->status < 300) {
    std::cout << answer->body << "\n";
    return 0;
  }
  // Show the server's error message, not the raw JSON.
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view code, message;
  if (!parser.parse(answer->body).get(doc) && !doc["error"]["code"].get(code) &&
      !doc["error"]["message"].get(message)) {
    std::cerr << "resonance: " << answer->status << " " << code << ": " << message << "\n";
  } else {
    std::cerr << "resonance: HTTP " << answer->status << ": " << answer->body << "\n";
  }
  return 1;
}

}  // namespace resonance::cli
