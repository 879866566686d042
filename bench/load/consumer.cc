#include "consumer.h"

#include <chrono>

#include "task_json.h"

namespace resonance::load {

ConsumeRun::ConsumeRun(std::string phase_name, int64_t cap)
    : phase(std::move(phase_name)),
      errors(phase),
      seen(new std::atomic<uint8_t>[static_cast<size_t>(cap)]),
      capacity(cap) {
  for (int64_t i = 0; i < capacity; ++i) seen[i].store(0, std::memory_order_relaxed);
}

int64_t ConsumeRun::Lost() const {
  int64_t distinct = 0;
  for (int64_t i = 0; i < capacity; ++i) distinct += seen[i].load() != 0;
  int64_t want = producers_done.load() ? expected.load() : 0;
  return want > distinct ? want - distinct : 0;
}

void ConsumeRun::FinishProducing(int64_t created) {
  expected.store(created);
  last_progress_us.store(SteadyMicros());
  producers_done.store(true);
}

namespace {

bool Finished(ConsumeRun* run) {
  return run->producers_done.load() && run->completed.load() >= run->expected.load();
}

}  // namespace

asio::awaitable<void> ConsumerLoop(ConsumeRun* run, asio::ip::tcp::endpoint server, int index) {
  auto executor = co_await asio::this_coro::executor;
  HttpClient client(executor, server);
  asio::steady_timer backoff(executor);
  HttpResponse lease_resp, complete_resp;
  std::string lease_body, complete_body, error;
  std::vector<LeasedTask> tasks;
  simdjson::dom::parser parser;
  LatencySample& latency = run->wait_latency[static_cast<size_t>(index)];
  const std::string worker = "bench-" + std::to_string(index);
  BuildLeaseBody(lease_body, worker, run->queue, run->max, run->wait_ms);
  const auto lease_timeout = std::chrono::milliseconds(run->wait_ms + 30'000);

  while (!run->stop.load()) {
    if (Finished(run)) {
      run->stop = true;
      break;
    }
    bool failed = false;
    try {
      co_await client.Post("/api/lease", lease_body, lease_resp, lease_timeout);
    } catch (const std::exception& e) {
      error = std::string("POST /api/lease: ") + e.what();
      failed = true;
    }
    int64_t arrived = SteadyMicros();
    if (!failed && lease_resp.status != 200) {
      error = "POST /api/lease -> " + std::to_string(lease_resp.status) + ": " +
              lease_resp.body.substr(0, 300);
      failed = true;
    }
    if (!failed && !ReadLease(parser, lease_resp, tasks, complete_body, error)) failed = true;
    if (failed) {
      run->errors.Add(error);
      if (run->errors.count() > 1000) run->stop = true;
      backoff.expires_after(std::chrono::milliseconds(10));
      co_await backoff.async_wait(asio::use_awaitable);
      continue;
    }

    if (tasks.empty()) {
      if (run->producers_done.load() &&
          arrived - run->last_progress_us.load() > run->idle_limit_us) {
        run->stop = true;  // nothing more is coming: report the rest as lost
      }
      continue;
    }
    run->last_progress_us.store(arrived);
    run->leased += static_cast<int64_t>(tasks.size());
    for (const LeasedTask& t : tasks) {
      if (t.seq < 0 || t.seq >= run->capacity) {
        ++run->foreign;
        continue;
      }
      if (run->seen[t.seq].exchange(1) != 0) ++run->duplicates;
      latency.Add(arrived - t.sent_us);
    }

    try {
      co_await client.Post("/api/complete", complete_body, complete_resp);
    } catch (const std::exception& e) {
      error = std::string("POST /api/complete: ") + e.what();
      failed = true;
    }
    if (!failed && complete_resp.status != 200) {
      error = "POST /api/complete -> " + std::to_string(complete_resp.status) + ": " +
              complete_resp.body.substr(0, 300);
      failed = true;
    }
    int64_t succeeded = 0, not_succeeded = 0;
    if (!failed) {
      error.clear();
      if (!ReadCompleted(parser, complete_resp, succeeded, not_succeeded, error)) failed = true;
    }
    if (failed) {
      run->errors.Add(error);
      continue;
    }
    for (int64_t i = 0; i < not_succeeded; ++i) run->errors.Add(error);
    run->completed += succeeded;
    run->last_complete_us.store(SteadyMicros());
  }
}

}  // namespace resonance::load
