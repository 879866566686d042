#include "observe/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/time_format.h"

namespace resonance {
namespace {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/log_test.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) std::abort();
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Lines without their '\n'; a last line without '\n' is kept as it is.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<std::string> ReadLines(const std::string& path) { return Lines(ReadFile(path)); }

// Whether line is exactly one JSON object: braces and brackets balance outside strings,
// strings close, escapes are complete, no raw control characters, nothing after the end.
bool IsOneJsonObject(std::string_view line) {
  if (line.empty() || line.front() != '{') return false;
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (in_string) {
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i == line.size()) return false;
        if (line[i] == 'u') {
          if (i + 4 >= line.size()) return false;
          i += 4;
        }
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth < 0) return false;
      if (depth == 0) return i + 1 == line.size();
    }
  }
  return false;
}

// Checks that a JSON line starts with a valid "ts" and returns what follows it
// (from "level" on).
std::string AfterTs(const std::string& line) {
  const std::string head = "{\"ts\":\"";
  EXPECT_EQ(line.substr(0, head.size()), head) << line;
  const std::string ts = line.substr(head.size(), 27);
  EXPECT_TRUE(ParseRfc3339(ts).has_value()) << line;
  EXPECT_EQ(ts.size(), 27u);
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ(line.substr(head.size() + 27, 2), "\",") << line;
  return line.substr(head.size() + 29);
}

// Checks that a text line starts with a valid timestamp and a space; returns the rest.
std::string AfterTextTs(const std::string& line) {
  const std::string ts = line.substr(0, 27);
  EXPECT_TRUE(ParseRfc3339(ts).has_value()) << line;
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ(line.substr(27, 1), " ") << line;
  return line.substr(28);
}

// The number after "key": in a JSON line, or -1.
int64_t JsonInt(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const size_t at = line.find(k);
  if (at == std::string::npos) return -1;
  return std::strtoll(line.c_str() + at + k.size(), nullptr, 10);
}

// The logger is process-wide: each test configures what it needs, and the fixture puts
// the defaults back (stderr, info, JSON) after it.
class LogTest : public ::testing::Test {
 protected:
  void TearDown() override {
    log::Flush();
    ASSERT_TRUE(log::Configure(log::Options{}).ok());
  }

  // Sends lines to dir_/name with the given options; returns the path.
  std::string ToFile(const std::string& name, log::Options o = {}) {
    o.file = dir_.path() + "/" + name;
    const Status s = log::Configure(o);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return o.file;
  }

  TempDir dir_;
};

TEST(LogParseTest, ParseLevelAcceptsKnownNamesOnly) {
  // Given each level name (and the "warning" alias), then it parses; anything else,
  // uppercase and padded names included, does not.
  EXPECT_EQ(log::ParseLevel("debug"), log::Level::kDebug);
  EXPECT_EQ(log::ParseLevel("info"), log::Level::kInfo);
  EXPECT_EQ(log::ParseLevel("warn"), log::Level::kWarn);
  EXPECT_EQ(log::ParseLevel("warning"), log::Level::kWarn);
  EXPECT_EQ(log::ParseLevel("error"), log::Level::kError);
  for (const char* bad : {"", "INFO", "Info", " info", "info ", "fatal", "warnings", "err"}) {
    EXPECT_FALSE(log::ParseLevel(bad).has_value()) << bad;
  }
}

TEST(LogParseTest, ParseFormatAcceptsKnownNamesOnly) {
  // Given "json" and "text", then they parse; anything else does not.
  EXPECT_EQ(log::ParseFormat("json"), log::Format::kJson);
  EXPECT_EQ(log::ParseFormat("text"), log::Format::kText);
  for (const char* bad : {"", "JSON", "logfmt", "text ", "jsonl"}) {
    EXPECT_FALSE(log::ParseFormat(bad).has_value()) << bad;
  }
}

TEST_F(LogTest, JsonLineHasFixedKeysThenFieldsInOrder) {
  // Given a line with fields, then it is ts, level, msg, module and then the fields in
  // the order given, on one line.
  const std::string path = ToFile("shape.log");
  log::Info("http", "request done",
            {{"request_id", "r-1"}, {"status", 200}, {"path", std::string("/v1/tasks")}});
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(AfterTs(lines[0]),
            R"("level":"info","msg":"request done","module":"http","request_id":"r-1",)"
            R"("status":200,"path":"/v1/tasks"})");
  EXPECT_TRUE(IsOneJsonObject(lines[0]));
}

TEST_F(LogTest, JsonLeavesOutEmptyStringFields) {
  // Given ids known for some fields only, then only the known ones appear; empty
  // module and msg are still written (they are not fields).
  const std::string path = ToFile("empty.log");
  const std::string unknown;
  const char* null_text = nullptr;
  log::Warn("worker", "lease lost",
            {{"request_id", ""},
             {"trace_id", unknown},
             {"task_id", "t-9"},
             {"span_id", std::string_view()},
             {"worker", null_text},
             {"count", 0}});
  log::Info("", "");
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(AfterTs(lines[0]),
            R"("level":"warn","msg":"lease lost","module":"worker","task_id":"t-9","count":0})");
  EXPECT_EQ(AfterTs(lines[1]), R"("level":"info","msg":"","module":""})");
}

TEST_F(LogTest, JsonEscapesQuotesNewlinesAndControlCharsKeepsUtf8) {
  // Given text with quotes, backslashes, newlines, control characters, a NUL and
  // non-ASCII UTF-8 in msg, module, key and value, then each is escaped as JSON needs
  // and the UTF-8 bytes are kept as they are, all on one line.
  const std::string path = ToFile("escape.log");
  const std::string msg =
      "say \"hi\" \\ to\nnext\r\tline \x01\x1f\x7f h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80";
  log::Error("mo\"d", msg,
             {{"k\ney", std::string_view("a\0b", 3)}, {"caf\xC3\xA9", "\xE2\x82\xAC"}});
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(
      AfterTs(lines[0]),
      "\"level\":\"error\",\"msg\":\"say \\\"hi\\\" \\\\ to\\nnext\\r\\tline \\u0001\\u001f\x7f"
      " h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80\",\"module\":\"mo\\\"d\","
      "\"k\\ney\":\"a\\u0000b\",\"caf\xC3\xA9\":\"\xE2\x82\xAC\"}");
  EXPECT_TRUE(IsOneJsonObject(lines[0]));
}

TEST_F(LogTest, JsonWritesNumbersAndBools) {
  // Given integer, unsigned, floating-point and bool fields, then they are JSON
  // numbers and literals (a non-finite double is null), not strings.
  const std::string path = ToFile("numbers.log");
  const size_t bytes = 4096;
  const unsigned short small = 7;
  log::Info("m", "n",
            {{"min", std::numeric_limits<int64_t>::min()},
             {"max", std::numeric_limits<uint64_t>::max()},
             {"bytes", bytes},
             {"neg", -7},
             {"small", small},
             {"ratio", 0.25},
             {"nan", std::nan("")},
             {"yes", true},
             {"no", false}});
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(AfterTs(lines[0]),
            R"("level":"info","msg":"n","module":"m","min":-9223372036854775808,)"
            R"("max":18446744073709551615,"bytes":4096,"neg":-7,"small":7,"ratio":0.25,)"
            R"("nan":null,"yes":true,"no":false})");
}

TEST_F(LogTest, LevelFiltersLinesAndEnabledAgrees) {
  // Given level warn, then debug and info lines are skipped and Enabled says so; after
  // SetLevel(debug) every level is written.
  log::Options o;
  o.level = log::Level::kWarn;
  const std::string path = ToFile("levels.log", o);
  EXPECT_FALSE(log::Enabled(log::Level::kDebug));
  EXPECT_FALSE(log::Enabled(log::Level::kInfo));
  EXPECT_TRUE(log::Enabled(log::Level::kWarn));
  EXPECT_TRUE(log::Enabled(log::Level::kError));
  log::Debug("m", "d1");
  log::Info("m", "i1");
  log::Warn("m", "w1");
  log::Error("m", "e1");
  log::SetLevel(log::Level::kDebug);
  EXPECT_TRUE(log::Enabled(log::Level::kDebug));
  log::Debug("m", "d2");
  log::Write(log::Level::kInfo, "m", "i2");
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(AfterTs(lines[0]), R"("level":"warn","msg":"w1","module":"m"})");
  EXPECT_EQ(AfterTs(lines[1]), R"("level":"error","msg":"e1","module":"m"})");
  EXPECT_EQ(AfterTs(lines[2]), R"("level":"debug","msg":"d2","module":"m"})");
  EXPECT_EQ(AfterTs(lines[3]), R"("level":"info","msg":"i2","module":"m"})");
}

TEST_F(LogTest, TextFormatHasExactShape) {
  // Given text format, then each line is "<ts> <LEVEL padded to 5> <module>: <msg>"
  // and then key=value pairs, bare when they need no quotes.
  log::Options o;
  o.format = log::Format::kText;
  o.level = log::Level::kDebug;
  const std::string path = ToFile("text.log", o);
  log::Debug("store", "checkpoint");
  log::Info("http", "request done",
            {{"method", "GET"}, {"status", 200}, {"ms", 1.5}, {"ok", true}, {"trace_id", ""}});
  log::Warn("worker", "slow");
  log::Error("engine", "commit failed", {{"err", "disk full"}});
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(AfterTextTs(lines[0]), "DEBUG store: checkpoint");
  EXPECT_EQ(AfterTextTs(lines[1]), "INFO  http: request done method=GET status=200 ms=1.5 ok=true");
  EXPECT_EQ(AfterTextTs(lines[2]), "WARN  worker: slow");
  EXPECT_EQ(AfterTextTs(lines[3]), "ERROR engine: commit failed err=\"disk full\"");
}

TEST_F(LogTest, TextQuotesAndEscapesValues) {
  // Given values with spaces, quotes, '=', backslashes and control characters, then
  // they are quoted with \" \\ \n \xXX inside; msg keeps its quotes but not its
  // newlines; a key with a space gets '_'; UTF-8 stays bare.
  log::Options o;
  o.format = log::Format::kText;
  const std::string path = ToFile("text_escape.log", o);
  log::Info("m", "two\nlines \"q\"",
            {{"a", "say \"hi\""},
             {"b", "x=y"},
             {"c", "back\\slash"},
             {"d", "line1\nline2\t\x01"},
             {"bad key", "v"},
             {"e", "h\xC3\xA9llo"}});
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(AfterTextTs(lines[0]),
            "INFO  m: two\\nlines \"q\" a=\"say \\\"hi\\\"\" b=\"x=y\" c=\"back\\\\slash\" "
            "d=\"line1\\nline2\\t\\x01\" bad_key=v e=h\xC3\xA9llo");
}

TEST_F(LogTest, InfoLinesReachTheFileWithoutFlush) {
  // Given one info line and no Flush, then the writer thread writes it on its own
  // within its 50 ms delay (we allow 5 s for a loaded machine).
  const std::string path = ToFile("timer.log");
  log::Info("m", "by the timer");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ReadFile(path).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(AfterTs(lines[0]), R"("level":"info","msg":"by the timer","module":"m"})");
}

TEST_F(LogTest, ConfigureWritesEarlierLinesToTheOldFile) {
  // Given a line logged before Configure switches files, then it lands in the old file
  // and the next line in the new one.
  const std::string a = ToFile("a.log");
  log::Info("m", "to a");
  const std::string b = ToFile("b.log");
  log::Info("m", "to b");
  log::Flush();
  const auto in_a = ReadLines(a);
  const auto in_b = ReadLines(b);
  ASSERT_EQ(in_a.size(), 1u);
  ASSERT_EQ(in_b.size(), 1u);
  EXPECT_NE(in_a[0].find("to a"), std::string::npos);
  EXPECT_NE(in_b[0].find("to b"), std::string::npos);
}

TEST_F(LogTest, ConfigureAppendsToAnExistingFile) {
  // Given a file with content, then Configure appends after it.
  const std::string path = dir_.path() + "/existing.log";
  { std::ofstream(path) << "old line\n"; }
  log::Options o;
  o.file = path;
  ASSERT_TRUE(log::Configure(o).ok());
  log::Info("m", "new line");
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "old line");
  EXPECT_NE(lines[1].find("new line"), std::string::npos);
}

TEST_F(LogTest, ConfigureOnABadPathFailsAndChangesNothing) {
  // Given a file in a missing directory, or a directory, then Configure returns
  // kInvalidArgument naming the path and errno text; the old file and level stay.
  log::Options o;
  o.level = log::Level::kWarn;
  const std::string path = ToFile("kept.log", o);

  log::Options bad;
  bad.level = log::Level::kDebug;
  bad.file = dir_.path() + "/no/such/dir/x.log";
  Status s = log::Configure(bad);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find(bad.file), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::strerror(ENOENT)), std::string::npos) << s.message();

  bad.file = dir_.path();
  s = log::Configure(bad);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find(std::strerror(EISDIR)), std::string::npos) << s.message();

  EXPECT_FALSE(log::Enabled(log::Level::kInfo));
  log::Warn("m", "still here");
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("still here"), std::string::npos);
}

TEST_F(LogTest, ConfigureOnAnUnwritableDirectoryIsUnavailable) {
  // Given a directory without write permission, then Configure returns kUnavailable
  // with the errno text.
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const std::string ro = dir_.path() + "/ro";
  ASSERT_EQ(::mkdir(ro.c_str(), 0500), 0);
  log::Options o;
  o.file = ro + "/x.log";
  const Status s = log::Configure(o);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find(o.file), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::strerror(EACCES)), std::string::npos) << s.message();
}

TEST_F(LogTest, ConfigureRejectsBadRotationOptions) {
  // Given a negative max_bytes or keep out of 0..1000, then kInvalidArgument.
  log::Options o;
  o.file = dir_.path() + "/x.log";
  o.max_bytes = -1;
  EXPECT_EQ(log::Configure(o).code(), Code::kInvalidArgument);
  o.max_bytes = 1000;
  o.keep = -1;
  EXPECT_EQ(log::Configure(o).code(), Code::kInvalidArgument);
  o.keep = 1001;
  EXPECT_EQ(log::Configure(o).code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(o.file));
}

// The rotation tests write numbered lines ("seq") and read the files back oldest first.
class LogRotationTest : public LogTest {
 protected:
  static constexpr int64_t kMaxBytes = 4096;

  // Concatenated lines of path.keep .. path.1, path; checks each file's size and lines.
  std::vector<std::string> ReadRotated(const std::string& path, int keep) {
    std::vector<std::string> all;
    for (int i = keep; i >= 0; --i) {
      const std::string p = i == 0 ? path : path + "." + std::to_string(i);
      if (!fs::exists(p)) continue;
      EXPECT_LE(static_cast<int64_t>(fs::file_size(p)), kMaxBytes) << p;
      const std::string text = ReadFile(p);
      EXPECT_TRUE(text.empty() || text.back() == '\n') << p;
      for (auto& line : Lines(text)) {
        EXPECT_TRUE(IsOneJsonObject(line)) << p << ": " << line;
        all.push_back(std::move(line));
      }
    }
    return all;
  }

  // Checks that lines hold seq first..last, in order.
  static void ExpectSeqs(const std::vector<std::string>& lines, int64_t first, int64_t last) {
    ASSERT_EQ(static_cast<int64_t>(lines.size()), last - first + 1);
    for (size_t i = 0; i < lines.size(); ++i) {
      ASSERT_EQ(JsonInt(lines[i], "seq"), first + static_cast<int64_t>(i)) << lines[i];
    }
  }
};

TEST_F(LogRotationTest, RotatesAtMaxBytesAndKeepsNewestFiles) {
  // Given max_bytes 4096 and keep 3: while the lines fit in four files, then none is
  // lost; after many more, then exactly file, file.1..file.3 hold the newest lines in
  // order, each at most max_bytes and rotated only when the next line did not fit.
  log::Options o;
  o.max_bytes = kMaxBytes;
  o.keep = 3;
  const std::string path = ToFile("rot.log", o);
  const std::string pad(40, 'x');
  int seq = 0;
  for (; seq < 100; ++seq) log::Info("rot", pad, {{"seq", seq}});  // ~12 KiB
  log::Flush();
  EXPECT_TRUE(fs::exists(path + ".1"));
  EXPECT_TRUE(fs::exists(path + ".2"));
  EXPECT_FALSE(fs::exists(path + ".4"));
  ExpectSeqs(ReadRotated(path, 3), 0, 99);

  for (; seq < 1000; ++seq) {
    log::Info("rot", pad, {{"seq", seq}});
    if (seq % 97 == 0) log::Flush();  // rotation both from Flush and from the writer
  }
  log::Flush();
  for (int i = 1; i <= 3; ++i) {
    const std::string p = path + "." + std::to_string(i);
    ASSERT_TRUE(fs::exists(p)) << p;
    // Rotated because the next line (~115 bytes) would not fit.
    EXPECT_GT(static_cast<int64_t>(fs::file_size(p)), kMaxBytes - 130) << p;
  }
  EXPECT_FALSE(fs::exists(path + ".4"));
  const auto lines = ReadRotated(path, 3);
  ASSERT_FALSE(lines.empty());
  const int64_t first = JsonInt(lines.front(), "seq");
  EXPECT_GT(first, 0);
  ExpectSeqs(lines, first, 999);
}

TEST_F(LogRotationTest, KeepZeroTruncatesInPlace) {
  // Given keep 0, then the file is truncated when full: no file.1, and it holds the
  // newest lines, starting on a line boundary.
  log::Options o;
  o.max_bytes = kMaxBytes;
  o.keep = 0;
  const std::string path = ToFile("trunc.log", o);
  for (int seq = 0; seq < 300; ++seq) log::Info("rot", "line", {{"seq", seq}});
  log::Flush();
  EXPECT_FALSE(fs::exists(path + ".1"));
  const auto lines = ReadRotated(path, 0);
  ASSERT_FALSE(lines.empty());
  const int64_t first = JsonInt(lines.front(), "seq");
  EXPECT_GT(first, 0);
  ExpectSeqs(lines, first, 299);
}

TEST_F(LogRotationTest, LineLongerThanMaxBytesGetsAFileOfItsOwn) {
  // Given a line longer than max_bytes between short ones, then it is written whole
  // into a fresh file and the next line starts another.
  log::Options o;
  o.max_bytes = 256;
  o.keep = 5;
  const std::string path = ToFile("long.log", o);
  log::Info("rot", "short", {{"seq", 0}});
  log::Info("rot", std::string(600, 'L'), {{"seq", 1}});
  log::Info("rot", "short", {{"seq", 2}});
  log::Flush();
  ASSERT_EQ(ReadLines(path + ".2").size(), 1u);
  const auto big = ReadLines(path + ".1");
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(JsonInt(big[0], "seq"), 1);
  EXPECT_TRUE(IsOneJsonObject(big[0]));
  const auto last = ReadLines(path);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(JsonInt(last[0], "seq"), 2);
}

TEST_F(LogRotationTest, RenameFailureIsReportedOnceAndLosesNothing) {
  // Given file.1 is a non-empty directory (so file -> file.1 cannot be renamed), then
  // one line on stderr says so and every line stays in the unrotated file.
  log::Options o;
  o.max_bytes = 512;
  o.keep = 1;
  const std::string path = ToFile("stuck.log", o);
  ASSERT_TRUE(fs::create_directory(path + ".1"));
  { std::ofstream(path + ".1/blocker") << "x"; }

  const std::string err_path = dir_.path() + "/stderr.txt";
  const int saved = ::dup(STDERR_FILENO);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(saved, 0);
  ASSERT_GE(err_fd, 0);
  ::dup2(err_fd, STDERR_FILENO);
  for (int seq = 0; seq < 100; ++seq) log::Info("rot", "line", {{"seq", seq}});
  log::Flush();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(err_fd);

  const auto reports = ReadLines(err_path);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("rename " + path + " -> " + path + ".1"), std::string::npos)
      << reports[0];
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 100u);
  for (int seq = 0; seq < 100; ++seq) EXPECT_EQ(JsonInt(lines[seq], "seq"), seq);
}

TEST_F(LogTest, ConcurrentWritersNeverInterleave) {
  // Given 8 threads writing 2000 lines each (with braces and quotes in them), then
  // after Flush there are 16000 lines, each one complete JSON object, each thread's
  // lines in its own order, and nothing was dropped.
  const std::string path = ToFile("concurrent.log");
  const uint64_t dropped_before = log::Dropped();
  constexpr int kThreads = 8;
  constexpr int kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLines; ++i) {
        log::Write(i % 100 == 0 ? log::Level::kWarn : log::Level::kInfo, "conc",
                   "a {\"braced\"} message\nwith a newline",
                   {{"thread", t}, {"seq", i}, {"note", "}{]["}});
      }
    });
  }
  for (auto& th : threads) th.join();
  log::Flush();
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  std::vector<int64_t> next(kThreads, 0);
  for (const auto& line : lines) {
    ASSERT_TRUE(IsOneJsonObject(line)) << line;
    const int64_t t = JsonInt(line, "thread");
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    ASSERT_EQ(JsonInt(line, "seq"), next[t]) << line;
    ++next[t];
  }
  EXPECT_EQ(log::Dropped(), dropped_before);
}

TEST_F(LogTest, DropsInfoButKeepsWarnWhenTheWriterIsStuck) {
  // Given a destination nobody reads (a FIFO with an idle reader), then once 8 MiB
  // are pending info lines are dropped and counted, warn lines are kept, and every
  // line that is written is whole.
  const std::string fifo = dir_.path() + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rfd, 0);
  log::Options o;
  o.file = fifo;
  ASSERT_TRUE(log::Configure(o).ok());

  const uint64_t dropped_before = log::Dropped();
  const std::string pad(1000, 'p');
  constexpr int kInfo = 16000;  // ~16 MiB: about half must be dropped
  for (int i = 0; i < kInfo; ++i) log::Info("drop", pad, {{"seq", i}});
  log::Warn("drop", "kept");
  const uint64_t dropped = log::Dropped() - dropped_before;
  EXPECT_GT(dropped, 0u);

  // Drain the FIFO; switching the logger back to stderr closes the writing end.
  ::fcntl(rfd, F_SETFL, 0);
  std::string got;
  std::thread reader([&] {
    char buf[1 << 16];
    ssize_t n;
    while ((n = ::read(rfd, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  });
  ASSERT_TRUE(log::Configure(log::Options{}).ok());
  reader.join();
  ::close(rfd);

  const auto lines = Lines(got);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("\"msg\":\"kept\""), std::string::npos);
  EXPECT_EQ(lines.size() - 1 + dropped, static_cast<uint64_t>(kInfo));
  for (const auto& line : lines) ASSERT_TRUE(IsOneJsonObject(line)) << line.substr(0, 200);
}

TEST_F(LogTest, WriterThreadBlocksSignals) {
  // Given the writer thread is running, then it blocks SIGTERM, SIGINT and SIGHUP, so
  // a process that waits for them with sigwait (blocked in every thread) gets them.
  log::Info("m", "start the writer");
  log::Flush();
  std::string status;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::string comm = ReadFile(task.path().string() + "/comm");
    if (comm == "resonance-log\n") status = ReadFile(task.path().string() + "/status");
  }
  ASSERT_FALSE(status.empty()) << "no thread named resonance-log";
  const size_t at = status.find("SigBlk:");
  ASSERT_NE(at, std::string::npos);
  const uint64_t blocked = std::strtoull(status.c_str() + at + 7, nullptr, 16);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    EXPECT_TRUE(blocked & (uint64_t{1} << (sig - 1))) << "signal " << sig;
  }
}

TEST(LogExitTest, ExitWritesPendingLinesAndLaterLinesSynchronously) {
  // Given a process that logs and calls std::exit without Flush, then the line is in
  // the file; and a line logged after the logger shut down (from an atexit handler
  // registered before it) is written too.
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child is a fresh process
  constexpr const char* kEnv = "RESONANCE_LOG_TEST_EXIT_FILE";
  std::optional<TempDir> dir;
  std::string path;
  if (const char* inherited = std::getenv(kEnv)) {
    path = inherited;  // the re-executed child
  } else {
    dir.emplace();
    path = dir->path() + "/exit.log";
    ::setenv(kEnv, path.c_str(), 1);
  }
  EXPECT_EXIT(
      {
        std::atexit([] { log::Error("exit", "after shutdown"); });
        log::Options o;
        o.file = path;
        if (!log::Configure(o).ok()) std::_Exit(9);
        log::Info("exit", "before exit");
        std::exit(3);
      },
      ::testing::ExitedWithCode(3), "");
  ::unsetenv(kEnv);
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(AfterTs(lines[0]), R"("level":"info","msg":"before exit","module":"exit"})");
  EXPECT_EQ(AfterTs(lines[1]), R"("level":"error","msg":"after shutdown","module":"exit"})");
}

}  // namespace
}  // namespace resonance
