#include "store/sqlite/schema.h"

#include <string>

namespace resonance::sqlite {
namespace {

// Migration i (1-based) brings a database from version i-1 to i. Never edit a
// migration that has shipped: add a new one and bump kSchemaVersion.
const char* const kMigrations[] = {
    // 1: tasks, ledger, queue settings.
    R"sql(
CREATE TABLE tasks (
  id                TEXT PRIMARY KEY,
  queue             TEXT NOT NULL,
  action            TEXT NOT NULL,
  payload           TEXT NOT NULL,
  priority          INTEGER NOT NULL,
  state             TEXT NOT NULL,
  run_at            INTEGER NOT NULL,
  attempt           INTEGER NOT NULL,
  max_attempts      INTEGER NOT NULL,
  timeout_s         INTEGER NOT NULL,
  throttled         INTEGER NOT NULL DEFAULT 0,
  idempotency_key   TEXT,
  requires_approval INTEGER NOT NULL DEFAULT 0,
  parent_id         TEXT,
  trace_id          TEXT,
  result            TEXT,
  error_class       TEXT,
  error_message     TEXT,
  lease             TEXT,
  lease_expires_at  INTEGER,
  worker            TEXT,
  cancel_requested  INTEGER NOT NULL DEFAULT 0,
  progress          TEXT,
  created_at        INTEGER NOT NULL,
  started_at        INTEGER,
  finished_at       INTEGER,
  updated_at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX tasks_idempotency ON tasks(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_state ON tasks(state, id);
CREATE INDEX tasks_finished ON tasks(finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE ledger (
  seq     INTEGER PRIMARY KEY,
  ts      INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  task_id TEXT,
  data    TEXT NOT NULL,
  hash    TEXT NOT NULL
);
CREATE TABLE queues (
  name   TEXT PRIMARY KEY,
  paused INTEGER NOT NULL
);
)sql",
    // 2: task history by minute, queue and action (MinuteStats::Encode in data).
    R"sql(
CREATE TABLE stats (
  minute INTEGER NOT NULL,
  queue  TEXT NOT NULL,
  action TEXT NOT NULL,
  data   TEXT NOT NULL,
  PRIMARY KEY (minute, queue, action)
) WITHOUT ROWID;
)sql",
    // 3: flow control: the key a task's rate and concurrency limits count it under, and
    // its cost in tokens.
    R"sql(
ALTER TABLE tasks ADD COLUMN limit_key TEXT;
ALTER TABLE tasks ADD COLUMN cost REAL NOT NULL DEFAULT 1;
)sql",
    // 4: schedules (docs/schedules.md): the slot a scheduled task is for, and the
    // scheduler's durable records (schedules, target sets, gaps) as JSON values.
    R"sql(
ALTER TABLE tasks ADD COLUMN schedule TEXT;
ALTER TABLE tasks ADD COLUMN scheduled_for INTEGER;
CREATE TABLE records (
  kind   TEXT NOT NULL,
  name   TEXT NOT NULL,
  owner  TEXT NOT NULL,
  sort   INTEGER NOT NULL,
  active INTEGER NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE INDEX records_by_sort ON records(kind, sort);
)sql",
    // 5: follow-ups: the task's on_success specs (JSON array) and its follow-up depth.
    R"sql(
ALTER TABLE tasks ADD COLUMN on_success TEXT;
ALTER TABLE tasks ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_parent ON tasks(parent_id, id) WHERE parent_id IS NOT NULL;
)sql",
    // 6: credentials (docs/credentials.md); the value is the secret itself.
    R"sql(
CREATE TABLE credentials (
  name        TEXT PRIMARY KEY,
  value       TEXT NOT NULL,
  expires_at  INTEGER,
  version     INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  config_hash TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion, "one migration per schema version");

}  // namespace

Result<int> SchemaVersion(Db& db) {
  Stmt st(db.get(), "PRAGMA user_version");
  if (!st.valid()) return st.status();
  if (!st.Step()) return Status(Code::kInternal, "cannot read user_version");
  return static_cast<int>(st.Int(0));
}

Status Migrate(Db& db) {
  auto version = SchemaVersion(db);
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion) {
    return Status(Code::kUnavailable,
                  "database schema version " + std::to_string(*version) +
                      " is newer than this binary's " + std::to_string(kSchemaVersion));
  }
  for (int v = *version; v < kSchemaVersion; ++v) {
    std::string sql = std::string("BEGIN IMMEDIATE;") + kMigrations[v] +
                      "PRAGMA user_version=" + std::to_string(v + 1) + ";COMMIT;";
    Status s = db.Exec(sql);
    if (!s.ok()) {
      db.Exec("ROLLBACK");
      return Status(Code::kInternal,
                    "migration " + std::to_string(v + 1) + " failed: " + s.message());
    }
  }
  return Status::Ok();
}

}  // namespace resonance::sqlite
