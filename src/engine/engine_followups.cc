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
      CreateFollowup(p.task, now, batch);
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

// Mirrors the creation step of Engine::Enqueue (engine.cc); keep the two in step.
void Engine::CreateFollowup(NewTask& nt, Micros now, WriteBatch& batch) {
  const TaskId id = ids_.Next();
  Task t;
  t.id = FormatTaskId(id);
  t.queue = std::move(nt.queue);
  t.action = std::move(nt.action);
  t.payload = std::move(nt.payload);
  t.priority = nt.priority;
  t.run_at = nt.run_at ? *nt.run_at : now + (nt.delay_s ? SecondsToMicros(*nt.delay_s) : 0);
  t.state = t.run_at > now ? TaskState::kScheduled : TaskState::kReady;
  t.max_attempts = nt.max_attempts;
  t.timeout_s = nt.timeout_s;
  t.idempotency_key = std::move(nt.idempotency_key);
  t.parent_id = std::move(nt.parent_id);
  t.trace_id = std::move(nt.trace_id);
  t.on_success = std::move(nt.on_success);
  t.depth = nt.depth;
  t.created_at = t.updated_at = now;

  LiveTask lt;
  lt.id = id;
  lt.run_at = t.run_at;
  lt.priority = t.priority;
  lt.timeout_s = t.timeout_s;
  lt.queue = QueueIndex(t.queue);
  lt.action = actions_.Intern(t.action);
  lt.max_attempts = static_cast<uint16_t>(t.max_attempts);
  lt.state = t.state;
  lt.has_on_success = !t.on_success.empty();
  if (!t.idempotency_key.empty()) {
    lt.has_idempotency_key = true;
    idempotency_[t.idempotency_key] = id;
    key_of_[id] = t.idempotency_key;
  }
  AddLive(lt);
  if (options_.metrics) ActionMetrics(lt).enqueued->Inc();

  std::string data;
  JsonWriter w(data);
  w.BeginObject().Key("queue").String(t.queue).Key("action").String(t.action);
  w.Key("priority").Int(t.priority).Key("state").String(TaskStateName(t.state));
  w.Key("run_at").Time(t.run_at).Key("parent_id").String(t.parent_id);
  w.Key("depth").Int(t.depth).EndObject();
  AppendEvent(batch, now, "task.enqueued", id, std::move(data));
  batch.mutations.emplace_back(std::in_place_type<InsertTask>,
                               std::make_shared<const Task>(std::move(t)));
}

}  // namespace resonance
