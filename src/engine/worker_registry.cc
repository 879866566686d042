#include "engine/worker_registry.h"

namespace resonance {

const char* WorkerStatusName(WorkerStatus s) {
  switch (s) {
    case WorkerStatus::kActive: return "active";
    case WorkerStatus::kLost: return "lost";
    case WorkerStatus::kGone: return "gone";
  }
  return "active";
}

uint32_t WorkerRegistry::Intern(const std::string& name) {
  const uint32_t w = names_.Intern(name);
  if (workers_.size() <= w) workers_.resize(w + 1);
  return w;
}

Status WorkerRegistry::Register(const WorkerRegistration& r, Micros now, uint32_t* index) {
  const uint32_t w = Intern(r.name);
  State& s = workers_[w];
  if (s.registered && s.status == WorkerStatus::kActive && now - s.last_seen < lost_after_ &&
      s.registration.pid != r.pid) {
    return Status(Code::kConflict, "worker " + r.name + " is already registered by pid " +
                                       std::to_string(s.registration.pid) + " on " +
                                       s.registration.host);
  }
  s.registration = r;
  s.registered = true;
  s.status = WorkerStatus::kActive;
  s.started_at = now;
  s.last_seen = now;
  *index = w;
  return Status::Ok();
}

bool WorkerRegistry::WasRegistered(const std::string& name) const {
  const uint32_t w = names_.Find(name);
  return w != UINT32_MAX && w < workers_.size() && workers_[w].registered;
}

Status WorkerRegistry::Heartbeat(const std::string& name, Micros now) {
  const uint32_t w = names_.Find(name);
  if (w == UINT32_MAX || w >= workers_.size() || !workers_[w].registered ||
      workers_[w].status != WorkerStatus::kActive) {
    return Status(Code::kNotFound, "worker " + name + " is not registered; register again");
  }
  workers_[w].last_seen = now;
  return Status::Ok();
}

Status WorkerRegistry::Deregister(const std::string& name, Micros now, uint32_t* index) {
  const uint32_t w = names_.Find(name);
  if (w == UINT32_MAX || w >= workers_.size() || !workers_[w].registered) {
    return Status(Code::kNotFound, "worker " + name + " is not registered");
  }
  workers_[w].status = WorkerStatus::kGone;
  workers_[w].last_seen = now;
  *index = w;
  return Status::Ok();
}

std::vector<uint32_t> WorkerRegistry::MarkLost(Micros now) {
  std::vector<uint32_t> lost;
  for (uint32_t w = 1; w < workers_.size(); ++w) {
    State& s = workers_[w];
    if (s.registered && s.status == WorkerStatus::kActive && now - s.last_seen >= lost_after_) {
      s.status = WorkerStatus::kLost;
      lost.push_back(w);
    }
  }
  return lost;
}

std::vector<WorkerInfo> WorkerRegistry::List() const {
  std::vector<WorkerInfo> out;
  for (uint32_t w = 1; w < workers_.size(); ++w) {
    const State& s = workers_[w];
    if (s.last_seen == 0) continue;
    out.push_back({names_.Name(w), s.registration, s.registered, s.status, s.started_at,
                   s.last_seen, s.running});
  }
  return out;
}

}  // namespace resonance
