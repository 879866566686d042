// Follow-ups: the tasks a successful finish creates (docs/follow-ups.md).
// g++ 12 false positive on Mutation variants, as in engine.cc.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "core/json_writer.h"
#include "engine/engine.h"
#include "engine/followups.h"

namespace resonance {

Status Engine::PlanFollowupsOf(const LiveTask& t, const std::string& result,
                               std::vector<PlannedFollowup>& plan,
                               std::unordered_map<std::string, std::string>& stored_keys) {
  // The stored row holds the payload, on_success, depth and trace the plan needs.
  auto stored = store_.GetTask(FormatTaskId(t.id));
  if (!stored.ok()) {
    return Status(Code::kUnavailable,
                  "cannot read the task for its follow-ups: " + stored.status().message());
  }
  Task& parent = *stored;
  parent.attempt = t.attempt;
  plan = PlanFollowups(parent, result,
                       {options_.max_followup_depth, options_.check_followup});
  for (const PlannedFollowup& p : plan) {
    const std::string& key = p.task.idempotency_key;
    if (p.outcome != PlannedFollowup::kCreate || key.empty() || idempotency_.count(key) ||
        stored_keys.count(key)) {
      continue;
    }
    auto found = store_.FindByIdempotencyKey(key);
    if (!found.ok()) {
      return Status(Code::kUnavailable,
                    "cannot look up a follow-up's idempotency key: " + found.status().message());
    }
    if (found->has_value()) stored_keys[key] = **found;
  }
  return Status::Ok();
}

void Engine::ApplyFollowups(TaskId parent, std::vector<PlannedFollowup>& plan,
                            const std::unordered_map<std::string, std::string>& stored_keys,
                            Micros now, WriteBatch& batch) {
  for (PlannedFollowup& p : plan) {
    if (p.outcome == PlannedFollowup::kCreate) {
      const std::string& key = p.task.idempotency_key;
      if (!key.empty() && (idempotency_.count(key) || stored_keys.count(key))) {
        if (options_.metrics) options_.metrics->Followup(EngineMetrics::kFollowupDuplicate);
        continue;
      }
      CreateTask(p.task, now, batch);
      if (options_.metrics) options_.metrics->Followup(EngineMetrics::kFollowupCreated);
      continue;
    }
    const bool refused = p.outcome == PlannedFollowup::kRefused;
    std::string data;
    JsonWriter w(data);
    w.BeginObject().Key("path").String(p.path).Key("action").StringOrNull(p.action);
    w.Key("depth").Int(p.depth);
    if (refused) w.Key("max_depth").Int(options_.max_followup_depth);
    w.Key("reason").String(p.reason).EndObject();
    AppendEvent(batch, now, refused ? "task.followup_refused" : "task.followup_failed", parent,
                std::move(data));
    if (options_.metrics) {
      options_.metrics->Followup(refused ? EngineMetrics::kFollowupRefused
                                         : EngineMetrics::kFollowupFailed);
    }
  }
}

}  // namespace resonance
