#include "worker/runtime.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/task_id.h"
#include "observe/log.h"
#include "observe/otlp_exporter.h"
#include "observe/trace.h"
#include "worker/backoff.h"
#include "worker/child_io.h"
#include "worker/handler_set.h"

namespace resonance::worker {
namespace {
constexpr Micros kTick = 50 * kMicrosPerMilli;
constexpr Micros kNever = INT64_MAX / 2;
// After a second Stop, how long the reporter may still try to deliver.
constexpr Micros kHurriedFlush = 5 * kMicrosPerSecond;
}  // namespace

WorkerRuntime::WorkerRuntime(RuntimeOptions options, const WorkerConfig& config, ServerApi& api,
                             Spawner& spawner, const Clock& clock)
    : options_(std::move(options)), config_(config), api_(api), spawner_(spawner), clock_(clock) {}

WorkerRuntime::~WorkerRuntime() = default;

template <typename Pred>
bool WorkerRuntime::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                              Micros until, Pred pred) {
  while (!pred()) {
    const Micros left = until - clock_.Now();
    if (left <= 0) return false;
    cv.wait_for(lock, std::chrono::microseconds(std::min(left, kTick)));
  }
  return true;
}

void WorkerRuntime::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      if (!hurry_) log::Info("worker", "asked again to stop: handing running tasks back now");
      hurry_ = true;
      if (reporter_) reporter_->Hasten(clock_.Now() + kHurriedFlush);
    } else {
      log::Info("worker", "stopping: no more leasing; running tasks get " +
                              FormatSeconds(static_cast<double>(options_.drain_grace) / 1e6) +
                              " s to finish");
      stopping_ = true;
    }
  }
  stop_lease_ = true;
  work_cv_.notify_all();
  free_cv_.notify_all();
  state_cv_.notify_all();
}

Micros WorkerRuntime::LocalDeadline(Micros lease_expires_at, int timeout_s) const {
  // The server's clock says when the lease lapses. Read it as time left, and fall back to
  // the lease length when the two clocks disagree wildly.
  const Micros now = clock_.Now();
  Micros left = lease_expires_at - now;
  const Micros length = std::max(1, timeout_s) * kMicrosPerSecond;
  if (lease_expires_at == 0 || left <= 0 || left > length + 5 * kMicrosPerSecond) left = length;
  return now + left;
}

bool WorkerRuntime::RegisterLoop() {
  Registration r{options_.worker_id, options_.pool,   options_.pid,
                 options_.host,      options_.queues, options_.concurrency};
  Backoff backoff = LeaseRetryBackoff(static_cast<uint64_t>(options_.pid));
  OutageLog outage(clock_, "registering with the server");
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return true;
    }
    auto reply = api_.Register(r);
    if (reply.ok()) {
      outage.Succeeded();
      registered_ = true;
      registry_interval_ =
          std::max<Micros>(100 * kMicrosPerMilli, reply->heartbeat_ms * kMicrosPerMilli);
      next_registry_heartbeat_ = clock_.Now() + registry_interval_;
      log::Info("worker", "registered as " + options_.worker_id +
                              (options_.pool.empty() ? "" : " in pool " + options_.pool));
      return true;
    }
    const Status& s = reply.status();
    if (s.code() == Code::kConflict) {
      log::Error("worker", "worker id " + options_.worker_id +
                               " is held by another live worker; refusing to run a duplicate (" +
                               s.message() + ")");
      return false;
    }
    if (s.code() == Code::kNotFound) {
      outage.Succeeded();
      log::Info("worker",
                "the server has no worker registry (an older server); leasing without registering");
      return true;
    }
    outage.Failed(s);
    std::unique_lock<std::mutex> lock(mu_);
    WaitUntil(state_cv_, lock, clock_.Now() + backoff.Next(), [&] { return stopping_; });
  }
}

int WorkerRuntime::Run() {
  if (!RegisterLoop()) return kExitIdentityInUse;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reporter_ = std::make_unique<Reporter>(
        api_, clock_, [this](const std::string& id, const Status& s) { OnReported(id, s); });
  }
  std::thread heartbeats([this] { HeartbeatLoop(); });
  std::vector<std::thread> slots;
  for (int i = 0; i < options_.concurrency; ++i) slots.emplace_back([this, i] { SlotLoop(i); });
  std::thread lease([this] { LeaseLoop(); });
  log::Info(
      "worker", "worker " + options_.worker_id + " leasing from queues " +
                    [&] {
                      std::string q;
                      for (const auto& name : options_.queues) q += (q.empty() ? "" : ",") + name;
                      return q;
                    }() +
                    ", concurrency " + std::to_string(options_.concurrency));

  {
    std::unique_lock<std::mutex> lock(mu_);
    state_cv_.wait(lock, [&] { return stopping_; });
  }
  lease.join();  // stop_lease_ aborts its long-poll; what it still got is handed back
  Drain(slots);
  {
    std::lock_guard<std::mutex> lock(mu_);
    heartbeats_exit_ = true;
  }
  state_cv_.notify_all();
  heartbeats.join();
  if (registered_) {
    if (Status s = api_.Deregister(options_.worker_id); !s.ok()) {
      log::Warn("worker", "could not deregister: " + s.message());
    }
  }
  log::Info("worker", "worker " + options_.worker_id + " stopped");
  std::lock_guard<std::mutex> lock(mu_);
  return exit_code_;
}

void WorkerRuntime::Drain(std::vector<std::thread>& slots) {
  std::unique_lock<std::mutex> lock(mu_);
  const Micros grace_end = clock_.Now() + options_.drain_grace;
  // Leased but not started: nothing to wait for.
  std::deque<std::shared_ptr<Held>> unstarted = std::move(ready_);
  ready_.clear();
  busy_slots_ -= static_cast<int>(unstarted.size());
  lock.unlock();
  for (auto& h : unstarted) HandBack(h);

  lock.lock();
  WaitUntil(state_cv_, lock, grace_end, [&] { return busy_slots_ == 0 || hurry_; });
  std::vector<std::shared_ptr<Held>> running;
  for (auto& [id, h] : held_) {
    if (h->started && !h->finished && !h->handed_back) running.push_back(h);
  }
  lock.unlock();
  for (auto& h : running) HandBack(h);  // their handlers get SIGTERM, then SIGKILL

  lock.lock();
  slots_exit_ = true;
  lock.unlock();
  work_cv_.notify_all();
  for (auto& t : slots) t.join();

  // Deliver what is left while the leases hold (heartbeats go on meanwhile); a second
  // Stop cuts this short (Reporter::Hasten).
  lock.lock();
  Micros until = clock_.Now() + 2 * kMicrosPerSecond;
  for (auto& [id, h] : held_) until = std::max(until, h->lease->deadline.load());
  if (hurry_) until = std::min(until, clock_.Now() + kHurriedFlush);
  lock.unlock();
  const size_t lost = reporter_->Close(until);
  if (lost > 0)
    log::Warn("worker",
              std::to_string(lost) + " results could not be delivered before their leases lapsed");
}

void WorkerRuntime::LeaseLoop() {
  Backoff backoff = LeaseRetryBackoff(static_cast<uint64_t>(options_.pid) + 1);
  OutageLog outage(clock_, "leasing from the server");
  for (;;) {
    int free = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      free_cv_.wait(lock, [&] { return stopping_ || busy_slots_ < options_.concurrency; });
      if (stopping_) return;
      free = options_.concurrency - busy_slots_;
    }
    LeaseRequest req{options_.worker_id, options_.queues, free, options_.lease_wait_ms};
    auto leased = api_.Lease(req, stop_lease_);
    if (!leased.ok()) {
      if (stop_lease_) return;
      outage.Failed(leased.status());
      std::unique_lock<std::mutex> lock(mu_);
      WaitUntil(free_cv_, lock, clock_.Now() + backoff.Next(), [&] { return stopping_; });
      continue;
    }
    outage.Succeeded();
    backoff.Reset();
    if (leased->empty() && options_.lease_wait_ms < 100) {
      // No long-poll to wait in: do not spin on an empty queue.
      std::unique_lock<std::mutex> lock(mu_);
      WaitUntil(free_cv_, lock, clock_.Now() + 100 * kMicrosPerMilli, [&] { return stopping_; });
      continue;
    }
    std::vector<std::shared_ptr<Held>> hand_back;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& t : *leased) {
        auto h = std::make_shared<Held>();
        const HandlerConfig* hc = config_.Find(t.action);
        const double timeout_s = hc && hc->timeout_s > 0 ? hc->timeout_s : std::max(1, t.timeout_s);
        h->ctx = std::make_unique<TaskContext>(clock_, timeout_s);
        h->lease = std::make_shared<LeaseState>();
        const Micros deadline = LocalDeadline(t.lease_expires_at, t.timeout_s);
        h->lease->deadline = deadline;
        h->next_heartbeat = clock_.Now() + (deadline - clock_.Now()) / 3;
        h->last_heartbeat = clock_.Now();
        h->task = std::move(t);
        held_[h->task.id] = h;
        if (stopping_) {
          hand_back.push_back(h);
        } else {
          ready_.push_back(h);
          ++busy_slots_;
        }
      }
    }
    for (size_t i = 0; i < leased->size() - hand_back.size(); ++i) work_cv_.notify_one();
    for (auto& h : hand_back) HandBack(h);
  }
}

void WorkerRuntime::HandBack(const std::shared_ptr<Held>& h) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (h->handed_back) return;
    h->handed_back = true;
  }
  log::Info("worker", "task " + h->task.id + ": handing it back (worker stopping)");
  h->ctx->RequestStop(StopReason::kShutdown);
  reporter_->Submit(Finish{h->task.id, h->task.lease,
                           Outcome::Failure(ErrorClass::kTemporary, "worker stopping")},
                    h->lease);
}

void WorkerRuntime::SlotLoop(int slot) {
  HandlerSet handlers(config_, spawner_, clock_, options_.worker_id, slot);
  for (;;) {
    std::shared_ptr<Held> h;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return !ready_.empty() || slots_exit_; });
      if (ready_.empty()) return;
      h = std::move(ready_.front());
      ready_.pop_front();
      h->started = true;
    }
    // The attempt's span: a child of the task's task.enqueue span (whose id the task id
    // implies), and the parent of whatever the handler traces under TRACEPARENT.
    const std::string& tid = h->task.trace_id;
    if (tid.size() != 32 || tid.find_first_not_of("0123456789abcdef") != std::string::npos ||
        tid.find_first_not_of('0') == std::string::npos) {
      h->task.trace_id = trace::NewTraceId();  // a task enqueued without one (or a bad one)
    }
    h->task.span_id = trace::NewSpanId();
    h->started_unix_nano = trace::NowUnixNano();
    Outcome outcome;
    if (h->ctx->StopRequested()) {
      outcome = Outcome::Failure(ErrorClass::kTemporary, "handler stopped");
    } else if (Handler* handler = handlers.Find(h->task.action)) {
      outcome = handler->Run(h->task, *h->ctx);
    } else {
      outcome = Outcome::Failure(ErrorClass::kValidation,
                                 "no handler for action '" + h->task.action + "' on worker " +
                                     options_.worker_id + " (configure [handlers.\"" +
                                     h->task.action + "\"])");
    }
    Finalize(h, std::move(outcome));
  }
}

void WorkerRuntime::Finalize(const std::shared_ptr<Held>& h, Outcome outcome) {
  const StopReason reason = h->ctx->stop_reason();
  bool drop = reason == StopReason::kLeaseLost || h->lease->lost.load();
  if (!outcome.ok && reason == StopReason::kCancelled) {
    outcome = Outcome::Failure(ErrorClass::kCancelled, "cancelled on request");
  } else if (!outcome.ok && reason == StopReason::kShutdown) {
    outcome = Outcome::Failure(ErrorClass::kTemporary, "worker stopping");
  }
  bool submit = false;
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
    --busy_slots_;
    h->finished = true;
    if (h->handed_back) {
      // Already reported as "worker stopping"; the reporter's answer releases it.
    } else if (drop) {
      log::Warn("worker",
                "task " + h->task.id + ": dropping its outcome, the lease is no longer ours");
      held_.erase(h->task.id);
    } else {
      submit = true;
    }
  }
  free_cv_.notify_one();
  if (stopping) state_cv_.notify_all();
  RecordAttempt(*h, outcome);
  if (submit) {
    Finish f{h->task.id, h->task.lease, std::move(outcome),
             trace::FormatTraceparent(h->task.trace_id, h->task.span_id)};
    reporter_->Submit(std::move(f), h->lease);
  }
}

void WorkerRuntime::RecordAttempt(const Held& h, const Outcome& outcome) {
  const int64_t end = trace::NowUnixNano();
  const double ms = std::round(static_cast<double>(end - h.started_unix_nano) / 1e3) / 1e3;
  const std::string_view cls = outcome.ok ? "" : ErrorClassName(outcome.error_class);
  log::Write(outcome.ok ? log::Level::kDebug : log::Level::kInfo, "worker",
             outcome.ok ? "attempt succeeded" : "attempt failed",
             {{"task_id", h.task.id},
              {"trace_id", h.task.trace_id},
              {"span_id", h.task.span_id},
              {"worker", options_.worker_id},
              {"action", h.task.action},
              {"attempt", h.task.attempt},
              {"duration_ms", ms},
              {"error_class", cls},
              {"error", outcome.ok ? std::string_view() : std::string_view(outcome.message)}});
  if (!options_.tracer) return;
  trace::Span span;
  span.trace_id = h.task.trace_id;
  span.span_id = h.task.span_id;
  auto id = ParseTaskId(h.task.id);
  if (id) span.parent_span_id = trace::SpanIdForTask(*id);
  span.name = "task.attempt";
  span.kind = trace::SpanKind::kConsumer;
  span.start_unix_nano = h.started_unix_nano;
  span.end_unix_nano = end;
  span.attributes = {{"task.id", h.task.id},
                     {"task.queue", h.task.queue},
                     {"task.action", h.task.action},
                     {"task.attempt", static_cast<int64_t>(h.task.attempt)},
                     {"worker.id", options_.worker_id}};
  if (!outcome.ok) {
    span.error = true;
    span.status_message = outcome.message;
    span.attributes.push_back({"error.class", std::string(cls)});
  }
  options_.tracer->Push(std::move(span));
}

void WorkerRuntime::OnReported(const std::string& id, const Status&) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase(id);
  }
}

void WorkerRuntime::HeartbeatLoop() {
  for (;;) {
    std::vector<std::shared_ptr<Held>> due;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (heartbeats_exit_) return;
      const Micros now = clock_.Now();
      for (auto& [id, h] : held_) {
        const bool progress_due =
            h->ctx->HasProgress() && now - h->last_heartbeat >= kMicrosPerSecond;
        if (h->next_heartbeat <= now || progress_due) due.push_back(h);
      }
    }
    for (auto& h : due) HeartbeatTask(h);
    if (registered_ && clock_.Now() >= next_registry_heartbeat_) RegistryHeartbeat();
    std::unique_lock<std::mutex> lock(mu_);
    if (heartbeats_exit_) return;
    state_cv_.wait_for(lock, std::chrono::microseconds(kTick));
  }
}

void WorkerRuntime::HeartbeatTask(const std::shared_ptr<Held>& h) {
  std::optional<std::string> progress = h->ctx->TakeProgress();
  auto reply = api_.Heartbeat(h->task.id, h->task.lease, progress.value_or(""));
  const Micros now = clock_.Now();
  Micros next = kNever;
  if (reply.ok()) {
    const Micros deadline = LocalDeadline(reply->lease_expires_at, h->task.timeout_s);
    h->lease->deadline = deadline;
    next = now + std::max<Micros>((deadline - now) / 3, 100 * kMicrosPerMilli);
    if (reply->cancel && !h->ctx->StopRequested()) {
      log::Info("worker",
                "task " + h->task.id + ": cancel requested by the server; stopping its handler");
      h->ctx->RequestStop(StopReason::kCancelled);
    }
  } else if (reply.status().code() == Code::kConflict || reply.status().code() == Code::kNotFound) {
    log::Warn("worker", "task " + h->task.id + ": the server refused the heartbeat (" +
                            reply.status().message() +
                            "); the lease is lost, stopping its handler");
    h->lease->lost = true;
    h->ctx->RequestStop(StopReason::kLeaseLost);
  } else {
    // Unreachable: try again soon, within what is left of the lease.
    if (progress && !h->ctx->HasProgress()) h->ctx->SetProgress(std::move(*progress));
    const Micros left = h->lease->deadline.load() - now;
    next = now + std::clamp<Micros>(left / 4, 100 * kMicrosPerMilli, kMicrosPerSecond);
  }
  std::lock_guard<std::mutex> lock(mu_);
  h->next_heartbeat = next;
  h->last_heartbeat = now;
}

void WorkerRuntime::RegistryHeartbeat() {
  std::vector<std::string> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, h] : held_) running.push_back(id);
  }
  next_registry_heartbeat_ = clock_.Now() + registry_interval_;
  Status s = api_.WorkerHeartbeat(options_.worker_id, running);
  if (s.code() != Code::kNotFound) return;  // unreachable: the next period tries again
  log::Warn("worker", "the server does not know worker " + options_.worker_id +
                          " (restarted, or it marked us lost); registering again");
  Registration r{options_.worker_id, options_.pool,   options_.pid,
                 options_.host,      options_.queues, options_.concurrency};
  auto reply = api_.Register(r);
  if (reply.ok()) {
    registry_interval_ =
        std::max<Micros>(100 * kMicrosPerMilli, reply->heartbeat_ms * kMicrosPerMilli);
    log::Info("worker", "registered again as " + options_.worker_id);
  } else if (reply.status().code() == Code::kConflict) {
    log::Error("worker",
               "worker id " + options_.worker_id + " is now held by another live worker; stopping");
    {
      std::lock_guard<std::mutex> lock(mu_);
      exit_code_ = kExitIdentityInUse;
    }
    Stop();
  } else if (reply.status().code() == Code::kNotFound) {
    registered_ = false;  // the registry went away: lease on without it
  }
}

}  // namespace resonance::worker
