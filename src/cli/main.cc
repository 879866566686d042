// resonance: the one binary. Subcommands are wired here; their work lives in cli/*.cc.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/report.h"
#include "core/json_writer.h"
#include "core/percent_encode.h"
#include "http/router.h"
#include "supervise/up_command.h"
#include "worker/worker.h"

namespace {

std::string DefaultServer() {
  const char* env = std::getenv("RESONANCE_SERVER");
  return env && *env ? env : "http://127.0.0.1:8091";
}


}  // namespace

int main(int argc, char** argv) {
  using resonance::cli::ClientCall;
  CLI::App app{"Resonance: a durable task server for automation work"};
  app.require_subcommand(1);
  int rc = 0;

  auto add_log_flags = [](CLI::App* cmd, resonance::cli::LogFlags& f, bool file) {
    cmd->add_option("--log-level", f.level, "debug, info, warn or error (default [logging] level, else info)");
    cmd->add_option("--log-format", f.format, "json or text (default [logging] format, else json)");
    if (file) cmd->add_option("--log-file", f.file, "Log to this file with size-based rotation (default [logging] file for the server, else stderr)");
  };

  // server
  resonance::cli::ServerFlags server_flags;
  auto* server = app.add_subcommand("server", "Run the task server");
  server->add_option("--config", server_flags.config, "TOML config file (default ./resonance.toml if present)");
  server->add_option("--listen", server_flags.listen, "HOST:PORT to listen on (port 0 picks one)");
  server->add_option("--data-dir", server_flags.data_dir, "Directory of the store");
  add_log_flags(server, server_flags.log, true);
  server->callback([&] { rc = resonance::cli::RunServer(server_flags); });

  // worker
  resonance::worker::WorkerFlags worker_flags;
  worker_flags.server = DefaultServer();
  auto* worker = app.add_subcommand("worker", "Lease tasks and run their handlers (docs/workers.md)");
  worker->add_option("--server", worker_flags.server, "Server URL (default $RESONANCE_SERVER or http://127.0.0.1:8091)");
  worker->add_option("--pool", worker_flags.pool, "Pool name: shown in the registry; queues and concurrency default to its [[pools]] entry");
  worker->add_option("--id", worker_flags.worker_id, "Worker id, unique among live workers (default HOST-PID)");
  worker->add_option("--queues", worker_flags.queues, "Queues to lease from, comma-separated (default the pool's, else default)")
      ->delimiter(',');
  worker->add_option("--concurrency", worker_flags.concurrency, "Tasks at once (default the pool's, else 1)")
      ->check(CLI::Range(1, 1000));
  worker->add_option("--config", worker_flags.config, "TOML file with [handlers] (default ./resonance.toml if present)");
  worker->add_option("--drain-grace", worker_flags.drain_grace_s, "Seconds running tasks get to finish on SIGTERM (default 30)")
      ->check(CLI::NonNegativeNumber);
  worker->add_option("--lease-wait-ms", worker_flags.lease_wait_ms, "Long-poll of one lease call, ms (default 5000)")
      ->check(CLI::Range(0, 60000));
  resonance::cli::LogFlags worker_log;
  add_log_flags(worker, worker_log, true);
  worker->callback([&] { rc = resonance::cli::RunWorkerWithObservability(worker_flags, worker_log); });

  // up, status
  resonance::supervise::UpFlags up_flags;
  auto* up = app.add_subcommand("up", "Run the server and every [[pools]] worker as one supervised tree (docs/supervisor.md)");
  up->add_option("--config", up_flags.config, "TOML config file (default ./resonance.toml)");
  up->add_option("--log-level", up_flags.log_level, "debug, info, warn or error: for up and every process it starts");
  up->add_option("--log-format", up_flags.log_format, "json or text: for up and every process it starts");
  up->callback([&] {
    resonance::cli::LogFlags up_log{up_flags.log_level, up_flags.log_format, ""};
    if (auto s = resonance::cli::ConfigureLogging({}, up_log, false); !s.ok()) {
      std::cerr << "resonance: " << s.message() << "\n";
      rc = 2;
      return;
    }
    rc = resonance::supervise::RunUp(up_flags);
    resonance::log::Flush();
  });
  auto* status = app.add_subcommand("status", "Print the supervised tree of `resonance up`: pools, workers, pids, restarts");
  status->add_option("--config", up_flags.config, "TOML config file (default ./resonance.toml)");
  status->callback([&] { rc = resonance::supervise::RunStatus(up_flags); });

  resonance::cli::ClientFlags client;
  client.server = DefaultServer();
  auto add_server_flag = [&](CLI::App* cmd) {
    cmd->add_option("--server", client.server, "Server URL (default $RESONANCE_SERVER or http://127.0.0.1:8091)");
  };

  // enqueue
  std::string action, payload, queue;
  int priority = 0;
  double delay = 0;
  auto* enqueue = app.add_subcommand("enqueue", "Enqueue one task and print it");
  enqueue->add_option("action", action, "What to do, e.g. youtube_learn")->required();
  enqueue->add_option("--payload", payload, "Payload JSON object");
  enqueue->add_option("--queue", queue, "Queue (default \"default\")");
  enqueue->add_option("--priority", priority, "Priority, higher first");
  enqueue->add_option("--delay", delay, "Seconds before the task may run")->check(CLI::NonNegativeNumber);
  add_server_flag(enqueue);
  enqueue->callback([&] {
    std::string body;
    resonance::JsonWriter w(body);
    w.BeginObject().Key("action").String(action);
    if (!queue.empty()) w.Key("queue").String(queue);
    if (!payload.empty()) w.Key("payload").Raw(payload);
    if (priority != 0) w.Key("priority").Int(priority);
    if (delay > 0) w.Key("delay_s").Double(delay);
    w.EndObject();
    rc = ClientCall(client, "POST", "/api/tasks", body);
  });

  // task get
  std::string task_id;
  auto* task = app.add_subcommand("task", "Inspect or act on one task");
  task->require_subcommand(1);
  auto* task_get = task->add_subcommand("get", "Print a task");
  task_get->add_option("id", task_id, "Task id")->required();
  add_server_flag(task_get);
  task_get->callback([&] { rc = ClientCall(client, "GET", "/api/tasks/" + resonance::PercentEncode(task_id), ""); });
  auto* task_cancel = task->add_subcommand("cancel", "Cancel a task");
  task_cancel->add_option("id", task_id, "Task id")->required();
  add_server_flag(task_cancel);
  task_cancel->callback([&] {
    rc = ClientCall(client, "POST", "/api/tasks/" + resonance::PercentEncode(task_id) + "/cancel", "");
  });

  // results
  int count = 20;
  auto* results = app.add_subcommand("results", "Print the most recent finished tasks");
  results->add_option("--count", count, "How many (1-1000)")->check(CLI::Range(1, 1000));
  add_server_flag(results);
  results->callback([&] {
    rc = ClientCall(client, "GET", "/api/results?count=" + std::to_string(count), "");
  });

  // dlq
  auto* dlq = app.add_subcommand("dlq", "Dead-letter queue: list, requeue, delete");
  dlq->require_subcommand(1);
  std::string dlq_queue;
  auto* dlq_list = dlq->add_subcommand("list", "List dead tasks");
  dlq_list->add_option("--queue", dlq_queue, "Only this queue");
  add_server_flag(dlq_list);
  dlq_list->callback([&] {
    std::string target = "/api/dlq";
    if (!dlq_queue.empty()) target += "?queue=" + resonance::PercentEncode(dlq_queue);
    rc = ClientCall(client, "GET", target, "");
  });
  auto* dlq_requeue = dlq->add_subcommand("requeue", "Put a dead task back in its queue");
  dlq_requeue->add_option("id", task_id, "Task id")->required();
  add_server_flag(dlq_requeue);
  dlq_requeue->callback([&] {
    rc = ClientCall(client, "POST", "/api/dlq/" + resonance::PercentEncode(task_id) + "/requeue", "");
  });
  auto* dlq_delete = dlq->add_subcommand("delete", "Delete a dead task");
  dlq_delete->add_option("id", task_id, "Task id")->required();
  add_server_flag(dlq_delete);
  dlq_delete->callback([&] { rc = ClientCall(client, "DELETE", "/api/dlq/" + resonance::PercentEncode(task_id), ""); });

  // ledger verify
  std::string data_dir = "var";
  auto* ledger = app.add_subcommand("ledger", "The hash-chained event ledger");
  ledger->require_subcommand(1);
  auto* verify = ledger->add_subcommand("verify", "Check the chain is whole; names the first bad record");
  verify->add_option("--data-dir", data_dir, "Data dir of a stopped or running server (default var)");
  verify->callback([&] { rc = resonance::cli::VerifyLedger(data_dir); });

  // report
  resonance::cli::ReportFlags report_flags;
  auto* report = app.add_subcommand(
      "report", "Summarise the last N hours of a data dir as Markdown or one HTML file (docs/reports.md)");
  report->add_option("--data-dir", report_flags.data_dir, "Data dir of a stopped or running server (default var)");
  report->add_option("--hours", report_flags.hours, "Window: the last N hours up to now, 1-720 (default 24)")
      ->check(CLI::Range(1, 720));
  report->add_option("--format", report_flags.format, "md (GitHub Markdown) or html (self-contained, inline SVG charts)")
      ->check(CLI::IsMember({"md", "html"}));
  report->add_option("--out", report_flags.out, "Write to this file instead of stdout");
  report->callback([&] { rc = resonance::cli::RunReport(report_flags); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return rc;
}
