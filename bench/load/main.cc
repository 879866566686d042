// resonance-load: end-to-end load generator for a running Resonance server.
// See --help and bench/run.sh; figures are one `<phase> key=value ...` line each.

#include <cstdio>
#include <exception>

#include "options.h"
#include "phases.h"

namespace resonance::load {
namespace {

asio::awaitable<void> PollReady(Endpoint server, double timeout_s, bool* ready, double* seconds) {
  auto executor = co_await asio::this_coro::executor;
  HttpClient client(executor, server);
  asio::steady_timer timer(executor);
  HttpResponse resp;
  const int64_t start = SteadyMicros();
  const int64_t deadline = start + static_cast<int64_t>(timeout_s * 1e6);
  while (SteadyMicros() < deadline) {
    bool answered = true;
    try {
      co_await client.Get("/readyz", resp, std::chrono::seconds(2));
    } catch (const std::exception&) {
      answered = false;  // not listening yet, or still starting
    }
    if (answered && resp.status == 200) {
      *ready = true;
      break;
    }
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(asio::use_awaitable);
  }
  *seconds = static_cast<double>(SteadyMicros() - start) / 1e6;
}

}  // namespace

bool RunWaitReady(const LoadOptions& opt, const Endpoint& server) {
  bool ready = false;
  double seconds = 0;
  IoPool pool(1);
  pool.Spawn(PollReady(server, opt.seconds, &ready, &seconds));
  pool.Run();
  ReportLine("wait_ready").Fixed("seconds", seconds, 3).Int("ready", ready ? 1 : 0).Print();
  return ready;
}

namespace {

int Main(int argc, char** argv) {
  LoadOptions opt;
  if (auto exit_code = ParseOptions(argc, argv, opt)) return *exit_code;
  Endpoint server = ResolveServer(opt.server);
  bool clean = true;
  for (const std::string& phase : opt.phases) {
    bool ok = false;
    if (phase == "enqueue_single") {
      ok = RunEnqueueSingle(opt, server);
    } else if (phase == "enqueue_batch") {
      ok = RunEnqueueBatch(opt, server);
    } else if (phase == "drain") {
      ok = RunDrain(opt, server);
    } else if (phase == "mixed") {
      ok = RunMixed(opt, server);
    } else if (phase == "fill") {
      ok = RunFill(opt, server);
    } else if (phase == "wait_ready") {
      ok = RunWaitReady(opt, server);
    }
    if (!ok) {
      std::fprintf(stderr, "resonance-load: phase %s was not clean (see its line)\n",
                   phase.c_str());
      clean = false;
    }
  }
  return clean ? 0 : 1;
}

}  // namespace
}  // namespace resonance::load

int main(int argc, char** argv) {
  try {
    return resonance::load::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resonance-load: %s\n", e.what());
    return 1;
  }
}
