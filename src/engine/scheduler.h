#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/cron.h"
#include "core/status.h"
#include "engine/engine.h"
#include "engine/schedule_spec.h"
#include "observe/metrics.h"
#include "store/store.h"

namespace resonance {

// A slot (per item with fan-out) that got no succeeded task within its grace: see
// docs/schedules.md, "Gaps".
struct GapInfo {
  std::string id;  // SCHEDULE:SLOT[:ITEM]
  std::string schedule;
  Micros slot = 0;
  std::string item;
  Micros detected_at = 0;
  std::vector<std::string> task_ids;  // the slot's task, if it had one
  std::string backfill_task_id;       // empty without backfill
  bool open = true;
  Micros closed_at = 0;
  std::string closed_by;  // the task whose success closed it
};

// Record kinds the scheduler keeps in the store (Store::ListRecords).
inline constexpr const char* kScheduleRecord = "schedule";
inline constexpr const char* kTargetSetRecord = "target_set";
inline constexpr const char* kGapRecord = "gap";

// The server's schedules (docs/schedules.md): cron slots turned into tasks, target sets
// fanned out, gaps found and backfilled.
//
// Every slot is enqueued once: the tasks of a tick and the schedule's new progress
// (last slot enqueued, slots checked for gaps) commit in one store transaction
// (Engine::Enqueue with extras), and each task's idempotency key is
// "schedule:NAME:SLOT[:ITEM]", so neither a restart nor a repeated tick enqueues a slot
// twice. Slots that came due before this process started are "missed" and handled by
// the schedule's catch-up policy; later ones are always enqueued.
//
// Thread-safe: one mutex for everything; Tick runs on the scheduler's thread (Start) or
// a test's. Store callbacks never take the mutex. Answers are JSON texts (docs/api.md).
class Scheduler {
 public:
  using Done = std::function<void(const Status&)>;
  using JsonDone = std::function<void(const Status&, std::string json)>;

  Scheduler(Engine& engine, Store& store, const Clock& clock);
  ~Scheduler();

  // Loads what the store holds and merges the config's schedules (their definitions
  // come from the config each start; progress and paused state persist, except that a
  // changed `paused` in the config wins) and target sets (read-only through the API).
  // A stored config schedule no longer in the config is deleted. kInvalidArgument
  // naming the schedule when a config schedule's cron spec or zone does not parse or
  // its target set is unknown. Call once, before Start or Tick.
  Status Load(const std::vector<ScheduleSpec>& config_schedules,
              const std::map<std::string, std::vector<std::string>>& config_sets);

  // Runs Tick on its own thread, waking at the next due slot and at least once a
  // second. Stop (or the destructor) joins it.
  void Start();
  void Stop();

  // One round at `now`: looks for gaps among slots whose grace has passed (oldest
  // first; 1000 at most per schedule and round), closes gaps whose task succeeded,
  // and enqueues due slots. Returns when the next slot or gap check is due.
  Micros Tick(Micros now);

  // The API (http/api_schedules.cc). Errors: kNotFound (unknown name), kConflict (name
  // taken; a config schedule or target set cannot be deleted or replaced through the
  // API; a target set in use), kUnprocessable (cron spec or time zone that does not
  // parse, unknown target set). Callbacks run once the change is durable.
  void Create(ScheduleSpec spec, JsonDone done);
  void SetPaused(const std::string& name, bool paused, JsonDone done);
  void Delete(const std::string& name, Done done);
  Result<std::string> Get(const std::string& name);
  std::string List();
  void PutTargetSet(const std::string& name, std::vector<std::string> items, JsonDone done);
  void DeleteTargetSet(const std::string& name, Done done);
  Result<std::string> GetTargetSet(const std::string& name);
  std::string ListTargetSets();
  // Gaps newest slot first; empty schedule = all. Reads the store.
  Result<std::vector<GapInfo>> Gaps(const std::string& schedule, int limit);
  static std::string GapJson(const GapInfo& g);
  // The inverse of GapJson (a gap record's value). kInternal when unreadable.
  static Result<GapInfo> ParseGapRecord(const std::string& value);

  // Open gaps per schedule (0 for schedules without any): the alert signal.
  std::map<std::string, int64_t> OpenGaps();
  // resonance_schedule_slots_total, resonance_schedule_gaps_total,
  // resonance_schedule_gaps_open (docs/metrics.md).
  void RegisterMetrics(metrics::Registry& registry);

 private:
  struct Entry {
    ScheduleSpec spec;
    std::shared_ptr<const CronSchedule> cron;
    bool from_config = false;
    bool config_paused = false;  // `paused` as the config said last time it was read
    Micros created_at = 0;
    Micros last_slot = 0;        // newest slot handled (enqueued or skipped); 0 = none
    Micros checked_through = 0;  // slots up to here were checked for gaps
    Micros paused_at = 0;        // while paused
    Micros quiet_from = 0;       // a pause: slots in (quiet_from, quiet_through] with
    Micros quiet_through = 0;    // no task are not gaps
    Micros gap_retry_at = 0;     // a check waits for an undecided slot until then
    int64_t slots_total = 0;     // since start (metrics)
    int64_t gaps_total = 0;
  };
  struct TargetSet {
    std::vector<std::string> items;
    bool from_config = false;
    Micros updated_at = 0;
  };
  struct OpenGap {
    GapInfo info;
    std::vector<std::string> watch;  // tasks whose success closes it, not yet terminal
  };

  // All below run with mu_ held.
  Status Compile(Entry& e, Code code);
  Record RecordOf(const Entry& e) const;
  static Record RecordOf(const GapInfo& g);
  std::string ScheduleJson(const Entry& e, Micros now) const;
  std::string TargetSetJson(const std::string& name, const TargetSet& s) const;
  std::vector<std::string> ItemsOf(const Entry& e) const;
  // Newest first, at most `cap`: slots in (after, upto].
  std::vector<Micros> SlotsBetween(const Entry& e, Micros after, Micros upto, size_t cap) const;
  void TickOne(Entry& e, Micros now, bool check_gaps);
  void CloseGaps(Micros now);
  void Run();

  Engine& engine_;
  Store& store_;
  const Clock& clock_;
  Micros started_at_ = 0;

  std::mutex mu_;
  std::map<std::string, Entry> schedules_;    // guarded by mu_
  std::map<std::string, TargetSet> sets_;     // guarded by mu_
  std::map<std::string, OpenGap> open_gaps_;  // by id; guarded by mu_
  Micros last_gap_close_ = 0;                 // guarded by mu_
  // Scheduler writes submitted and made durable: gaps are looked for only when every
  // earlier write is durable (reads see committed data only).
  std::atomic<int64_t> submitted_{0};
  std::shared_ptr<std::atomic<int64_t>> durable_ = std::make_shared<std::atomic<int64_t>>(0);

  std::mutex run_mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by run_mu_
  std::thread thread_;
};

}  // namespace resonance
