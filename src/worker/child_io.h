#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "worker/spawner.h"

namespace resonance::worker {

// Splits a byte stream into lines (without the '\n'). A line longer than max_line is
// handed on cut to its first max_line bytes, and the rest of it up to the newline is
// dropped. Not thread-safe.
class LineSplitter {
 public:
  using LineFn = std::function<void(std::string_view line, bool cut)>;
  explicit LineSplitter(size_t max_line) : max_line_(max_line) {}
  void Feed(std::string_view data, const LineFn& fn);
  // Hands on a last line that ended without a newline.
  void Flush(const LineFn& fn);

 private:
  size_t max_line_;
  std::string partial_;
  bool dropping_ = false;  // inside a line already handed on cut
};

// Drives one child process: writes its stdin, reads stdout, stderr and fd 3 as bytes
// arrive (so the child never blocks on a full pipe), notices its exit, and stops its
// whole process group. Not thread-safe: the slot thread that started the child.
// Owns the child's descriptors from construction on; Finish/Terminate reap the child.
class ChildIo {
 public:
  struct Sinks {
    std::function<void(std::string_view bytes)> on_stdout;
    std::function<void(std::string_view bytes)> on_stderr;
    std::function<void(std::string_view bytes)> on_progress;
  };
  ChildIo(Spawner& spawner, const Clock& clock, Child child, Sinks sinks);
  ~ChildIo();  // a child not yet reaped is killed (group SIGKILL) and reaped
  ChildIo(const ChildIo&) = delete;
  ChildIo& operator=(const ChildIo&) = delete;

  // Queues bytes for the child's stdin.
  void Write(std::string_view data);
  // Closes stdin once everything queued is written (the child then reads EOF).
  void CloseStdinWhenWritten();
  size_t stdin_pending() const { return stdin_buf_.size() - stdin_off_; }

  // Waits up to `wait` for anything to happen and moves the bytes that are ready.
  // Returns true once the child has exited (then call Finish).
  bool Poll(Micros wait);
  bool exited() const { return exited_; }

  // After the child exited by itself: kills what it left behind in its group, reads the
  // rest of its output and reaps it. Returns the wait status.
  int Finish();
  // Stops the child: SIGTERM to its group, SIGKILL `grace` later if the leader has not
  // exited, then as Finish. Output keeps flowing meanwhile. Returns the wait status.
  int Terminate(Micros grace);

  const Child& child() const { return child_; }
  bool reaped() const { return reaped_; }

 private:
  // Reads what fd has now; false at EOF or error (fd then closed).
  bool ReadReady(int& fd, const std::function<void(std::string_view)>& sink);
  void WriteReady();
  void ReadAllUntil(Micros until);

  Spawner& spawner_;
  const Clock& clock_;
  Child child_;
  Sinks sinks_;
  std::string stdin_buf_;
  size_t stdin_off_ = 0;
  bool close_stdin_when_written_ = false;
  bool exited_ = false;
  bool reaped_ = false;
};

// A handler's stderr, written to the worker's log one line at a time with the task id,
// within bounds: lines cut at kMaxLine bytes, at most kMaxBytes logged per task (then
// one line saying how much was dropped). Keeps the last line for failure messages.
// Not thread-safe.
class StderrLog {
 public:
  static constexpr size_t kMaxLine = 4096;
  static constexpr size_t kMaxBytes = 64 * 1024;

  explicit StderrLog(std::string source) : source_(std::move(source)), lines_(kMaxLine) {}
  ~StderrLog() { Flush(); }
  void Feed(std::string_view bytes);
  // Logs a last line without newline and the dropped count; Feed may continue after.
  void Flush();
  // Names where lines come from in the log ("task ID" or "persistent handler ACTION").
  void set_source(std::string source);
  const std::string& last_line() const { return last_; }

 private:
  void Line(std::string_view line, bool cut);
  std::string source_;
  LineSplitter lines_;
  size_t logged_ = 0;
  size_t dropped_ = 0;
  std::string last_;
};

// "2.5" for 2.5 seconds: the shortest form for messages.
std::string FormatSeconds(double s);

}  // namespace resonance::worker
