#pragma once

#include "core/status.h"
#include "store/sqlite/sqlite_db.h"

namespace resonance::sqlite {

// The schema version this binary writes. PRAGMA user_version holds the version of a
// database; Migrate() applies every migration above it in one transaction each.
// A database newer than kSchemaVersion is refused (an older binary must not write it).
constexpr int kSchemaVersion = 6;

Status Migrate(Db& db);
Result<int> SchemaVersion(Db& db);

}  // namespace resonance::sqlite
