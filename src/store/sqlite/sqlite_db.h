#pragma once

#include <sqlite3.h>

#include <string>
#include <string_view>

#include "core/status.h"

namespace resonance::sqlite {

// Thin RAII wrappers over the SQLite C API. Not thread-safe: one owner at a time.

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(Stmt&& o) noexcept : stmt_(o.stmt_), db_(o.db_) { o.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool valid() const { return stmt_ != nullptr; }
  // Binds by 1-based index. Empty text binds NULL when null_if_empty. Text is bound
  // without a copy: it must stay alive until the statement is stepped and reset.
  void BindText(int i, std::string_view v, bool null_if_empty = false);
  void BindInt(int i, int64_t v);
  void BindDouble(int i, double v);
  void BindIntOrNull(int i, int64_t v);  // 0 binds NULL
  void BindNull(int i);
  // SQLITE_ROW -> true, SQLITE_DONE -> false; errors become a Status in status().
  bool Step();
  Status Run();  // steps to the end and resets
  void Reset();
  const Status& status() const { return status_; }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
  Status status_;
};

// An open connection. Closes on destruction.
class Db {
 public:
  Db() = default;
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Status Open(const std::string& path, bool read_only);
  Status Exec(std::string_view sql);
  sqlite3* get() const { return db_; }
  std::string LastError() const;

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace resonance::sqlite
