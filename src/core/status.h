#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace resonance {

// The one error-code enum of the project. Every module returns these across its
// boundary; http/error_mapping.cc maps each to an HTTP status (adding a Code means
// adding its row to ToHttpStatus()).
enum class Code {
  kOk,
  kInvalidArgument,  // bad input: wrong type, missing field, out of range
  kInvalidJson,      // body is not well-formed JSON
  kNotFound,         // no such task, queue or record
  kConflict,         // stale lease token, wrong state for the operation
  kTooLarge,         // body or field over its limit
  kUnsupportedMedia, // content type we do not read
  kUnprocessable,    // well-formed but semantically refused
  kUnavailable,      // store not writable, shutting down
  kInternal,         // a bug or an unexpected library failure
};

// Stable lower_snake name of a code, used as the "code" field of JSON errors.
const char* CodeName(Code code);

// An outcome without a value. Cheap to copy when ok.
class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  Result(Code code, std::string message) : status_(code, std::move(message)) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace resonance
