#include "observe/otlp_exporter.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>
#include <system_error>

namespace resonance::trace {

namespace {

constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr int64_t kFirstBackoffNs = 1'000 * kNanosPerMilli;
constexpr int64_t kMaxBackoffNs = 30'000 * kNanosPerMilli;

// now + ms, saturating (a huge grace must not wrap around).
int64_t DeadlineAfterMs(int64_t ms) {
  const int64_t now = SteadyNowNs();
  if (ms >= (std::numeric_limits<int64_t>::max() - now) / kNanosPerMilli) {
    return std::numeric_limits<int64_t>::max();
  }
  return now + std::max<int64_t>(ms, 0) * kNanosPerMilli;
}

}  // namespace

Result<OtlpEndpoint> ParseOtlpEndpoint(std::string_view url) {
  Result<HttpUrl> parsed = ParseHttpUrl(url, "OTLP endpoint");
  if (!parsed.ok()) return parsed.status();
  if (parsed->path.empty()) parsed->path = "/v1/traces";
  return std::move(parsed).value();
}

Exporter::Exporter(ExporterOptions options, std::unique_ptr<HttpPoster> poster)
    : options_(std::move(options)),
      poster_(std::move(poster)),
      stop_deadline_ns_(std::numeric_limits<int64_t>::max()) {}

Result<std::unique_ptr<Exporter>> Exporter::Start(ExporterOptions options) {
  Result<OtlpEndpoint> endpoint = ParseOtlpEndpoint(options.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  if (options.queue_size == 0) return Status(Code::kInvalidArgument, "queue_size must be >= 1");
  if (options.batch_size == 0) return Status(Code::kInvalidArgument, "batch_size must be >= 1");
  if (options.flush_ms < 0) return Status(Code::kInvalidArgument, "flush_ms must be >= 0");
  if (options.timeout_ms <= 0) return Status(Code::kInvalidArgument, "timeout_ms must be >= 1");
  Result<std::unique_ptr<HttpPoster>> poster = HttpPoster::Create(
      std::move(endpoint).value(),
      HttpPosterOptions{"collector", "exporter", "resonance/" + std::string(kScopeVersion)});
  if (!poster.ok()) {
    return Status(Code::kInternal, "OTLP exporter: " + poster.status().message());
  }
  std::unique_ptr<Exporter> exporter(new Exporter(std::move(options), std::move(poster).value()));
  // The thread blocks every signal: a process that takes SIGTERM with sigwait in one
  // thread (the worker) must not have it delivered here, where its default action
  // would end the process without a drain.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    exporter->thread_ = std::thread([e = exporter.get()] { e->Run(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return Status(Code::kInternal, std::string("OTLP exporter: thread: ") + e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return exporter;
}

Exporter::~Exporter() { Shutdown(0); }

void Exporter::Push(Span span) {
  const int64_t now = SteadyNowNs();
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= options_.queue_size) {
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(Queued{now, std::move(span)});
    // The thread sleeps without a timer while the queue is empty, and until the first
    // span's flush time otherwise: it needs waking for the first span and a full batch.
    wake = queue_.size() == 1 || queue_.size() == options_.batch_size;
  }
  if (wake) cv_.notify_one();
}

void Exporter::Shutdown(int grace_ms) {
  const int64_t deadline = DeadlineAfterMs(grace_ms);
  int64_t current = stop_deadline_ns_.load();
  while (deadline < current && !stop_deadline_ns_.compare_exchange_weak(current, deadline)) {
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  poster_->AbortAt(deadline);  // cuts a POST in flight short once the grace is over
  std::lock_guard<std::mutex> join_lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

uint64_t Exporter::exported() const { return exported_.load(std::memory_order_relaxed); }
uint64_t Exporter::dropped_queue_full() const {
  return dropped_queue_full_.load(std::memory_order_relaxed);
}
uint64_t Exporter::dropped_export_failed() const {
  return dropped_export_failed_.load(std::memory_order_relaxed);
}
std::string Exporter::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void Exporter::TakeBatchLocked(std::vector<Span>* batch) {
  batch->clear();
  const size_t n = std::min(queue_.size(), options_.batch_size);
  batch->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    batch->push_back(std::move(queue_.front().span));
    queue_.pop_front();
  }
}

bool Exporter::ExportBatch(const std::vector<Span>& batch, int64_t deadline_ns) {
  const std::string body =
      EncodeOtlpJson(batch, options_.service_name, options_.resource_attributes);
  Result<int> code = poster_->Post(poster_->server().path, "application/json", body, deadline_ns);
  std::string error;
  if (!code.ok()) {
    error = code.status().message();
  } else if (*code < 200 || *code > 299) {
    error = "collector answered HTTP " + std::to_string(*code);
  }
  if (error.empty()) {
    exported_.fetch_add(batch.size(), std::memory_order_relaxed);
    return true;
  }
  dropped_export_failed_.fetch_add(batch.size(), std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = "POST " + options_.endpoint + ": " + error;
  return false;
}

void Exporter::Run() {
  std::mt19937_64 jitter_rng{std::random_device{}()};
  const int64_t flush_ns = int64_t{options_.flush_ms} * kNanosPerMilli;
  const int64_t timeout_ns = int64_t{options_.timeout_ms} * kNanosPerMilli;
  int64_t backoff_ns = 0;  // the last wait after a failure; 0 after a success
  int64_t retry_at = 0;    // steady ns before which no POST starts
  std::vector<Span> batch;

  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // Wait for a full batch, or a partial one whose oldest span is due, past any backoff.
    bool ready = false;
    while (!stopping_ && !ready) {
      const int64_t now = SteadyNowNs();
      if (now < retry_at) {
        cv_.wait_for(lock, std::chrono::nanoseconds(retry_at - now));
      } else if (queue_.size() >= options_.batch_size) {
        ready = true;
      } else if (queue_.empty()) {
        cv_.wait(lock);
      } else if (now >= queue_.front().pushed_ns + flush_ns) {
        ready = true;
      } else {
        cv_.wait_for(lock, std::chrono::nanoseconds(queue_.front().pushed_ns + flush_ns - now));
      }
    }
    if (stopping_) break;
    TakeBatchLocked(&batch);
    lock.unlock();
    const bool ok = ExportBatch(batch, SteadyNowNs() + timeout_ns);
    if (ok) {
      backoff_ns = 0;
      retry_at = 0;
    } else {
      backoff_ns = backoff_ns == 0 ? kFirstBackoffNs : std::min(2 * backoff_ns, kMaxBackoffNs);
      const int64_t jitter =
          static_cast<int64_t>(jitter_rng() % static_cast<uint64_t>(backoff_ns / 10 + 1));
      retry_at = SteadyNowNs() + backoff_ns + jitter;
    }
    lock.lock();
  }

  // Shutting down: send what is queued until the grace runs out or a POST fails.
  // Backoff no longer applies; the grace bounds the attempt.
  while (!queue_.empty() && SteadyNowNs() < stop_deadline_ns_.load()) {
    TakeBatchLocked(&batch);
    lock.unlock();
    const int64_t deadline = std::min(SteadyNowNs() + timeout_ns, stop_deadline_ns_.load());
    const bool ok = ExportBatch(batch, deadline);
    lock.lock();
    if (!ok) break;
  }
  dropped_export_failed_.fetch_add(queue_.size(), std::memory_order_relaxed);
  queue_.clear();
}

}  // namespace resonance::trace
