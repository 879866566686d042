#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace resonance {

// One event as live streams see it (GET /api/events, docs/api.md §11): a committed
// ledger record, or an ephemeral report that is not in the ledger (task.progress).
struct StreamEvent {
  int64_t seq = 0;  // the ledger seq; 0 for ephemeral events
  Micros ts = 0;
  std::string kind;     // "task.leased", "task.progress", ...
  std::string task_id;  // empty when the event is not about one task
  std::string data;     // the record's data object, or the raw progress JSON
};

// Which events a subscriber wants. Empty fields match everything.
struct EventFilter {
  std::string task_id;                     // only this task's events
  std::vector<std::string> kind_prefixes;  // kind starts with one of these ("task.")
  bool Matches(const StreamEvent& e) const;
};

// Roughly what an event costs a subscriber: its text plus the SSE and JSON framing.
size_t EventBytes(const StreamEvent& e);

class EventHub;

// One subscriber's queue of pending events. Made by EventHub::Subscribe; destroying it
// unsubscribes: nothing is queued after the destructor returns, but a wake already
// under way on another thread may still run (see Subscribe). Thread-safe.
class EventSubscription {
 public:
  ~EventSubscription();
  EventSubscription(const EventSubscription&) = delete;
  EventSubscription& operator=(const EventSubscription&) = delete;

  // Moves out every pending event, oldest first (empty when none). Events are shared
  // with other subscribers: never modified.
  std::vector<std::shared_ptr<const StreamEvent>> Take();
  // True once the subscriber fell behind (see EventHub): its pending events were
  // discarded and nothing more is queued. Final.
  bool dropped() const;

 private:
  friend class EventHub;
  using Wake = std::shared_ptr<const std::function<void()>>;
  EventSubscription(EventHub& hub, EventFilter filter, Wake wake)
      : hub_(hub), filter_(std::move(filter)), wake_(std::move(wake)) {}

  EventHub& hub_;
  const EventFilter filter_;
  const Wake wake_;  // shared, so a wake can run outside the lock
  // All guarded by hub_.mu_.
  std::deque<std::shared_ptr<const StreamEvent>> pending_;
  size_t pending_bytes_ = 0;
  bool dropped_ = false;
};

struct EventHubOptions {
  // A subscriber that still has more than this many bytes (EventBytes) pending when
  // further events for it arrive is dropped.
  size_t client_buffer_bytes = 1 << 20;
};

// Fans committed events out to live subscribers (the SSE streams). The engine
// publishes; HTTP streams subscribe. Thread-safe.
//
// The engine never waits on a subscriber. Publishing costs nothing while there are
// none (active() is one atomic load, and the engine copies nothing then); with
// subscribers it is one append per matching subscriber under one short lock. A
// subscriber is woken (its `wake` called, outside the lock) only when its queue turns
// non-empty and when it is dropped, so wake must be cheap and must not block (post a
// task and return).
//
// Order: the publisher takes a ticket per write batch with Reserve(), in the order the
// batches are submitted to the store (under the engine's mutex), and Publish(ticket)
// releases each batch's events only after every earlier ticket has been published. So
// subscribers see events in ledger order even when commit callbacks run on several
// threads. Every reserved ticket must be published exactly once, with no events when
// its commit failed; a ticket never published holds back all later ones.
//
// Dropped when: a subscriber that still has more than client_buffer_bytes pending when
// more events for it arrive loses its queue and gets nothing more (dropped() turns true
// and the drop is counted). The check comes before the append, so a subscriber that
// keeps up takes a burst larger than the limit (one Tick making thousands of tasks
// ready) without being dropped; a stuck one holds at most the limit plus one batch.
// Events published while there are no subscribers go nowhere. Ledger events can be
// read again from the store (resume with Last-Event-ID); ephemeral ones cannot.
class EventHub {
 public:
  explicit EventHub(EventHubOptions options = {});
  ~EventHub();  // every subscription must be gone by now
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Subscribes. wake is called from publishing threads (see above), and may run once
  // more just after the subscription is destroyed: it must not own the subscriber
  // (capture a weak_ptr).
  std::unique_ptr<EventSubscription> Subscribe(EventFilter filter, std::function<void()> wake);

  // True while anyone is subscribed. A publisher that sees false may skip Reserve and
  // Publish altogether.
  bool active() const { return subscribers_.load(std::memory_order_acquire) > 0; }
  // A place in the publishing order; call in submission order.
  uint64_t Reserve() { return next_ticket_.fetch_add(1, std::memory_order_relaxed); }
  // Hands out the events of `ticket` (in the given order) once all earlier tickets are
  // out. Pass no events for a batch that did not commit.
  void Publish(uint64_t ticket, std::vector<StreamEvent> events);

  // For metrics: current subscribers, and subscribers dropped since start.
  size_t subscribers() const { return subscribers_.load(std::memory_order_relaxed); }
  uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }
  // Tickets reserved since start (tests: nothing is published without subscribers).
  uint64_t reserved() const { return next_ticket_.load(std::memory_order_relaxed); }

 private:
  friend class EventSubscription;
  using Shared = std::vector<std::shared_ptr<const StreamEvent>>;
  void Unsubscribe(EventSubscription* s);
  // Appends to every matching subscriber; collects who needs waking. mu_ held.
  void DeliverLocked(const Shared& events, std::vector<EventSubscription::Wake>& wake);

  const EventHubOptions options_;
  std::atomic<size_t> subscribers_{0};
  std::atomic<uint64_t> dropped_total_{0};
  std::atomic<uint64_t> next_ticket_{0};
  mutable std::mutex mu_;
  std::vector<EventSubscription*> subs_;  // guarded by mu_
  uint64_t next_publish_ = 0;             // guarded by mu_
  std::map<uint64_t, Shared> parked_;     // early tickets; guarded by mu_
};

}  // namespace resonance
