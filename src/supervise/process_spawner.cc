#include "supervise/process_spawner.h"
#include "core/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace resonance::supervise {

Result<pid_t> PosixProcessSpawner::Start(const std::vector<std::string>& argv) {
  if (argv.empty()) return Status(Code::kInvalidArgument, "empty argv");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    return Status(Code::kInternal, std::string("pipe: ") + strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    return Status(Code::kInternal, std::string("fork: ") + strerror(e));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ResetSignalsInChild();
    ::execv(args[0], args.data());
    int err = errno;
    ssize_t n = ::write(report[1], &err, sizeof err);
    (void)n;
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ::close(report[1]);
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n > 0) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Status(Code::kInternal, "exec " + argv[0] + ": " + strerror(err));
  }
  return pid;
}

void PosixProcessSpawner::Signal(pid_t pid, int sig, bool group) {
  if (pid > 0) ::kill(group ? -pid : pid, sig);
}

std::optional<std::pair<pid_t, int>> PosixProcessSpawner::ReapAny() {
  int status = 0;
  pid_t pid;
  do {
    pid = ::waitpid(-1, &status, WNOHANG);
  } while (pid < 0 && errno == EINTR);
  if (pid <= 0) return std::nullopt;
  return std::make_pair(pid, status);
}

}  // namespace resonance::supervise
