#pragma once

#include <string>

#include "core/baselines.h"
#include "core/retry_policy.h"
#include "core/status.h"
#include "engine/alert_rules.h"
#include "engine/credentials.h"
#include "engine/flow_control.h"
#include "engine/schedule_spec.h"
#include "http/json_schema.h"
#include "observe/log.h"
#include "store/store.h"

namespace resonance {

// [logging]: the server's log (workers take --log-* flags; docs/observability.md).
struct LoggingConfig {
  log::Level level = log::Level::kInfo;
  log::Format format = log::Format::kJson;
  std::string file;                 // empty: stderr
  int64_t max_bytes = 100LL << 20;  // rotate past this; 0 = never
  int keep = 5;                     // rotated files kept
  bool access_log = true;           // an info line per HTTP request
};

// [metrics]
struct MetricsConfig {
  bool enabled = true;     // GET /metrics and the counting behind it
  int max_actions = 100;   // distinct action label values before "other"
  int max_queues = 100;    // distinct queue label values before "other"
};

// [tracing]: OTLP/HTTP JSON export, off while otlp_endpoint is empty.
struct TracingConfig {
  std::string otlp_endpoint;  // e.g. http://127.0.0.1:4318/v1/traces
  std::string service_name = "resonance";
  int queue_size = 8192;
  int batch_size = 512;
  int flush_ms = 1000;
  int timeout_ms = 2000;
};

// [alerts] (docs/alerts.md).
struct AlertSinkConfig {
  std::string type;  // log, file, alertmanager, webhook
  std::string url;   // alertmanager: its base URL; webhook: where to POST
};
struct AlertsConfig {
  bool enabled = true;
  int interval_ms = 5000;  // one evaluation round
  int hold_s = 60;         // a firing alert resolves after this long clear
  int resend_s = 300;      // firing alerts are sent to Alertmanager again this often
  std::vector<RuleSpec> rules = BuiltinRules();
  std::vector<AlertSinkConfig> sinks = {{"log", ""}, {"file", ""}};
};

// Everything `resonance server` reads from resonance.toml (docs/configuration.md lists
// every key with its default). Value type.
struct Config {
  std::string listen = "127.0.0.1:8091";
  std::string data_dir = "var";
  Durability durability = Durability::kFsync;
  int64_t max_body_bytes = 1 << 20;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 30000;
  int sweep_interval_ms = 50;
  int io_threads = 1;
  int shutdown_grace_ms = 10000;
  int64_t ledger_checkpoint_every = 100000;
  int worker_heartbeat_ms = 5000;
  int worker_lost_after_ms = 15000;
  int history_keep_days = 31;  // task history (stats rows) kept; reports reach back 30 days
  int sse_keepalive_ms = 15000;               // keep-alive comment on idle event streams
  int64_t sse_client_buffer_bytes = 1 << 20;  // pending events before a client is dropped
  RetryPolicies retry;
  LoggingConfig logging;
  MetricsConfig metrics;
  TracingConfig tracing;
  BaselineOptions baselines;  // [baselines]
  AlertsConfig alerts;        // [alerts]
  std::vector<CanaryConfig> canaries;  // [[canaries]]
  http::ActionRegistry actions;        // [actions."NAME"] schema, credentials; [registry] strict
  // [queues."NAME"] and [actions."NAME"] limits, [breaker], [actions."NAME".breaker]
  // (docs/flow-control.md).
  FlowOptions flow;
  std::vector<ScheduleSpec> schedules;  // [schedules.NAME] (docs/schedules.md)
  std::map<std::string, std::vector<std::string>> target_sets;  // [target_sets] NAME = [...]
  int followups_max_depth = 10;        // [followups] max_depth (docs/follow-ups.md)
  std::vector<CredentialSpec> credentials;  // [credentials.NAME] (docs/credentials.md)
};

// Reads a TOML file. kInvalidArgument naming the key (and the file) on a wrong type,
// an unknown key or a value out of range; kNotFound when the file does not exist.
Result<Config> LoadConfig(const std::string& path);

// Splits "host:port". kInvalidArgument when malformed.
Status SplitHostPort(const std::string& listen, std::string& host, uint16_t& port);

}  // namespace resonance
