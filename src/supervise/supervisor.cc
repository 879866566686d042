#include "supervise/supervisor.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/json_writer.h"
#include "observe/log.h"

namespace resonance::supervise {
namespace fs = std::filesystem;
namespace {

constexpr char kModule[] = "supervise";

std::string Seconds(Micros d) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(d) / kMicrosPerSecond);
  return buf;
}

std::string ReadListenAddr(const std::string& data_dir) {
  std::ifstream f(fs::path(data_dir) / "listen.addr");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (text.empty() || text.back() != '\n') return {};  // absent or being written
  text.pop_back();
  return text;
}

}  // namespace

const char* ProcessStateName(Supervisor::Process::State s) {
  using S = Supervisor::Process::State;
  switch (s) {
    case S::kStarting:
      return "starting";
    case S::kRunning:
      return "running";
    case S::kBackoff:
      return "backoff";
    case S::kStopping:
      return "stopping";
    case S::kStopped:
      return "stopped";
  }
  return "?";
}

Supervisor::Supervisor(UpConfig config, std::string self_exe, Clock& clock, ProcessSpawner& spawner,
                       ServerProbe& probe)
    : config_(std::move(config)),
      self_exe_(std::move(self_exe)),
      clock_(clock),
      spawner_(spawner),
      probe_(probe),
      started_at_(clock.Now()) {
  auto add = [&](const std::string& pool, const std::string& id) {
    procs_.push_back(Process{pool, id, -1, Process::State::kStarting, 0, started_at_, 0, false, 0,
                             false, RestartBackoff(config_.options), "", false});
    windows_.try_emplace(pool, config_.options);
  };
  add("server", "server");
  for (const auto& pool : config_.pools) {
    for (int i = 0; i < pool.workers; ++i) add(pool.name, pool.name + "-" + std::to_string(i));
  }
}

std::vector<std::string> Supervisor::ArgvFor(const Process& p) const {
  std::vector<std::string> argv;
  if (&p == &procs_.front()) {
    argv = {self_exe_, "server", "--config", config_.path};
  } else {
    argv = {self_exe_, "worker", "--config", config_.path, "--pool",
            p.pool,    "--id",   p.id,       "--server",   "http://" + server_addr_};
  }
  argv.insert(argv.end(), config_.child_args.begin(), config_.child_args.end());
  return argv;
}

void Supervisor::StartProcess(Process& p) {
  const bool is_server = &p == &procs_.front();
  if (is_server) {
    std::error_code ec;
    fs::remove(fs::path(config_.data_dir) / "listen.addr", ec);  // a dead server's address
    server_addr_.clear();
  } else if (p.deregister_first) {
    if (Status s = probe_.Deregister(server_addr_, p.id); !s.ok()) {
      log::Warn(kModule, "deregister " + p.id + " before its restart: " + s.message());
    }
    p.deregister_first = false;
  }
  const Micros now = clock_.Now();
  auto pid = spawner_.Start(ArgvFor(p));
  dirty_ = true;
  if (!pid.ok()) {
    // Counts as a crash: same backoff, same restart limit.
    log::Error(kModule, "cannot start " + p.id + ": " + pid.status().message());
    p.backoff.Started(now);
    p.state = Process::State::kBackoff;
    p.next_start = now + p.backoff.Exited(now);
    return;
  }
  p.pid = *pid;
  if (!is_server) p.server_addr = server_addr_;
  p.state = Process::State::kRunning;
  p.started_at = now;
  p.backoff.Started(now);
  if (is_server) ready_deadline_ = now + SecondsToMicros(config_.options.ready_timeout_s);
  log::Info(kModule, "started " + p.id + " (pid " + std::to_string(p.pid) + ")");
}

void Supervisor::OnExit(pid_t pid, int wait_status) {
  auto it =
      std::find_if(procs_.begin(), procs_.end(), [&](const Process& p) { return p.pid == pid; });
  if (it == procs_.end()) return;
  Process& p = *it;
  const bool is_server = &p == &procs_.front();
  const Micros now = clock_.Now();
  p.pid = -1;
  p.exited_before = true;
  p.last_wait_status = wait_status;
  dirty_ = true;
  if (is_server) server_addr_.clear();
  if (phase_ != Phase::kRunning) {
    p.state = Process::State::kStopped;
    log::Info(kModule, p.id + " stopped: " + ExitText(wait_status));
    return;
  }
  if (p.planned_restart) {  // not a crash: no backoff, no count
    p.planned_restart = false;
    p.state = Process::State::kStarting;
    p.next_start = now;
    p.deregister_first = true;
    log::Info(kModule, p.id + " stopped (" + ExitText(wait_status) + ") to follow the server");
    return;
  }
  Micros delay = p.backoff.Exited(now);
  ++p.restarts;
  RestartWindow& window = windows_.at(p.pool);
  if (window.Record(now)) {
    delay = SecondsToMicros(config_.options.backoff_max_s);
    Alert alert{p.pool, window.Count(now), config_.options.restart_window_s, wait_status, now};
    Status s = WriteAlert(config_.data_dir, alert);
    log::Error(kModule, "pool " + p.pool + ": " + std::to_string(alert.restarts) +
                            " restarts within " + Seconds(SecondsToMicros(alert.window_s)) +
                            " (limit " + std::to_string(config_.options.restart_limit) +
                            "), last " + p.id + " " + ExitText(wait_status) +
                            (s.ok() ? "; wrote alerts/" + p.pool + "_alert.json"
                                    : "; cannot write the alert: " + s.message()) +
                            "; retrying every " + Seconds(delay));
  }
  p.state = Process::State::kBackoff;
  p.next_start = now + delay;
  p.deregister_first = !is_server;
  log::Warn(kModule, p.id + " (pid " + std::to_string(pid) + ") exited: " + ExitText(wait_status) +
                         "; restart in " + Seconds(delay));
}

void Supervisor::CheckServerReady() {
  Process& s = server();
  if (s.state != Process::State::kRunning || !server_addr_.empty()) return;
  const std::string addr = ReadListenAddr(config_.data_dir);
  if (!addr.empty() && probe_.Ready(addr)) {
    server_addr_ = addr;
    dirty_ = true;
    log::Info(kModule, "server ready at http://" + addr);
    for (size_t i = 1; i < procs_.size(); ++i) {
      Process& w = procs_[i];
      if (w.pid > 0 && w.server_addr != addr && !w.planned_restart) {
        log::Info(kModule,
                  w.id + " points at the old address " + w.server_addr + ": restarting it");
        spawner_.Signal(w.pid, SIGTERM, false);
        w.planned_restart = true;
      }
    }
    return;
  }
  if (clock_.Now() > ready_deadline_) {
    log::Error(kModule, "server (pid " + std::to_string(s.pid) + ") not ready within " +
                            Seconds(SecondsToMicros(config_.options.ready_timeout_s)) +
                            "; killing it");
    spawner_.Signal(s.pid, SIGKILL, true);
    ready_deadline_ = INT64_MAX;  // its exit restarts it
  }
}

void Supervisor::Step() {
  if (phase_ != Phase::kRunning) {
    AdvanceStop();
  } else {
    const Micros now = clock_.Now();
    Process& s = server();
    if (s.pid < 0 && s.next_start <= now) StartProcess(s);
    CheckServerReady();
    if (!server_addr_.empty()) {
      for (size_t i = 1; i < procs_.size(); ++i) {
        Process& p = procs_[i];
        if (p.pid < 0 && p.next_start <= clock_.Now()) StartProcess(p);
      }
    }
  }
  if (dirty_) WriteState();
}

void Supervisor::Stop() {
  if (phase_ != Phase::kRunning) return;
  log::Info(kModule, "stopping: workers first (drain), then the server");
  phase_ = Phase::kStoppingWorkers;
  stop_deadline_ = clock_.Now() + SecondsToMicros(config_.options.stop_grace_s);
  for (size_t i = 1; i < procs_.size(); ++i) {
    Process& p = procs_[i];
    if (p.pid > 0) {
      spawner_.Signal(p.pid, SIGTERM, false);  // the worker stops its handlers itself
      p.state = Process::State::kStopping;
    } else {
      p.state = Process::State::kStopped;
    }
  }
  dirty_ = true;
  AdvanceStop();
}

void Supervisor::AdvanceStop() {
  const Micros now = clock_.Now();
  if (phase_ == Phase::kStoppingWorkers) {
    bool left = false;
    for (size_t i = 1; i < procs_.size(); ++i) {
      if (procs_[i].pid < 0) continue;
      left = true;
      if (now > stop_deadline_) {
        log::Warn(kModule, procs_[i].id + " did not drain in time: SIGKILL");
        spawner_.Signal(procs_[i].pid, SIGKILL, true);
      }
    }
    if (left && now > stop_deadline_) stop_deadline_ = INT64_MAX;  // killed: wait for reaping
    if (left) return;
    phase_ = Phase::kStoppingServer;
    stop_deadline_ = now + SecondsToMicros(config_.options.stop_grace_s);
    Process& s = server();
    if (s.pid > 0) {
      spawner_.Signal(s.pid, SIGTERM, false);
      s.state = Process::State::kStopping;
    } else {
      s.state = Process::State::kStopped;
    }
    dirty_ = true;
  }
  if (phase_ == Phase::kStoppingServer) {
    Process& s = server();
    if (s.pid > 0) {
      if (now > stop_deadline_) {
        log::Warn(kModule, "server did not stop in time: SIGKILL");
        spawner_.Signal(s.pid, SIGKILL, true);
        stop_deadline_ = INT64_MAX;
      }
      return;
    }
    phase_ = Phase::kDone;
    dirty_ = true;
    log::Info(kModule, "stopped");
  }
}

std::string Supervisor::StateJson() const {
  std::string out;
  JsonWriter w(out);
  const char* state = phase_ == Phase::kRunning ? "running"
                      : phase_ == Phase::kDone  ? "stopped"
                                                : "stopping";
  w.BeginObject()
      .Key("pid")
      .Int(::getpid())
      .Key("state")
      .String(state)
      .Key("config")
      .String(config_.path)
      .Key("data_dir")
      .String(config_.data_dir)
      .Key("started_at")
      .Time(started_at_)
      .Key("updated_at")
      .Time(clock_.Now())
      .Key("server_url")
      .StringOrNull(server_addr_.empty() ? "" : "http://" + server_addr_);
  w.Key("processes").BeginArray();
  for (const Process& p : procs_) {
    w.BeginObject().Key("pool").String(p.pool).Key("id").String(p.id).Key("pid");
    if (p.pid > 0) {
      w.Int(p.pid);
    } else {
      w.Null();
    }
    w.Key("state").String(ProcessStateName(p.state)).Key("restarts").Int(p.restarts);
    w.Key("started_at").TimeOrNull(p.pid > 0 ? p.started_at : 0);
    w.Key("next_start").TimeOrNull(p.state == Process::State::kBackoff ? p.next_start : 0);
    w.Key("last_exit").RawOrNull(p.exited_before ? ExitJson(p.last_wait_status) : "");
    w.EndObject();
  }
  w.EndArray().EndObject();
  out.push_back('\n');
  return out;
}

void Supervisor::WriteState() {
  dirty_ = false;
  const std::string path = (fs::path(config_.data_dir) / "supervisor.json").string();
  if (Status s = WriteFileAtomically(path, StateJson()); !s.ok()) {
    log::Warn(kModule, "state file: " + s.message());
  }
}

}  // namespace resonance::supervise
