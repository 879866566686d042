#include "worker/spawner.h"
#include "core/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

extern char** environ;

namespace resonance::worker {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The program to exec, resolved before fork (the child may only make async-signal-safe
// calls). Empty when not found.
std::string ResolveProgram(const SpawnSpec& spec) {
  const std::string& name = spec.argv[0];
  if (name.find('/') != std::string::npos) {
    std::string check = name;
    if (name[0] != '/' && !spec.dir.empty()) check = spec.dir + "/" + name;
    return IsExecutableFile(check) ? name : std::string();
  }
  std::string path;
  for (const auto& kv : spec.env) {
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  }
  if (path.empty()) {
    const char* p = std::getenv("PATH");
    path = p ? p : "/usr/local/bin:/usr/bin:/bin";
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    if (dir[0] != '/' && !spec.dir.empty()) dir = spec.dir + "/" + dir;
    std::string candidate = dir + "/" + name;
    if (IsExecutableFile(candidate)) return candidate;
    start = end + 1;
  }
  return {};
}

// A pipe whose two ends sit at descriptors >= 10 (so the child's dup2 onto 0-3 never
// meets a source that is itself one of 0-3), both close-on-exec.
bool HighPipe(int fds[2]) {
  int raw[2];
  if (::pipe2(raw, O_CLOEXEC) != 0) return false;
  for (int i = 0; i < 2; ++i) {
    fds[i] = ::fcntl(raw[i], F_DUPFD_CLOEXEC, 10);
    ::close(raw[i]);
  }
  if (fds[0] < 0 || fds[1] < 0) {
    CloseFd(fds[0]);
    CloseFd(fds[1]);
    return false;
  }
  return true;
}

void SetNonBlocking(int fd) {
  if (fd < 0) return;
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// What the child reports through the error pipe when it cannot exec.
struct ChildFailure {
  int stage;  // 1 chdir, 2 exec
  int err;
};

[[noreturn]] void ChildFail(int fd, int stage) {
  ChildFailure f{stage, errno};
  ssize_t n = ::write(fd, &f, sizeof f);
  (void)n;
  ::_exit(127);
}

}  // namespace

void Child::CloseStdin() { CloseFd(stdin_fd); }

void Child::CloseFds() {
  CloseFd(stdin_fd);
  CloseFd(stdout_fd);
  CloseFd(stderr_fd);
  CloseFd(progress_fd);
  CloseFd(exit_fd);
}

std::vector<std::string> EnvironmentWith(const std::vector<std::string>& overrides) {
  std::vector<std::string> out;
  std::map<std::string, size_t> index;
  auto put = [&](const std::string& kv) {
    std::string name = kv.substr(0, kv.find('='));
    auto it = index.find(name);
    if (it == index.end()) {
      index.emplace(name, out.size());
      out.push_back(kv);
    } else {
      out[it->second] = kv;
    }
  };
  for (char** e = environ; e && *e; ++e) put(*e);
  for (const auto& kv : overrides) put(kv);
  return out;
}

Result<Child> PosixSpawner::Spawn(const SpawnSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return Status(Code::kInvalidArgument, "empty argv");
  }
  const std::string program = ResolveProgram(spec);
  if (program.empty()) {
    return Status(Code::kNotFound, spec.argv[0] + ": not found or not executable" +
                                       (spec.dir.empty() ? "" : " (dir " + spec.dir + ")"));
  }
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, prog[2] = {-1, -1},
      report[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err, prog, report}) {
      CloseFd(p[0]);
      CloseFd(p[1]);
    }
  };
  if (!HighPipe(in) || !HighPipe(out) || !HighPipe(err) || !HighPipe(report) ||
      (spec.progress_pipe && !HighPipe(prog))) {
    int e = errno;
    close_all();
    return Status(Code::kInternal, std::string("pipe: ") + strerror(e));
  }
  const pid_t parent = ::getpid();
  const char* dir = spec.dir.empty() ? nullptr : spec.dir.c_str();
  const pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    close_all();
    return Status(Code::kInternal, std::string("fork: ") + strerror(e));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only from here to exec.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ResetSignalsInChild();
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    int first_other = 3;
    if (prog[1] >= 0) {
      ::dup2(prog[1], 3);
      first_other = 4;
    }
    // Everything else (the worker's sockets included) closes at exec; the report pipe
    // stays usable until then.
    if (::syscall(SYS_close_range, first_other, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = first_other; fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (dir && ::chdir(dir) != 0) ChildFail(report[1], 1);
    ::execve(program.c_str(), argv.data(), envp.data());
    ChildFail(report[1], 2);
  }
  ::setpgid(pid, pid);  // also from here, so the group exists whoever runs first
  CloseFd(in[0]);
  CloseFd(out[1]);
  CloseFd(err[1]);
  CloseFd(prog[1]);
  CloseFd(report[1]);
  ChildFailure failure{0, 0};
  ssize_t n;
  do {
    n = ::read(report[0], &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  CloseFd(report[0]);
  if (n > 0) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    close_all();
    const char* what = failure.stage == 1 ? "chdir " : "exec ";
    return Status(
        failure.err == ENOENT || failure.err == EACCES ? Code::kNotFound : Code::kInternal,
        what + (failure.stage == 1 ? spec.dir : program) + ": " + strerror(failure.err));
  }
  Child c;
  c.pid = pid;
  c.stdin_fd = in[1];
  c.stdout_fd = out[0];
  c.stderr_fd = err[0];
  c.progress_fd = prog[0];
  for (int fd : {c.stdin_fd, c.stdout_fd, c.stderr_fd, c.progress_fd}) SetNonBlocking(fd);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  c.exit_fd = pidfd >= 0 ? pidfd : -1;
  if (c.exit_fd >= 0) ::fcntl(c.exit_fd, F_SETFD, FD_CLOEXEC);
  return c;
}

void PosixSpawner::SignalGroup(const Child& child, int sig) {
  if (child.pid > 0) ::kill(-child.pid, sig);
}

bool PosixSpawner::Exited(const Child& child) {
  siginfo_t info;
  ::memset(&info, 0, sizeof info);
  if (::waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;
  }
  return info.si_pid == child.pid;
}

int PosixSpawner::Reap(const Child& child) {
  int status = 0;
  while (::waitpid(child.pid, &status, 0) < 0) {
    if (errno != EINTR) return 255 << 8;  // already reaped elsewhere: report exit 255
  }
  return status;
}

}  // namespace resonance::worker
