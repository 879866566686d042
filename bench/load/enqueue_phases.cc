#include <algorithm>
#include <cstdio>
#include <vector>

#include "phases.h"
#include "task_json.h"

namespace resonance::load {
namespace {

// Shared by the connections of one enqueue run.
struct EnqueueRun {
  EnqueueRun(std::string phase, std::string queue, int payload_bytes)
      : builder(std::move(queue), payload_bytes), errors(std::move(phase)) {}
  TaskBodyBuilder builder;
  int64_t total = 0;
  int batch = 0;  // 0: POST /api/tasks, else POST /api/tasks/batch of this many
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> created{0};
  std::atomic<int> connects{0};
  ErrorCounter errors;
  std::vector<LatencySample> latency;  // one per connection
};

asio::awaitable<void> EnqueueConnection(EnqueueRun* run, Endpoint server, int index) {
  HttpClient client(co_await asio::this_coro::executor, server);
  HttpResponse resp;
  std::string body, error;
  simdjson::dom::parser parser;
  LatencySample& latency = run->latency[index];
  const int step = run->batch == 0 ? 1 : run->batch;
  const char* target = run->batch == 0 ? "/api/tasks" : "/api/tasks/batch";
  for (;;) {
    int64_t first = run->next.fetch_add(step);
    if (first >= run->total) break;
    int n = static_cast<int>(std::min<int64_t>(step, run->total - first));
    int64_t start = SteadyMicros();
    if (run->batch == 0) {
      run->builder.Single(body, first, start);
    } else {
      run->builder.Batch(body, first, n, start);
    }
    bool failed = false;
    try {
      co_await client.Post(target, body, resp);
    } catch (const std::exception& e) {
      error = std::string("POST ") + target + ": " + e.what();
      failed = true;
    }
    if (failed) {
      run->errors.Add(error);
      continue;
    }
    latency.Add(SteadyMicros() - start);
    if (resp.status != 201) {
      run->errors.Add("POST " + std::string(target) + " -> " + std::to_string(resp.status) + ": " +
                      resp.body.substr(0, 300));
      continue;
    }
    int64_t count = 1;
    bool ok = run->batch == 0 ? ReadCreatedTask(parser, resp, error)
                              : ReadCreatedBatch(parser, resp, count, error);
    if (!ok) {
      run->errors.Add(error);
    } else if (count != n) {
      run->errors.Add("batch of " + std::to_string(n) + " created " + std::to_string(count));
    }
    if (ok) run->created += count;
  }
  run->connects += client.connects();
}

// `queue` is printed only when non-empty (fill: run.sh looks the queue up afterwards).
void PrintEnqueueLine(const std::string& phase, const EnqueueOutcome& out, int64_t tasks, int batch,
                      int conns, const std::string& queue = {}) {
  LatencySample latency = out.latency;
  ReportLine line(phase);
  line.Int("tasks", tasks);
  if (batch > 0) line.Int("batch", batch);
  line.Int("conns", conns)
      .Fixed("seconds", out.seconds, 2)
      .Rate("rate", out.seconds > 0 ? static_cast<double>(out.created) / out.seconds : 0)
      .Fixed("req_p50_ms", latency.PercentileMs(50), 2)
      .Fixed("req_p99_ms", latency.PercentileMs(99), 2)
      .Fixed("req_max_ms", latency.MaxMs(), 2)
      .Int("created", out.created)
      .Int("errors", out.errors)
      .Int("connects", out.connects);
  if (!queue.empty()) line.Text("queue", queue);
  line.Print();
}

bool Clean(const EnqueueOutcome& out, int64_t tasks) {
  return out.errors == 0 && out.created == tasks;
}

}  // namespace

EnqueueOutcome EnqueueTasks(const LoadOptions& opt, const Endpoint& server,
                            const std::string& phase, const std::string& queue, int64_t total,
                            int batch, int conns) {
  EnqueueRun run(phase, queue, opt.payload_bytes);
  run.total = total;
  run.batch = batch;
  run.latency.resize(static_cast<size_t>(conns));
  IoPool pool(opt.threads);
  for (int i = 0; i < conns; ++i) pool.Spawn(EnqueueConnection(&run, server, i));
  int64_t start = SteadyMicros();
  pool.Run();
  EnqueueOutcome out;
  out.seconds = static_cast<double>(SteadyMicros() - start) / 1e6;
  out.created = run.created.load();
  out.errors = run.errors.count() + pool.failures();
  out.connects = run.connects.load();
  out.latency = MergeAll(run.latency);
  return out;
}

bool RunEnqueueSingle(const LoadOptions& opt, const Endpoint& server) {
  const std::string phase = "enqueue_single";
  EnqueueOutcome out = EnqueueTasks(opt, server, phase, FreshQueueName(opt.queue_prefix, phase),
                                    opt.tasks, 0, opt.conns);
  PrintEnqueueLine(phase, out, opt.tasks, 0, opt.conns);
  return Clean(out, opt.tasks);
}

bool RunEnqueueBatch(const LoadOptions& opt, const Endpoint& server) {
  const std::string phase = "enqueue_batch";
  EnqueueOutcome out = EnqueueTasks(opt, server, phase, FreshQueueName(opt.queue_prefix, phase),
                                    opt.tasks, opt.batch, opt.batch_conns);
  PrintEnqueueLine(phase, out, opt.tasks, opt.batch, opt.batch_conns);
  return Clean(out, opt.tasks);
}

bool RunFill(const LoadOptions& opt, const Endpoint& server) {
  const std::string phase = "fill";
  int64_t tasks = opt.tasks_given ? opt.tasks : 1'000'000;
  const std::string queue = FreshQueueName(opt.queue_prefix, phase);
  EnqueueOutcome out = EnqueueTasks(opt, server, phase, queue, tasks, opt.batch, opt.batch_conns);
  PrintEnqueueLine(phase, out, tasks, opt.batch, opt.batch_conns, queue);
  return Clean(out, tasks);
}

}  // namespace resonance::load
