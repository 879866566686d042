#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ledger_record.h"
#include "core/minute_stats.h"
#include "core/status.h"
#include "store/store.h"

// `resonance report`: what happened in the last N hours, read from a data dir.
// Gathering (BuildReport) reads the store into a plain Report; rendering
// (RenderMarkdown, RenderHtml) is pure, so the same numbers reach both formats.
// docs/reports.md describes every section and where its numbers come from.
namespace resonance::cli {

// One (class, message) of failed attempts and how often it happened.
struct ErrorCount {
  std::string error_class;
  std::string message;
  int64_t count = 0;
};

struct ActionStats {
  std::string queue;
  std::string action;
  MinuteStats stats;
};

// A worker that went away (lost) or came back without a recorded loss (restart), and
// when it registered again (nullopt: not in the window).
struct WorkerHeal {
  std::string worker;
  std::string cause;  // "lost" or "restart"
  Micros since = 0;   // the loss, or the departure (deregistration / earlier registration)
  std::optional<Micros> back_at;
};

struct WorkerSummary {
  int64_t registrations = 0;
  int64_t restarts = 0;
  int64_t losses = 0;
  int64_t deregistrations = 0;
  std::vector<WorkerHeal> heals;  // in ledger order
};

// One firing episode of one alert (fingerprint).
struct AlertEpisode {
  std::string fingerprint;
  std::string name;
  std::string labels;  // "k=v, k=v"
  std::string severity;
  Micros fired_at = 0;
  std::optional<Micros> resolved_at;  // nullopt: still firing at the end of the window
};

struct CanaryQueue {
  std::string queue;
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t missing = 0;
  std::string last_outcome;
  std::vector<double> latencies_s;  // sorted ascending
};

// Everything the report shows. Plain data.
struct Report {
  Micros from = 0;  // window start
  Micros to = 0;    // window end (now)
  int hours = 0;
  MinuteStats total;
  std::vector<ActionStats> actions;  // by queue, action
  std::vector<MinuteStats> hourly;   // hours entries; hour i starts at from + i h
  // Open tasks per queue at from + i h for i = 0..hours (hours + 1 points).
  std::vector<std::string> depth_queues;        // sorted
  std::vector<std::vector<int64_t>> depth;      // [queue][point]
  int64_t dead_letters = 0;                     // task.dead events in the window
  std::vector<ErrorCount> dead_errors;          // top 10, most frequent first
  WorkerSummary workers;
  std::vector<AlertEpisode> alerts;             // by fired_at
  std::vector<CanaryQueue> canary;              // by queue
  std::vector<ErrorCount> top_errors;           // task.failed + task.dead, top 10
};

constexpr Micros kMicrosPerHour = 3600 * kMicrosPerSecond;

// Reads the window [now - hours h, now] from the store. Fails only when a read fails.
Result<Report> BuildReport(Store& store, Micros now, int hours);

// Folds ledger records (any order by seq; those outside the window are skipped) into
// the dead-letter, worker, alert, canary and error sections of `report`.
void AddLedger(Report& report, const std::vector<LedgerRecord>& records);

std::string RenderMarkdown(const Report& report);
// One self-contained HTML document: inline CSS and SVG, no scripts, no external URLs.
std::string RenderHtml(const Report& report);

struct ReportFlags {
  std::string data_dir = "var";
  int hours = 24;
  std::string format = "md";
  std::string out;  // empty: stdout
};
// `resonance report`: opens DIR/resonance.db read-only. 0 on success, 1 on failure.
int RunReport(const ReportFlags& flags);

}  // namespace resonance::cli
