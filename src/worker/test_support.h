#pragma once
// Helpers shared by the worker's unit tests (not part of the library).

#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace resonance::worker::testing {

// True when no process has this pid any more (a zombie waiting for init counts as gone:
// it runs nothing).
inline bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// Waits up to `ms` for every pid to be gone.
inline bool AllGone(const std::vector<pid_t>& pids, int ms = 2000) {
  for (int waited = 0;; waited += 10) {
    bool all = true;
    for (pid_t p : pids) all = all && ProcessGone(p);
    if (all) return true;
    if (waited >= ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The pids written one per line to a file.
inline std::vector<pid_t> ReadPids(const std::string& path) {
  std::vector<pid_t> pids;
  std::ifstream in(path);
  long p;
  while (in >> p) pids.push_back(static_cast<pid_t>(p));
  return pids;
}

// A fresh temp dir for a test's files, removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/resonance-worker-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~ScratchDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Writes an executable script.
  std::string Script(const std::string& name, const std::string& text) const {
    std::string p = File(name);
    std::ofstream(p) << text;
    ::chmod(p.c_str(), 0755);
    return p;
  }

 private:
  std::string path_;
};

}  // namespace resonance::worker::testing
