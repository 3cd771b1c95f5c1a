// The audit log: append-only JSON Lines, each record chained to the one before by hash.
//
// A record is one JSON object on one line. The log adds three fields to what it is given:
//   "seq"   1, 2, 3, ... in order;
//   "prev"  the previous record's hash (64 zeros for the first);
//   "hash"  SHA-256 (hex) of the record's compact JSON without "hash" (keys sorted, so the
//           text is canonical).
// Editing a record breaks its hash; deleting or reordering breaks a later "prev" or "seq".
// Deleting the last records leaves a valid chain, so the log keeps a head file beside it
// (FILE.head: the last seq and hash, replaced atomically after each append) and Verify
// compares the two. Each append is written with O_APPEND and flushed with fdatasync
// before it returns: a kill -9 loses at most the record being written. An unterminated,
// invalid last line is such a write cut short: Verify ignores it (with a note) and the
// next Open drops it; a head one record behind is the same crash a moment later.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace moat::agent {

class AuditLog {
 public:
  // Opens (creating) the log and reads its tail to continue the chain. A log whose tail is
  // not a valid record (a torn write) is refused: verify it and move it aside.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();

  // Appends one record (an object; "seq", "prev", "hash" and "ts" are set here).
  // Thread-safe. Returns the record's hash.
  Result<std::string> Append(nlohmann::json record);

  const std::string& path() const { return path_; }
  uint64_t last_seq() const { return seq_; }

 private:
  AuditLog(std::string path, int fd, uint64_t seq, std::string prev)
      : path_(std::move(path)), fd_(fd), seq_(seq), prev_(std::move(prev)) {}
  std::mutex mu_;
  std::string path_;
  int fd_ = -1;
  uint64_t seq_ = 0;
  std::string prev_;
};

struct AuditVerdict {
  bool ok = false;
  uint64_t records = 0;    // records checked (valid ones, when ok)
  uint64_t first_bad = 0;  // the seq (line number) of the first bad record; 0 when ok
  std::string why;
  std::string note;  // something worth knowing that is not a break (a torn last write)
};

// Checks every record's hash, seq and prev link, and the head file. Never throws.
AuditVerdict VerifyAudit(const std::string& path);

// The hash a record should carry (its compact JSON without "hash").
std::string AuditHash(const nlohmann::json& record);
inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

}  // namespace moat::agent
