#include "observe/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace resonance::metrics {

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

template <typename M>
M& Family<M>::Make(std::vector<std::string> values) {
  if (values.size() != labels_.size()) {
    std::fprintf(stderr, "metrics: %s wants %zu label values, got %zu\n", name_.c_str(),
                 labels_.size(), values.size());
    std::abort();
  }
  std::lock_guard lock(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return *it->second;
  std::unique_ptr<M> m;
  if constexpr (std::is_same_v<M, Histogram>) {
    m = std::make_unique<Histogram>(bounds_);
  } else {
    m = std::make_unique<M>();
  }
  M& ref = *m;
  children_.emplace(std::move(values), std::move(m));
  return ref;
}

template <typename M>
M& Family<M>::With(const std::vector<std::string>& values) {
  return Make(values);
}

template <typename M>
M& Family<M>::With(std::initializer_list<std::string_view> values) {
  return Make(std::vector<std::string>(values.begin(), values.end()));
}

template <typename M>
void Family<M>::Clear() {
  std::lock_guard lock(mu_);
  children_.clear();
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

std::string BoundedLabel::Map(std::string_view value) {
  std::lock_guard lock(mu_);
  if (seen_.count(value)) return std::string(value);
  if (seen_.size() >= max_) return "other";
  seen_.emplace(value);
  return std::string(value);
}

void AppendEscapedLabel(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
}

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

namespace {

void AppendHelp(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

// `{a="x",b="y"` plus an optional extra pair, closed with `}`; nothing when empty.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out.push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out.push_back(',');
    out += names[i];
    out += "=\"";
    AppendEscapedLabel(out, values[i]);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out.push_back('"');
  }
  out.push_back('}');
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

template <typename M>
Family<M>& Registry::Add(std::string name, std::string help, Type type,
                         std::vector<std::string> labels, std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  if (!names_.insert(name).second) {
    std::fprintf(stderr, "metrics: %s registered twice\n", name.c_str());
    std::abort();
  }
  std::shared_ptr<Family<M>> f(
      new Family<M>(std::move(name), std::move(help), type, std::move(labels), std::move(bounds)));
  families_.push_back(Entry{type, std::is_same_v<M, Gauge>, f.get()});
  owned_.push_back(f);
  return *f;
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> labels) {
  return Add<Counter>(std::move(name), std::move(help), Type::kCounter, std::move(labels), {});
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> labels) {
  return Add<Gauge>(std::move(name), std::move(help), Type::kGauge, std::move(labels), {});
}

Family<Gauge>& Registry::AddScrapedCounter(std::string name, std::string help,
                                           std::vector<std::string> labels) {
  return Add<Gauge>(std::move(name), std::move(help), Type::kCounter, std::move(labels), {});
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> labels,
                                          std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  return Add<Histogram>(std::move(name), std::move(help), Type::kHistogram, std::move(labels),
                        std::move(bounds));
}

void Registry::OnScrape(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_scrape_.push_back(std::move(fn));
}

std::string Registry::Render() {
  std::lock_guard render(render_mu_);
  std::vector<Entry> families;
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(mu_);
    families = families_;
    hooks = on_scrape_;
  }
  for (auto& fn : hooks) fn();
  std::string out;
  out.reserve(16384);
  for (const Entry& e : families) {
    auto head = [&](const auto& f) {
      out += "# HELP ";
      out += f.name_;
      out.push_back(' ');
      AppendHelp(out, f.help_);
      out += "\n# TYPE ";
      out += f.name_;
      out.push_back(' ');
      out += TypeName(f.type_);
      out.push_back('\n');
    };
    switch (e.gauge_values ? Type::kGauge : e.type) {
      case Type::kCounter: {
        auto& f = *static_cast<Family<Counter>*>(e.family);
        head(f);
        std::lock_guard lock(f.mu_);
        for (const auto& [values, c] : f.children_) {
          out += f.name_;
          AppendLabels(out, f.labels_, values);
          out.push_back(' ');
          out += std::to_string(c->value());
          out.push_back('\n');
        }
        break;
      }
      case Type::kGauge: {
        auto& f = *static_cast<Family<Gauge>*>(e.family);
        head(f);
        std::lock_guard lock(f.mu_);
        for (const auto& [values, g] : f.children_) {
          out += f.name_;
          AppendLabels(out, f.labels_, values);
          out.push_back(' ');
          AppendNumber(out, g->value());
          out.push_back('\n');
        }
        break;
      }
      case Type::kHistogram: {
        auto& f = *static_cast<Family<Histogram>*>(e.family);
        head(f);
        std::lock_guard lock(f.mu_);
        for (const auto& [values, h] : f.children_) {
          Histogram::Snapshot s = h->Read();
          for (size_t i = 0; i <= f.bounds_.size(); ++i) {
            std::string le;
            if (i < f.bounds_.size()) {
              AppendNumber(le, f.bounds_[i]);
            } else {
              le = "+Inf";
            }
            out += f.name_;
            out += "_bucket";
            AppendLabels(out, f.labels_, values, "le", le);
            out.push_back(' ');
            out += std::to_string(s.cumulative[i]);
            out.push_back('\n');
          }
          out += f.name_;
          out += "_sum";
          AppendLabels(out, f.labels_, values);
          out.push_back(' ');
          AppendNumber(out, s.sum);
          out += '\n';
          out += f.name_;
          out += "_count";
          AppendLabels(out, f.labels_, values);
          out.push_back(' ');
          out += std::to_string(s.count);
          out.push_back('\n');
        }
        break;
      }
    }
  }
  return out;
}

const std::vector<double>& TaskSecondsBuckets() {
  static const std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                        5,     10,   30,    60,   120, 300,  600, 1800, 3600};
  return b;
}
const std::vector<double>& HttpSecondsBuckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,   0.5,   1,      2.5,   5,    10,    30};
  return b;
}
const std::vector<double>& CommitSecondsBuckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1};
  return b;
}
const std::vector<double>& BatchSizeBuckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  return b;
}

}  // namespace resonance::metrics
