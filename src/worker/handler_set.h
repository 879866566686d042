#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "worker/handler.h"
#include "worker/handler_config.h"
#include "worker/spawner.h"

namespace resonance::worker {

// The handlers of one worker slot: one per configured action, made from the config.
// Not thread-safe: owned and used by the slot's thread. Persistent processes end with
// the set.
class HandlerSet {
 public:
  HandlerSet(const WorkerConfig& config, Spawner& spawner, const Clock& clock,
             const std::string& worker_id, int slot);
  // The handler for an action and its config; nullptr when none is configured (the
  // canary action has a built-in one, unless configured).
  Handler* Find(std::string_view action);
  const HandlerConfig* ConfigFor(std::string_view action) const { return config_.Find(action); }

 private:
  const WorkerConfig& config_;
  std::map<std::string, std::unique_ptr<Handler>, std::less<>> handlers_;
  std::string worker_id_;
  std::unique_ptr<Handler> canary_;  // made on first use
};

}  // namespace resonance::worker
