#include "engine/canary.h"

#include "core/json_writer.h"
#include "engine/engine.h"
#include "observe/log.h"

namespace resonance {

CanaryRunner::CanaryRunner(std::vector<CanaryConfig> canaries, Engine& engine, Store& store)
    : engine_(engine), store_(store) {
  for (auto& c : canaries) {
    CanaryState st;
    st.queue = c.queue;
    states_.push_back(st);
    running_.push_back(Running{std::move(c), 0, "", 0});
  }
}

std::vector<CanaryState> CanaryRunner::States() const {
  std::lock_guard lock(mu_);
  return states_;
}

void CanaryRunner::Finish(Running& r, CanaryState& st, const std::string& outcome, double latency_s,
                          Micros now) {
  {
    std::lock_guard lock(mu_);
    st.last_outcome = outcome;
    st.last_latency_s = latency_s;
    if (outcome == "ok") st.last_success = now;
    ++st.runs[outcome];
  }
  std::string data;
  JsonWriter w(data);
  w.BeginObject().Key("queue").String(r.config.queue).Key("task_id").String(r.task_id);
  w.Key("outcome").String(outcome).Key("latency_s").Double(latency_s).EndObject();
  engine_.RecordEvent("canary.result", std::move(data), [](const Status& s) {
    if (!s.ok()) log::Warn("canary", "ledger: " + s.message());
  });
  if (outcome != "ok") {
    log::Warn("canary", "canary on queue " + r.config.queue + " " + outcome,
              {{"queue", r.config.queue}, {"task_id", r.task_id}});
  }
  r.task_id.clear();
}

void CanaryRunner::Tick(Micros now) {
  for (size_t i = 0; i < running_.size(); ++i) {
    Running& r = running_[i];
    CanaryState& st = states_[i];  // only this thread writes the fields under mu_
    {
      std::lock_guard lock(mu_);
      if (r.enqueuing) continue;  // its commit has not answered yet
    }
    if (!r.task_id.empty()) {
      auto t = store_.GetTask(r.task_id);
      if (t.ok() && t->state == TaskState::kSucceeded) {
        Finish(r, st, "ok", static_cast<double>(t->finished_at - t->created_at) / kMicrosPerSecond, now);
      } else if (t.ok() && IsTerminal(t->state)) {
        Finish(r, st, "failed", static_cast<double>(t->finished_at - t->created_at) / kMicrosPerSecond,
               now);
      } else if (now - r.enqueued_at >= static_cast<Micros>(r.config.timeout_s) * kMicrosPerSecond) {
        const std::string id = r.task_id;
        Finish(r, st, "missing", static_cast<double>(now - r.enqueued_at) / kMicrosPerSecond, now);
        engine_.Cancel(id, [](const Status&) {});  // do not let them pile up
      }
    }
    if (r.task_id.empty() && now >= r.next_due) {
      NewTask t;
      t.queue = r.config.queue;
      t.action = std::string(kCanaryAction);
      std::string payload;
      JsonWriter(payload).BeginObject().Key("canary").Bool(true).Key("sent_at").Time(now).EndObject();
      t.payload = std::move(payload);
      t.max_attempts = 1;
      t.timeout_s = r.config.timeout_s;
      t.idempotency_key = "canary:" + r.config.queue + ":" + std::to_string(now);
      {
        std::lock_guard lock(mu_);
        r.enqueuing = true;
      }
      r.enqueued_at = now;
      std::vector<NewTask> batch;
      batch.push_back(std::move(t));
      // Never wait here for the commit: at shutdown the thread that delivers it may
      // be the one waiting for this thread.
      engine_.Enqueue(std::move(batch), [this, i](const Status& s, std::vector<EnqueueOutcome> out) {
        std::lock_guard lock(mu_);
        running_[i].task_id = s.ok() && !out.empty() ? out.front().id : std::string();
        running_[i].enqueuing = false;
      });
      r.next_due = now + static_cast<Micros>(r.config.interval_s) * kMicrosPerSecond;
    }
  }
}

}  // namespace resonance
