#include <utility>  // before Asio: Boost 1.74 + g++ 12

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "cli/alert_loop.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "engine/credentials.h"
#include "engine/engine.h"
#include "engine/scheduler.h"
#include "http/api.h"
#include "http/server.h"
#include "ledger/verifier.h"
#include "observe/log.h"
#include "observe/process_metrics.h"
#include "store/sqlite/sqlite_store.h"
#include "supervise/up_config.h"

namespace resonance::cli {
namespace fs = std::filesystem;

namespace {

Status WriteFileAtomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    if (!f) return Status(Code::kUnavailable, "cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status(Code::kUnavailable, "cannot rename to " + path.string() + ": " + ec.message());
  return Status::Ok();
}

// An exclusive flock on DATA_DIR/server.lock for the life of the process, so a second
// server cannot open the same store. The file holds the owner's pid for the message.
class DataDirLock {
 public:
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Acquire(const fs::path& dir) {
    const fs::path path = dir / "server.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status(Code::kUnavailable, "cannot open " + path.string());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {0};
      ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Status(Code::kConflict, "data dir " + dir.string() +
                                         " is in use by another resonance server (pid " + pid + ")");
    }
    std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
      return Status(Code::kUnavailable, "cannot write " + path.string());
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

// Runs engine.Tick() every interval on the io context until the server stops, and
// sooner when a lane held back by a rate limit, pause or breaker may run again (so a
// limit of 20/s is not rounded to the sweep interval).
class Sweeper {
 public:
  Sweeper(boost::asio::io_context& io, Engine& engine, const Clock& clock, int interval_ms)
      : timer_(io), engine_(engine), clock_(clock), interval_(interval_ms) {}
  void Start() {
    std::chrono::microseconds wait = interval_;
    if (auto due = engine_.NextFlowWake()) {
      const Micros until = std::max<Micros>(0, *due - clock_.Now());
      wait = std::min<std::chrono::microseconds>(wait, std::chrono::microseconds(until));
    }
    timer_.expires_after(wait);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      engine_.Tick();
      Start();
    });
  }

 private:
  boost::asio::steady_timer timer_;
  Engine& engine_;
  const Clock& clock_;
  std::chrono::microseconds interval_;
};

// Runs credentials.Tick() (refreshes due, expiry warnings) once a second.
class CredentialTicker {
 public:
  CredentialTicker(boost::asio::io_context& io, Credentials& credentials)
      : timer_(io), credentials_(credentials) {}
  void Start() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      credentials_.Tick();
      Start();
    });
  }

 private:
  boost::asio::steady_timer timer_;
  Credentials& credentials_;
};

// The p99 of the commits since the last call, from the commit-time histogram's
// cumulative buckets (linear within the bucket); nullopt when none happened.
std::function<std::optional<double>()> CommitP99Since(metrics::Histogram* h) {
  if (!h) return nullptr;
  auto last = std::make_shared<metrics::Histogram::Snapshot>(h->Read());
  return [h, last]() -> std::optional<double> {
    metrics::Histogram::Snapshot now = h->Read();
    const uint64_t count = now.count - last->count;
    std::optional<double> out;
    if (count > 0) {
      const double rank = 0.99 * static_cast<double>(count);
      const auto& bounds = h->bounds();
      for (size_t i = 0; i < now.cumulative.size(); ++i) {
        const double below = i == 0 ? 0 : static_cast<double>(now.cumulative[i - 1] - last->cumulative[i - 1]);
        const double upto = static_cast<double>(now.cumulative[i] - last->cumulative[i]);
        if (upto >= rank) {
          const double lo = i == 0 ? 0 : bounds[i - 1];
          const double hi = i < bounds.size() ? bounds[i] : bounds.back();
          out = upto > below ? lo + (hi - lo) * (rank - below) / (upto - below) : hi;
          break;
        }
      }
    }
    *last = std::move(now);
    return out;
  };
}

// Scrape-time figures: engine gauges, dead letters (from the store), and the
// tallies of the tracer and the logger.
void RegisterServerCollectors(metrics::Registry& r, EngineMetrics& em, Engine& engine,
                              Store& store, const std::vector<supervise::PoolSpec>& pools,
                              trace::Exporter* tracer, const EventHub& events) {
  std::vector<std::string> names;
  auto& target = r.AddGauge("resonance_workers_target",
                            "Workers the [[pools]] table of the server's config asks for.",
                            {"pool"});
  for (const auto& p : pools) {
    names.push_back(p.name);
    target.With({p.name}).Set(p.workers);
  }
  em.CollectFrom(engine, names);
  auto& dead = r.AddGauge("resonance_dead_letters", "Tasks in the dead-letter queue.");
  auto& exported = r.AddScrapedCounter("resonance_trace_spans_exported_total",
                                       "Spans the OTLP endpoint accepted.");
  auto& dropped = r.AddScrapedCounter("resonance_trace_spans_dropped_total",
                                      "Spans lost: queue_full or export_failed.", {"reason"});
  auto& log_dropped = r.AddScrapedCounter("resonance_log_lines_dropped_total",
                                          "Log lines dropped because the writer fell behind.");
  auto& sse_clients = r.AddGauge("resonance_sse_clients", "Open live event streams (SSE).");
  auto& sse_dropped = r.AddScrapedCounter(
      "resonance_sse_clients_dropped_total",
      "Event streams closed because the client fell behind by more than sse_client_buffer_bytes.");
  auto& held = r.AddScrapedCounter(
      "resonance_flow_held_total",
      "Times a lane of ready tasks was held back at lease time, by reason: rate, concurrency, "
      "backpressure or breaker.",
      {"reason"});
  auto& pauses = r.AddScrapedCounter(
      "resonance_flow_pauses_total",
      "Backpressure pauses: rate_limited failures with retry_after_s that paused their key.");
  auto& breaker_state = r.AddGauge(
      "resonance_breaker_state", "Circuit breaker per action: 0 closed, 1 open, 2 half_open.",
      {"action"});
  auto& breaker_opened = r.AddScrapedCounter("resonance_breaker_opened_total",
                                             "Times an action's circuit breaker opened.",
                                             {"action"});
  r.OnScrape([&, tracer] {
    const FlowSnapshot flow = engine.Flow();
    static const char* const kReasons[] = {"rate", "concurrency", "backpressure", "breaker"};
    for (int i = 0; i < 4; ++i) held.With({kReasons[i]}).Set(static_cast<double>(flow.held[i]));
    pauses.With({}).Set(static_cast<double>(flow.pauses));
    for (const auto& b : flow.breakers) {
      breaker_state.With({b.action}).Set(b.state == "closed" ? 0 : b.state == "open" ? 1 : 2);
      breaker_opened.With({b.action}).Set(static_cast<double>(b.opened_total));
    }
    sse_clients.With({}).Set(static_cast<double>(events.subscribers()));
    sse_dropped.With({}).Set(static_cast<double>(events.dropped_total()));
    if (auto n = store.CountTasks(TaskState::kDead); n.ok()) {
      dead.With({}).Set(static_cast<double>(*n));
    }
    exported.With({}).Set(tracer ? static_cast<double>(tracer->exported()) : 0);
    dropped.With({"queue_full"}).Set(tracer ? static_cast<double>(tracer->dropped_queue_full()) : 0);
    dropped.With({"export_failed"})
        .Set(tracer ? static_cast<double>(tracer->dropped_export_failed()) : 0);
    log_dropped.With({}).Set(static_cast<double>(log::Dropped()));
  });
}

}  // namespace

int RunServer(const ServerFlags& flags) {
  Config config;
  std::string config_path = flags.config;
  if (config_path.empty() && fs::exists("resonance.toml")) config_path = "resonance.toml";
  if (!config_path.empty()) {
    auto loaded = LoadConfig(config_path);
    if (!loaded.ok()) {
      std::cerr << "resonance: config: " << loaded.status().message() << "\n";
      return 2;
    }
    config = std::move(*loaded);
  }
  if (!flags.listen.empty()) config.listen = flags.listen;
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  if (Status s = ConfigureLogging(config.logging, flags.log, true); !s.ok()) {
    std::cerr << "resonance: " << s.message() << "\n";
    return 2;
  }
  // Pools the config asks `resonance up` to run: their worker targets are metrics.
  std::vector<supervise::PoolSpec> pools;
  if (!config_path.empty()) {
    auto up = supervise::LoadUpConfig(config_path);
    if (!up.ok()) {
      std::cerr << "resonance: config: " << up.status().message() << "\n";
      return 2;
    }
    pools = up->pools;
  }

  http::ServerOptions server_options;
  if (Status s = SplitHostPort(config.listen, server_options.host, server_options.port); !s.ok()) {
    std::cerr << "resonance: " << s.message() << "\n";
    return 2;
  }
  server_options.max_body_bytes = static_cast<size_t>(config.max_body_bytes);
  server_options.header_timeout_ms = config.header_timeout_ms;
  server_options.body_timeout_ms = config.body_timeout_ms;
  server_options.threads = config.io_threads;

  std::error_code ec;
  fs::create_directories(config.data_dir, ec);
  if (ec) {
    std::cerr << "resonance: cannot create data dir " << config.data_dir << ": " << ec.message() << "\n";
    return 1;
  }
  DataDirLock dir_lock;
  if (Status s = dir_lock.Acquire(config.data_dir); !s.ok()) {
    std::cerr << "resonance: " << s.message() << "\n";
    return 1;
  }
  const fs::path addr_file = fs::path(config.data_dir) / "listen.addr";
  fs::remove(addr_file, ec);

  // Observability first: the store, engine and server count into the registry.
  std::unique_ptr<metrics::Registry> registry;
  std::unique_ptr<EngineMetrics> engine_metrics;
  metrics::Histogram* commit_seconds = nullptr;
  metrics::Histogram* commit_batches = nullptr;
  if (config.metrics.enabled) {
    registry = std::make_unique<metrics::Registry>();
    metrics::RegisterProcessMetrics(*registry, RESONANCE_VERSION);
    engine_metrics = std::make_unique<EngineMetrics>(
        *registry, static_cast<size_t>(config.metrics.max_actions),
        static_cast<size_t>(config.metrics.max_queues));
    commit_seconds = &registry
                          ->AddHistogram("resonance_store_commit_seconds",
                                         "One group commit, begin to durable (with the fsync).",
                                         {}, metrics::CommitSecondsBuckets())
                          .With({});
    commit_batches = &registry
                          ->AddHistogram("resonance_store_commit_batch_size",
                                         "Write batches (client requests) joined in one commit.",
                                         {}, metrics::BatchSizeBuckets())
                          .With({});
  }
  auto tracer = StartTracing(config.tracing, "server");
  if (!tracer.ok()) {
    std::cerr << "resonance: config: " << tracer.status().message() << "\n";
    return 2;
  }
  server_options.metrics = registry.get();
  server_options.tracer = tracer->get();
  server_options.access_log = config.logging.access_log;

  // Live event streams hold subscriptions until the server's sessions are gone: the hub
  // outlives the server.
  EventHub events({static_cast<size_t>(config.sse_client_buffer_bytes)});
  // The io context exists before the store so committed groups can be delivered to it.
  http::Router router;
  http::Server server(router, server_options);
  SqliteStoreOptions store_options;
  if (registry) {
    store_options.on_commit = [commit_seconds, commit_batches](double seconds, size_t batches) {
      commit_seconds->Observe(seconds);
      commit_batches->Observe(static_cast<double>(batches));
    };
  }
  store_options.deliver = [&io = server.io()](std::function<void()> run) {
    boost::asio::post(io, std::move(run));
  };
  store_options.path = (fs::path(config.data_dir) / "resonance.db").string();
  store_options.durability = config.durability;
  auto store = SqliteStore::Open(store_options);
  if (!store.ok()) {
    std::cerr << "resonance: store: " << store.status().message() << "\n";
    return 1;
  }

  SystemClock clock;
  EngineOptions engine_options;
  engine_options.retry = config.retry;
  engine_options.ledger_checkpoint_every = config.ledger_checkpoint_every;
  engine_options.worker_heartbeat = config.worker_heartbeat_ms * kMicrosPerMilli;
  engine_options.worker_lost_after = config.worker_lost_after_ms * kMicrosPerMilli;
  engine_options.metrics = engine_metrics.get();
  engine_options.events = &events;
  engine_options.flow = config.flow;
  engine_options.max_followup_depth = config.followups_max_depth;
  engine_options.check_followup = [&actions = config.actions](const NewTask& t,
                                                              const std::string& prefix) {
    return actions.Check(t.action, t.payload, prefix);
  };
  Engine engine(**store, clock, engine_options);
  if (Status s = engine.Recover(); !s.ok()) {
    std::cerr << "resonance: recovery failed: " << s.message() << "\n";
    return 1;
  }

  Credentials credentials(engine, **store, clock, config.credentials);
  if (Status s = credentials.Load(); !s.ok()) {
    std::cerr << "resonance: credentials: " << s.message() << "\n";
    return 1;
  }
  if (registry) credentials.RegisterMetrics(*registry);
  if (registry) RegisterServerCollectors(*registry, *engine_metrics, engine, **store, pools,
                                        tracer->get(), events);
  Scheduler scheduler(engine, **store, clock);
  if (Status s = scheduler.Load(config.schedules, config.target_sets); !s.ok()) {
    std::cerr << "resonance: " << (s.code() == Code::kInvalidArgument ? "config: " : "schedules: ")
              << s.message() << "\n";
    return s.code() == Code::kInvalidArgument ? 2 : 1;
  }
  if (registry) scheduler.RegisterMetrics(*registry);
  std::unique_ptr<AlertLoop> alert_loop;
  if (config.alerts.enabled) {
    SignalSources sources;
    sources.schedule_gaps = [&scheduler] { return scheduler.OpenGaps(); };
    for (const auto& p : pools) sources.pool_targets[p.name] = p.workers;
    sources.commit_p99 = CommitP99Since(commit_seconds);
    sources.baselines = config.baselines;
    sources.credentials = [&credentials] { return credentials.List(); };
    alert_loop = std::make_unique<AlertLoop>(config.alerts, config.canaries, config.data_dir,
                                             engine, **store, std::move(sources),
                                             config.history_keep_days);
    if (Status s = alert_loop->Start(); !s.ok()) {
      std::cerr << "resonance: alerts: " << s.message() << "\n";
      return 2;
    }
    if (registry) alert_loop->RegisterMetrics(*registry);
  }
  http::Api api(engine, **store, clock, server.io(),
                {config.data_dir, registry.get(), tracer->get(), config.sse_keepalive_ms,
                 config.baselines, alert_loop ? &alert_loop->engine() : nullptr,
                 &config.actions, &scheduler, &credentials});
  api.Register(router);
  if (Status s = server.Listen(); !s.ok()) {
    std::cerr << "resonance: " << s.message() << "\n";
    return 1;
  }
  const bool v6 = server_options.host.find(':') != std::string::npos;
  const std::string bound = (v6 ? "[" + server_options.host + "]" : server_options.host) + ":" +
                            std::to_string(server.bound_port());
  if (Status s = WriteFileAtomically(addr_file, bound + "\n"); !s.ok()) {
    std::cerr << "resonance: " << s.message() << "\n";
    return 1;
  }
  api.SetReady(true);
  log::Info("server", "listening on http://" + bound + " (data dir " + config.data_dir +
                          ", durability " +
                          (config.durability == Durability::kFsync ? "fsync" : "os") + ")");

  Sweeper sweeper(server.io(), engine, clock, config.sweep_interval_ms);
  sweeper.Start();
  scheduler.Start();
  CredentialTicker credential_ticker(server.io(), credentials);
  credential_ticker.Start();
  boost::asio::signal_set signals(server.io(), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code err, int sig) {
    if (err) return;
    log::Info("server", "signal " + std::to_string(sig) + ": draining and stopping");
    api.SetReady(false);
    engine.ReleaseWaiters();
    server.Shutdown(config.shutdown_grace_ms);
  });
  server.Run();
  scheduler.Stop();
  if (alert_loop) alert_loop->Stop();
  (*store)->Close();
  fs::remove(addr_file, ec);
  if (*tracer) (*tracer)->Shutdown(2000);
  log::Info("server", "stopped; store flushed");
  log::Flush();
  return 0;
}

int VerifyLedger(const std::string& data_dir) {
  const std::string path = (fs::path(data_dir) / "resonance.db").string();
  if (!fs::exists(path)) {
    std::cerr << "ledger verify: no database at " << path << "\n";
    return 1;
  }
  auto store = SqliteStore::OpenReadOnly(path);
  if (!store.ok()) {
    std::cerr << "ledger verify: " << store.status().message() << "\n";
    return 1;
  }
  LedgerVerifier verifier;
  int64_t after = 0;
  for (;;) {
    auto page = (*store)->ReadLedger(after, 10000);
    if (!page.ok()) {
      std::cerr << "ledger verify: " << page.status().message() << "\n";
      return 1;
    }
    if (page->empty()) break;
    for (const auto& r : *page) {
      if (Status s = verifier.Add(r); !s.ok()) {
        std::cerr << "ledger verify: FAILED: " << s.message() << "\n";
        return 1;
      }
      after = r.seq;
    }
  }
  if (Status s = verifier.Finish(); !s.ok()) {
    std::cerr << "ledger verify: FAILED: " << s.message() << "\n";
    return 1;
  }
  const auto& sum = verifier.summary();
  std::cout << "ledger verify: ok: " << sum.records << " records";
  if (sum.records > 0) std::cout << ", seq " << sum.first_seq << ".." << sum.last_seq;
  std::cout << ", " << sum.checkpoints << " checkpoints\n";
  return 0;
}

}  // namespace resonance::cli
