// Engine: live events. Ledger records and progress reach the event hub only after
// their batch is durable, in submission (= ledger) order; see event_hub.h.
#include "engine/engine.h"

namespace resonance {

std::unique_ptr<EventSubscription> Engine::Subscribe(EventFilter filter, std::function<void()> wake,
                                                     int64_t* last_seq) {
  if (!options_.events) return nullptr;
  // Under mu_: no batch is between taking its ledger seqs and being submitted, so the
  // seqs up to last_seq are all submitted and later ones see active() and are copied.
  auto lock = Lock();
  *last_seq = chain_.last_seq();
  return options_.events->Subscribe(std::move(filter), std::move(wake));
}

Engine::Done Engine::PublishWhenDurable(const WriteBatch& batch, std::vector<StreamEvent> ephemeral,
                                        Done done) {
  std::vector<StreamEvent> events;
  for (const Mutation& m : batch.mutations) {
    if (const auto* a = std::get_if<AppendLedger>(&m)) {
      const LedgerRecord& r = a->record;
      events.push_back({r.seq, r.ts, r.kind, r.task_id, r.data});
    }
  }
  for (auto& e : ephemeral) events.push_back(std::move(e));
  if (events.empty()) return done;
  EventHub* hub = options_.events;
  const uint64_t ticket = hub->Reserve();
  // Runs on the store's callback thread: never takes mu_ (see Lock()).
  return
      [hub, ticket, events = std::move(events), done = std::move(done)](const Status& s) mutable {
        hub->Publish(ticket, s.ok() ? std::move(events) : std::vector<StreamEvent>());
        if (done) done(s);
      };
}

}  // namespace resonance
