#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/status.h"

namespace resonance::log {

// The process-wide structured logger: one line per call, as JSON (default) or text,
// to stderr or to a file with size-based rotation.
//
// JSON format, one object a line; keys in this order, then the fields in the order
// given; string fields whose value is empty are left out, numbers are JSON numbers
// (non-finite doubles are null), bools are true/false, every string is JSON-escaped
// (control characters as \n, \r, \t or \u00XX; other bytes, UTF-8 included, as they are):
// {"ts":"2026-11-22T18:13:58.123456Z","level":"info","msg":"listening","module":"http","port":80}
//
// Text format, one line:
//   <ts> <LEVEL padded to 5> <module>: <msg>[ key=value]...
//   2026-11-22T18:13:58.123456Z INFO  http: listening addr=127.0.0.1 note="two words"
// LEVEL is DEBUG, "INFO ", "WARN " or ERROR, so the module starts in the same column.
// In module and msg, control characters are written as \n, \r, \t or \xXX, nothing
// else is changed. A key's bytes other than printable ASCII, space, '=' and '"' become
// '_'. A value is written bare unless it holds a space, '"', '=', '\' or a control
// character; then it is quoted, with \" \\ \n \r \t \xXX inside the quotes. Empty
// string fields are left out, as in JSON.
//
// Threading and delivery. Every function here is thread-safe, and lines from
// concurrent calls never interleave. Write formats the line on the caller's thread and
// appends it to a shared in-memory buffer under a mutex (the critical section is an
// append). One background writer thread (started by the first Write) hands the buffer
// to write(2) once it holds 64 KiB, 50 ms after it became non-empty, or at once when a
// warn or error line arrives. So:
//   - kill -9 or a crash loses the lines not yet written: normally those of the last
//     50 ms (at most 64 KiB), more while the destination is slow (up to the 8 MiB
//     below). A warn/error line logged just before can be lost too: it is also written
//     by the writer thread, only without the 50 ms wait. Nothing is fsync'ed.
//   - If the buffer already holds 8 MiB (the destination is slower than the logging),
//     new debug and info lines are dropped and counted in Dropped(); warn and error
//     lines are always kept.
//   - Normal exit (return from main, std::exit) flushes: an std::atexit handler,
//     registered when the writer starts, stops and joins the writer after it has written
//     everything. Logging after that point (static destructors, later atexit handlers)
//     is synchronous: each call writes its line before returning. _exit, quick_exit and
//     abort flush nothing.
//   - A write(2) error other than EINTR (stderr closed, disk full) loses that batch
//     silently; there is nowhere to report it.
//   - The writer thread is named "resonance-log" and blocks every signal. Logging is
//     not async-signal-safe: never log from a signal handler.
//   - fork: a child must not log between fork and execve/_exit (the buffer's mutex may
//     be held by a thread that does not exist in the child, and the child has no writer
//     thread). Nor may it call std::exit. Log files are opened O_CLOEXEC.
//
// Rotation (regular files only). Before a write that would make the file pass
// max_bytes, the logger closes it, renames file.(keep-1) -> file.keep, ...,
// file.1 -> file.2, file -> file.1, and opens a fresh file; so every file holds only
// whole lines and is at most max_bytes long, except for a single line longer than
// max_bytes, which is written whole into a fresh file. keep = 0 truncates the file
// instead. A failed rename is reported once on stderr and logging goes on (in the
// unrotated file); if the fresh file cannot be opened, lines go to stderr until the
// next Configure.
enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kJson, kText };

// "debug", "info", "warn" or "warning", "error" (lowercase only); nullopt otherwise.
std::optional<Level> ParseLevel(std::string_view s);
// "json" or "text"; nullopt otherwise.
std::optional<Format> ParseFormat(std::string_view s);

struct Options {
  Level level = Level::kInfo;
  Format format = Format::kJson;
  std::string file;               // empty = stderr
  int64_t max_bytes = 100 << 20;  // rotate when the file would pass this; 0 = never
  int keep = 5;                   // rotated files kept: file.1 (newest) .. file.keep
};

// Applies options. Lines logged before the call are written to the old destination
// first. With a file, opens (creates, mode 0644) it for appending; calling again with
// the same path reopens it. Returns kInvalidArgument if max_bytes < 0, keep is not in
// 0..1000, or the path cannot name a file (ENOENT, ENOTDIR, EISDIR, ENAMETOOLONG, ELOOP),
// and kUnavailable for other open errors (EACCES, EROFS, EMFILE, ...); the message
// names the path and the errno text. On error nothing changes, level and format
// included.
Status Configure(const Options& options);

// Sets only the level (the other options stay as they are).
void SetLevel(Level level);

// Whether a line at this level would be written: one relaxed atomic load, so callers
// can skip building fields for lines nobody wants.
bool Enabled(Level level);

// One key and value of a line. Holds views: valid only during the Write call it is
// passed to (a temporary std::string in the call's argument list lives long enough).
// A null const char* counts as empty (and is left out).
struct Field {
  enum class Kind { kString, kInt, kUint, kDouble, kBool };

  Field(std::string_view k, std::string_view v) : key(k), kind(Kind::kString), str(v) {}
  Field(std::string_view k, const char* v)
      : key(k), kind(Kind::kString), str(v ? std::string_view(v) : std::string_view()) {}
  Field(std::string_view k, const std::string& v) : key(k), kind(Kind::kString), str(v) {}
  // Any integer type except bool and the character types (int, int64_t, size_t, ...).
  template <std::integral T>
    requires(!std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
             !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> &&
             !std::is_same_v<T, char32_t> && !std::is_same_v<T, wchar_t>)
  Field(std::string_view k, T v) : key(k) {
    if constexpr (std::is_signed_v<T>) {
      kind = Kind::kInt;
      i = static_cast<int64_t>(v);
    } else {
      kind = Kind::kUint;
      u = static_cast<uint64_t>(v);
    }
  }
  Field(std::string_view k, double v) : key(k), kind(Kind::kDouble), d(v) {}
  Field(std::string_view k, bool v) : key(k), kind(Kind::kBool), b(v) {}

  std::string_view key;
  Kind kind;
  std::string_view str;  // kString
  union {
    int64_t i;   // kInt
    uint64_t u;  // kUint
    double d;    // kDouble
    bool b;      // kBool
  };
};

// Logs one line if level is enabled. Never blocks on I/O (except after exit
// processing has begun, see above); never fails.
void Write(Level level, std::string_view module, std::string_view msg,
           std::initializer_list<Field> fields = {});

inline void Debug(std::string_view module, std::string_view msg,
                  std::initializer_list<Field> fields = {}) {
  Write(Level::kDebug, module, msg, fields);
}
inline void Info(std::string_view module, std::string_view msg,
                 std::initializer_list<Field> fields = {}) {
  Write(Level::kInfo, module, msg, fields);
}
inline void Warn(std::string_view module, std::string_view msg,
                 std::initializer_list<Field> fields = {}) {
  Write(Level::kWarn, module, msg, fields);
}
inline void Error(std::string_view module, std::string_view msg,
                  std::initializer_list<Field> fields = {}) {
  Write(Level::kError, module, msg, fields);
}

// Blocks until every line logged before the call has been handed to write(2) (and,
// so, is in the file or on stderr; not fsync'ed). Writes what is pending on the
// calling thread (rotating if needed) rather than waiting for the writer.
void Flush();

// Lines dropped since the start of the process because the buffer held 8 MiB.
uint64_t Dropped();

}  // namespace resonance::log
