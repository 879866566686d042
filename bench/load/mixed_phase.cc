#include <cmath>

#include "consumer.h"
#include "phases.h"
#include "task_json.h"

namespace resonance::load {
namespace {

// The open-loop producer side of mixed. Task i is due at start_us + i / rate and goes
// out on connection i % conns; a connection that falls behind sends at once, and the
// time it was late counts in the enqueue latency (measured from the due time).
struct PacedProducers {
  PacedProducers(const std::string& queue, int payload_bytes)
      : builder(queue, payload_bytes), errors("mixed") {}
  TaskBodyBuilder builder;
  int64_t total = 0;
  int conns = 1;
  double rate = 1;
  int64_t start_us = 0;
  std::atomic<int64_t> created{0};
  std::atomic<int> running{0};
  std::atomic<int64_t> last_done_us{0};
  ErrorCounter errors;
  std::vector<LatencySample> latency;  // per connection: answer arrival - due time
};

asio::awaitable<void> ProduceAll(PacedProducers* prod, Endpoint server, int index) {
  auto executor = co_await asio::this_coro::executor;
  HttpClient client(executor, server);
  asio::steady_timer timer(executor);
  HttpResponse resp;
  std::string body, error;
  simdjson::dom::parser parser;
  LatencySample& latency = prod->latency[static_cast<size_t>(index)];
  for (int64_t i = index; i < prod->total; i += prod->conns) {
    int64_t due = prod->start_us +
                  static_cast<int64_t>(std::llround(static_cast<double>(i) * 1e6 / prod->rate));
    int64_t now = SteadyMicros();
    if (due > now) {
      timer.expires_after(std::chrono::microseconds(due - now));
      co_await timer.async_wait(asio::use_awaitable);
    }
    prod->builder.Single(body, i, SteadyMicros());
    bool failed = false;
    try {
      co_await client.Post("/api/tasks", body, resp);
    } catch (const std::exception& e) {
      error = std::string("POST /api/tasks: ") + e.what();
      failed = true;
    }
    if (!failed && resp.status != 201) {
      error = "POST /api/tasks -> " + std::to_string(resp.status) + ": " + resp.body.substr(0, 300);
      failed = true;
    }
    if (!failed && !ReadCreatedTask(parser, resp, error)) failed = true;
    int64_t done = SteadyMicros();
    if (failed) {
      prod->errors.Add(error);
      continue;
    }
    latency.Add(done - due);
    ++prod->created;
    prod->last_done_us.store(done);
  }
}

// Runs one producer connection; the last one to end, however it ends, tells the
// consumers how many tasks to expect (else they would long-poll forever).
asio::awaitable<void> PacedProducer(PacedProducers* prod, ConsumeRun* run, Endpoint server,
                                    int index) {
  std::string failure;
  try {
    co_await ProduceAll(prod, server, index);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) prod->errors.Add("producer stopped: " + failure);
  if (--prod->running == 0) run->FinishProducing(prod->created.load());
}

}  // namespace

bool RunMixed(const LoadOptions& opt, const Endpoint& server) {
  const std::string phase = "mixed";
  const std::string queue = FreshQueueName(opt.queue_prefix, phase);
  const int64_t total = std::max<int64_t>(1, std::llround(opt.rate * opt.seconds));

  ConsumeRun run(phase, total);
  run.queue = queue;
  run.max = opt.mixed_max;
  run.wait_ms = opt.mixed_wait_ms;
  run.idle_limit_us = static_cast<int64_t>(opt.mixed_wait_ms) * 1000 + 10'000'000;
  run.wait_latency.resize(static_cast<size_t>(opt.consumers));

  PacedProducers prod(queue, opt.payload_bytes);
  prod.total = total;
  prod.conns = static_cast<int>(std::min<int64_t>(opt.producers, total));
  prod.rate = opt.rate;
  prod.latency.resize(static_cast<size_t>(prod.conns));
  prod.running = prod.conns;

  IoPool pool(opt.threads);
  for (int i = 0; i < opt.consumers; ++i) pool.Spawn(ConsumerLoop(&run, server, i));
  // Consumers get 100 ms to connect and start long-polling before the first task.
  prod.start_us = SteadyMicros() + 100'000;
  for (int i = 0; i < prod.conns; ++i) pool.Spawn(PacedProducer(&prod, &run, server, i));
  pool.Run();

  double produce_seconds = static_cast<double>(prod.last_done_us.load() - prod.start_us) / 1e6;
  LatencySample wait = MergeAll(run.wait_latency);
  LatencySample enqueue = MergeAll(prod.latency);
  int64_t lost = run.Lost();
  int64_t errors = run.errors.count() + prod.errors.count() + pool.failures() + run.foreign.load();
  ReportLine(phase)
      .Rate("offered", opt.rate)
      .Fixed("seconds", opt.seconds, 1)
      .Int("tasks", total)
      .Int("producers", prod.conns)
      .Int("consumers", opt.consumers)
      .Int("max", opt.mixed_max)
      .Int("wait_ms", opt.mixed_wait_ms)
      .Rate("enqueue_rate",
            produce_seconds > 0 ? static_cast<double>(prod.created.load()) / produce_seconds : 0)
      .Fixed("p50_ms", wait.PercentileMs(50), 2)
      .Fixed("p99_ms", wait.PercentileMs(99), 2)
      .Fixed("max_ms", wait.MaxMs(), 2)
      .Fixed("enq_p50_ms", enqueue.PercentileMs(50), 2)
      .Fixed("enq_p99_ms", enqueue.PercentileMs(99), 2)
      .Fixed("enq_max_ms", enqueue.MaxMs(), 2)
      .Int("created", prod.created.load())
      .Int("completed", run.completed.load())
      .Int("errors", errors)
      .Int("lost", lost)
      .Int("dup", run.duplicates.load())
      .Print();
  return errors == 0 && lost == 0 && run.duplicates.load() == 0 && prod.created.load() == total &&
         run.completed.load() == total;
}

}  // namespace resonance::load
