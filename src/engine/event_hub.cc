#include "engine/event_hub.h"

#include <algorithm>
#include <iterator>

namespace resonance {

bool EventFilter::Matches(const StreamEvent& e) const {
  if (!task_id.empty() && e.task_id != task_id) return false;
  if (kind_prefixes.empty()) return true;
  return std::any_of(kind_prefixes.begin(), kind_prefixes.end(), [&](const std::string& p) {
    return std::string_view(e.kind).substr(0, p.size()) == p;
  });
}

size_t EventBytes(const StreamEvent& e) {
  // "id: N\nevent: K\ndata: {"seq":N,"ts":"...","kind":"K","task_id":"T","data":D}\n\n"
  return e.kind.size() * 2 + e.task_id.size() + e.data.size() + 96;
}

EventSubscription::~EventSubscription() { hub_.Unsubscribe(this); }

std::vector<std::shared_ptr<const StreamEvent>> EventSubscription::Take() {
  std::lock_guard lock(hub_.mu_);
  std::vector<std::shared_ptr<const StreamEvent>> out(std::make_move_iterator(pending_.begin()),
                                                      std::make_move_iterator(pending_.end()));
  pending_.clear();
  pending_bytes_ = 0;
  return out;
}

bool EventSubscription::dropped() const {
  std::lock_guard lock(hub_.mu_);
  return dropped_;
}

EventHub::EventHub(EventHubOptions options) : options_(options) {}

EventHub::~EventHub() = default;

std::unique_ptr<EventSubscription> EventHub::Subscribe(EventFilter filter,
                                                       std::function<void()> wake) {
  std::unique_ptr<EventSubscription> s(new EventSubscription(
      *this, std::move(filter), std::make_shared<const std::function<void()>>(std::move(wake))));
  std::lock_guard lock(mu_);
  subs_.push_back(s.get());
  subscribers_.store(subs_.size(), std::memory_order_release);
  return s;
}

void EventHub::Unsubscribe(EventSubscription* s) {
  std::lock_guard lock(mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
  subscribers_.store(subs_.size(), std::memory_order_release);
}

void EventHub::Publish(uint64_t ticket, std::vector<StreamEvent> events) {
  // Allocated outside the lock; shared by every subscriber that wants them.
  Shared shared;
  shared.reserve(events.size());
  for (auto& e : events) shared.push_back(std::make_shared<const StreamEvent>(std::move(e)));
  std::vector<EventSubscription::Wake> wake;
  {
    std::lock_guard lock(mu_);
    if (ticket != next_publish_) {
      parked_.emplace(ticket, std::move(shared));
      return;
    }
    DeliverLocked(shared, wake);
    ++next_publish_;
    for (auto it = parked_.begin(); it != parked_.end() && it->first == next_publish_;
         it = parked_.erase(it)) {
      DeliverLocked(it->second, wake);
      ++next_publish_;
    }
  }
  for (const auto& w : wake) {
    if (*w) (*w)();
  }
}

void EventHub::DeliverLocked(const Shared& events, std::vector<EventSubscription::Wake>& wake) {
  if (events.empty()) return;
  for (EventSubscription* s : subs_) {
    if (s->dropped_) continue;
    const bool was_empty = s->pending_.empty();
    // Over the limit before this batch: behind, not merely hit by one large burst.
    const bool behind = s->pending_bytes_ > options_.client_buffer_bytes;
    bool added = false;
    for (const auto& e : events) {
      if (!s->filter_.Matches(*e)) continue;
      if (behind) {
        s->dropped_ = true;
        s->pending_.clear();
        s->pending_bytes_ = 0;
        dropped_total_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      s->pending_.push_back(e);
      s->pending_bytes_ += EventBytes(*e);
      added = true;
    }
    if (s->dropped_ || (added && was_empty)) wake.push_back(s->wake_);
  }
}

}  // namespace resonance
