#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/task.h"

namespace resonance {

// What a schedule does with slots that came due while the server was down
// (docs/schedules.md, "Catch-up"): none of them, the most recent one, or all of them
// (at most catch_up_max, the newest).
enum class CatchUp { kSkip, kLatest, kAll };
const char* CatchUpName(CatchUp c);

// One schedule's definition: when (cron spec in a time zone), what to enqueue per slot,
// and how missed slots and gaps are handled. Value type. Validate with
// ParseScheduleSpec, which checks everything but whether the cron spec and the time zone
// parse (the scheduler does that with the cron library).
struct ScheduleSpec {
  std::string name;
  std::string cron;
  std::string time_zone = "UTC";
  std::string action;
  std::string queue{kDefaultQueue};
  std::string payload = "{}";  // a JSON object (minified)
  int32_t priority = 0;
  int32_t max_attempts = kDefaultMaxAttempts;
  int32_t timeout_s = kDefaultTimeoutS;
  CatchUp catch_up = CatchUp::kLatest;
  int32_t catch_up_max = 100;
  bool paused = false;
  std::string target_set;           // empty: one task per slot; else one per item
  std::string item_field = "item";  // payload key that receives the item
  Micros gap_grace = 0;             // 0: no gap detection
  bool backfill = false;            // enqueue a task for each gap found
};

// Schedule and target-set names: 1 to 100 of [A-Za-z0-9_.-].
bool ValidScheduleName(std::string_view name);

// Reads a definition from a JSON object text (the POST /api/schedules body, or a config
// table turned into JSON). `name` is used when the object has no "name" field; a
// "name" that differs from a non-empty `name` is an error. kInvalidJson for malformed
// JSON; kInvalidArgument "<field>: ..." for a wrong type, unknown field, missing cron
// or action, or a value out of range. Keys in `also_allowed` are skipped (stored state).
Result<ScheduleSpec> ParseScheduleSpec(std::string_view json, std::string name = "",
                                       const std::vector<std::string>& also_allowed = {});

// "90", "30s", "10m", "2h", "1d" (a whole number and a unit; no unit = seconds) to
// microseconds. nullopt when malformed or negative.
std::optional<Micros> ParseDurationText(std::string_view s);

// The definition as the JSON fields of an object, without the braces (so callers can
// add fields): "name":...,"cron":...,... gap_grace_s is a number of seconds.
std::string ScheduleSpecFields(const ScheduleSpec& s);

// The payload of a fan-out task: spec.payload with item_field set to the item.
// ParseScheduleSpec refuses a payload that already has item_field when target_set is set.
std::string PayloadWithItem(const std::string& payload, const std::string& field,
                            const std::string& item);

}  // namespace resonance
