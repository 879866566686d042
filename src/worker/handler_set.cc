#include "worker/handler_set.h"

#include "worker/builtin_handlers.h"
#include "worker/exec_handler.h"
#include "worker/persistent_handler.h"

namespace resonance::worker {

HandlerSet::HandlerSet(const WorkerConfig& config, Spawner& spawner, const Clock& clock,
                       const std::string& worker_id, int slot)
    : config_(config), worker_id_(worker_id) {
  for (const auto& [action, hc] : config.handlers) {
    std::unique_ptr<Handler> h;
    switch (hc.type) {
      case HandlerType::kExec:
        h = std::make_unique<ExecHandler>(hc, spawner, worker_id);
        break;
      case HandlerType::kPersistent:
        h = std::make_unique<PersistentHandler>(hc, spawner, clock, worker_id, slot);
        break;
      default:
        h = MakeBuiltinHandler(hc);
        break;
    }
    handlers_.emplace(action, std::move(h));
  }
}

Handler* HandlerSet::Find(std::string_view action) {
  auto it = handlers_.find(action);
  if (it != handlers_.end()) return it->second.get();
  if (action == kCanaryAction) {  // built in: the canary runs through every worker
    if (!canary_) canary_ = MakeCanaryHandler(worker_id_);
    return canary_.get();
  }
  return nullptr;
}

}  // namespace resonance::worker
