#include "supervise/supervisor_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>

namespace resonance::supervise {
namespace {

std::string LockPath(const std::string& data_dir) { return data_dir + "/supervisor.lock"; }

pid_t ReadPid(int fd) {
  char buf[32] = {0};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? static_cast<pid_t>(std::atoi(buf)) : 0;
}

}  // namespace

SupervisorLock::~SupervisorLock() { Release(); }

void SupervisorLock::Release() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status SupervisorLock::Acquire(const std::string& data_dir) {
  const std::string path = LockPath(data_dir);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status(Code::kUnavailable, "cannot open " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const pid_t holder = ReadPid(fd);
    ::close(fd);
    return Status(Code::kConflict,
                  "data dir " + data_dir + " is already supervised by `resonance up` (pid " +
                      (holder > 0 ? std::to_string(holder) : std::string("unknown")) + ", lock " +
                      path + ")");
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    ::close(fd);
    return Status(Code::kUnavailable, "cannot write " + path);
  }
  Release();
  fd_ = fd;
  return Status::Ok();
}

pid_t SupervisorLock::Holder(const std::string& data_dir) {
  const std::string path = LockPath(data_dir);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  pid_t holder = 0;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) holder = ReadPid(fd);
  ::close(fd);
  return holder;
}

}  // namespace resonance::supervise
