// The scheduler's rounds: loading, firing slots, finding and closing gaps. The API
// operations are in scheduler_api.cc.
#include "engine/scheduler.h"

#include <pthread.h>
#include <signal.h>
#include <simdjson.h>

#include <algorithm>
#include <set>

#include "core/json_writer.h"
#include "core/time_format.h"
#include "observe/log.h"

namespace resonance {
namespace {

constexpr size_t kMaxCurrentSlots = 1000;  // due slots of one round besides catch-up
constexpr size_t kMaxGapScan = 1000;       // slots checked per schedule and round
constexpr Micros kMaxWait = kMicrosPerSecond;

// Stored state fields of a schedule record besides its definition.
const std::vector<std::string>& StateKeys() {
  static const std::vector<std::string> k = {"source",        "config_paused",      "created_at_us",
                                             "last_slot_us",  "checked_through_us", "paused_at_us",
                                             "quiet_from_us", "quiet_through_us"};
  return k;
}

int64_t IntField(const simdjson::dom::object& o, const char* key) {
  int64_t v = 0;
  if (o.at_key(key).get_int64().get(v)) return 0;
  return v;
}

std::string SlotKey(const std::string& schedule, Micros slot, const std::string& item) {
  std::string k = schedule + ":" + FormatRfc3339(slot);
  if (!item.empty()) k += ":" + item;
  return k;
}

}  // namespace

Result<GapInfo> Scheduler::ParseGapRecord(const std::string& value) {
  simdjson::dom::parser p;
  simdjson::dom::object o;
  if (p.parse(value).get_object().get(o)) return Status(Code::kInternal, "unreadable gap record");
  GapInfo g;
  std::string_view s;
  auto text = [&](const char* key) -> std::string {
    if (o.at_key(key).get_string().get(s)) return "";
    return std::string(s);
  };
  g.id = text("id");
  g.schedule = text("schedule");
  g.slot = ParseRfc3339(text("slot")).value_or(0);
  g.item = text("item");
  g.detected_at = ParseRfc3339(text("detected_at")).value_or(0);
  simdjson::dom::array ids;
  if (!o.at_key("task_ids").get_array().get(ids)) {
    for (auto id : ids) {
      if (!id.get_string().get(s)) g.task_ids.emplace_back(s);
    }
  }
  g.backfill_task_id = text("backfill_task_id");
  bool open = true;
  if (o.at_key("open").get_bool().get(open)) open = true;
  g.open = open;
  g.closed_at = ParseRfc3339(text("closed_at")).value_or(0);
  g.closed_by = text("closed_by");
  return g;
}

Scheduler::Scheduler(Engine& engine, Store& store, const Clock& clock)
    : engine_(engine), store_(store), clock_(clock), started_at_(clock.Now()) {}

Scheduler::~Scheduler() { Stop(); }

Status Scheduler::Compile(Entry& e, Code code) {
  auto zone = TimeZone::Load(e.spec.time_zone);
  if (!zone.ok()) return Status(code, "time_zone: " + zone.status().message());
  auto cron = CronSchedule::Parse(e.spec.cron, e.spec.time_zone);
  if (!cron.ok()) return Status(code, "cron: " + cron.status().message());
  e.cron = std::make_shared<const CronSchedule>(std::move(*cron));
  return Status::Ok();
}

Record Scheduler::RecordOf(const Entry& e) const {
  std::string v = "{" + ScheduleSpecFields(e.spec) + ",";
  JsonWriter w(v);
  w.Key("source").String(e.from_config ? "config" : "api");
  w.Key("config_paused").Bool(e.config_paused);
  w.Key("created_at_us").Int(e.created_at).Key("last_slot_us").Int(e.last_slot);
  w.Key("checked_through_us").Int(e.checked_through).Key("paused_at_us").Int(e.paused_at);
  w.Key("quiet_from_us").Int(e.quiet_from).Key("quiet_through_us").Int(e.quiet_through);
  v += "}";
  return Record{kScheduleRecord, e.spec.name, "", e.created_at, true, std::move(v)};
}

Record Scheduler::RecordOf(const GapInfo& g) {
  return Record{kGapRecord, g.id, g.schedule, g.slot, g.open, GapJson(g)};
}

std::string Scheduler::GapJson(const GapInfo& g) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("id").String(g.id).Key("schedule").String(g.schedule);
  w.Key("slot").Time(g.slot).Key("item").StringOrNull(g.item);
  w.Key("detected_at").Time(g.detected_at).Key("task_ids").BeginArray();
  for (const auto& id : g.task_ids) w.String(id);
  w.EndArray().Key("backfill_task_id").StringOrNull(g.backfill_task_id);
  w.Key("open").Bool(g.open).Key("closed_at").TimeOrNull(g.closed_at);
  w.Key("closed_by").StringOrNull(g.closed_by).EndObject();
  return out;
}

Status Scheduler::Load(const std::vector<ScheduleSpec>& config_schedules,
                       const std::map<std::string, std::vector<std::string>>& config_sets) {
  std::lock_guard lock(mu_);
  const Micros now = clock_.Now();
  for (const auto& [name, items] : config_sets) sets_[name] = TargetSet{items, true, now};
  auto stored_sets = store_.ListRecords({kTargetSetRecord, "", false, 0});
  if (!stored_sets.ok()) return stored_sets.status();
  std::vector<Mutation> writes;
  for (const Record& r : *stored_sets) {
    if (sets_.count(r.name)) {  // the config now defines it
      writes.push_back(DeleteRecord{kTargetSetRecord, r.name});
      continue;
    }
    simdjson::dom::parser p;
    simdjson::dom::array items;
    if (p.parse(r.value).at_key("items").get_array().get(items)) {
      return Status(Code::kInternal, "target set " + r.name + ": unreadable record");
    }
    TargetSet s;
    s.updated_at = r.sort;
    for (auto item : items) {
      std::string_view v;
      if (!item.get_string().get(v)) s.items.emplace_back(v);
    }
    sets_[r.name] = std::move(s);
  }

  auto stored = store_.ListRecords({kScheduleRecord, "", false, 0});
  if (!stored.ok()) return stored.status();
  std::map<std::string, const Record*> by_name;
  for (const Record& r : *stored) by_name[r.name] = &r;
  // State fields of a stored record (whatever its source).
  auto read_state = [](const Record& r, Entry& e) -> Status {
    simdjson::dom::parser p;
    simdjson::dom::object o;
    if (p.parse(r.value).get_object().get(o)) {
      return Status(Code::kInternal, "schedule " + r.name + ": unreadable record");
    }
    bool cp = false;
    if (!o.at_key("config_paused").get_bool().get(cp)) e.config_paused = cp;
    e.created_at = IntField(o, "created_at_us");
    e.last_slot = IntField(o, "last_slot_us");
    e.checked_through = IntField(o, "checked_through_us");
    e.paused_at = IntField(o, "paused_at_us");
    e.quiet_from = IntField(o, "quiet_from_us");
    e.quiet_through = IntField(o, "quiet_through_us");
    return Status::Ok();
  };

  std::vector<std::pair<std::string, std::string>> events;
  for (const ScheduleSpec& spec : config_schedules) {
    Entry e;
    e.spec = spec;
    e.from_config = true;
    if (Status s = Compile(e, Code::kInvalidArgument); !s.ok()) {
      return Status(Code::kInvalidArgument, "schedules." + spec.name + "." + s.message());
    }
    if (!spec.target_set.empty() && !sets_.count(spec.target_set)) {
      return Status(Code::kInvalidArgument, "schedules." + spec.name +
                                                ".target_set: no target set named '" +
                                                spec.target_set + "' ([target_sets])");
    }
    auto it = by_name.find(spec.name);
    if (it != by_name.end()) {
      bool stored_paused = false;
      {
        simdjson::dom::parser p;
        if (p.parse(it->second->value).at_key("paused").get_bool().get(stored_paused)) {
          stored_paused = false;
        }
      }
      if (Status s = read_state(*it->second, e); !s.ok()) return s;
      // Paused through the API persists, unless the config's own `paused` changed.
      e.spec.paused = spec.paused != e.config_paused ? spec.paused : stored_paused;
      by_name.erase(it);
    } else {
      e.created_at = now;
      e.checked_through = now;
      std::string data = "{" + ScheduleSpecFields(e.spec) + ",\"source\":\"config\"}";
      events.emplace_back("schedule.created", std::move(data));
    }
    e.config_paused = spec.paused;
    if (e.spec.paused && e.paused_at == 0) e.paused_at = now;
    if (!e.spec.paused && e.paused_at != 0) {  // resumed by the config: as the API's resume
      const Micros through = e.cron->Previous(now).value_or(0);
      e.quiet_from = e.paused_at;
      e.quiet_through = through;
      e.last_slot = std::max(e.last_slot, through);
      e.paused_at = 0;
    }
    writes.push_back(PutRecord{RecordOf(e)});
    schedules_[spec.name] = std::move(e);
  }
  for (const auto& [name, r] : by_name) {
    simdjson::dom::parser p;
    std::string_view source;
    if (!p.parse(r->value).at_key("source").get_string().get(source) && source == "config") {
      log::Info("scheduler", "schedule " + name + " is no longer in the config: deleted");
      writes.push_back(DeleteRecord{kScheduleRecord, name});
      events.emplace_back("schedule.deleted",
                          "{\"schedule\":\"" + name + "\",\"source\":\"config\"}");
      continue;
    }
    auto spec = ParseScheduleSpec(r->value, name, StateKeys());
    if (!spec.ok()) {
      log::Error("scheduler", "schedule " + name + ": stored definition unreadable, skipped: " +
                                  spec.status().message());
      continue;
    }
    Entry e;
    e.spec = std::move(*spec);
    if (Status s = read_state(*r, e); !s.ok()) return s;
    if (Status s = Compile(e, Code::kInvalidArgument); !s.ok()) {
      log::Error("scheduler", "schedule " + name + ": " + s.message() + "; skipped");
      continue;
    }
    schedules_[name] = std::move(e);
  }

  auto gaps = store_.ListRecords({kGapRecord, "", true, 0});
  if (!gaps.ok()) return gaps.status();
  for (const Record& r : *gaps) {
    auto g = ParseGapRecord(r.value);
    if (!g.ok()) return g.status();
    OpenGap og{*g, g->task_ids};
    if (!g->backfill_task_id.empty()) og.watch.push_back(g->backfill_task_id);
    open_gaps_[g->id] = std::move(og);
  }
  if (!writes.empty() || !events.empty()) {
    // One batch: the first event carries the writes, the rest follow in order.
    ++submitted_;
    auto durable = durable_;
    auto done = [durable](const Status& s) {
      ++*durable;
      if (!s.ok()) log::Error("scheduler", "loading schedules: " + s.message());
    };
    if (events.empty()) {
      engine_.Enqueue(
          {}, [done](const Status& s, std::vector<EnqueueOutcome>) { done(s); },
          [writes = std::move(writes)](const std::vector<EnqueueOutcome>&, ExtraWrites& x) mutable {
            x.mutations = std::move(writes);
          });
    } else {
      engine_.Enqueue(
          {}, [done](const Status& s, std::vector<EnqueueOutcome>) { done(s); },
          [writes = std::move(writes), events = std::move(events)](
              const std::vector<EnqueueOutcome>&, ExtraWrites& x) mutable {
            x.mutations = std::move(writes);
            x.events = std::move(events);
          });
    }
  }
  log::Info("scheduler", std::to_string(schedules_.size()) + " schedules, " +
                             std::to_string(sets_.size()) + " target sets, " +
                             std::to_string(open_gaps_.size()) + " open gaps");
  return Status::Ok();
}

void Scheduler::Start() {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread([this] { Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(run_mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Run() {
  std::unique_lock lock(run_mu_);
  while (!stop_) {
    lock.unlock();
    const Micros now = clock_.Now();
    const Micros next = Tick(now);
    Micros wait = std::clamp<Micros>(next - clock_.Now(), 1000, kMaxWait);
    lock.lock();
    cv_.wait_for(lock, std::chrono::microseconds(wait), [this] { return stop_; });
  }
}

std::vector<std::string> Scheduler::ItemsOf(const Entry& e) const {
  if (e.spec.target_set.empty()) return {""};
  auto it = sets_.find(e.spec.target_set);
  if (it == sets_.end()) return {};
  return it->second.items;
}

std::vector<Micros> Scheduler::SlotsBetween(const Entry& e, Micros after, Micros upto,
                                            size_t cap) const {
  std::vector<Micros> out;
  std::optional<Micros> s = e.cron->Previous(upto);
  while (s && *s > after && out.size() < cap) {
    out.push_back(*s);
    s = e.cron->Previous(*s - 1);
  }
  return out;
}

Micros Scheduler::Tick(Micros now) {
  std::lock_guard lock(mu_);
  const bool settled = durable_->load() == submitted_.load();
  if (settled) CloseGaps(now);
  Micros next = now + kMaxWait;
  for (auto& [name, e] : schedules_) {
    TickOne(e, now, settled);
    if (!e.spec.paused) {
      if (auto n = e.cron->Next(std::max(now, e.last_slot))) next = std::min(next, *n);
    }
    if (e.spec.gap_grace > 0) {
      if (auto n = e.cron->Next(e.checked_through)) {
        next = std::min(next, std::max({now, *n + e.spec.gap_grace, e.gap_retry_at}));
      }
    }
  }
  return next;
}

void Scheduler::TickOne(Entry& e, Micros now, bool check_gaps) {
  const std::string& name = e.spec.name;
  std::vector<NewTask> tasks;
  std::vector<std::pair<std::string, std::string>> events;
  // Which task of `tasks` is which: (slot, item) of slot tasks, gap index of backfills.
  struct Fired {
    Micros slot;
    size_t first, count;
    bool catch_up;
  };
  std::vector<Fired> fired;
  std::vector<GapInfo> gaps;
  std::vector<size_t> backfill_of;  // task index -> gaps index, for tasks after the slots
  Micros checked = e.checked_through;
  const std::vector<std::string> items = ItemsOf(e);
  auto new_task = [&](Micros slot, const std::string& item, const std::string& key) {
    NewTask t;
    t.queue = e.spec.queue;
    t.action = e.spec.action;
    t.payload = e.spec.target_set.empty()
                    ? e.spec.payload
                    : PayloadWithItem(e.spec.payload, e.spec.item_field, item);
    t.priority = e.spec.priority;
    t.max_attempts = e.spec.max_attempts;
    t.timeout_s = e.spec.timeout_s;
    t.idempotency_key = key;
    t.schedule = name;
    t.scheduled_for = slot;
    return t;
  };

  // 1. Gaps, among slots whose grace has passed (before firing: a slot fired in this
  // round is not in the store yet).
  if (check_gaps && e.spec.gap_grace > 0 && now >= e.gap_retry_at) {
    Micros upto = now - e.spec.gap_grace;
    if (e.spec.paused) upto = std::min(upto, e.paused_at);
    std::vector<Micros> slots = SlotsBetween(e, e.checked_through, upto, kMaxGapScan + 1);
    if (slots.size() > kMaxGapScan) {
      log::Warn("scheduler", "schedule " + name + ": more than " + std::to_string(kMaxGapScan) +
                                 " slots to check for gaps; older ones are not checked");
      slots.pop_back();
      checked = slots.back() - 1;
    }
    std::reverse(slots.begin(), slots.end());
    bool stop = false;
    for (Micros slot : slots) {
      std::vector<GapInfo> found;
      for (const std::string& item : items) {
        const std::string key = "schedule:" + SlotKey(name, slot, item);
        auto id = store_.FindByIdempotencyKey(key);
        if (!id.ok()) {
          stop = true;
          e.gap_retry_at = now + kMaxWait;
          break;
        }
        GapInfo g;
        if (id->has_value()) {
          auto t = store_.GetTask(**id);
          if (!t.ok()) {
            stop = true;
            e.gap_retry_at = now + kMaxWait;
            break;
          }
          const Micros deadline = std::max(slot, t->created_at) + e.spec.gap_grace;
          if (t->state == TaskState::kSucceeded && t->finished_at <= deadline) continue;
          if (!IsTerminal(t->state) && now < deadline) {
            stop = true;  // not decided yet
            e.gap_retry_at = deadline;
            break;
          }
          g.task_ids.push_back(t->id);
        } else {
          if (slot > e.last_slot && !e.spec.paused) {
            stop = true;  // not fired yet (this round fires it)
            e.gap_retry_at = now + kMaxWait / 10;
            break;
          }
          if (slot > e.quiet_from && slot <= e.quiet_through) continue;  // paused then
        }
        g.id = SlotKey(name, slot, item);
        g.schedule = name;
        g.slot = slot;
        g.item = item;
        g.detected_at = now;
        found.push_back(std::move(g));
      }
      if (stop) break;
      for (auto& g : found) gaps.push_back(std::move(g));
      checked = slot;
    }
  }

  // 2. Due slots.
  Micros last = e.last_slot;
  size_t skipped = 0;
  Micros skipped_first = 0, skipped_last = 0;
  if (!e.spec.paused) {
    const Micros anchor = std::max(e.last_slot, e.created_at);
    std::vector<Micros> due = SlotsBetween(e, anchor, now, kMaxCurrentSlots + e.spec.catch_up_max);
    std::vector<Micros> fire, missed;
    for (Micros s : due) (s > started_at_ ? fire : missed).push_back(s);  // newest first
    size_t keep = 0;
    if (e.spec.catch_up == CatchUp::kLatest) keep = std::min<size_t>(1, missed.size());
    if (e.spec.catch_up == CatchUp::kAll)
      keep = std::min<size_t>(e.spec.catch_up_max, missed.size());
    for (size_t i = 0; i < missed.size(); ++i) {
      if (i < keep) {
        fire.push_back(missed[i]);
      } else {
        ++skipped;
        if (skipped_last == 0) skipped_last = missed[i];
        skipped_first = missed[i];
      }
    }
    std::sort(fire.begin(), fire.end());
    for (Micros slot : fire) {
      Fired f{slot, tasks.size(), 0, slot <= started_at_};
      for (const std::string& item : items) {
        tasks.push_back(new_task(slot, item, "schedule:" + SlotKey(name, slot, item)));
        ++f.count;
      }
      fired.push_back(f);
    }
    if (!due.empty()) last = due.front();
  }
  const size_t slot_tasks = tasks.size();
  if (e.spec.backfill) {
    for (size_t i = 0; i < gaps.size(); ++i) {
      tasks.push_back(
          new_task(gaps[i].slot, gaps[i].item,
                   "schedule:" + SlotKey(name, gaps[i].slot, gaps[i].item) + ":backfill"));
      backfill_of.push_back(i);
    }
  }
  if (last == e.last_slot && checked == e.checked_through && tasks.empty() && gaps.empty()) return;

  Entry next = e;
  next.last_slot = last;
  next.checked_through = checked;
  const Record state = RecordOf(next);
  bool built = false;
  std::vector<GapInfo> made;
  ++submitted_;
  auto durable = durable_;
  engine_.Enqueue(
      std::move(tasks),
      [durable, name](const Status& s, std::vector<EnqueueOutcome>) {
        ++*durable;
        if (!s.ok())
          log::Error("scheduler", "schedule " + name + ": enqueue failed: " + s.message());
      },
      [&](const std::vector<EnqueueOutcome>& out, ExtraWrites& x) {
        built = true;
        x.mutations.push_back(PutRecord{state});
        for (const Fired& f : fired) {
          std::string data;
          JsonWriter w(data);
          w.BeginObject().Key("schedule").String(name).Key("slot").Time(f.slot);
          w.Key("catch_up").Bool(f.catch_up).Key("tasks").BeginArray();
          for (size_t i = f.first; i < f.first + f.count; ++i) w.String(out[i].id);
          w.EndArray().EndObject();
          x.events.emplace_back("schedule.fired", std::move(data));
        }
        if (skipped > 0) {
          std::string data;
          JsonWriter w(data);
          w.BeginObject()
              .Key("schedule")
              .String(name)
              .Key("catch_up")
              .String(CatchUpName(e.spec.catch_up));
          w.Key("count").Int(static_cast<int64_t>(skipped)).Key("first").Time(skipped_first);
          w.Key("last").Time(skipped_last).EndObject();
          x.events.emplace_back("schedule.skipped", std::move(data));
        }
        made = gaps;
        for (size_t k = 0; k < backfill_of.size(); ++k) {
          made[backfill_of[k]].backfill_task_id = out[slot_tasks + k].id;
        }
        for (const GapInfo& g : made) {
          x.mutations.push_back(PutRecord{RecordOf(g)});
          x.events.emplace_back("gap.detected", GapJson(g));
        }
      });
  if (!built) return;  // refused (store failed): the next round tries again
  e.last_slot = last;
  e.checked_through = checked;
  e.slots_total += static_cast<int64_t>(fired.size());
  e.gaps_total += static_cast<int64_t>(made.size());
  for (GapInfo& g : made) {
    OpenGap og{g, g.task_ids};
    if (!g.backfill_task_id.empty()) og.watch.push_back(g.backfill_task_id);
    log::Warn("scheduler",
              "gap: schedule " + name + " slot " + FormatRfc3339(g.slot) +
                  (g.item.empty() ? "" : " item " + g.item) +
                  (g.backfill_task_id.empty() ? "" : ", backfill " + g.backfill_task_id));
    open_gaps_[g.id] = std::move(og);
  }
}

void Scheduler::CloseGaps(Micros now) {
  if (now - last_gap_close_ < kMicrosPerSecond / 2) return;
  last_gap_close_ = now;
  std::vector<std::string> ids;
  for (const auto& [id, g] : open_gaps_) ids.insert(ids.end(), g.watch.begin(), g.watch.end());
  if (ids.empty()) return;
  auto tasks = store_.GetTasks(ids);
  if (!tasks.ok()) return;
  std::map<std::string, const Task*> by_id;
  for (const Task& t : *tasks) by_id[t.id] = &t;
  for (auto it = open_gaps_.begin(); it != open_gaps_.end();) {
    OpenGap& g = it->second;
    std::string by;
    std::vector<std::string> still;
    for (const auto& id : g.watch) {
      auto t = by_id.find(id);
      if (t == by_id.end()) continue;  // deleted
      if (t->second->state == TaskState::kSucceeded) by = id;
      if (!IsTerminal(t->second->state)) still.push_back(id);
    }
    g.watch = std::move(still);
    if (by.empty()) {
      ++it;
      continue;
    }
    g.info.open = false;
    g.info.closed_at = now;
    g.info.closed_by = by;
    ++submitted_;
    auto durable = durable_;
    engine_.RecordEvent("gap.closed", GapJson(g.info),
                        [durable](const Status& s) {
                          ++*durable;
                          if (!s.ok()) log::Error("scheduler", "closing a gap: " + s.message());
                        },
                        {PutRecord{RecordOf(g.info)}});
    it = open_gaps_.erase(it);
  }
}

}  // namespace resonance
