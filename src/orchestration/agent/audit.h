// The audit log: append-only JSON Lines, each record chained to the one before by hash.
//
// A record is one JSON object on one line. The log adds three fields to what it is given:
//   "seq"   1, 2, 3, ... in order;
//   "prev"  the previous record's hash (64 zeros for the first);
//   "hash"  SHA-256 (hex) of the record's compact JSON without "hash" (keys sorted, so the
//           text is canonical).
// Editing a record breaks its hash; deleting or reordering breaks a later "prev" or "seq".
// Deleting the last records leaves a valid chain, so the log keeps a head file beside it
// (FILE.head) and Verify compares the two.
//
// What is durable when. Each append is one write(2) with O_APPEND before Append returns,
// so a kill -9 of the process after Append returned loses nothing (the page cache
// outlives the process). Against a crash of the machine, by the sync mode:
//   AuditSync::kGroup (the default): group commit. One fdatasync covers every record
//     written before it began, by this process or any other. A thread per log sleeps
//     until a record is waiting, then until the first waiting record's window is nearly
//     over (the window less twice the last sync's duration, and at least half of it), and
//     syncs: a record is on disk about group_window_us after its Append returned (later
//     only when a sync takes more than half the window). Appenders wake the thread once
//     per sync, not per record.
//   AuditSync::kAlways: each record is synced, and the head after it, before Append
//     returns (one sync per record).
// Flush() syncs everything this object appended, now; the destructor flushes. A write that
// fails is Append's error. A sync that fails is the error of every later Append and Flush
// of that log: the pages it could not write may be dropped, so the log is not trusted
// again by this object (the caller stops: fail closed).
//
// The head is 512 bytes: two JSON lines of 256 bytes (space-padded), each rewritten in
// place with one pwrite (never renamed; a line sits within one disk sector):
//   line 1, the end:    {"boot":B,"hash":H,"seq":N}  rewritten by every append, under the
//                       lock, after its record; B is the kernel's boot id;
//   line 2, the synced: {"synced":S,"synced_hash":HS}  rewritten (only ever forwards)
//                       after each fdatasync of the log, then the head is synced: records
//                       1..S are on disk.
// VerifyAudit accepts a log of L records only when record S is in it with hash HS (so
// S <= L: what was synced was never removed) and one of:
//   - N == L with the last record's hash, or N == L - 1 with the one before (a kill
//     between a record and its head line; as before group commit);
//   - B is not this boot's id (the machine crashed or restarted since line 1 was
//     written), and either record N is in the log with hash H (the head's page reached
//     the disk before later log pages), or N > L (records after S were not yet synced and
//     went with the page cache). Verify says so in its note.
// Within one boot, then, every cut is detected as before. After a crash of the machine,
// the records after S (about one window's worth: those appended since the last sync
// began) may be missing undetected, since their loss and their removal look alike. A
// one-line head from before group commit counts as S == N, and a head without a boot id
// as this boot's. Open applies the same rules and refuses a log its head contradicts (as
// it refuses a broken record: appending would overwrite the evidence); otherwise it syncs
// the log and brings both lines to its end before the first append.
//
// Several processes may append to one log at once (two `moat chat` in one workspace):
// each append holds an flock on the log while it reads what others appended since, chains
// to the real end, writes its record and line 1; a sync writes line 2 under the same lock;
// Open and Verify take it too. An unterminated last line is a write cut short: Verify
// ignores it (with a note when it is invalid) and the next Open or append drops it.
//
// A record always fits the log's 1 MiB line limit: a string field longer than 4 KiB is cut
// to its first 4 KiB (at a character boundary) and the record says so in "cut", by the
// field's path, with the full value's length and SHA-256:
//   "cut": {"call_id": {"bytes": 1100000, "sha256": "..."}}
// Reading is bounded the same way: no more than the limit and a byte of a line is ever
// held, so a damaged log with a huge line is refused in small memory.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace moat::agent {

inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
// The longest record (a line of the log, its newline included) and the longest string
// field kept whole in one.
inline constexpr size_t kMaxAuditRecordBytes = 1u << 20;
inline constexpr size_t kMaxAuditFieldBytes = 4096;

// When a record reaches the disk (see above).
enum class AuditSync {
  kGroup,   // one fdatasync for every record of a window, at most a window after Append
  kAlways,  // one fdatasync per record, before Append returns
};

struct AuditOptions {
  AuditSync sync = AuditSync::kGroup;
  // How long after its Append a record may wait for its fdatasync (kGroup); at most
  // kMaxAuditGroupWindowUs.
  uint64_t group_window_us = 10000;
};
inline constexpr uint64_t kMaxAuditGroupWindowUs = 60'000'000;

class AuditLog {
 public:
  // Opens (creating) the log and walks its chain to continue it. A log with a record that
  // does not check, or that its head contradicts, is refused: verify it and move it aside.
  // (A torn last write is dropped.) The head is brought up to the log's end.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                const AuditOptions& options = {});
  // Flushes (an error is lost: call Flush first to see it) and stops the sync thread.
  ~AuditLog();

  // Appends one record (an object; "seq", "prev", "hash" and "ts" are set here, and "cut"
  // when a field was cut). Thread-safe. Returns the record's hash. A record the log
  // cannot take is an error, and nothing is written. After a failed sync every append is
  // an error.
  Result<std::string> Append(nlohmann::json record);

  // Makes every record appended so far durable, and the head's synced line current, now.
  Status Flush();

  const std::string& path() const { return path_; }
  // The last record this process knows of (others may have appended since).
  uint64_t last_seq() const {
    std::lock_guard<std::mutex> lock(mu_);
    return chain_.seq;
  }
  // Syncs of the log done by this object (each an fdatasync of the log, then of its head).
  uint64_t syncs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return syncs_;
  }

 private:
  // Where the chain ends: the last record's seq and hash, the hash before it, and the byte
  // offset just past the last record.
  struct Chain {
    uint64_t seq = 0;
    std::string prev = kGenesisHash;
    std::string prev_of_last = kGenesisHash;
    uint64_t end = 0;
  };
  AuditLog(std::string path, int fd, const AuditOptions& options)
      : path_(std::move(path)), fd_(fd), options_(options) {}
  // Checks the records from c->end on and moves `c` past them, telling `saw` each one.
  static Status Follow(int fd, const std::string& path, Chain* c,
                       const std::function<void(uint64_t, const std::string&)>& saw = nullptr);
  // A record on its way in: its members serialized (all but seq, prev and ts), and, once
  // written by whichever appender held the log, its hash or the error.
  struct Pending {
    std::vector<std::pair<std::string, std::string>> members;
    bool has_ts = false;
    bool resolved = false;  // its result is set (by the leader, under mu_)
    bool done = false;      // its batch is finished: `result` may be read (under queue_mu_)
    Result<std::string> result = std::string();
    std::condition_variable cv;  // its appender waits here (with queue_mu_)
  };
  // Writes `batch` (mu_ held): chains, one write(2), the head's end line, and in kAlways
  // mode the sync; sets each one's result. True when the sync thread must be woken.
  bool WriteBatch(const std::vector<Pending*>& batch);
  // Writes the head's end line for chain_; mu_ and the file lock held.
  Status WriteHeadEnd();
  // One sync: fdatasync the log, then move the head's synced line to what it covered and
  // sync the head. Called with mu_ held and no sync running; mu_ is released meanwhile.
  Status SyncLocked(std::unique_lock<std::mutex>& lock);
  void SyncLoop();

  mutable std::mutex mu_;
  // Guards queue_, leading_ and Pending::done; never held while mu_ is taken.
  std::mutex queue_mu_;
  std::vector<Pending*> queue_;      // records waiting for the next batch
  bool leading_ = false;             // an appender is writing a batch
  std::condition_variable work_cv_;  // the sync thread: records to sync, or stop
  std::condition_variable done_cv_;  // a sync finished
  std::string path_;
  int fd_ = -1;
  int head_fd_ = -1;
  AuditOptions options_;
  Chain chain_;
  // Group commit, under mu_: records written since the last sync began (and when the
  // first of them was), whether a sync is running, the first failed sync's error.
  uint64_t unsynced_ = 0;
  int64_t unsynced_since_ns_ = 0;
  bool syncing_ = false;
  bool stop_ = false;
  Status sync_error_ = OkStatus();
  uint64_t syncs_ = 0;
  int64_t last_sync_ns_ = 0;
  std::thread syncer_;
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
