#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.h"
#include "worker/backoff.h"
#include "worker/leased_task.h"
#include "worker/server_api.h"

namespace resonance::worker {

// Delivers outcomes (complete / fail) to the server, and never gives one up while it
// could still land. What queues up goes out in batches. While the server cannot be
// reached, an item is retried with backoff (0.1 s doubling to 2 s) until its lease
// lapses; then the server times the attempt out and retries the task by itself, so the
// task is not lost, only this attempt's result (logged as an error). A stale lease
// (409/404) drops the item with a warning. A result the server refuses (too large,
// malformed) is sent again as a validation failure naming the reason.
// Thread-safe; owns one thread from construction to Close.
class Reporter {
 public:
  // Called on the reporter's thread once per item when it is done with it: ok when the
  // server recorded it, else why not.
  using DoneFn = std::function<void(const std::string& id, const Status& status)>;

  Reporter(ServerApi& api, const Clock& clock, DoneFn done);
  ~Reporter();  // Close(now)

  void Submit(Finish finish, std::shared_ptr<LeaseState> lease);
  // Delivers what is queued (and what is submitted meanwhile) and stops the thread;
  // gives up on what is still undelivered at `until` (clock time). Returns how many
  // items were given up. Idempotent.
  size_t Close(Micros until);
  // Gives up what is undelivered at `until` at the latest, also during a Close already
  // waiting with a later bound.
  void Hasten(Micros until);
  size_t pending() const;

 private:
  struct Item {
    Finish finish;
    std::shared_ptr<LeaseState> lease;
  };
  void Loop();
  // Handles one answer; returns true when the item must be tried again later.
  bool Answered(Item& item, const FinishAnswer& answer, std::deque<Item>& again);
  void GiveUp(const Item& item, const std::string& why);

  ServerApi& api_;
  const Clock& clock_;
  DoneFn done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;           // guarded by mu_
  size_t in_flight_ = 0;             // guarded by mu_
  Micros retry_at_ = 0;              // guarded by mu_: no send before this (backoff)
  bool closing_ = false;             // guarded by mu_
  Micros close_until_ = 0;           // guarded by mu_
  Micros hasten_until_ = INT64_MAX;  // guarded by mu_
  size_t given_up_ = 0;              // guarded by mu_
  Backoff backoff_;                  // reporter thread only
  OutageLog outage_;                 // reporter thread only
  std::thread thread_;
};

}  // namespace resonance::worker
