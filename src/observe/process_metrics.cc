#include "observe/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace resonance::metrics {
namespace {

double ResidentBytes() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<double>(pages_resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

double CpuSeconds() {
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (!f) return 0;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  // Fields after the command name (in parentheses, which may hold spaces): state is
  // field 3, utime field 14, stime field 15.
  const char* p = nullptr;
  for (size_t i = n; i > 0; --i) {
    if (buf[i - 1] == ')') {
      p = buf + i;
      break;
    }
  }
  if (!p) return 0;
  unsigned long utime = 0, stime = 0;
  if (std::sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double OpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return 0;
  int count = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++count;
  }
  ::closedir(d);
  return count - 1;  // the directory stream's own fd
}

}  // namespace

void RegisterProcessMetrics(Registry& r, const std::string& version) {
  r.AddGauge("resonance_build_info", "Always 1; the version label names the build.", {"version"})
      .With({version})
      .Set(1);
  const double start = std::chrono::duration<double>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  r.AddGauge("resonance_process_start_time_seconds", "Unix time the process started.")
      .With({})
      .Set(start);
  auto& rss = r.AddGauge("resonance_process_resident_memory_bytes", "Resident set size.");
  auto& cpu = r.AddScrapedCounter("resonance_process_cpu_seconds_total",
                                  "User and system CPU time spent.");
  auto& fds = r.AddGauge("resonance_process_open_fds", "Open file descriptors.");
  r.OnScrape([&rss, &cpu, &fds] {
    rss.With({}).Set(ResidentBytes());
    cpu.With({}).Set(CpuSeconds());
    fds.With({}).Set(OpenFds());
  });
}

}  // namespace resonance::metrics
