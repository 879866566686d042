#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.h"

// The small runtime every phase shares: io threads, time, latency samples, error
// counting and the one-line report format.
namespace resonance::load {

// Monotonic microseconds (steady clock). Used for every measured interval and for the
// `sent_us` stamped into task payloads (producer and consumer share this process).
int64_t SteadyMicros();

// A fixed set of threads, each running its own io_context (DESIGN.md §9: a hop between
// cores costs tens of µs, so each connection stays on one thread for its life).
// Spawn() before Run(); Run() blocks until every spawned coroutine has finished.
// Not thread-safe itself; the coroutines it runs may share state only via atomics.
class IoPool {
 public:
  explicit IoPool(int threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // The executor of the next thread, round-robin.
  asio::any_io_executor Next();
  // Starts `work` on the next thread. An exception escaping it is printed to stderr
  // and counted in failures().
  void Spawn(asio::awaitable<void> work);
  void Run();
  int failures() const { return failures_.load(); }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  size_t next_ = 0;
  std::atomic<int> failures_{0};
};

// Latency samples of one coroutine (no locking: one writer), merged after Run().
class LatencySample {
 public:
  void Add(int64_t micros) { us_.push_back(micros); }
  void Merge(const LatencySample& other);
  size_t size() const { return us_.size(); }
  // Nearest-rank percentile in milliseconds, p in [0, 100]; 0 when empty. Sorts.
  double PercentileMs(double p);
  double MaxMs();

 private:
  std::vector<int64_t> us_;
  bool sorted_ = true;
};

LatencySample MergeAll(const std::vector<LatencySample>& parts);

// Counts failed requests of a phase and prints the first few (with the server's
// answer) to stderr, so a run with errors says why. Thread-safe.
class ErrorCounter {
 public:
  explicit ErrorCounter(std::string phase) : phase_(std::move(phase)) {}
  void Add(std::string_view what);
  int64_t count() const { return count_.load(); }

 private:
  std::string phase_;
  std::atomic<int64_t> count_{0};
  std::atomic<int> printed_{0};
};

// One report line on stdout: `<phase> key=value key=value ...`, flushed at once so
// bench/run.sh can grep it while the tool is still running.
class ReportLine {
 public:
  explicit ReportLine(std::string_view phase) : line_(phase) {}
  ReportLine& Int(std::string_view key, int64_t v);
  ReportLine& Fixed(std::string_view key, double v, int decimals);
  ReportLine& Rate(std::string_view key, double per_second);  // key=12345/s
  ReportLine& Text(std::string_view key, std::string_view v);
  void Print() const;

 private:
  std::string line_;
};

// `<prefix>-<phase with '_' as '-'>-<6 random hex digits>`: each phase (and each run)
// gets a queue nobody else uses.
std::string FreshQueueName(std::string_view prefix, std::string_view phase);

}  // namespace resonance::load
