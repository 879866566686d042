// The scheduler's API operations, answers and metrics (docs/api.md, "Schedules").
#include <algorithm>
#include <set>

#include "core/json_writer.h"
#include "engine/scheduler.h"
#include "observe/log.h"

namespace resonance {
namespace {

constexpr size_t kMaxItems = 100000;
constexpr size_t kMaxItemLength = 500;

}  // namespace

std::string Scheduler::ScheduleJson(const Entry& e, Micros now) const {
  std::string out = "{" + ScheduleSpecFields(e.spec) + ",";
  JsonWriter w(out);
  w.Key("source").String(e.from_config ? "config" : "api");
  w.Key("created_at").Time(e.created_at).Key("last_slot").TimeOrNull(e.last_slot);
  w.Key("next_run_at");
  std::optional<Micros> next;
  if (!e.spec.paused) next = e.cron->Next(std::max({now, e.last_slot, e.created_at}));
  if (next) {
    w.Time(*next);
  } else {
    w.Null();
  }
  w.Key("checked_through").TimeOrNull(e.spec.gap_grace > 0 ? e.checked_through : 0);
  int64_t open = 0;
  for (const auto& [id, g] : open_gaps_) open += g.info.schedule == e.spec.name ? 1 : 0;
  w.Key("open_gaps").Int(open);
  out += "}";
  return out;
}

std::string Scheduler::TargetSetJson(const std::string& name, const TargetSet& s) const {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("name").String(name).Key("source").String(s.from_config ? "config" : "api");
  w.Key("items").BeginArray();
  for (const auto& item : s.items) w.String(item);
  w.EndArray().Key("updated_at").Time(s.updated_at).EndObject();
  return out;
}

void Scheduler::Create(ScheduleSpec spec, JsonDone done) {
  std::lock_guard lock(mu_);
  const Micros now = clock_.Now();
  const std::string name = spec.name;
  if (schedules_.count(name)) {
    return done(Status(Code::kConflict, "a schedule named '" + name + "' exists"), "");
  }
  Entry e;
  e.spec = std::move(spec);
  if (Status s = Compile(e, Code::kUnprocessable); !s.ok()) return done(s, "");
  if (!e.spec.target_set.empty() && !sets_.count(e.spec.target_set)) {
    return done(
        Status(Code::kUnprocessable, "target_set: no target set named '" + e.spec.target_set + "'"),
        "");
  }
  e.created_at = now;
  e.checked_through = now;
  if (e.spec.paused) e.paused_at = now;
  std::string json = ScheduleJson(e, now);
  std::string data = "{" + ScheduleSpecFields(e.spec) + ",\"source\":\"api\"}";
  Record r = RecordOf(e);
  schedules_[name] = std::move(e);
  ++submitted_;
  engine_.RecordEvent("schedule.created", std::move(data),
                      [durable = durable_, done, json = std::move(json)](const Status& s) {
                        ++*durable;
                        done(s, json);
                      },
                      {PutRecord{std::move(r)}});
}

void Scheduler::SetPaused(const std::string& name, bool paused, JsonDone done) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(name);
  if (it == schedules_.end())
    return done(Status(Code::kNotFound, "no schedule named '" + name + "'"), "");
  Entry& e = it->second;
  const Micros now = clock_.Now();
  if (e.spec.paused == paused) {
    std::string json = ScheduleJson(e, now);
    return engine_.Barrier([done, json](const Status& s) { done(s, json); });
  }
  e.spec.paused = paused;
  if (paused) {
    e.paused_at = now;
  } else {
    // Slots that came due while paused are neither enqueued nor gaps.
    const Micros through = e.cron->Previous(now).value_or(0);
    e.quiet_from = e.paused_at;
    e.quiet_through = through;
    e.last_slot = std::max(e.last_slot, through);
    e.paused_at = 0;
  }
  std::string json = ScheduleJson(e, now);
  ++submitted_;
  engine_.RecordEvent(paused ? "schedule.paused" : "schedule.resumed",
                      "{\"schedule\":\"" + name + "\"}",
                      [durable = durable_, done, json = std::move(json)](const Status& s) {
                        ++*durable;
                        done(s, json);
                      },
                      {PutRecord{RecordOf(e)}});
}

void Scheduler::Delete(const std::string& name, Done done) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(name);
  if (it == schedules_.end())
    return done(Status(Code::kNotFound, "no schedule named '" + name + "'"));
  if (it->second.from_config) {
    return done(
        Status(Code::kConflict,
               "schedule '" + name + "' is defined in the config: remove it there (or pause it)"));
  }
  schedules_.erase(it);
  std::vector<Mutation> writes = {DeleteRecord{kScheduleRecord, name}};
  const Micros now = clock_.Now();
  for (auto g = open_gaps_.begin(); g != open_gaps_.end();) {
    if (g->second.info.schedule != name) {
      ++g;
      continue;
    }
    GapInfo closed = g->second.info;
    closed.open = false;
    closed.closed_at = now;
    writes.push_back(PutRecord{RecordOf(closed)});
    g = open_gaps_.erase(g);
  }
  ++submitted_;
  engine_.RecordEvent(
      "schedule.deleted", "{\"schedule\":\"" + name + "\",\"source\":\"api\"}",
      [durable = durable_, done](const Status& s) {
        ++*durable;
        done(s);
      },
      std::move(writes));
}

Result<std::string> Scheduler::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(name);
  if (it == schedules_.end()) return Status(Code::kNotFound, "no schedule named '" + name + "'");
  return ScheduleJson(it->second, clock_.Now());
}

std::string Scheduler::List() {
  std::lock_guard lock(mu_);
  const Micros now = clock_.Now();
  std::string out = "{\"schedules\":[";
  bool first = true;
  for (const auto& [name, e] : schedules_) {
    if (!first) out += ',';
    first = false;
    out += ScheduleJson(e, now);
  }
  return out + "]}";
}

void Scheduler::PutTargetSet(const std::string& name, std::vector<std::string> items,
                             JsonDone done) {
  if (items.size() > kMaxItems) {
    return done(Status(Code::kInvalidArgument, "items: at most " + std::to_string(kMaxItems)), "");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string field = "items[" + std::to_string(i) + "]";
    if (items[i].empty() || items[i].size() > kMaxItemLength) {
      return done(
          Status(Code::kInvalidArgument,
                 field + ": must be 1 to " + std::to_string(kMaxItemLength) + " characters"),
          "");
    }
    if (!seen.insert(items[i]).second) {
      return done(Status(Code::kInvalidArgument, field + ": '" + items[i] + "' is listed twice"),
                  "");
    }
  }
  std::lock_guard lock(mu_);
  auto it = sets_.find(name);
  if (it != sets_.end() && it->second.from_config) {
    return done(
        Status(Code::kConflict, "target set '" + name +
                                    "' is defined in the config ([target_sets]): change it there"),
        "");
  }
  TargetSet s{std::move(items), false, clock_.Now()};
  std::string json = TargetSetJson(name, s);
  std::string data;
  JsonWriter(data)
      .BeginObject()
      .Key("target_set")
      .String(name)
      .Key("items")
      .Int(static_cast<int64_t>(s.items.size()))
      .EndObject();
  Record r{kTargetSetRecord, name, "", s.updated_at, true, json};
  sets_[name] = std::move(s);
  ++submitted_;
  engine_.RecordEvent("target_set.put", std::move(data),
                      [durable = durable_, done, json = std::move(json)](const Status& st) {
                        ++*durable;
                        done(st, json);
                      },
                      {PutRecord{std::move(r)}});
}

void Scheduler::DeleteTargetSet(const std::string& name, Done done) {
  std::lock_guard lock(mu_);
  auto it = sets_.find(name);
  if (it == sets_.end()) return done(Status(Code::kNotFound, "no target set named '" + name + "'"));
  if (it->second.from_config) {
    return done(Status(
        Code::kConflict,
        "target set '" + name + "' is defined in the config ([target_sets]): remove it there"));
  }
  for (const auto& [sname, e] : schedules_) {
    if (e.spec.target_set == name) {
      return done(
          Status(Code::kConflict, "target set '" + name + "' is used by schedule '" + sname + "'"));
    }
  }
  sets_.erase(it);
  ++submitted_;
  engine_.RecordEvent("target_set.deleted", "{\"target_set\":\"" + name + "\"}",
                      [durable = durable_, done](const Status& s) {
                        ++*durable;
                        done(s);
                      },
                      {DeleteRecord{kTargetSetRecord, name}});
}

Result<std::string> Scheduler::GetTargetSet(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = sets_.find(name);
  if (it == sets_.end()) return Status(Code::kNotFound, "no target set named '" + name + "'");
  return TargetSetJson(name, it->second);
}

std::string Scheduler::ListTargetSets() {
  std::lock_guard lock(mu_);
  std::string out = "{\"target_sets\":[";
  bool first = true;
  for (const auto& [name, s] : sets_) {
    if (!first) out += ',';
    first = false;
    out += TargetSetJson(name, s);
  }
  return out + "]}";
}

Result<std::vector<GapInfo>> Scheduler::Gaps(const std::string& schedule, int limit) {
  auto records = store_.ListRecords({kGapRecord, schedule, false, limit});
  if (!records.ok()) return records.status();
  std::vector<GapInfo> out;
  std::lock_guard lock(mu_);
  for (const Record& r : *records) {
    // Open gaps: memory is newer than the store (a close may still be committing).
    auto open = open_gaps_.find(r.name);
    if (open != open_gaps_.end()) {
      out.push_back(open->second.info);
      continue;
    }
    auto parsed = ParseGapRecord(r.value);
    if (!parsed.ok()) return parsed.status();
    out.push_back(std::move(*parsed));
  }
  return out;
}

std::map<std::string, int64_t> Scheduler::OpenGaps() {
  std::lock_guard lock(mu_);
  std::map<std::string, int64_t> out;
  for (const auto& [name, e] : schedules_) out[name] = 0;
  for (const auto& [id, g] : open_gaps_) {
    if (schedules_.count(g.info.schedule)) ++out[g.info.schedule];
  }
  return out;
}

void Scheduler::RegisterMetrics(metrics::Registry& registry) {
  auto& slots =
      registry.AddScrapedCounter("resonance_schedule_slots_total",
                                 "Schedule slots enqueued since the server started.", {"schedule"});
  auto& gaps =
      registry.AddScrapedCounter("resonance_schedule_gaps_total",
                                 "Schedule gaps detected since the server started.", {"schedule"});
  auto& open = registry.AddGauge("resonance_schedule_gaps_open",
                                 "Schedule gaps not closed by a succeeded task yet.", {"schedule"});
  registry.OnScrape([this, &slots, &gaps, &open] {
    std::lock_guard lock(mu_);
    open.Clear();
    for (const auto& [name, e] : schedules_) {
      slots.With({name}).Set(static_cast<double>(e.slots_total));
      gaps.With({name}).Set(static_cast<double>(e.gaps_total));
      open.With({name}).Set(0);
    }
    std::map<std::string, int64_t> counts;
    for (const auto& [id, g] : open_gaps_) {
      if (schedules_.count(g.info.schedule)) ++counts[g.info.schedule];
    }
    for (const auto& [name, n] : counts) open.With({name}).Set(static_cast<double>(n));
  });
}

}  // namespace resonance
