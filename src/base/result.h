// One error model for moat: expected failures are values, never exceptions.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace moat {

enum class ErrorCode {
  kInvalidArgument,  // bad input from a user or a client
  kInvalidModule,    // wasm bytes refused by the pipeline
  kIo,               // file system or OS call failed
  kCompile,          // the C compiler failed
  kLimit,            // a configured limit was exceeded
  kDenied,           // refused by policy (egress, secrets)
  kAudit,            // the audit log cannot be opened or take a record (fail closed)
  kInternal,         // a bug or an impossible state
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

inline Error MakeError(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

// Result<T>: either a value or an Error. A minimal std::expected stand-in (C++20).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>
struct Ok {};
using Status = Result<Ok>;
inline Status OkStatus() { return Ok{}; }

}  // namespace moat
