#include "cli/observability.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"

namespace resonance::cli {

Status ConfigureLogging(const LoggingConfig& config, const LogFlags& flags, bool use_config_file) {
  log::Options o;
  o.level = config.level;
  o.format = config.format;
  o.max_bytes = config.max_bytes;
  o.keep = config.keep;
  if (use_config_file) o.file = config.file;
  if (!flags.level.empty()) {
    auto l = log::ParseLevel(flags.level);
    if (!l) return Status(Code::kInvalidArgument, "--log-level: must be debug, info, warn or error");
    o.level = *l;
  }
  if (!flags.format.empty()) {
    auto f = log::ParseFormat(flags.format);
    if (!f) return Status(Code::kInvalidArgument, "--log-format: must be json or text");
    o.format = *f;
  }
  if (!flags.file.empty()) o.file = flags.file;
  return log::Configure(o);
}

Result<std::unique_ptr<trace::Exporter>> StartTracing(const TracingConfig& config,
                                                      const std::string& role) {
  if (config.otlp_endpoint.empty()) return std::unique_ptr<trace::Exporter>();
  trace::ExporterOptions o;
  o.endpoint = config.otlp_endpoint;
  o.service_name = config.service_name;
  o.queue_size = static_cast<size_t>(config.queue_size);
  o.batch_size = static_cast<size_t>(config.batch_size);
  o.flush_ms = config.flush_ms;
  o.timeout_ms = config.timeout_ms;
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  o.resource_attributes = {
      {"service.instance.id", std::string(host) + "-" + std::to_string(::getpid())},
      {"service.version", std::string(RESONANCE_VERSION)},
      {"resonance.role", role}};
  auto started = trace::Exporter::Start(std::move(o));
  if (!started.ok()) {
    return Status(started.status().code(), "tracing.otlp_endpoint: " + started.status().message());
  }
  return std::move(*started);
}

int RunWorkerWithObservability(worker::WorkerFlags flags, const LogFlags& log_flags) {
  std::string path = flags.config;
  std::error_code ec;
  if (path.empty() && std::filesystem::exists("resonance.toml", ec)) path = "resonance.toml";
  Config config;
  if (!path.empty() && std::filesystem::exists(path, ec)) {
    auto loaded = LoadConfig(path);
    if (!loaded.ok()) {
      std::cerr << "resonance: config: " << loaded.status().message() << "\n";
      return 2;
    }
    config = std::move(*loaded);
  }
  if (Status s = ConfigureLogging(config.logging, log_flags, false); !s.ok()) {
    std::cerr << "resonance: " << s.message() << "\n";
    return 2;
  }
  auto tracer = StartTracing(config.tracing, "worker");
  if (!tracer.ok()) {
    std::cerr << "resonance: config: " << tracer.status().message() << "\n";
    return 2;
  }
  flags.tracer = tracer->get();
  const int code = worker::RunWorker(flags);
  if (*tracer) (*tracer)->Shutdown(2000);
  log::Flush();
  return code;
}

}  // namespace resonance::cli
