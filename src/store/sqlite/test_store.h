#pragma once

// Test support (no production code includes this): a scratch directory and a SQLite
// store in it, as the engine's tests open them again and again.

#include <stdlib.h>

#include <memory>
#include <string>

#include "store/sqlite/sqlite_store.h"

namespace resonance {

// Makes /tmp/resonance-<name>-XXXXXX and returns its path; "" when it cannot. The
// caller removes it.
inline std::string MakeTestDir(const std::string& name) {
  std::string tmpl = "/tmp/resonance-" + name + "-XXXXXX";
  return mkdtemp(tmpl.data()) ? tmpl : std::string();
}

// Opens (creating or reopening) DIR/resonance.db with durability "os": tests need the
// commit order, not the fsync.
inline Result<std::unique_ptr<SqliteStore>> OpenTestStore(const std::string& dir) {
  SqliteStoreOptions so;
  so.path = dir + "/resonance.db";
  so.durability = Durability::kOs;
  return SqliteStore::Open(so);
}

}  // namespace resonance
