#include "store/sqlite/sqlite_db.h"

#include <string>

namespace resonance::sqlite {

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    status_ = Status(Code::kInternal, std::string("prepare: ") + sqlite3_errmsg(db));
    stmt_ = nullptr;
  }
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    stmt_ = o.stmt_;
    db_ = o.db_;
    status_ = o.status_;
    o.stmt_ = nullptr;
  }
  return *this;
}

void Stmt::BindText(int i, std::string_view v, bool null_if_empty) {
  if (null_if_empty && v.empty()) {
    sqlite3_bind_null(stmt_, i);
  } else {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
}
void Stmt::BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
void Stmt::BindDouble(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
void Stmt::BindIntOrNull(int i, int64_t v) {
  if (v == 0) {
    sqlite3_bind_null(stmt_, i);
  } else {
    sqlite3_bind_int64(stmt_, i, v);
  }
}
void Stmt::BindNull(int i) { sqlite3_bind_null(stmt_, i); }

bool Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) {
    status_ = Status(rc == SQLITE_CONSTRAINT ? Code::kConflict : Code::kInternal,
                     std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  return false;
}

Status Stmt::Run() {
  status_ = Status::Ok();
  while (Step()) {
  }
  Status s = status_;
  Reset();
  return s;
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

Db::~Db() { sqlite3_close_v2(db_); }

Status Db::Open(const std::string& path, bool read_only) {
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    return Status(Code::kUnavailable, "open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  return Status::Ok();
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status(Code::kInternal, "sqlite: " + msg);
  }
  return Status::Ok();
}

std::string Db::LastError() const { return db_ ? sqlite3_errmsg(db_) : "not open"; }

}  // namespace resonance::sqlite
