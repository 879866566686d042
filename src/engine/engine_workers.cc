// Engine: the worker registry's operations (registration, heartbeats, exit).
// Lost workers are handled in Engine::Tick (engine.cc).
#include "core/json_writer.h"
#include "engine/engine.h"

namespace resonance {

void Engine::RegisterWorker(WorkerRegistration r, Done done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"));
  const Micros now = clock_.Now();
  uint32_t w = 0;
  const bool again = workers_.WasRegistered(r.name);
  if (Status s = workers_.Register(r, now, &w); !s.ok()) return done(s);
  if (again) {
    if (options_.metrics) options_.metrics->WorkerRestarted(r.pool);
    restarts_.emplace_back(now, r.pool.empty() ? "none" : r.pool);
    while (!restarts_.empty() && restarts_.front().first < now - 24 * 3600 * kMicrosPerSecond) {
      restarts_.pop_front();
    }
  }
  std::string data;
  JsonWriter j(data);
  j.BeginObject().Key("worker").String(r.name).Key("pool").String(r.pool);
  j.Key("pid").Int(r.pid).Key("host").String(r.host).EndObject();
  WriteBatch batch;
  AppendEvent(batch, now, "worker.registered", 0, std::move(data));
  SubmitLocked(std::move(batch), std::move(done));
}

std::map<std::string, int> Engine::RestartsSince(Micros since) {
  auto lock = Lock();
  std::map<std::string, int> out;
  for (const auto& [when, pool] : restarts_) {
    if (when >= since) ++out[pool];
  }
  return out;
}

void Engine::RecordEvent(std::string kind, std::string data, Done done,
                         std::vector<Mutation> with) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"));
  WriteBatch batch;
  batch.mutations = std::move(with);
  AppendEvent(batch, clock_.Now(), std::move(kind), 0, std::move(data));
  SubmitLocked(std::move(batch), std::move(done));
}

Status Engine::WorkerHeartbeat(const std::string& name) {
  auto lock = Lock();
  return workers_.Heartbeat(name, clock_.Now());
}

void Engine::DeregisterWorker(const std::string& name, Done done) {
  auto lock = Lock();
  if (failed_) return done(Status(Code::kUnavailable, "store failed; restart the server"));
  const Micros now = clock_.Now();
  uint32_t w = 0;
  if (Status s = workers_.Deregister(name, now, &w); !s.ok()) return done(s);
  std::string data;
  JsonWriter(data).BeginObject().Key("worker").String(name).EndObject();
  WriteBatch batch;
  AppendEvent(batch, now, "worker.deregistered", 0, std::move(data));
  std::vector<TaskId> finished_with_key;
  ReleaseLeasesOf(w, ErrorClass::kTemporary, "worker stopped", now, batch, finished_with_key);
  SubmitLocked(std::move(batch), ReleaseKeysAfter(std::move(finished_with_key), std::move(done)));
  if (!waiters_.empty()) ServeWaiters(now);
}

}  // namespace resonance
