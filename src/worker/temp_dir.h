#pragma once

#include <string>

#include "core/status.h"

namespace resonance::worker {

// A fresh private directory (mode 0700) under $TMPDIR or /tmp, removed with everything
// in it when the object goes. A task's RESONANCE_TMPDIR. Not thread-safe; move-only.
class TempDir {
 public:
  // kUnavailable with the reason when the directory cannot be made. `prefix` is
  // sanitised to [A-Za-z0-9._-].
  static Result<TempDir> Create(const std::string& prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { Remove(); }

  const std::string& path() const { return path_; }
  // Removes the tree now (also what the destructor does); logs a warning when part of it
  // cannot be removed. Idempotent.
  void Remove();

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace resonance::worker
