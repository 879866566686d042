#include "supervise/up_command.h"

#include <signal.h>
#include <simdjson.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/time_format.h"
#include "observe/log.h"
#include "supervise/supervisor.h"
#include "supervise/supervisor_lock.h"

namespace resonance::supervise {
namespace fs = std::filesystem;
namespace {

Result<UpConfig> LoadFor(const UpFlags& flags, const char* verb) {
  const std::string path = flags.config.empty() ? "resonance.toml" : flags.config;
  auto config = LoadUpConfig(path);
  if (!config.ok()) {
    std::cerr << "resonance " << verb << ": config: " << config.status().message() << "\n";
  }
  return config;
}

std::string Duration(Micros d) {
  if (d < 0) d = 0;
  int64_t s = d / kMicrosPerSecond;
  char buf[48];
  if (s >= 86400) {
    snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400),
             static_cast<long long>(s % 86400 / 3600));
  } else if (s >= 3600) {
    snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
             static_cast<long long>(s % 3600 / 60));
  } else if (s >= 60) {
    snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
             static_cast<long long>(s % 60));
  } else {
    snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  }
  return buf;
}

std::string Str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get(v) == simdjson::SUCCESS) return std::string(v);
  return "";
}

std::string Int(simdjson::dom::element e, const char* key, const char* none = "-") {
  int64_t v;
  if (e[key].get(v) == simdjson::SUCCESS) return std::to_string(v);
  return none;
}

std::string Since(simdjson::dom::element e, const char* key, Micros now) {
  auto t = ParseRfc3339(Str(e, key));
  return t ? Duration(now - *t) : "-";
}

std::string LastExit(simdjson::dom::element e) {
  simdjson::dom::element x;
  if (e["last_exit"].get(x) != simdjson::SUCCESS || x.is_null()) return "-";
  int64_t v;
  if (x["signal"].get(v) == simdjson::SUCCESS) return "signal " + std::to_string(v);
  if (x["code"].get(v) == simdjson::SUCCESS) return "exit " + std::to_string(v);
  return "-";
}

}  // namespace

int RunUp(const UpFlags& flags) {
  auto config = LoadFor(flags, "up");
  if (!config.ok()) return 2;
  std::error_code ec;
  fs::create_directories(config->data_dir, ec);
  if (ec) {
    std::cerr << "resonance up: cannot create data dir " << config->data_dir << ": " << ec.message()
              << "\n";
    return 1;
  }
  SupervisorLock lock;
  if (Status s = lock.Acquire(config->data_dir); !s.ok()) {
    std::cerr << "resonance up: " << s.message() << "\n";
    return 1;
  }
  const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) {
    std::cerr << "resonance up: cannot find my own binary: " << ec.message() << "\n";
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  // A shell starts background jobs with SIGINT ignored, and an ignored signal is
  // dropped even while blocked: restore the defaults before waiting for them.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (!flags.log_level.empty()) config->child_args.insert(config->child_args.end(), {"--log-level", flags.log_level});
  if (!flags.log_format.empty()) config->child_args.insert(config->child_args.end(), {"--log-format", flags.log_format});
  SystemClock clock;
  PosixProcessSpawner spawner;
  HttpServerProbe probe;
  log::Info("supervise", "resonance up: config " + config->path + ", data dir " + config->data_dir +
                             ", " + std::to_string(config->pools.size()) + " pool(s)");
  Supervisor supervisor(std::move(*config), self, clock, spawner, probe);
  const struct timespec tick { 0, 100 * 1000 * 1000 };
  while (!supervisor.Done()) {
    while (auto exited = spawner.ReapAny()) supervisor.OnExit(exited->first, exited->second);
    supervisor.Step();
    if (supervisor.Done()) break;
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      log::Info("supervise", std::string("signal ") + strsignal(sig));
      supervisor.Stop();
    }
  }
  return 0;
}

int RunStatus(const UpFlags& flags) {
  auto config = LoadFor(flags, "status");
  if (!config.ok()) return 2;
  const pid_t holder = SupervisorLock::Holder(config->data_dir);
  const fs::path state_path = fs::path(config->data_dir) / "supervisor.json";
  simdjson::dom::parser parser;
  simdjson::dom::element state;
  const bool have_state = parser.load(state_path.string()).get(state) == simdjson::SUCCESS;
  const Micros now = SystemClock().Now();
  if (holder == 0) {
    std::cout << "supervisor: not running (data dir " << config->data_dir << ")\n";
    if (have_state) std::cout << "last recorded state (" << Str(state, "updated_at") << "):\n";
  } else {
    std::cout << "supervisor: running, pid " << holder;
    if (have_state) std::cout << ", up " << Since(state, "started_at", now);
    std::cout << ", config " << config->path << ", data dir " << config->data_dir << "\n";
  }
  std::string server_url;
  if (have_state) {
    server_url = Str(state, "server_url");
    if (!server_url.empty()) std::cout << "server: " << server_url << "\n";
    std::printf("%-12s %-16s %-8s %-9s %-9s %-9s %s\n", "POOL", "ID", "PID", "STATE", "RESTARTS",
                "UPTIME", "LAST EXIT");
    simdjson::dom::array procs;
    if (state["processes"].get(procs) == simdjson::SUCCESS) {
      for (simdjson::dom::element p : procs) {
        std::printf("%-12s %-16s %-8s %-9s %-9s %-9s %s\n", Str(p, "pool").c_str(),
                    Str(p, "id").c_str(), Int(p, "pid").c_str(), Str(p, "state").c_str(),
                    Int(p, "restarts").c_str(), Since(p, "started_at", now).c_str(),
                    LastExit(p).c_str());
      }
    }
  } else {
    std::cout << "no state file " << state_path.string() << "\n";
  }
  if (holder != 0 && server_url.rfind("http://", 0) == 0) {
    auto answer = HttpCall(server_url.substr(7), "GET", "/api/workers", 5 * kMicrosPerSecond);
    simdjson::dom::parser wparser;
    simdjson::dom::element workers;
    simdjson::dom::array list;
    if (answer.ok() && answer->status == 200 &&
        wparser.parse(answer->body).get(workers) == simdjson::SUCCESS &&
        workers["workers"].get(list) == simdjson::SUCCESS) {
      std::cout << "\nserver registry (GET /api/workers):\n";
      std::printf("%-16s %-12s %-8s %-9s %-8s %s\n", "WORKER", "POOL", "PID", "STATE", "RUNNING",
                  "LAST SEEN");
      for (simdjson::dom::element w : list) {
        std::printf("%-16s %-12s %-8s %-9s %-8s %s ago\n", Str(w, "worker").c_str(),
                    Str(w, "pool").c_str(), Int(w, "pid").c_str(), Str(w, "state").c_str(),
                    Int(w, "running", "0").c_str(), Since(w, "last_seen", now).c_str());
      }
    } else {
      std::cout << "\nserver registry: unreachable ("
                << (answer.ok() ? "HTTP " + std::to_string(answer->status)
                                : answer.status().message())
                << ")\n";
    }
  }
  return holder != 0 ? 0 : 1;
}

}  // namespace resonance::supervise
