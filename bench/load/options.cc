#include "options.h"

#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>

namespace resonance::load {
namespace {

constexpr const char* kUsage = R"(usage: resonance-load [flags]

Load generator for a running Resonance server (HTTP/1.1 keep-alive, loopback).
Prints one line per figure: `<phase> key=value ...`.

  --server HOST:PORT     server address (default 127.0.0.1:8091)
  --phase P[,P...]       all | enqueue_single | enqueue_batch | drain | mixed | fill |
                         wait_ready (default all = the first four)
  --tasks N              tasks per phase (default 20000; fill: 1000000)
  --conns N              enqueue_single connections (default 64)
  --batch N              tasks per batch request (default 1000)
  --batch-conns N        connections for enqueue_batch / fill / prefill (default 4)
  --consumers N          drain and mixed consumers (default 8)
  --drain-max N          lease max in drain (default 250)
  --drain-wait-ms N      lease wait_ms in drain (default 50)
  --mixed-max N          lease max in mixed (default 10)
  --mixed-wait-ms N      lease wait_ms (long poll) in mixed (default 1000)
  --producers N          mixed producer connections (default 16)
  --rate N               mixed offered rate, tasks/s (default 1000)
  --seconds N            mixed duration; wait_ready timeout (default 10)
  --threads N            io threads (default 1)
  --payload-bytes N      approximate payload size (default 100)
  --queue-prefix S       queue names are <prefix>-<phase>-<random> (default bench)
  --help
Exit status: 0 all phases clean, 1 a phase saw errors or lost tasks, 2 usage.
)";

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    try {
      size_t used = 0;
      out = static_cast<T>(std::stod(std::string(s), &used));
      return used == s.size();
    } catch (...) {
      return false;
    }
  } else {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  }
}

void SplitPhases(std::string_view s, std::vector<std::string>& out) {
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view one = s.substr(0, comma);
    if (!one.empty()) out.emplace_back(one);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
}

bool KnownPhase(std::string_view p) {
  for (std::string_view k :
       {"all", "enqueue_single", "enqueue_batch", "drain", "mixed", "fill", "wait_ready"}) {
    if (p == k) return true;
  }
  return false;
}

}  // namespace

std::optional<int> ParseOptions(int argc, char** argv, LoadOptions& out) {
  auto fail = [](std::string_view msg) {
    std::fprintf(stderr, "resonance-load: %.*s (see --help)\n", static_cast<int>(msg.size()),
                 msg.data());
    return std::optional<int>(2);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::string_view value;
    if (size_t eq = flag.find('='); eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return fail(std::string("missing value for ") + std::string(flag));
    }
    bool ok = true;
    if (flag == "--server") {
      out.server = value;
      if (out.server.starts_with("http://")) out.server.erase(0, 7);
      while (!out.server.empty() && out.server.back() == '/') out.server.pop_back();
    } else if (flag == "--phase") {
      SplitPhases(value, out.phases);
    } else if (flag == "--tasks") {
      ok = ParseNumber(value, out.tasks) && out.tasks > 0;
      out.tasks_given = true;
    } else if (flag == "--conns") {
      ok = ParseNumber(value, out.conns) && out.conns > 0;
    } else if (flag == "--batch") {
      ok = ParseNumber(value, out.batch) && out.batch > 0 && out.batch <= 1000;
    } else if (flag == "--batch-conns") {
      ok = ParseNumber(value, out.batch_conns) && out.batch_conns > 0;
    } else if (flag == "--consumers") {
      ok = ParseNumber(value, out.consumers) && out.consumers > 0;
    } else if (flag == "--drain-max") {
      ok = ParseNumber(value, out.drain_max) && out.drain_max > 0 && out.drain_max <= 1000;
    } else if (flag == "--drain-wait-ms") {
      ok = ParseNumber(value, out.drain_wait_ms) && out.drain_wait_ms >= 0;
    } else if (flag == "--mixed-max") {
      ok = ParseNumber(value, out.mixed_max) && out.mixed_max > 0 && out.mixed_max <= 1000;
    } else if (flag == "--mixed-wait-ms") {
      ok = ParseNumber(value, out.mixed_wait_ms) && out.mixed_wait_ms >= 0;
    } else if (flag == "--producers") {
      ok = ParseNumber(value, out.producers) && out.producers > 0;
    } else if (flag == "--rate") {
      ok = ParseNumber(value, out.rate) && out.rate > 0;
    } else if (flag == "--seconds") {
      ok = ParseNumber(value, out.seconds) && out.seconds > 0;
    } else if (flag == "--threads") {
      ok = ParseNumber(value, out.threads) && out.threads > 0 && out.threads <= 64;
    } else if (flag == "--payload-bytes") {
      ok = ParseNumber(value, out.payload_bytes) && out.payload_bytes >= 0 &&
           out.payload_bytes <= 1'000'000;
    } else if (flag == "--queue-prefix") {
      out.queue_prefix = value;
      ok = !value.empty();
    } else {
      return fail("unknown flag " + std::string(flag));
    }
    if (!ok) return fail("bad value for " + std::string(flag) + ": " + std::string(value));
  }
  if (out.phases.empty()) out.phases.push_back("all");
  std::vector<std::string> expanded;
  for (const std::string& p : out.phases) {
    if (!KnownPhase(p)) return fail("unknown phase " + p);
    if (p == "all") {
      for (const char* q : {"enqueue_single", "enqueue_batch", "drain", "mixed"}) {
        expanded.emplace_back(q);
      }
    } else {
      expanded.push_back(p);
    }
  }
  out.phases = std::move(expanded);
  if (out.server.find(':') == std::string::npos) return fail("--server wants HOST:PORT");
  return std::nullopt;
}

}  // namespace resonance::load
