#include "worker/child_io.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "observe/log.h"
#include "worker/json_read.h"

namespace resonance::worker {

void LineSplitter::Feed(std::string_view data, const LineFn& fn) {
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    const std::string_view piece = data.substr(0, nl);
    if (!dropping_) {
      const size_t room = max_line_ - std::min(max_line_, partial_.size());
      partial_.append(piece.substr(0, room));
      if (piece.size() > room) {
        fn(partial_, true);
        partial_.clear();
        dropping_ = true;
      }
    }
    if (nl == std::string_view::npos) return;
    if (!dropping_) fn(partial_, false);
    partial_.clear();
    dropping_ = false;
    data.remove_prefix(nl + 1);
  }
}

void LineSplitter::Flush(const LineFn& fn) {
  if (!partial_.empty() && !dropping_) fn(partial_, false);
  partial_.clear();
  dropping_ = false;
}

ChildIo::ChildIo(Spawner& spawner, const Clock& clock, Child child, Sinks sinks)
    : spawner_(spawner), clock_(clock), child_(child), sinks_(std::move(sinks)) {}

ChildIo::~ChildIo() {
  if (!reaped_ && child_.pid > 0) {
    spawner_.SignalGroup(child_, SIGKILL);
    spawner_.Reap(child_);
  }
  child_.CloseFds();
}

void ChildIo::Write(std::string_view data) {
  if (child_.stdin_fd < 0) return;
  if (stdin_off_ == stdin_buf_.size()) {
    stdin_buf_.clear();
    stdin_off_ = 0;
  }
  stdin_buf_.append(data);
  WriteReady();
}

void ChildIo::CloseStdinWhenWritten() {
  close_stdin_when_written_ = true;
  if (stdin_pending() == 0) child_.CloseStdin();
}

// Blocks SIGPIPE in this thread while it lives, and swallows one raised meanwhile, so a
// child that closes its stdin early gives EPIPE here and never kills the worker (whatever
// the process-wide disposition of SIGPIPE is).
class ScopedNoSigpipe {
 public:
  ScopedNoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~ScopedNoSigpipe() {
    if (raised_) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  void Raised() { raised_ = true; }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool raised_ = false;
};

void ChildIo::WriteReady() {
  if (child_.stdin_fd < 0 || stdin_off_ >= stdin_buf_.size()) {
    if (close_stdin_when_written_ && stdin_pending() == 0) child_.CloseStdin();
    return;
  }
  ScopedNoSigpipe no_sigpipe;
  while (child_.stdin_fd >= 0 && stdin_off_ < stdin_buf_.size()) {
    ssize_t n =
        ::write(child_.stdin_fd, stdin_buf_.data() + stdin_off_, stdin_buf_.size() - stdin_off_);
    if (n > 0) {
      stdin_off_ += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      // EPIPE: the child does not read its stdin (any more). Not an error of ours.
      if (errno == EPIPE) no_sigpipe.Raised();
      stdin_buf_.clear();
      stdin_off_ = 0;
      child_.CloseStdin();
      return;
    }
  }
  if (close_stdin_when_written_ && stdin_pending() == 0) child_.CloseStdin();
}

bool ChildIo::ReadReady(int& fd, const std::function<void(std::string_view)>& sink) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      if (sink) sink(std::string_view(buf, static_cast<size_t>(n)));
      if (static_cast<size_t>(n) < sizeof buf) return true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return true;
    } else {
      ::close(fd);
      fd = -1;
      return false;
    }
  }
}

bool ChildIo::Poll(Micros wait) {
  if (exited_) return true;
  pollfd fds[5];
  int* owners[5];
  nfds_t n = 0;
  auto add = [&](int& fd, short events) {
    if (fd < 0) return;
    fds[n] = pollfd{fd, events, 0};
    owners[n++] = &fd;
  };
  const bool want_write = child_.stdin_fd >= 0 && stdin_pending() > 0;
  if (want_write) add(child_.stdin_fd, POLLOUT);
  add(child_.stdout_fd, POLLIN);
  add(child_.stderr_fd, POLLIN);
  add(child_.progress_fd, POLLIN);
  add(child_.exit_fd, POLLIN);
  // Without a pidfd the exit is only seen by asking, so do not sleep long.
  if (child_.exit_fd < 0) wait = std::min<Micros>(wait, 10 * kMicrosPerMilli);
  int timeout_ms = static_cast<int>(std::max<Micros>(0, (wait + 999) / 1000));
  int r = ::poll(fds, n, timeout_ms);
  bool exit_ready = child_.exit_fd < 0;
  if (r > 0) {
    for (nfds_t i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      int& fd = *owners[i];
      if (&fd == &child_.stdin_fd) {
        if (fds[i].revents & (POLLERR | POLLHUP)) {
          child_.CloseStdin();
        } else {
          WriteReady();
        }
      } else if (&fd == &child_.stdout_fd) {
        ReadReady(fd, sinks_.on_stdout);
      } else if (&fd == &child_.stderr_fd) {
        ReadReady(fd, sinks_.on_stderr);
      } else if (&fd == &child_.progress_fd) {
        ReadReady(fd, sinks_.on_progress);
      } else if (&fd == &child_.exit_fd) {
        exit_ready = true;
      }
    }
  }
  if (exit_ready) exited_ = spawner_.Exited(child_);
  return exited_;
}

void ChildIo::ReadAllUntil(Micros until) {
  for (;;) {
    pollfd fds[3];
    int* owners[3];
    const std::function<void(std::string_view)>* sinks[3];
    nfds_t n = 0;
    auto add = [&](int& fd, const std::function<void(std::string_view)>& sink) {
      if (fd < 0) return;
      fds[n] = pollfd{fd, POLLIN, 0};
      sinks[n] = &sink;
      owners[n++] = &fd;
    };
    add(child_.stdout_fd, sinks_.on_stdout);
    add(child_.stderr_fd, sinks_.on_stderr);
    add(child_.progress_fd, sinks_.on_progress);
    if (n == 0) return;
    const Micros left = until - clock_.Now();
    if (left <= 0) return;
    int r = ::poll(fds, n, static_cast<int>(std::min<Micros>(left / 1000 + 1, 50)));
    if (r < 0 && errno != EINTR) return;
    for (nfds_t i = 0; i < n && r > 0; ++i) {
      if (fds[i].revents) ReadReady(*owners[i], *sinks[i]);
    }
  }
}

int ChildIo::Finish() {
  // Whatever the leader left running in its group goes with it: no orphans.
  spawner_.SignalGroup(child_, SIGKILL);
  child_.CloseStdin();
  ReadAllUntil(clock_.Now() + 200 * kMicrosPerMilli);
  const int status = spawner_.Reap(child_);
  reaped_ = true;
  child_.CloseFds();
  return status;
}

int ChildIo::Terminate(Micros grace) {
  if (!exited_) {
    spawner_.SignalGroup(child_, SIGTERM);
    const Micros kill_at = clock_.Now() + grace;
    while (!Poll(
        std::min<Micros>(50 * kMicrosPerMilli, std::max<Micros>(0, kill_at - clock_.Now())))) {
      if (clock_.Now() >= kill_at) break;
    }
    if (!exited_) {
      spawner_.SignalGroup(child_, SIGKILL);
      while (!Poll(50 * kMicrosPerMilli)) {
      }
    }
  }
  return Finish();
}

void StderrLog::Feed(std::string_view bytes) {
  lines_.Feed(bytes, [this](std::string_view line, bool cut) { Line(line, cut); });
}

void StderrLog::Line(std::string_view line, bool cut) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  last_.assign(line);
  if (logged_ + line.size() > kMaxBytes) {
    dropped_ += line.size();
    return;
  }
  logged_ += line.size();
  log::Info("handler",
            source_ + " stderr: " + json::SanitizeUtf8(line) + (cut ? " [line cut]" : ""));
}

void StderrLog::Flush() {
  lines_.Flush([this](std::string_view line, bool cut) { Line(line, cut); });
  if (dropped_ > 0) {
    log::Warn("handler", source_ + " stderr: " + std::to_string(dropped_) +
                             " more bytes not logged (over " + std::to_string(kMaxBytes) +
                             " per task)");
    dropped_ = 0;
  }
}

void StderrLog::set_source(std::string source) {
  Flush();
  source_ = std::move(source);
  logged_ = 0;
  last_.clear();
}

std::string FormatSeconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

}  // namespace resonance::worker
