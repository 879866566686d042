#include "load_runtime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <random>
#include <thread>

namespace resonance::load {

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

IoPool::IoPool(int threads) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
  }
}

IoPool::~IoPool() = default;

asio::any_io_executor IoPool::Next() {
  auto ex = contexts_[next_]->get_executor();
  next_ = (next_ + 1) % contexts_.size();
  return ex;
}

void IoPool::Spawn(asio::awaitable<void> work) {
  asio::co_spawn(Next(), std::move(work), [this](std::exception_ptr e) {
    if (!e) return;
    ++failures_;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "resonance-load: coroutine failed: %s\n", ex.what());
    } catch (...) {
      std::fprintf(stderr, "resonance-load: coroutine failed\n");
    }
  });
}

void IoPool::Run() {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < contexts_.size(); ++i) {
    threads.emplace_back([ctx = contexts_[i].get()] { ctx->run(); });
  }
  contexts_[0]->run();
  for (auto& t : threads) t.join();
  for (auto& c : contexts_) c->restart();
}

void LatencySample::Merge(const LatencySample& other) {
  us_.insert(us_.end(), other.us_.begin(), other.us_.end());
  sorted_ = false;
}

double LatencySample::PercentileMs(double p) {
  if (us_.empty()) return 0;
  if (!sorted_) {
    std::sort(us_.begin(), us_.end());
    sorted_ = true;
  }
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(us_.size())));
  rank = std::clamp<size_t>(rank, 1, us_.size());
  return static_cast<double>(us_[rank - 1]) / 1000.0;
}

double LatencySample::MaxMs() { return PercentileMs(100); }

LatencySample MergeAll(const std::vector<LatencySample>& parts) {
  LatencySample all;
  for (const auto& p : parts) all.Merge(p);
  return all;
}

void ErrorCounter::Add(std::string_view what) {
  ++count_;
  if (printed_.fetch_add(1) < 5) {
    std::fprintf(stderr, "resonance-load: %s: %.*s\n", phase_.c_str(),
                 static_cast<int>(std::min<size_t>(what.size(), 500)), what.data());
  }
}

ReportLine& ReportLine::Int(std::string_view key, int64_t v) {
  return Text(key, std::to_string(v));
}

ReportLine& ReportLine::Fixed(std::string_view key, double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return Text(key, buf);
}

ReportLine& ReportLine::Rate(std::string_view key, double per_second) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f/s", per_second);
  return Text(key, buf);
}

ReportLine& ReportLine::Text(std::string_view key, std::string_view v) {
  line_.push_back(' ');
  line_.append(key);
  line_.push_back('=');
  line_.append(v);
  return *this;
}

void ReportLine::Print() const {
  std::fprintf(stdout, "%s\n", line_.c_str());
  std::fflush(stdout);
}

std::string FreshQueueName(std::string_view prefix, std::string_view phase) {
  static std::mt19937_64 rng(std::random_device{}());
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%06x", static_cast<unsigned>(rng() & 0xffffff));
  std::string name(prefix);
  name.push_back('-');
  for (char c : phase) name.push_back(c == '_' ? '-' : c);
  name.push_back('-');
  name.append(suffix);
  return name;
}

}  // namespace resonance::load
