#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/task.h"
#include "engine/engine.h"

namespace resonance {

// Follow-up tasks (docs/follow-ups.md): a task's `on_success` list and a handler result's
// "enqueue" list name tasks to create when the task succeeds, their payloads filled in
// from the finished task (core/template.h). These functions read and plan; the engine
// creates the tasks in the same write batch as the completion (Engine::Finish).
// Pure functions; thread-safe.

constexpr int kMaxFollowups = 100;       // specs in one list, nested lists counted in
constexpr int kMaxFollowupNesting = 10;  // on_success lists within on_success lists
constexpr int kDefaultMaxFollowupDepth = 10;

// One spec of a follow-up list, read and checked but not filled in.
struct FollowupSpec {
  std::string path;      // its place: "on_success[1]", "result.enqueue[0].on_success[2]"
  Result<NewTask> task;  // kInvalidArgument "<path>.<field>: ..." when the spec is bad
};

// Reads a follow-up list: a JSON array of task specs with the fields of one enqueue
// (action, queue, payload, priority, delay_s | run_at, max_attempts, timeout_s,
// idempotency_key, requires_approval, on_success; null = default; any other field is
// refused). Placeholders in payload and idempotency_key are checked, not filled in; a
// nested on_success is checked the same way and kept as text in NewTask::on_success.
// Returns the specs of the list, each ok or with its own error; with `flatten`, nested
// specs follow their parent in the list too (for checks at enqueue). kInvalidArgument
// "<where>: ..." for the list as a whole: not valid JSON, not an array, more than
// kMaxFollowups specs (nested ones counted) or nested deeper than kMaxFollowupNesting.
Result<std::vector<FollowupSpec>> ReadFollowups(std::string_view json, const std::string& where,
                                                bool flatten = false);

// True when a result may carry an "enqueue" list (a cheap test before parsing it).
bool MayEnqueue(std::string_view result);

struct FollowupOptions {
  int max_depth = kDefaultMaxFollowupDepth;  // deepest follow-up created (an enqueued task is 0)
  // Checks a follow-up once filled in, before it is created (the action registry); a
  // non-ok Status is the reason it is not created, its message naming places with
  // `prefix` ("on_success[0].") in front. nullptr = every follow-up passes.
  std::function<Status(const NewTask&, const std::string& prefix)> check;
};

// One follow-up that finishing a task asks for, in list order (on_success first, then
// the result's enqueue list).
struct PlannedFollowup {
  enum Outcome { kCreate, kRefused, kFailed };
  Outcome outcome = kCreate;
  std::string path;    // as in FollowupSpec
  std::string action;  // empty when the spec has none
  int32_t depth = 0;   // the follow-up's depth (the parent's + 1)
  NewTask task;        // kCreate: filled in, with parent_id, depth and trace_id set
  std::string reason;  // kRefused (past max_depth) and kFailed (bad spec, missing value,
                       // refused by options.check): why it is not created
};

// What a successful finish of `parent` (as stored: payload, on_success, depth) with
// `result` (raw JSON, may be empty) asks for. An "enqueue" member is read only when the
// result is an object. Nothing is created or refused here.
std::vector<PlannedFollowup> PlanFollowups(const Task& parent, std::string_view result,
                                           const FollowupOptions& options);

}  // namespace resonance
