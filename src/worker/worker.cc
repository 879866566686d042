#include "worker/worker.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "core/clock.h"
#include "observe/log.h"
#include "worker/handler_config.h"
#include "worker/runtime.h"
#include "worker/server_api.h"
#include "worker/spawner.h"

namespace resonance::worker {
namespace {

int ConfigError(const std::string& msg) {
  std::cerr << "resonance: " << msg << "\n";
  return kExitConfig;
}

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

std::vector<std::string> SplitQueues(const std::vector<std::string>& given) {
  std::vector<std::string> out;
  for (const auto& item : given) {
    size_t start = 0;
    while (start <= item.size()) {
      size_t comma = item.find(',', start);
      if (comma == std::string::npos) comma = item.size();
      std::string q = item.substr(start, comma - start);
      if (!q.empty()) out.push_back(q);
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace

int RunWorker(const WorkerFlags& flags) {
  std::string config_path = flags.config;
  std::error_code ec;
  if (config_path.empty() && std::filesystem::exists("resonance.toml", ec))
    config_path = "resonance.toml";
  WorkerConfig config;
  if (!config_path.empty()) {
    auto loaded = LoadWorkerConfig(config_path);
    if (!loaded.ok()) return ConfigError("config: " + loaded.status().message());
    config = std::move(*loaded);
  }
  // Handlers reach the server (a refresh handler renews its credential there) at
  // RESONANCE_SERVER_URL; a handler's own env may still set it.
  for (auto& [action, handler] : config.handlers) {
    handler.env.insert(handler.env.begin(), {"RESONANCE_SERVER_URL", flags.server});
  }
  if (config.handlers.empty()) {
    log::Warn("worker",
              "no [handlers] configured" +
                  (config_path.empty() ? std::string(" (no config file)") : " in " + config_path) +
                  ": every task will fail as validation");
  }

  RuntimeOptions options;
  options.pool = flags.pool;
  options.host = HostName();
  options.pid = static_cast<int>(::getpid());
  options.worker_id =
      flags.worker_id.empty() ? options.host + "-" + std::to_string(options.pid) : flags.worker_id;
  if (options.worker_id.size() > 200) return ConfigError("--id: at most 200 characters");
  const PoolConfig* pool = flags.pool.empty() ? nullptr : config.FindPool(flags.pool);
  options.queues = SplitQueues(flags.queues);
  if (options.queues.empty() && pool) options.queues = pool->queues;
  if (options.queues.empty()) options.queues = {"default"};
  options.concurrency = flags.concurrency > 0           ? flags.concurrency
                        : pool && pool->concurrency > 0 ? pool->concurrency
                                                        : 1;
  if (flags.concurrency < 0 || options.concurrency > 1000)
    return ConfigError("--concurrency: must be from 1 to 1000");
  if (flags.lease_wait_ms < 0 || flags.lease_wait_ms > 60000)
    return ConfigError("--lease-wait-ms: must be from 0 to 60000");
  if (!(flags.drain_grace_s >= 0)) return ConfigError("--drain-grace: must be >= 0 seconds");
  options.lease_wait_ms = flags.lease_wait_ms;
  options.drain_grace = SecondsToMicros(flags.drain_grace_s);
  options.tracer = flags.tracer;

  auto api = HttpServerApi::Create(flags.server);
  if (!api.ok()) return ConfigError("--server: " + api.status().message());

  // Signals: SIGPIPE would kill us when a handler closes its stdin early; SIGTERM and
  // SIGINT are taken by one thread with sigtimedwait (blocked everywhere else, and
  // reset in handler processes by the spawner).
  // A shell starts background jobs with SIGINT ignored, and an ignored signal is
  // dropped even while blocked: restore the defaults before waiting for them.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  SystemClock clock;
  PosixSpawner spawner;
  WorkerRuntime runtime(options, config, **api, spawner, clock);
  std::atomic<bool> done{false};
  std::thread signals([&] {
    const timespec tick{0, 100 * 1000 * 1000};
    while (!done.load()) {
      int sig = ::sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig == SIGTERM || sig == SIGINT) {
        log::Info("worker", std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
        runtime.Stop();
      }
    }
  });
  const int code = runtime.Run();
  done = true;
  signals.join();
  return code;
}

}  // namespace resonance::worker
