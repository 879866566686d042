#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/request.h"

namespace resonance::http {

// Maps method + path to a handler. Patterns are literal segments and "{name}" for one
// segment captured into Request::params ("/api/tasks/{id}/complete"); the pattern is
// also the route label in metrics and logs. Not thread-safe to
// modify; read-only (and so shareable) once the server runs.
class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler);

  enum class Match { kFound, kNoRoute, kWrongMethod };
  // On kFound sets *handler and fills req.params and req.route; on kWrongMethod sets *allow to the
  // methods the path accepts ("GET, POST").
  Match Find(Request& req, const Handler** handler, std::string* allow) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{}" for a captured one
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Splits "a=1&b=x%20y" into decoded pairs.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view q);
// Decodes %XX; '+' becomes a space only in query strings (plus_is_space).
std::string PercentDecode(std::string_view s, bool plus_is_space = false);

}  // namespace resonance::http
