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
// before it returns: a kill -9 loses at most the record being written. Several processes
// may append to one log at once (two `moat chat` in one workspace): each append holds an
// flock on the log while it reads what others appended since, chains to the real end,
// writes and replaces the head; Open and Verify take the same lock. An unterminated last
// line is a write cut short: Verify ignores it (with a note when it is invalid) and the
// next Open or append drops it; a head one record behind is the same crash a moment later.
//
// A record always fits the log's 1 MiB line limit: a string field longer than 4 KiB is cut
// to its first 4 KiB (at a character boundary) and the record says so in "cut", by the
// field's path, with the full value's length and SHA-256:
//   "cut": {"call_id": {"bytes": 1100000, "sha256": "..."}}
// Reading is bounded the same way: no more than the limit and a byte of a line is ever
// held, so a damaged log with a huge line is refused in small memory.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace moat::agent {

inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
// The longest record (a line of the log, its newline included) and the longest string
// field kept whole in one.
inline constexpr size_t kMaxAuditRecordBytes = 1u << 20;
inline constexpr size_t kMaxAuditFieldBytes = 4096;

class AuditLog {
 public:
  // Opens (creating) the log and walks its chain to continue it. A log with a record that
  // does not check is refused: verify it and move it aside. (A torn last write is dropped.)
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();

  // Appends one record (an object; "seq", "prev", "hash" and "ts" are set here, and "cut"
  // when a field was cut). Thread-safe. Returns the record's hash. A record the log
  // cannot take is an error, and nothing is written.
  Result<std::string> Append(nlohmann::json record);

  const std::string& path() const { return path_; }
  // The last record this process knows of (others may have appended since).
  uint64_t last_seq() const { return chain_.seq; }

 private:
  // Where the chain ends: the last record's seq and hash, the hash before it, and the byte
  // offset just past the last record.
  struct Chain {
    uint64_t seq = 0;
    std::string prev = kGenesisHash;
    std::string prev_of_last = kGenesisHash;
    uint64_t end = 0;
  };
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  static Status Follow(int fd, const std::string& path, Chain* c);
  std::mutex mu_;
  std::string path_;
  int fd_ = -1;
  Chain chain_;
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

}  // namespace moat::agent
