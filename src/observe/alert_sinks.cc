#include "observe/alert_sinks.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <system_error>

#include "core/json_writer.h"
#include "observe/log.h"
#include "observe/trace.h"

namespace resonance::alerts {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kModule = "alerts";
constexpr std::string_view kAlertmanagerPath = "/api/v2/alerts";
constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr int64_t kMaxBackoffMs = 30'000;

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string FingerprintOf(const Alert& a) {
  return a.fingerprint.empty() ? Fingerprint(a.name, a.labels) : a.fingerprint;
}

// Writes text to path through path.tmp and a rename. The error names the file and why.
Status WriteAtomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status(Code::kUnavailable, "cannot open " + tmp + ": " + ErrnoText(errno));
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status(Code::kUnavailable, "cannot write " + tmp + ": " + ErrnoText(err));
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Status(Code::kUnavailable, "cannot write " + tmp + ": " + ErrnoText(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Status(Code::kUnavailable, "cannot rename " + tmp + ": " + ErrnoText(err));
  }
  return Status::Ok();
}

std::string AlertmanagerPath(std::string_view url_path) {
  const size_t q = url_path.find('?');
  std::string_view path = url_path.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : url_path.substr(q);
  std::string out(path);
  if (!path.ends_with(kAlertmanagerPath)) {
    while (!out.empty() && out.back() == '/') out.pop_back();
    out.append(kAlertmanagerPath);
  }
  out.append(query);
  return out;
}

}  // namespace

// --- LogSink ---

void LogSink::Deliver(const Alert& a) {
  log::Level level = log::Level::kInfo;
  if (a.state == AlertState::kFiring) {
    level = a.severity == "critical" ? log::Level::kError : log::Level::kWarn;
  }
  if (!log::Enabled(level)) return;
  log::Write(level, kModule, AlertText(a),
             {{"alert", a.name},
              {"state", AlertStateName(a.state)},
              {"severity", a.severity},
              {"fingerprint", FingerprintOf(a)},
              {"value", a.value}});
}

// --- FileSink ---

FileSink::FileSink(std::string dir) : dir_(std::move(dir)) {}

std::string FileSink::FileName(const Alert& a) {
  std::string name = a.name.empty() ? "alert" : a.name;
  for (char& c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) c = '_';
  }
  if (name == "." || name == "..") name = "alert";
  return name + "-" + FingerprintOf(a) + ".json";
}

void FileSink::Deliver(const Alert& a) {
  const std::string path = (fs::path(dir_) / FileName(a)).string();
  std::string text = AlertJson(a);
  text.push_back('\n');

  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  Status st = ec ? Status(Code::kUnavailable, "cannot create " + dir_ + ": " + ec.message())
                 : WriteAtomically(path, text);
  if (st.ok()) {
    failing_.erase(path);
    return;
  }
  if (failing_.insert(path).second) {
    log::Error(kModule, "alert file not written: " + st.message(),
               {{"sink", name()}, {"alert", a.name}, {"file", path}});
  }
}

// --- WebhookSink ---

std::string AlertmanagerJson(const std::vector<Alert>& alerts, std::string_view generator_url) {
  std::string out;
  JsonWriter w(out);
  w.BeginArray();
  for (const Alert& a : alerts) {
    w.BeginObject().Key("labels").BeginObject();
    w.Key("alertname").String(a.name);
    if (!a.severity.empty()) w.Key("severity").String(a.severity);
    for (const auto& [key, value] : a.labels) {
      if (key != "alertname" && key != "severity") w.Key(key).String(value);
    }
    w.EndObject().Key("annotations").BeginObject();
    for (const auto& [key, value] : a.annotations) w.Key(key).String(value);
    w.EndObject();
    const Micros starts = a.firing_since != 0 ? a.firing_since : a.active_since;
    if (starts != 0) w.Key("startsAt").Time(starts);
    if (a.state == AlertState::kResolved && a.resolved_at != 0) {
      w.Key("endsAt").Time(a.resolved_at);
    }
    if (!generator_url.empty()) w.Key("generatorURL").String(generator_url);
    w.EndObject();
  }
  w.EndArray();
  return out;
}

std::string WebhookJson(const Alert& a) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("text").String(AlertText(a)).Key("alert").Raw(AlertJson(a)).EndObject();
  return out;
}

WebhookSink::WebhookSink(WebhookOptions options, std::string path,
                         std::unique_ptr<HttpPoster> poster)
    : options_(std::move(options)), path_(std::move(path)), poster_(std::move(poster)) {}

Result<std::unique_ptr<WebhookSink>> WebhookSink::Start(WebhookOptions options) {
  Result<HttpUrl> url = ParseHttpUrl(options.url, "webhook URL");
  if (!url.ok()) return url.status();
  auto invalid = [](const char* why) { return Status(Code::kInvalidArgument, why); };
  if (options.queue_size == 0) return invalid("webhook queue_size must be >= 1");
  if (options.timeout_ms <= 0) return invalid("webhook timeout_ms must be >= 1");
  if (options.max_attempts <= 0) return invalid("webhook max_attempts must be >= 1");
  if (options.backoff_ms < 0) return invalid("webhook backoff_ms must be >= 0");
  const bool am = options.format == WebhookOptions::Format::kAlertmanager;
  std::string path = am ? AlertmanagerPath(url->path) : url->path.empty() ? "/" : url->path;
  Result<std::unique_ptr<HttpPoster>> poster = HttpPoster::Create(
      std::move(url).value(), HttpPosterOptions{am ? "Alertmanager" : "webhook", "alert sink",
                                                "resonance/" + std::string(trace::kScopeVersion)});
  if (!poster.ok()) {
    return Status(Code::kInternal, "webhook sink: " + poster.status().message());
  }
  std::unique_ptr<WebhookSink> sink(
      new WebhookSink(std::move(options), std::move(path), std::move(poster).value()));
  // The thread blocks every signal: a process that takes SIGTERM with sigwait in one
  // thread must not have it delivered here, where its default action would end the
  // process without a drain.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    sink->thread_ = std::thread([s = sink.get()] { s->Run(); });
    // Named here, not in Run: the name is there as soon as the thread exists.
    pthread_setname_np(sink->thread_.native_handle(), "resonance-alert");
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return Status(Code::kInternal, std::string("webhook sink: thread: ") + e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return sink;
}

WebhookSink::~WebhookSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  poster_->AbortAt(SteadyNowNs());
  if (thread_.joinable()) thread_.join();
}

std::string WebhookSink::name() const {
  return (options_.format == WebhookOptions::Format::kAlertmanager ? "alertmanager:" : "webhook:") +
         options_.url;
}

uint64_t WebhookSink::delivered() const { return delivered_.load(std::memory_order_relaxed); }
uint64_t WebhookSink::failed() const { return failed_.load(std::memory_order_relaxed); }
uint64_t WebhookSink::dropped() const { return dropped_.load(std::memory_order_relaxed); }

void WebhookSink::PushLocked(Item item) {
  if (queue_.size() >= options_.queue_size) {
    queue_.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  queue_.push_back(std::move(item));
}

void WebhookSink::Deliver(const Alert& alert) {
  if (alert.state == AlertState::kPending) return;
  Item item;
  item.alerts.push_back(alert);  // copied outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    PushLocked(std::move(item));
  }
  cv_.notify_one();
}

void WebhookSink::Refresh(const std::vector<Alert>& firing) {
  if (options_.format != WebhookOptions::Format::kAlertmanager) return;
  Item item;
  item.refresh = true;
  for (const Alert& a : firing) {
    if (a.state == AlertState::kFiring) item.alerts.push_back(a);
  }
  if (item.alerts.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t before = queue_.size();
    std::erase_if(queue_, [](const Item& i) { return i.refresh; });
    dropped_.fetch_add(before - queue_.size(), std::memory_order_relaxed);
    PushLocked(std::move(item));
  }
  cv_.notify_one();
}

void WebhookSink::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Send(item);
    lock.lock();
  }
}

void WebhookSink::Send(const Item& item) {
  const bool am = options_.format == WebhookOptions::Format::kAlertmanager;
  const std::string body =
      am ? AlertmanagerJson(item.alerts, options_.generator_url) : WebhookJson(item.alerts[0]);
  int64_t backoff_ms = options_.backoff_ms;
  std::string error;
  for (int attempt = 1;; ++attempt) {
    const int64_t deadline = SteadyNowNs() + options_.timeout_ms * kNanosPerMilli;
    Result<int> code = poster_->Post(path_, "application/json", body, deadline);
    if (code.ok() && *code >= 200 && *code <= 299) {
      delivered_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    error = code.ok() ? "answered HTTP " + std::to_string(*code) : code.status().message();
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return;
    if (attempt >= options_.max_attempts) break;
    cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping_; });
    if (stopping_) return;
    backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
  }
  failed_.fetch_add(1, std::memory_order_relaxed);
  const Alert& first = item.alerts[0];
  const std::string what = item.refresh ? "a refresh of " + std::to_string(item.alerts.size()) +
                                              " firing alert" + (item.alerts.size() == 1 ? "" : "s")
                                        : first.name + " (" + AlertStateName(first.state) + ")";
  log::Warn(kModule,
            "gave up sending " + what + " after " + std::to_string(options_.max_attempts) +
                " attempts: " + error,
            {{"sink", name()},
             {"alert", item.refresh ? std::string() : first.name},
             {"fingerprint", item.refresh ? std::string() : FingerprintOf(first)},
             {"attempts", options_.max_attempts},
             {"error", error}});
}

}  // namespace resonance::alerts
