#include "worker/temp_dir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "observe/log.h"

namespace resonance::worker {
namespace fs = std::filesystem;

Result<TempDir> TempDir::Create(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string path = base && *base ? base : "/tmp";
  path += "/";
  for (char c : prefix.substr(0, 64)) {
    path.push_back(
        isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '_');
  }
  path += "XXXXXX";
  std::vector<char> buf(path.begin(), path.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) {
    return Status(Code::kUnavailable, "cannot make a temp dir " + path + ": " + strerror(errno));
  }
  return TempDir(std::string(buf.data()));
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

void TempDir::Remove() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (ec) {
    // A handler may have left a directory without write permission: open it up, retry.
    std::error_code walk;
    for (auto it = fs::recursive_directory_iterator(path_, walk);
         !walk && it != fs::recursive_directory_iterator(); it.increment(walk)) {
      std::error_code perm;
      if (it->is_directory(perm))
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, perm);
    }
    ec.clear();
    fs::remove_all(path_, ec);
    if (ec) log::Warn("worker", "cannot remove temp dir " + path_ + ": " + ec.message());
  }
  path_.clear();
}

}  // namespace resonance::worker
