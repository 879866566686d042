#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace resonance::metrics {

// Metric values. Updates are lock-free atomics (relaxed), so hot paths that cache a
// pointer to one pay one atomic add. Values live as long as the Registry.
class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d) { v_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Fixed upper bounds (ascending, +Inf implied). Observe is O(log buckets).
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf last
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double>& bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

enum class Type { kCounter, kGauge, kHistogram };

// One metric name with its label names and one child per distinct label-value tuple.
// Thread-safe. With(...) takes a mutex; callers on hot paths keep the returned
// reference (it stays valid until the Registry is destroyed; Clear() is only for
// families whose values are rebuilt at scrape time and whose children nobody caches).
template <typename M>
class Family {
 public:
  // values must have one entry per label name (asserted by the registry's tests).
  M& With(const std::vector<std::string>& values);
  M& With(std::initializer_list<std::string_view> values);
  // Drops every child (scrape-time gauges rebuild theirs).
  void Clear();

 private:
  friend class Registry;
  Family(std::string name, std::string help, Type type, std::vector<std::string> labels,
         std::vector<double> bounds)
      : name_(std::move(name)), help_(std::move(help)), type_(type),
        labels_(std::move(labels)), bounds_(std::move(bounds)) {}
  M& Make(std::vector<std::string> values);

  std::string name_, help_;
  Type type_;
  std::vector<std::string> labels_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;  // guarded by mu_
};

// Maps an unbounded label (action or queue names) to at most `max` distinct values;
// the rest become "other". Thread-safe.
class BoundedLabel {
 public:
  explicit BoundedLabel(size_t max) : max_(max) {}
  std::string Map(std::string_view value);

 private:
  size_t max_;
  std::mutex mu_;
  std::set<std::string, std::less<>> seen_;  // guarded by mu_
};

// Owns metric families and renders them in the Prometheus text exposition format
// (0.0.4): HELP and TYPE for each family, families in registration order, children
// sorted by label values. Thread-safe. A family registered twice under one name is a
// programming error (aborts).
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  // A counter whose values are copied in at scrape time (OnScrape) from a source that
  // counts on its own (CPU seconds, an exporter's tallies). Rendered as TYPE counter;
  // the source must only grow.
  Family<Gauge>& AddScrapedCounter(std::string name, std::string help,
                                   std::vector<std::string> labels = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> labels, std::vector<double> bounds);

  // Runs before each render (under the render lock, one scrape at a time): for values
  // read at scrape time (queue depth, dead letters, workers, process figures).
  void OnScrape(std::function<void()> fn);

  std::string Render();

 private:
  struct Entry {
    Type type;
    bool gauge_values;  // a Family<Gauge> (gauges and scraped counters)
    void* family;
  };
  template <typename M>
  Family<M>& Add(std::string name, std::string help, Type type, std::vector<std::string> labels,
                 std::vector<double> bounds);

  std::mutex mu_;                // guards families_, owned_, on_scrape_
  std::mutex render_mu_;         // one scrape at a time
  std::vector<Entry> families_;  // registration order
  std::vector<std::shared_ptr<void>> owned_;
  std::set<std::string> names_;
  std::vector<std::function<void()>> on_scrape_;
};

// Label value escaping for the text format (\\, \", \n).
void AppendEscapedLabel(std::string& out, std::string_view v);
// Numbers as Prometheus reads them: shortest round-trip form, "+Inf", "-Inf", "NaN".
void AppendNumber(std::string& out, double v);

// Common bucket sets (docs/metrics.md lists them).
const std::vector<double>& TaskSecondsBuckets();
const std::vector<double>& HttpSecondsBuckets();
const std::vector<double>& CommitSecondsBuckets();
const std::vector<double>& BatchSizeBuckets();

}  // namespace resonance::metrics
