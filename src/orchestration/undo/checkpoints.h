// Checkpoints: what each tool call of a session changed on disk, kept so that it can be
// shown (diff) and put back (undo).
//
// Before a call's first change to a path (execution/preimage.h), the path's pre-image is
// kept: a regular file's bytes (a reflink, FICLONE, where the filesystem can, else a copy),
// a symlink's text, a directory's mode, or the fact that nothing was there. When the call
// ends, the state each kept path was left in is recorded too (a file's SHA-256), so an undo
// can tell a file changed outside moat since.
//
// One folder per session, WORKSPACE/.moat/checkpoints/SESSION/ (`.moat` is hidden from
// every tool, so no guest can read or change a pre-image):
//   journal.jsonl   one JSON object per line, each written with one write(2) (O_APPEND)
//   data.pack       pre-images' bytes, one after another (copies: no file is created per
//                   pre-image, which on ext4 costs more than the copy)
//   blobs/N         the bytes of pre-image N, where the filesystem shares extents (a reflink)
// A pre-image is on record (blob complete, then its line written) before the change is
// made, so a run killed mid-call leaves a journal from which that call can still be undone.
//
// Journal lines ("t" is the kind):
//   {"t":"call","call":N,"step":S,"id":ID,"tool":NAME,"ts":T}      a call begins
//   {"t":"pre","call":N,"n":E,"root":R,"path":P,"kind":K,...}      a pre-image
//       K: "file" (with "size", "mode", and "at", its offset in data.pack, or "blob"),
//       "link" ("target"), "dir" ("mode"), "absent"
//   {"t":"skip","call":N,"root":R,"path":P,"reason":W}             a path not kept
//   {"t":"post","call":N,"root":R,"path":P,"kind":K,"sha256":H,...} the state after
//   {"t":"end","call":N,"undoable":B,"reason":W,"files":F,"bytes":Y} the call ended
//   {"t":"undone","call":N,"ts":T}                                  put back by an undo
// A torn last line (a kill mid-write) is ignored.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "execution/preimage.h"

namespace moat::undo {

// Bounds per session. Past either, further pre-images are not kept and the calls that
// needed them are not undoable (the event stream and the audit log say so).
// The most a policy may set the bounds to.
inline constexpr uint64_t kMaxCheckpointBytes = 64ull << 30;
inline constexpr uint64_t kMaxCheckpointFiles = 10'000'000;
struct CheckpointLimits {
  uint64_t max_bytes = 512ull << 20;  // pre-image bytes (copies count in full, reflinks too)
  uint64_t max_files = 10'000;        // pre-images of all kinds
};

// One kept path as the journal describes it.
struct PathState {
  enum class Kind { kAbsent, kFile, kDir, kLink };
  Kind kind = Kind::kAbsent;
  uint32_t mode = 0;    // permission bits (file, dir)
  uint64_t size = 0;    // file
  std::string sha256;   // file: in post states (pre-images carry none)
  std::string target;   // link
  std::string blob;     // pre-image file: its name under blobs/ (a reflink), or
  bool packed = false;  // its bytes are in data.pack
  uint64_t at = 0;      // from this offset (`size` of them)
};
std::string_view KindName(PathState::Kind k);

struct PathChange {
  std::string root;  // real host path of the mount's folder
  std::string path;  // from the root
  PathState before;
  std::optional<PathState> after;  // none when the call never ended (killed)
};

struct CallCheckpoint {
  uint64_t call = 0;  // 1, 2, ... in the session
  uint64_t step = 0;  // the agent step
  std::string id, tool, ts;
  std::vector<PathChange> changes;   // in the order first changed
  std::vector<std::string> skipped;  // "path: reason" for paths not kept
  bool ended = false;                // an "end" line was written
  bool undoable = true;              // false: something it changed was not kept
  std::string reason;                // why not undoable
  bool undone = false;
};

// Writes the bytes of pre-image `s` (a file state from the journal of the session folder
// `dir`) to `to_fd` from its offset 0: a reflink of a blob where it can, else a copy. An
// error when they are missing or cut short.
Status CopyPreImage(const std::string& dir, const PathState& s, int to_fd);
// The bytes themselves, when there are at most `max_bytes` (kLimit past it).
Result<std::string> ReadPreImage(const std::string& dir, const PathState& s, uint64_t max_bytes);

// What an lstat of `name` in `dir_fd` says of a path, all but a file's digest: its kind, its
// mode, a file's size, a symlink's text (read here). kOther: a special file (FIFO, socket,
// device); kUnreadableLink: a symlink whose text could not be read (errno set).
enum class StatRead { kOk, kOther, kUnreadableLink };
StatRead StateFromStat(int dir_fd, const std::string& name, const struct stat& st, PathState* s);

// Refuses a checkpoint folder (or `.moat`, or `.moat/checkpoints`) reached through a
// symlink or not a folder of this user's: the checkpoints of a workspace that came from
// elsewhere (a cloned repository) must not be written to or read from another place. A
// folder that does not exist passes.
Status CheckCheckpointFolder(const std::string& path);

// Whether `root` is one of `roots` or beneath one (real paths, compared by component).
bool WithinRoots(const std::string& root, const std::vector<std::string>& roots);

// Reads a session's journal (a missing folder is an empty list). Lines that do not parse
// as the writer wrote them are an error naming the line, except a torn last line.
Result<std::vector<CallCheckpoint>> ReadJournal(const std::string& dir);

class CallRecorder;

// The checkpoints of one session. Thread-safe.
class CheckpointStore : public std::enable_shared_from_this<CheckpointStore> {
 public:
  // Creates the folder (owner only) when missing; continues the call numbering and the
  // byte and file counts of an existing journal.
  static Result<std::shared_ptr<CheckpointStore>> Open(const std::string& dir,
                                                       CheckpointLimits limits);
  ~CheckpointStore();

  // A recorder for one call (never null). Its "call" line is written with its first
  // record, so a call that changes nothing leaves nothing in the journal; a journal that
  // cannot be written makes the call not undoable, it does not stop it.
  std::shared_ptr<CallRecorder> BeginCall(uint64_t step, const std::string& call_id,
                                          const std::string& tool);
  // Whether either bound is reached: a writing call now would not be undoable.
  bool full() const;
  uint64_t bytes_used() const;
  uint64_t files_used() const;
  const std::string& dir() const { return dir_; }
  const CheckpointLimits& limits() const { return limits_; }
  // Appends one journal line (one write). Used by the recorders and by undo.
  Status AppendLine(const std::string& line);

 private:
  friend class CallRecorder;
  CheckpointStore() = default;
  // Takes room for a pre-image; false when a bound would be passed.
  bool Reserve(uint64_t bytes);
  // An O_PATH fd of a mount root, opened once (the post states of every call are read
  // beneath it); -1 when it cannot be opened.
  int RootFd(const std::string& root);
  std::map<std::string, int> root_fds_;
  std::string dir_;
  CheckpointLimits limits_;
  int journal_fd_ = -1;
  int blobs_fd_ = -1;
  int pack_fd_ = -1;
  uint64_t pack_size_ = 0;  // where the next copy goes
  bool reflinks_ = false;   // the folder's filesystem shares extents (FICLONE)
  mutable std::mutex mu_;
  uint64_t next_call_ = 1;
  uint64_t next_blob_ = 1;
  uint64_t bytes_ = 0, files_ = 0;
  bool torn_ = false;  // the last journal write was cut short
};

// What one call's recorder kept, when it ends.
struct CallCheckpointSummary {
  uint64_t call = 0;
  bool undoable = true;
  std::string reason;  // why not
  uint64_t files = 0;  // pre-images kept
  uint64_t bytes = 0;
};

class CallRecorder : public PreImageSink {
 public:
  CallRecorder(std::shared_ptr<CheckpointStore> store, uint64_t call);
  void Before(const std::string& root, std::string_view rel, int dir_fd, std::string_view name,
              bool tree) override;
  void BeforeMove(const std::string& root, std::string_view from_rel, int from_fd,
                  std::string_view from_name, std::string_view to_rel, int to_fd,
                  std::string_view to_name) override;
  // Records the state every kept path was left in and the "end" line. Call once, after
  // the run.
  CallCheckpointSummary Finish();
  uint64_t call() const { return call_; }

 private:
  // Keeps `rel` (and with `tree`, everything beneath it; each path walked is added to
  // `walked` when not null).
  void Keep(const std::string& root, const std::string& rel, int dir_fd, const std::string& name,
            bool tree, std::vector<std::string>* walked = nullptr);
  // Keeps `name` in `dir_fd` (at `rel`) unless kept already; true when it is a folder (with
  // `look`, stat-ed even when kept already).
  bool KeepOne(const std::string& root, const std::string& rel, int dir_fd, const std::string& name,
               bool look);
  // Records that nothing is at `rel` (a path a move is about to fill).
  void KeepAbsent(const std::string& root, const std::string& rel);
  void Skip(const std::string& root, const std::string& rel, const std::string& reason);
  // Appends journal lines, the call's own line first when nothing was written yet.
  Status Emit(const std::string& lines);
  friend class CheckpointStore;
  std::string header_;  // the "call" line
  bool header_written_ = false;
  std::shared_ptr<CheckpointStore> store_;
  uint64_t call_;
  std::mutex mu_;
  std::set<std::pair<std::string, std::string>> kept_;  // (root, rel)
  std::vector<std::pair<std::string, std::string>> order_;
  bool undoable_ = true;
  std::string reason_;
  uint64_t files_ = 0, bytes_ = 0;
  uint64_t skips_ = 0;  // paths not kept
  bool finished_ = false;
};

// The state of `root`/`rel` now (file digest computed), without following a final symlink.
// kAbsent when nothing is there; an error only for what cannot be read.
Result<PathState> CurrentState(const std::string& root, const std::string& rel);
// The same beneath an open fd (O_PATH is enough) of the root.
Result<PathState> CurrentStateAt(int root_fd, const std::string& rel);

}  // namespace moat::undo
