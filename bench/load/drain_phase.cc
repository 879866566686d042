#include "consumer.h"
#include "phases.h"

namespace resonance::load {

bool RunDrain(const LoadOptions& opt, const Endpoint& server) {
  const std::string phase = "drain";
  const std::string queue = FreshQueueName(opt.queue_prefix, phase);

  // Prefill (not part of the drain figure, printed for reference).
  EnqueueOutcome fill =
      EnqueueTasks(opt, server, phase, queue, opt.tasks, opt.batch, opt.batch_conns);
  ReportLine("drain_prefill")
      .Int("tasks", opt.tasks)
      .Int("batch", opt.batch)
      .Int("conns", opt.batch_conns)
      .Fixed("seconds", fill.seconds, 2)
      .Rate("rate", fill.seconds > 0 ? static_cast<double>(fill.created) / fill.seconds : 0)
      .Int("created", fill.created)
      .Int("errors", fill.errors)
      .Print();

  ConsumeRun run(phase, opt.tasks);
  run.queue = queue;
  run.max = opt.drain_max;
  run.wait_ms = opt.drain_wait_ms;
  run.wait_latency.resize(static_cast<size_t>(opt.consumers));
  run.FinishProducing(fill.created);

  IoPool pool(opt.threads);
  for (int i = 0; i < opt.consumers; ++i) pool.Spawn(ConsumerLoop(&run, server, i));
  int64_t start = SteadyMicros();
  run.last_progress_us.store(start);
  pool.Run();
  int64_t end = run.last_complete_us.load();
  if (end < start) end = SteadyMicros();
  double seconds = static_cast<double>(end - start) / 1e6;

  int64_t lost = run.Lost();
  int64_t errors = run.errors.count() + pool.failures() + run.foreign.load();
  ReportLine(phase)
      .Int("tasks", fill.created)
      .Int("consumers", opt.consumers)
      .Int("max", opt.drain_max)
      .Int("wait_ms", opt.drain_wait_ms)
      .Fixed("seconds", seconds, 2)
      .Rate("rate", seconds > 0 ? static_cast<double>(run.completed.load()) / seconds : 0)
      .Int("completed", run.completed.load())
      .Int("errors", errors)
      .Int("lost", lost)
      .Int("dup", run.duplicates.load())
      .Print();
  return fill.errors == 0 && fill.created == opt.tasks && errors == 0 && lost == 0 &&
         run.duplicates.load() == 0 && run.completed.load() == fill.created;
}

}  // namespace resonance::load
