#include "observe/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "core/clock.h"
#include "core/json_writer.h"
#include "core/time_format.h"

namespace resonance::log {
namespace {

constexpr size_t kBatchBytes = 64 << 10;  // the writer wakes at this much
constexpr auto kBatchDelay = std::chrono::milliseconds(50);
constexpr size_t kDropAboveBytes = 8 << 20;  // debug/info dropped past this
constexpr int kMaxKeep = 1000;

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kJson};
std::atomic<uint64_t> g_dropped{0};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

const char* LevelColumn(Level l) {
  switch (l) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO ";
    case Level::kWarn: return "WARN ";
    case Level::kError: return "ERROR";
  }
  return "INFO ";
}

bool Omitted(const Field& f) { return f.kind == Field::Kind::kString && f.str.empty(); }

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void FormatJson(std::string& out, Micros ts, Level level, std::string_view module,
                std::string_view msg, std::initializer_list<Field> fields) {
  JsonWriter w(out);
  w.BeginObject().Key("ts").Time(ts).Key("level").String(LevelName(level));
  w.Key("msg").String(msg).Key("module").String(module);
  for (const Field& f : fields) {
    if (Omitted(f)) continue;
    w.Key(f.key);
    switch (f.kind) {
      case Field::Kind::kString: w.String(f.str); break;
      case Field::Kind::kInt: w.Int(f.i); break;
      case Field::Kind::kUint: {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, f.u);
        w.Raw(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
        break;
      }
      case Field::Kind::kDouble: w.Double(f.d); break;
      case Field::Kind::kBool: w.Bool(f.b); break;
    }
  }
  w.EndObject();
  out.push_back('\n');
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Control characters as \n, \r, \t or \xXX; with quoted, also \" and \\.
void AppendTextEscaped(std::string& out, std::string_view s, bool quoted) {
  static const char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (quoted && (c == '"' || c == '\\')) {
      out.push_back('\\');
      out.push_back(ch);
    } else if (!IsControl(c)) {
      out.push_back(ch);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

bool NeedsQuotes(std::string_view s) {
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || IsControl(c)) return true;
  }
  return false;
}

void FormatText(std::string& out, Micros ts, Level level, std::string_view module,
                std::string_view msg, std::initializer_list<Field> fields) {
  AppendRfc3339(out, ts);
  out.push_back(' ');
  out.append(LevelColumn(level));
  out.push_back(' ');
  AppendTextEscaped(out, module, false);
  out.append(": ");
  AppendTextEscaped(out, msg, false);
  for (const Field& f : fields) {
    if (Omitted(f)) continue;
    out.push_back(' ');
    for (char ch : f.key) {
      const unsigned char c = static_cast<unsigned char>(ch);
      const bool plain = c > ' ' && c < 0x7f && c != '=' && c != '"';
      out.push_back(plain ? ch : '_');
    }
    out.push_back('=');
    switch (f.kind) {
      case Field::Kind::kString:
        if (NeedsQuotes(f.str)) {
          out.push_back('"');
          AppendTextEscaped(out, f.str, true);
          out.push_back('"');
        } else {
          out.append(f.str);
        }
        break;
      case Field::Kind::kInt: AppendNumber(out, f.i); break;
      case Field::Kind::kUint: AppendNumber(out, f.u); break;
      case Field::Kind::kDouble: AppendNumber(out, f.d); break;
      case Field::Kind::kBool: out.append(f.b ? "true" : "false"); break;
    }
  }
  out.push_back('\n');
}

// Writes all of data to fd, retrying on EINTR and short writes. False on any other
// error (the rest is lost).
bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void ReportToStderr(const std::string& what) {
  std::string line = "resonance: log: " + what + "\n";
  WriteAll(STDERR_FILENO, line.data(), line.size());
}

// The buffer, the writer thread and the destination. Never destroyed (see Get), so it
// is usable during static destruction. Lock order: io_mu_ before mu_.
class Sink {
 public:
  static Sink& Get() {
    static Sink* const sink = new Sink;  // intentionally leaked
    return *sink;
  }

  void Append(Level level, const std::string& line) {
    bool wake = false;
    bool sync = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (level < Level::kWarn && pending_.size() >= kDropAboveBytes) {
        g_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (!started_ && !shut_down_) StartWriterLocked();
      sync = shut_down_;
      const size_t before = pending_.size();
      pending_.append(line);  // not a move: pending_ keeps its capacity
      // The writer sleeps while the buffer is empty, and then for kBatchDelay unless
      // woken by one of these.
      wake = before == 0 || level >= Level::kWarn ||
             (before < kBatchBytes && pending_.size() >= kBatchBytes);
      if (level >= Level::kWarn) urgent_ = true;
    }
    if (sync) {
      Flush();
    } else if (wake) {
      cv_.notify_one();
    }
  }

  // Writes out whatever is pending. Whatever an earlier swap took is already written:
  // the writer holds io_mu_ from its swap until its write is done.
  void Flush() {
    std::lock_guard<std::mutex> io(io_mu_);
    WritePendingLocked();
  }

  Status Configure(const Options& o) {
    if (o.max_bytes < 0) {
      return Status(Code::kInvalidArgument, "log: max_bytes must not be negative");
    }
    if (o.keep < 0 || o.keep > kMaxKeep) {
      return Status(Code::kInvalidArgument,
                    "log: keep must be 0.." + std::to_string(kMaxKeep));
    }
    int fd = STDERR_FILENO;
    int64_t size = 0;
    bool rotate = false;
    if (!o.file.empty()) {
      fd = OpenFile(o.file, false);
      if (fd < 0) {
        const int err = errno;
        const bool bad_path = err == ENOENT || err == ENOTDIR || err == EISDIR ||
                              err == ENAMETOOLONG || err == ELOOP;
        return Status(bad_path ? Code::kInvalidArgument : Code::kUnavailable,
                      "log: cannot open " + o.file + ": " + std::strerror(err));
      }
      struct stat st;
      if (::fstat(fd, &st) == 0) {
        size = st.st_size;
        rotate = S_ISREG(st.st_mode) && o.max_bytes > 0;  // never rename /dev/null
      }
    }
    std::lock_guard<std::mutex> io(io_mu_);
    WritePendingLocked();  // earlier lines go where they were headed
    if (fd_ != STDERR_FILENO) ::close(fd_);
    fd_ = fd;
    path_ = o.file;
    rotate_ = rotate;
    size_ = size;
    max_bytes_ = o.max_bytes;
    keep_ = o.keep;
    rotate_error_reported_ = false;
    g_level.store(o.level, std::memory_order_relaxed);
    g_format.store(o.format, std::memory_order_relaxed);
    return Status::Ok();
  }

 private:
  Sink() = default;

  // Requires mu_.
  void StartWriterLocked() {
    started_ = true;
    // The writer blocks every signal, so that a process that waits for signals with
    // sigwait in one thread (and blocks them in the others) still gets them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      thread_ = std::thread([this] { Run(); });
      // Named here, not in Run: the name is there as soon as the thread exists.
      pthread_setname_np(thread_.native_handle(), "resonance-log");
      std::atexit([] { Get().Shutdown(); });
    } catch (const std::system_error&) {
      shut_down_ = true;  // no thread to be had: every line is written in place
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
      cv_.wait_for(lock, kBatchDelay,
                   [this] { return stop_ || urgent_ || pending_.size() >= kBatchBytes; });
      urgent_ = false;
      const bool stop = stop_;
      lock.unlock();
      Flush();
      if (stop) return;  // Shutdown set shut_down_ with stop_: nothing more comes here
      lock.lock();
    }
  }

  // Registered with std::atexit by the first Append.
  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      shut_down_ = true;  // from now on Append writes before it returns
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    Flush();
  }

  // Swaps the pending lines out and writes them. Requires io_mu_.
  void WritePendingLocked() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.empty()) return;
      batch_.swap(pending_);
    }
    WriteBatchLocked();
    batch_.clear();
    // Keep the two buffers' capacity for reuse, but give back a burst's worth.
    if (batch_.capacity() > 4 * kBatchBytes) batch_.shrink_to_fit();
  }

  // Writes batch_ (whole lines) to fd_, rotating at line boundaries. Requires io_mu_.
  void WriteBatchLocked() {
    const char* data = batch_.data();
    size_t left = batch_.size();
    while (left > 0) {
      if (!rotate_ || size_ + static_cast<int64_t>(left) <= max_bytes_) {
        Emit(data, left);
        return;
      }
      // Write the lines that still fit, then rotate.
      const size_t room = size_ < max_bytes_ ? static_cast<size_t>(max_bytes_ - size_) : 0;
      size_t n = std::string_view(data, std::min(room, left)).rfind('\n');
      n = n == std::string_view::npos ? 0 : n + 1;
      if (n == 0 && size_ == 0) {
        // One line longer than max_bytes: it gets a file of its own.
        n = std::string_view(data, left).find('\n');
        n = n == std::string_view::npos ? left : n + 1;
      }
      if (n > 0) {
        Emit(data, n);
        data += n;
        left -= n;
      }
      if (left > 0) Rotate();
    }
  }

  void Emit(const char* data, size_t n) {
    WriteAll(fd_, data, n);
    size_ += static_cast<int64_t>(n);
  }

  // file.(keep-1) -> file.keep ... file -> file.1, then a fresh file. Requires io_mu_.
  void Rotate() {
    ::close(fd_);
    fd_ = -1;
    bool fresh = true;
    if (keep_ > 0) {
      for (int i = keep_ - 1; i >= 0 && fresh; --i) {
        const std::string from = i == 0 ? path_ : path_ + "." + std::to_string(i);
        const std::string to = path_ + "." + std::to_string(i + 1);
        if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
          const int err = errno;
          ReportOnce("cannot rotate: rename " + from + " -> " + to + ": " +
                     std::strerror(err) + "; logging on without rotating");
          fresh = false;
        }
      }
    }
    fd_ = OpenFile(path_, keep_ == 0 && fresh);
    if (fd_ < 0) {
      const int err = errno;
      ReportOnce("cannot reopen " + path_ + " after rotating: " + std::strerror(err) +
                 "; logging to stderr");
      fd_ = STDERR_FILENO;
      rotate_ = false;  // until the next Configure
    }
    // After a failed rename the file keeps growing; count from zero anyway so the next
    // attempt comes after another max_bytes rather than on every write.
    size_ = 0;
  }

  void ReportOnce(const std::string& what) {
    if (rotate_error_reported_) return;
    rotate_error_reported_ = true;
    ReportToStderr(what);
  }

  static int OpenFile(const std::string& path, bool truncate) {
    return ::open(path.c_str(),
                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
  }

  std::mutex mu_;
  std::condition_variable cv_;  // the writer waits on it
  std::string pending_;         // guarded by mu_: whole lines not yet written
  bool urgent_ = false;         // guarded by mu_: a warn/error line is pending
  bool started_ = false;        // guarded by mu_
  bool stop_ = false;           // guarded by mu_
  bool shut_down_ = false;      // guarded by mu_: writer gone, Append writes itself
  std::thread thread_;          // set once under mu_; joined by Shutdown

  std::mutex io_mu_;
  std::string batch_;           // guarded by io_mu_: lines being written
  int fd_ = STDERR_FILENO;      // guarded by io_mu_
  std::string path_;            // guarded by io_mu_: empty = stderr
  bool rotate_ = false;         // guarded by io_mu_: a regular file and max_bytes > 0
  int64_t size_ = 0;            // guarded by io_mu_: bytes in the current file
  int64_t max_bytes_ = 0;       // guarded by io_mu_
  int keep_ = 0;                // guarded by io_mu_
  bool rotate_error_reported_ = false;  // guarded by io_mu_
};

}  // namespace

std::optional<Level> ParseLevel(std::string_view s) {
  if (s == "debug") return Level::kDebug;
  if (s == "info") return Level::kInfo;
  if (s == "warn" || s == "warning") return Level::kWarn;
  if (s == "error") return Level::kError;
  return std::nullopt;
}

std::optional<Format> ParseFormat(std::string_view s) {
  if (s == "json") return Format::kJson;
  if (s == "text") return Format::kText;
  return std::nullopt;
}

Status Configure(const Options& options) { return Sink::Get().Configure(options); }

void SetLevel(Level level) { g_level.store(level, std::memory_order_relaxed); }

bool Enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

void Write(Level level, std::string_view module, std::string_view msg,
           std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  std::string line;
  line.reserve(96 + module.size() + msg.size() + 32 * fields.size());
  const Micros now = SystemClock().Now();
  if (g_format.load(std::memory_order_relaxed) == Format::kText) {
    FormatText(line, now, level, module, msg, fields);
  } else {
    FormatJson(line, now, level, module, msg, fields);
  }
  Sink::Get().Append(level, line);
}

void Flush() { Sink::Get().Flush(); }

uint64_t Dropped() { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace resonance::log
