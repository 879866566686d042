#include "cli/report.h"

#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "core/time_format.h"
#include "store/sqlite/sqlite_store.h"

namespace resonance::cli {
namespace {

namespace dom = simdjson::dom;

std::string Str(const dom::element& e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v)) return {};
  return std::string(v);
}

std::optional<double> Num(const dom::element& e, const char* key) {
  double d;
  if (e[key].get_double().get(d)) return std::nullopt;
  return d;
}

// Top 10 by count, then class and message for a stable order.
std::vector<ErrorCount> Top(const std::map<std::pair<std::string, std::string>, int64_t>& m) {
  std::vector<ErrorCount> v;
  for (const auto& [k, n] : m) v.push_back({k.first, k.second, n});
  std::stable_sort(v.begin(), v.end(),
                   [](const ErrorCount& a, const ErrorCount& b) { return a.count > b.count; });
  if (v.size() > 10) v.resize(10);
  return v;
}

}  // namespace

void AddLedger(Report& report, const std::vector<LedgerRecord>& records) {
  dom::parser parser;
  std::map<std::pair<std::string, std::string>, int64_t> dead, all;
  std::set<std::string> registered;
  std::map<std::string, Micros> departed;          // worker -> deregistered/lost at
  std::map<std::string, Micros> last_registered;   // worker -> registered at
  std::map<std::string, size_t> open_heal;         // worker -> index in heals
  std::map<std::string, size_t> open_alert;        // fingerprint -> index in alerts
  std::map<std::string, CanaryQueue> canary;
  WorkerSummary& w = report.workers;

  for (const auto& r : records) {
    if (r.ts < report.from || r.ts > report.to) continue;
    dom::element d;
    if (parser.parse(r.data).get(d) || !d.is_object()) continue;
    const std::string& k = r.kind;
    if (k == "task.dead" || k == "task.failed") {
      auto key = std::make_pair(Str(d, "class"), Str(d, "message"));
      ++all[key];
      if (k == "task.dead") {
        ++dead[key];
        ++report.dead_letters;
      }
    } else if (k == "worker.registered") {
      std::string id = Str(d, "worker");
      ++w.registrations;
      bool healed_loss = false;
      if (auto it = open_heal.find(id); it != open_heal.end()) {
        w.heals[it->second].back_at = r.ts;
        open_heal.erase(it);
        healed_loss = true;
      }
      if (registered.count(id)) {
        ++w.restarts;
        // A restart with no loss before it heals from its departure, if one was
        // recorded, else from its previous registration.
        if (!healed_loss) {
          Micros since = departed.count(id) ? departed[id] : last_registered[id];
          w.heals.push_back({id, "restart", since, r.ts});
        }
      }
      registered.insert(id);
      departed.erase(id);
      last_registered[id] = r.ts;
    } else if (k == "worker.lost") {
      std::string id = Str(d, "worker");
      ++w.losses;
      departed[id] = r.ts;
      open_heal[id] = w.heals.size();
      w.heals.push_back({id, "lost", r.ts, std::nullopt});
    } else if (k == "worker.deregistered") {
      ++w.deregistrations;
      departed[Str(d, "worker")] = r.ts;
    } else if (k == "alert.firing" || k == "alert.resolved") {
      std::string fp = Str(d, "fingerprint");
      auto it = open_alert.find(fp);
      if (it == open_alert.end()) {
        AlertEpisode e;
        e.fingerprint = fp;
        e.fired_at = r.ts;
        if (auto since = ParseRfc3339(Str(d, "firing_since")); since) e.fired_at = *since;
        report.alerts.push_back(e);
        it = open_alert.emplace(fp, report.alerts.size() - 1).first;
      }
      AlertEpisode& e = report.alerts[it->second];
      e.name = Str(d, "name");
      e.severity = Str(d, "severity");
      e.labels.clear();
      dom::object labels;
      if (!d["labels"].get_object().get(labels)) {
        for (auto field : labels) {
          std::string_view v;
          if (field.value.get_string().get(v)) continue;
          if (!e.labels.empty()) e.labels += ", ";
          e.labels.append(field.key).append("=").append(v);
        }
      }
      if (k == "alert.resolved") {
        e.resolved_at = r.ts;
        open_alert.erase(it);
      }
    } else if (k == "canary.result") {
      std::string q = Str(d, "queue");
      CanaryQueue& c = canary[q];
      c.queue = q;
      std::string outcome = Str(d, "outcome");
      if (outcome == "ok") ++c.ok;
      if (outcome == "failed") ++c.failed;
      if (outcome == "missing") ++c.missing;
      c.last_outcome = outcome;
      if (auto l = Num(d, "latency_s"); l) c.latencies_s.push_back(*l);
    }
  }
  report.dead_errors = Top(dead);
  report.top_errors = Top(all);
  std::stable_sort(report.alerts.begin(), report.alerts.end(),
                   [](const AlertEpisode& a, const AlertEpisode& b) { return a.fired_at < b.fired_at; });
  for (auto& [q, c] : canary) {
    std::sort(c.latencies_s.begin(), c.latencies_s.end());
    report.canary.push_back(std::move(c));
  }
}

Result<Report> BuildReport(Store& store, Micros now, int hours) {
  Report report;
  report.hours = hours;
  report.to = now;
  report.from = now - hours * kMicrosPerHour;
  report.hourly.resize(hours);

  auto rows = store.ReadStats(MinuteOf(report.from), MinuteOf(report.to), "", "");
  if (!rows.ok()) return rows.status();
  std::map<std::pair<std::string, std::string>, MinuteStats> by_action;
  for (const auto& row : *rows) {
    report.total.Merge(row.stats);
    by_action[{row.queue, row.action}].Merge(row.stats);
    Micros start = row.minute * 60 * kMicrosPerSecond;
    int64_t h = std::clamp<int64_t>((start - report.from) / kMicrosPerHour, 0, hours - 1);
    report.hourly[h].Merge(row.stats);
  }
  for (auto& [k, s] : by_action) report.actions.push_back({k.first, k.second, std::move(s)});

  std::vector<Micros> times;
  for (int i = 0; i <= hours; ++i) times.push_back(report.from + i * kMicrosPerHour);
  auto depth = store.OpenTasksAt(times);
  if (!depth.ok()) return depth.status();
  std::set<std::string> queues;
  for (const auto& p : *depth) queues.insert(p.queue);
  report.depth_queues.assign(queues.begin(), queues.end());
  report.depth.assign(queues.size(), std::vector<int64_t>(times.size(), 0));
  for (const auto& p : *depth) {
    size_t q = std::lower_bound(report.depth_queues.begin(), report.depth_queues.end(), p.queue) -
               report.depth_queues.begin();
    size_t t = (p.at - report.from) / kMicrosPerHour;
    report.depth[q][t] = p.open;
  }

  // The ledger is in ts order (seq order): read pages, keep the window.
  std::vector<LedgerRecord> records;
  int64_t after = 0;
  for (;;) {
    auto page = store.ReadLedger(after, 10000);
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    after = page->back().seq;
    for (auto& r : *page) {
      if (r.ts >= report.from && r.ts <= report.to) records.push_back(std::move(r));
    }
  }
  AddLedger(report, records);
  return report;
}

int RunReport(const ReportFlags& flags) {
  namespace fs = std::filesystem;
  const std::string path = (fs::path(flags.data_dir) / "resonance.db").string();
  if (!fs::exists(path)) {
    std::cerr << "report: no database at " << path << "\n";
    return 1;
  }
  auto store = SqliteStore::OpenReadOnly(path);
  if (!store.ok()) {
    std::cerr << "report: " << store.status().message() << "\n";
    return 1;
  }
  auto report = BuildReport(**store, SystemClock().Now(), flags.hours);
  if (!report.ok()) {
    std::cerr << "report: " << report.status().message() << "\n";
    return 1;
  }
  std::string text = flags.format == "html" ? RenderHtml(*report) : RenderMarkdown(*report);
  if (flags.out.empty()) {
    std::cout << text;
    return 0;
  }
  std::ofstream out(flags.out, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "report: cannot write " << flags.out << "\n";
    return 1;
  }
  return 0;
}

}  // namespace resonance::cli
