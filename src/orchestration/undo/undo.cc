#include "orchestration/undo/undo.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/line_diff.h"
#include "base/sha256.h"
#include "base/units.h"

namespace moat::undo {
namespace {

using json = nlohmann::json;
using Kind = PathState::Kind;

// Entries walked beneath one folder an undo removes, and folders deep: past either, the
// folder is a conflict rather than a walk without end.
constexpr size_t kMaxTreeEntries = 100'000;
constexpr int kMaxTreeDepth = 256;
// Files up to this size are read whole to be compared in a diff (larger ones are not).
constexpr uint64_t kMaxDiffLoadBytes = 64u << 20;

// An owned fd.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string ErrnoText(int err) { return std::strerror(err); }

// `path` beneath `dirfd`, never through a symlink, a magic link or "..": -1 and errno
// (ELOOP for a symlink in the way, EXDEV for a way out) otherwise.
// A mount root the journal names, by its absolute path, through no symlink: roots are
// recorded as real paths, so a symlink on the way means the folder is not the one that
// was changed (or the journal was not written by moat).
int OpenRoot(const std::string& root) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, AT_FDCWD, root.c_str(), &how, sizeof how);
    if (fd < 0 && (errno == EAGAIN || errno == EINTR) && attempt < 64) continue;
    return static_cast<int>(fd);
  }
}

int OpenBeneath(int dirfd, const std::string& path, int flags) {
  open_how how{};
  // No O_NOFOLLOW: with O_PATH it would open a final symlink itself; RESOLVE_NO_SYMLINKS
  // refuses it (ELOOP) instead.
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  if ((flags & O_PATH) == 0) how.flags |= O_NOCTTY;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (fd < 0 && (errno == EAGAIN || errno == EINTR) && attempt < 64) continue;
    return static_cast<int>(fd);
  }
}

// Splits "a/b/c" into "a/b" and "c".
std::pair<std::string, std::string> SplitRel(const std::string& rel) {
  size_t slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

size_t Depth(const std::string& rel) { return std::count(rel.begin(), rel.end(), '/'); }

// The folder `parent` beneath the root, as an fd to use with the *at calls.
struct Parent {
  Fd fd;
  int err = 0;  // errno when it could not be opened
};
Parent OpenParent(int rootfd, const std::string& parent) {
  Parent p;
  int fd = parent.empty() ? fcntl(rootfd, F_DUPFD_CLOEXEC, 0)
                          : OpenBeneath(rootfd, parent, O_PATH | O_DIRECTORY);
  if (fd < 0) p.err = errno;
  p.fd = Fd(fd);
  return p;
}

bool Blocked(int err) { return err == ELOOP || err == EXDEV; }

// What is at a path now, seen from beneath its root.
struct Seen {
  PathState state;
  bool reachable = true;  // false: a symlink stands in its way, or it is a special file
  std::string why;
};

Result<std::string> ReadAllFd(int fd, uint64_t max);

// The state of `rel` beneath `rootfd` (a file's digest when `digest`; its bytes into
// `bytes` when given and it is at most kMaxDiffLoadBytes).
Result<Seen> Look(int rootfd, const std::string& root, const std::string& rel, bool digest,
                  std::string* bytes = nullptr, bool* loaded = nullptr) {
  Seen seen;
  auto [parent, name] = SplitRel(rel);
  Parent p = OpenParent(rootfd, parent);
  if (!p.fd.ok()) {
    if (p.err == ENOENT || p.err == ENOTDIR) return seen;  // absent
    if (Blocked(p.err)) {
      seen.reachable = false;
      seen.why = "a symlink stands in place of a folder on its path";
      return seen;
    }
    return MakeError(ErrorCode::kIo,
                     "cannot open " + root + "/" + parent + ": " + ErrnoText(p.err));
  }
  struct stat st {};
  if (fstatat(p.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return seen;
    return MakeError(ErrorCode::kIo, "cannot stat " + root + "/" + rel + ": " + ErrnoText(errno));
  }
  PathState& s = seen.state;
  StatRead read = StateFromStat(p.fd.get(), name, st, &s);
  if (read == StatRead::kUnreadableLink) {
    return MakeError(ErrorCode::kIo,
                     "cannot read the link " + root + "/" + rel + ": " + ErrnoText(errno));
  }
  if (read == StatRead::kOther) {
    seen.reachable = false;
    seen.why = "now a special file (not a file, folder or link)";
  } else if (s.kind == Kind::kFile) {
    if (digest || bytes != nullptr) {
      Fd fd(openat(p.fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
      if (!fd.ok()) {
        return MakeError(ErrorCode::kIo,
                         "cannot open " + root + "/" + rel + ": " + ErrnoText(errno));
      }
      if (bytes != nullptr && s.size <= kMaxDiffLoadBytes) {
        auto all = ReadAllFd(fd.get(), kMaxDiffLoadBytes);
        if (!all) return all.error();
        *bytes = std::move(*all);
        if (loaded) *loaded = true;
        s.size = bytes->size();
        s.sha256 = Sha256Hex(*bytes);
      } else {
        auto d = Sha256Fd(fd.get());
        if (!d) return d.error();
        s.sha256 = ToHex(*d);
      }
    }
  }
  return seen;
}

Result<std::string> ReadAllFd(int fd, uint64_t max) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return MakeError(ErrorCode::kIo, "read failed: " + ErrnoText(errno));
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > max) {
      return MakeError(ErrorCode::kLimit, "more than " + std::to_string(max) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string Octal(uint32_t mode) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

std::string KindWord(Kind k) {
  switch (k) {
    case Kind::kAbsent: return "nothing";
    case Kind::kFile: return "a file";
    case Kind::kDir: return "a directory";
    case Kind::kLink: return "a symlink";
  }
  return "nothing";
}

// Whether a path now is as a call left it: kind, a file's digest, a link's target.
bool SameAsPost(const PathState& now, const PathState& post) {
  if (now.kind != post.kind) return false;
  if (now.kind == Kind::kFile) return post.sha256.empty() || now.sha256 == post.sha256;
  if (now.kind == Kind::kLink) return now.target == post.target;
  return true;
}

std::string WhyDiffers(const PathState& now, const PathState& post) {
  if (now.kind != post.kind) {
    return "is now " + KindWord(now.kind) + ", the session left " + KindWord(post.kind);
  }
  if (now.kind == Kind::kFile) return "its content changed since the session's last call to it";
  return "its target changed since the session's last call to it (now -> " + now.target + ")";
}

std::string Shown(const std::string& workspace, const std::string& root, const std::string& rel) {
  std::string full = root == "/" ? "/" + rel : root + "/" + rel;
  if (!workspace.empty()) {
    if (full.size() > workspace.size() && full.compare(0, workspace.size(), workspace) == 0 &&
        full[workspace.size()] == '/') {
      return full.substr(workspace.size() + 1);
    }
    if (workspace == "/" && full.size() > 1) return full.substr(1);
  }
  return full;
}

// A kept path across the calls of a range.
struct Track {
  std::string root, path;
  PathState first;                // the pre-image of the first call that kept it
  std::optional<PathState> post;  // the state the last call left (none: it never ended)
  uint64_t first_call = 0, last_call = 0;
  bool last_ended = true;
};

// The kept paths of `calls`, in the order first changed.
std::vector<Track> Tracks(const std::vector<const CallCheckpoint*>& calls) {
  std::vector<Track> out;
  std::map<std::pair<std::string, std::string>, size_t> at;
  for (const CallCheckpoint* c : calls) {
    for (const PathChange& ch : c->changes) {
      auto key = std::make_pair(ch.root, ch.path);
      auto it = at.find(key);
      if (it == at.end()) {
        Track t;
        t.root = ch.root;
        t.path = ch.path;
        t.first = ch.before;
        t.first_call = c->call;
        at[key] = out.size();
        out.push_back(std::move(t));
        it = at.find(key);
      }
      Track& t = out[it->second];
      t.last_call = c->call;
      t.last_ended = c->ended;
      t.post = c->ended ? ch.after : std::nullopt;
    }
  }
  return out;
}

// ---- pre-images ----

// Whether pre-image `s` is whole where the journal says (checkpoints.h: `at` and `size` in
// data.pack, or the file blobs/N of `size` bytes), checked before an undo touches anything.
Status CheckPreImage(const std::string& dir, const PathState& s) {
  std::string path = s.packed ? dir + "/data.pack" : dir + "/blobs/" + s.blob;
  struct stat st {};
  if (!s.packed && s.blob.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "the journal names no bytes for it");
  }
  if (lstat(path.c_str(), &st) != 0) {
    return MakeError(ErrorCode::kIo, "cannot stat " + path + ": " + ErrnoText(errno));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t end = s.packed ? s.at + s.size : s.size;
  bool whole = S_ISREG(st.st_mode) && (s.packed ? end >= s.at && size >= end : size == end);
  if (!whole) {
    return MakeError(ErrorCode::kIo, path + " does not hold the " + std::to_string(s.size) +
                                         " bytes the journal names (cut short or replaced)");
  }
  return OkStatus();
}

// ---- diff ----

struct Side {
  PathState state;
  std::string bytes;
  bool loaded = false;  // `bytes` holds the whole file (and state.sha256 is set)
  bool reachable = true;
  std::string why;
};

Status LoadPreImage(const std::string& dir, Side* side) {
  if (side->state.kind != Kind::kFile || side->state.size > kMaxDiffLoadBytes) return OkStatus();
  auto bytes = ReadPreImage(dir, side->state, kMaxDiffLoadBytes);
  if (!bytes) return bytes.error();
  side->bytes = std::move(*bytes);
  side->loaded = true;
  side->state.sha256 = Sha256Hex(side->bytes);
  return OkStatus();
}

bool SameSide(const Side& a, const Side& b) {
  if (a.state.kind != b.state.kind) return false;
  switch (a.state.kind) {
    case Kind::kAbsent: return true;
    case Kind::kDir: return a.state.mode == b.state.mode;
    case Kind::kLink: return a.state.target == b.state.target;
    case Kind::kFile:
      return a.loaded && b.loaded && a.state.mode == b.state.mode && a.state.size == b.state.size &&
             a.state.sha256 == b.state.sha256;
  }
  return false;
}

bool TextSide(const Side& s) {
  return s.state.kind != Kind::kFile || (s.loaded && !LooksBinary(s.bytes));
}

std::string Bytes(uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

void Describe(const Side& a, const Side& b, DiffEntry* e) {
  const std::string& p = e->shown;
  Kind ka = a.state.kind, kb = b.state.kind;
  bool loaded = (ka != Kind::kFile || a.loaded) && (kb != Kind::kFile || b.loaded);
  bool text = loaded && TextSide(a) && TextSide(b);
  bool small = a.bytes.size() <= kMaxDiffTextBytes && b.bytes.size() <= kMaxDiffTextBytes;
  e->binary = loaded && !text;
  auto diff = [&](const std::string& an, const std::string& bn) {
    if (text && small) e->diff = UnifiedDiff(a.bytes, b.bytes, an, bn);
  };
  if (ka == Kind::kFile && kb == Kind::kFile) {
    std::string mode = a.state.mode != b.state.mode
                           ? " (mode " + Octal(a.state.mode) + " -> " + Octal(b.state.mode) + ")"
                           : "";
    std::string sizes = " (" + Bytes(a.state.size) + " -> " + Bytes(b.state.size) + ")";
    if (!loaded) {
      e->summary = "large file " + p + sizes + mode + ", not compared";
    } else if (a.state.sha256 == b.state.sha256) {
      e->summary = "mode of " + p + " changed" + mode;
    } else if (!text) {
      e->summary = "Binary file " + p + " changed" + sizes + mode;
    } else if (!small) {
      e->summary = "changed file " + p + sizes + mode + ", too large to show line by line";
    } else {
      e->summary = "changed file " + p + mode;
      diff("a/" + p, "b/" + p);
    }
  } else if (ka == Kind::kAbsent && kb == Kind::kFile) {
    e->summary = "created file " + p + " (" + Bytes(b.state.size) + ")";
    diff("/dev/null", "b/" + p);
  } else if (ka == Kind::kFile && kb == Kind::kAbsent) {
    e->summary = "deleted file " + p + " (" + Bytes(a.state.size) + ")";
    diff("a/" + p, "/dev/null");
  } else if (ka == Kind::kAbsent && kb == Kind::kDir) {
    e->summary = "created directory " + p;
  } else if (ka == Kind::kDir && kb == Kind::kAbsent) {
    e->summary = "deleted directory " + p;
  } else if (ka == Kind::kDir && kb == Kind::kDir) {
    e->summary =
        "mode of directory " + p + ": " + Octal(a.state.mode) + " -> " + Octal(b.state.mode);
  } else if (ka == Kind::kAbsent && kb == Kind::kLink) {
    e->summary = "created symlink " + p + " -> " + b.state.target;
  } else if (ka == Kind::kLink && kb == Kind::kAbsent) {
    e->summary = "deleted symlink " + p + " (it pointed to " + a.state.target + ")";
  } else if (ka == Kind::kLink && kb == Kind::kLink) {
    e->summary = "symlink " + p + " changed: -> " + a.state.target + " became -> " + b.state.target;
  } else {
    e->summary = p + ": " + KindWord(ka) + " became " + KindWord(kb);
    if (kb == Kind::kFile) e->summary += " (" + Bytes(b.state.size) + ")";
    if (kb == Kind::kLink) e->summary += " (-> " + b.state.target + ")";
  }
}

json StateJson(const PathState& s) {
  json j = {{"kind", KindName(s.kind)}};
  if (s.kind == Kind::kFile) {
    j["size"] = s.size;
    j["mode"] = s.mode;
    if (!s.sha256.empty()) j["sha256"] = s.sha256;
  } else if (s.kind == Kind::kDir) {
    j["mode"] = s.mode;
  } else if (s.kind == Kind::kLink) {
    j["target"] = s.target;
  }
  return j;
}

json Strings(const std::vector<std::string>& v) {
  json a = json::array();
  for (const std::string& s : v) a.push_back(s);
  return a;
}

// ---- undo ----

enum class Action { kNone, kRemove, kMkdir, kChmodDir, kWriteFile, kWriteLink };

struct Plan {
  Track track;
  std::string shown;
  Seen now;
  bool checked = true;  // compared with the post state
  bool restore = true;  // false: left alone (forced past a path that cannot be reached)
};

// The relative paths of everything beneath the folder `rel` (not following symlinks), each
// with its kind; false when it holds more than kMaxTreeEntries or is deeper than
// kMaxTreeDepth.
bool ListTree(int dirfd, const std::string& prefix, int depth,
              std::vector<std::pair<std::string, Kind>>* out) {
  if (depth > kMaxTreeDepth) return false;
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* d = fdopendir(fd);  // owns fd from here on
  if (d == nullptr) {
    close(fd);
    return false;
  }
  std::vector<std::string> names;
  bool ok = true;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.push_back(n);
    if (out->size() + names.size() > kMaxTreeEntries) {
      ok = false;
      break;
    }
  }
  for (size_t i = 0; ok && i < names.size(); ++i) {
    const std::string& n = names[i];
    struct stat st {};
    if (fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string rel = prefix.empty() ? n : prefix + "/" + n;
    Kind k = S_ISDIR(st.st_mode) ? Kind::kDir : S_ISLNK(st.st_mode) ? Kind::kLink : Kind::kFile;
    out->push_back({rel, k});
    if (k == Kind::kDir) {
      Fd sub(openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.ok() || !ListTree(sub.get(), rel, depth + 1, out)) ok = false;
    }
  }
  closedir(d);
  return ok;
}

// Removes `name` in `dirfd` and, when it is a folder, everything beneath it, never through
// a symlink.
Status RemoveTreeAt(int dirfd, const std::string& name, const std::string& what, int depth = 0) {
  struct stat st {};
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return MakeError(ErrorCode::kIo, "cannot stat " + what + ": " + ErrnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return MakeError(ErrorCode::kIo, "cannot remove " + what + ": " + ErrnoText(errno));
    }
    return OkStatus();
  }
  if (depth > kMaxTreeDepth) {
    return MakeError(ErrorCode::kLimit, "cannot remove " + what + ": more than " +
                                            std::to_string(kMaxTreeDepth) + " folders deep");
  }
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return MakeError(ErrorCode::kIo, "cannot open " + what + ": " + ErrnoText(errno));
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return MakeError(ErrorCode::kIo, "cannot list " + what + ": " + ErrnoText(errno));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  Status st2 = OkStatus();
  for (const std::string& n : names) {
    st2 = RemoveTreeAt(fd, n, what + "/" + n, depth + 1);
    if (!st2) break;
  }
  closedir(d);
  if (!st2) return st2;
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return MakeError(ErrorCode::kIo, "cannot remove " + what + ": " + ErrnoText(errno));
  }
  return OkStatus();
}

std::string TempName(const std::string& name) {
  std::string base = name.size() > 100 ? name.substr(0, 100) : name;
  return "." + base + ".moat-undo-" + TempSuffix();
}

// A file or link restored into a temp name, waiting for its rename over the path.
struct Pending {
  std::string root, parent;  // the folder, opened again for the rename (no fd held per file)
  std::string temp, name, what;
};

// The folder `parent` beneath `rootfd`, kept open while consecutive paths share it (so a
// thousand files in one folder resolve it once, and no fd is held per file).
class ParentCache {
 public:
  const Parent& Get(const std::string& root, int rootfd, const std::string& parent) {
    if (!valid_ || root != root_ || parent != parent_) {
      last_ = OpenParent(rootfd, parent);
      root_ = root;
      parent_ = parent;
      valid_ = true;
    }
    return last_;
  }
  void Forget() { valid_ = false; }

 private:
  bool valid_ = false;
  std::string root_, parent_;
  Parent last_;
};

}  // namespace

// ---- Diff ----

Result<DiffReport> Diff(const std::string& dir, const DiffOptions& options) {
  if (auto st = CheckCheckpointFolder(dir); !st) return st.error();
  auto journal = ReadJournal(dir);
  if (!journal) return journal.error();
  DiffReport report;
  std::vector<const CallCheckpoint*> range;
  uint64_t last_in_range = 0;
  for (const CallCheckpoint& c : *journal) {
    if (c.undone) continue;
    if (options.step != 0 && c.step != options.step) continue;
    range.push_back(&c);
    report.calls.push_back(c.call);
    last_in_range = std::max(last_in_range, c.call);
    std::string who = "call " + std::to_string(c.call) + " (" + c.tool + ")";
    if (!c.ended) report.notes.push_back(who + " did not end (killed mid-call)");
    if (!c.undoable) report.notes.push_back(who + " is not undoable: " + c.reason);
    for (const std::string& s : c.skipped) report.notes.push_back(who + " did not keep " + s);
  }
  if (options.step != 0 && range.empty()) {
    report.notes.push_back("no calls in step " + std::to_string(options.step));
  }
  // Per path, the pre-image kept by the first call after the range that kept it.
  std::map<std::pair<std::string, std::string>, const PathState*> later_pre;
  for (const CallCheckpoint& c : *journal) {
    if (c.undone || c.call <= last_in_range) continue;
    for (const PathChange& ch : c.changes) later_pre.insert({{ch.root, ch.path}, &ch.before});
  }
  std::map<std::string, Fd> roots;
  std::set<std::string> outside;
  for (const Track& t : Tracks(range)) {
    if (!options.roots.empty() && !WithinRoots(t.root, options.roots)) {
      if (outside.insert(t.root).second) {
        report.notes.push_back(t.root +
                               ": neither the workspace nor a folder its trusted policy "
                               "mounts; what the journal says of it is not shown");
      }
      continue;
    }
    DiffEntry e;
    e.root = t.root;
    e.path = t.path;
    e.shown = Shown(options.workspace, t.root, t.path);
    Side a;
    a.state = t.first;
    if (auto st = LoadPreImage(dir, &a); !st) return st.error();
    // After: the pre-image the next call kept, else the disk.
    Side b;
    auto next = later_pre.find({t.root, t.path});
    const PathState* later = next == later_pre.end() ? nullptr : next->second;
    if (later != nullptr) {
      b.state = *later;
      if (auto st = LoadPreImage(dir, &b); !st) return st.error();
    } else {
      e.after_is_disk = true;
      auto& root = roots[t.root];
      if (!root.ok()) root = Fd(OpenRoot(t.root));
      if (!root.ok()) {
        e.unreadable = true;
        b.reachable = false;
        b.why = "its root " + t.root + " cannot be opened: " + ErrnoText(errno);
      } else {
        auto seen = Look(root.get(), t.root, t.path, true, &b.bytes, &b.loaded);
        if (!seen) return seen.error();
        b.state = seen->state;
        b.reachable = seen->reachable;
        b.why = seen->why;
      }
      if (b.reachable && t.post && !SameAsPost(b.state, *t.post)) e.changed_since = true;
    }
    e.before = a.state;
    e.after = b.state;
    if (!b.reachable) {
      e.unreadable = true;
      e.summary = e.shown + ": cannot be read now (" + b.why + ")";
      report.entries.push_back(std::move(e));
      continue;
    }
    if (SameSide(a, b)) continue;
    Describe(a, b, &e);
    if (e.changed_since) e.summary += " (changed since the session's last call to it)";
    report.entries.push_back(std::move(e));
  }
  return report;
}

std::string DiffText(const DiffReport& report) {
  std::string out;
  for (const std::string& n : report.notes) out += "note: " + n + "\n";
  for (const DiffEntry& e : report.entries) {
    out += e.summary + "\n";
    out += e.diff;
    if (!e.diff.empty() && e.diff.back() != '\n') out += "\n";
  }
  return out;
}

json DiffToJson(const DiffReport& report) {
  json entries = json::array();
  for (const DiffEntry& e : report.entries) {
    json j = {{"path", e.shown},
              {"root", e.root},
              {"rel", e.path},
              {"before", StateJson(e.before)},
              {"after", StateJson(e.after)},
              {"after_is_disk", e.after_is_disk},
              {"changed_since", e.changed_since},
              {"binary", e.binary},
              {"summary", e.summary}};
    if (e.unreadable) j["unreadable"] = true;
    if (!e.diff.empty()) j["diff"] = e.diff;
    entries.push_back(std::move(j));
  }
  json calls = json::array();
  for (uint64_t c : report.calls) calls.push_back(c);
  return {{"calls", calls}, {"entries", entries}, {"notes", Strings(report.notes)}};
}

// ---- Undo ----

Result<UndoReport> Undo(const std::string& dir, const UndoOptions& options) {
  if (auto st = CheckCheckpointFolder(dir); !st) return st.error();
  // The journal says which files to write and remove: one another user could change is
  // not obeyed.
  for (const std::string& p : {dir, dir + "/journal.jsonl"}) {
    if (struct stat st{}; lstat(p.c_str(), &st) == 0) {
      if (auto ok = CheckNotWritableByOthers(st, p); !ok) return ok.error();
    }
  }
  // Never under a session's running calls: the session's recorder holds this lock while it
  // is open (CheckpointStore::Open), and the undo holds it until it is done.
  Fd lock(open((dir + "/journal.jsonl").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (lock.ok() && flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the session is open in another moat process (its checkpoints are "
                     "locked): undo it once that run has ended");
  }
  auto journal = ReadJournal(dir);
  if (!journal) return journal.error();
  UndoReport report;
  report.dry_run = options.dry_run;
  std::vector<const CallCheckpoint*> range;
  for (const CallCheckpoint& c : *journal) {
    if (c.undone || c.step < options.to_step) continue;
    range.push_back(&c);
    report.calls.push_back(c.call);
    std::string who = "call " + std::to_string(c.call) + " (" + c.tool + ")";
    if (!c.undoable) report.not_undoable.push_back(who + ": " + c.reason);
  }
  if (range.empty()) return report;
  if (!options.roots.empty()) {
    std::set<std::string> outside;
    for (const CallCheckpoint* c : range) {
      for (const PathChange& ch : c->changes) {
        if (!WithinRoots(ch.root, options.roots)) outside.insert(ch.root);
      }
    }
    if (!outside.empty()) {
      for (const std::string& r : outside) {
        report.conflicts.push_back(r +
                                   ": neither the workspace nor a folder its trusted policy "
                                   "mounts; the undo changes nothing there (not even forced)");
      }
      report.refused = true;
      return report;
    }
  }

  std::map<std::string, Fd> roots;
  std::vector<Plan> plans;
  std::set<std::pair<std::string, std::string>> kept;
  for (Track& t : Tracks(range)) {
    kept.insert({t.root, t.path});
    Plan p;
    p.shown = Shown(options.workspace, t.root, t.path);
    auto& root = roots[t.root];
    if (!root.ok()) {
      root = Fd(OpenRoot(t.root));
      if (!root.ok()) {
        return MakeError(
            ErrorCode::kIo,
            "the folder " + t.root + " the session changed cannot be opened: " + ErrnoText(errno));
      }
    }
    // The kept bytes must be there, whole, before anything is touched.
    if (t.first.kind == Kind::kFile) {
      if (auto st = CheckPreImage(dir, t.first); !st) {
        return MakeError(st.error().code, p.shown + ": " + st.error().message);
      }
    }
    auto seen = Look(root.get(), t.root, t.path, true);
    if (!seen) return seen.error();
    p.now = std::move(*seen);
    p.checked = t.last_ended && t.post.has_value();
    if (!p.now.reachable) {
      p.restore = false;  // a conflict, unless the symlink in its way is the session's own
    } else if (!p.checked) {
      std::string call = "call " + std::to_string(t.last_call);
      report.notes.push_back(p.shown + ": restored without a check (" +
                             (t.last_ended ? "no state was recorded after " + call
                                           : call + " never ended: killed mid-call") +
                             ")");
    } else if (!SameAsPost(p.now.state, *t.post)) {
      report.conflicts.push_back(p.shown + ": " + WhyDiffers(p.now.state, *t.post));
    }
    p.track = std::move(t);
    plans.push_back(std::move(p));
  }

  // A path a symlink stands in the way of: when that symlink is a kept path of the range
  // that was a folder before (the calls moved a folder away and put a link in its place),
  // the undo puts the folder back first, and the path beneath it is simply absent until
  // restored. Any other symlink in the way is a conflict.
  {
    std::map<std::pair<std::string, std::string>, const Plan*> by_path;
    for (const Plan& q : plans) by_path[{q.track.root, q.track.path}] = &q;
    for (Plan& p : plans) {
      if (p.now.reachable) continue;
      const Plan* own = nullptr;
      for (size_t at = p.track.path.find('/'); at != std::string::npos && own == nullptr;
           at = p.track.path.find('/', at + 1)) {
        auto it = by_path.find({p.track.root, p.track.path.substr(0, at)});
        if (it != by_path.end() && it->second->now.reachable &&
            it->second->now.state.kind == Kind::kLink &&
            it->second->track.first.kind == Kind::kDir) {
          own = it->second;
        }
      }
      if (own == nullptr) {
        report.conflicts.push_back(p.shown + ": " + p.now.why);
        continue;
      }
      p.now = Seen{};
      p.restore = true;
      p.checked = false;
      report.notes.push_back(p.shown + ": restored beneath " + own->shown +
                             ", a symlink the session put in place of that folder");
    }
  }

  // A folder to be removed or replaced must hold nothing but what the undo handles: kept
  // paths of the range, or copies (by path and kind) of what a kept folder held, which is
  // what a moved folder leaves behind.
  std::map<std::pair<std::string, std::string>, Kind> first_kind;
  for (const Plan& p : plans) first_kind[{p.track.root, p.track.path}] = p.track.first.kind;
  for (Plan& p : plans) {
    if (!p.restore || p.now.state.kind != Kind::kDir || p.track.first.kind == Kind::kDir) continue;
    int rootfd = roots[p.track.root].get();
    Fd d(OpenBeneath(rootfd, p.track.path, O_RDONLY | O_DIRECTORY));
    std::vector<std::pair<std::string, Kind>> inside;
    bool listed = d.ok() && ListTree(d.get(), "", 0, &inside);
    auto explained = [&](const std::string& base) {
      for (const auto& [rel, kind] : inside) {
        if (kept.count({p.track.root, base + "/" + rel}) == 0) return false;
      }
      return true;
    };
    bool ok = listed && explained(p.track.path);
    if (listed && !ok) {
      for (const Plan& q : plans) {
        if (q.track.root != p.track.root || q.track.first.kind != Kind::kDir) continue;
        bool all = true;
        for (const auto& [rel, kind] : inside) {
          auto it = first_kind.find({q.track.root, q.track.path + "/" + rel});
          if (it == first_kind.end() || it->second != kind) {
            all = false;
            break;
          }
        }
        if (all) {
          ok = true;
          break;
        }
      }
    }
    if (!ok) {
      report.conflicts.push_back(
          p.shown + ": a directory holding " +
          (listed ? "files the session did not make" : "more than can be checked") +
          " (the undo would remove it)");
    }
  }

  if ((!report.conflicts.empty() || !report.not_undoable.empty()) && !options.force) {
    report.refused = true;
    return report;
  }

  // What each path gets: removed, created, restored, or nothing (already as it was).
  auto classify = [&](const Plan& p) -> std::vector<std::string>* {
    const PathState& want = p.track.first;
    const PathState& now = p.now.state;
    if (want.kind == Kind::kAbsent) return now.kind == Kind::kAbsent ? nullptr : &report.deleted;
    if (now.kind == Kind::kAbsent) return &report.created;
    if (want.kind == Kind::kDir && now.kind == Kind::kDir && want.mode == now.mode) return nullptr;
    if (want.kind == Kind::kLink && now.kind == Kind::kLink && want.target == now.target) {
      return nullptr;
    }
    return &report.restored;
  };
  for (const Plan& p : plans) {
    if (!p.restore) continue;
    if (auto* list = classify(p)) list->push_back(p.shown);
  }
  if (options.dry_run) return report;

  // 1. Deepest first: remove what must go (absent before, or of another kind).
  std::vector<Plan*> order;
  for (Plan& p : plans) order.push_back(&p);
  std::stable_sort(order.begin(), order.end(), [](const Plan* a, const Plan* b) {
    return Depth(a->track.path) > Depth(b->track.path);
  });
  for (Plan* p : order) {
    if (!p->restore) continue;
    const PathState& want = p->track.first;
    Kind now = p->now.state.kind;
    bool go = now != Kind::kAbsent &&
              (want.kind == Kind::kAbsent || (now == Kind::kDir) != (want.kind == Kind::kDir));
    if (!go) continue;
    auto [parent, name] = SplitRel(p->track.path);
    Parent pd = OpenParent(roots[p->track.root].get(), parent);
    if (!pd.fd.ok()) {
      if (pd.err == ENOENT || pd.err == ENOTDIR) continue;  // gone with its folder
      report.notes.push_back(p->shown + ": not removed (" + ErrnoText(pd.err) + ")");
      continue;
    }
    struct stat st {};
    if (fstatat(pd.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (unlinkat(pd.fd.get(), name.c_str(), AT_REMOVEDIR) != 0) {
        if (errno != ENOTEMPTY && errno != EEXIST) {
          return MakeError(ErrorCode::kIo, "cannot remove " + p->shown + ": " + ErrnoText(errno));
        }
        if (auto s = RemoveTreeAt(pd.fd.get(), name, p->shown); !s) return s.error();
      }
    } else if (unlinkat(pd.fd.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      return MakeError(ErrorCode::kIo, "cannot remove " + p->shown + ": " + ErrnoText(errno));
    }
  }

  // 2. Shallowest first: folders made (and their modes set), files and links written to
  // temp names beside their paths.
  std::reverse(order.begin(), order.end());
  std::stable_sort(order.begin(), order.end(), [](const Plan* a, const Plan* b) {
    return Depth(a->track.path) < Depth(b->track.path);
  });
  std::vector<Pending> pending;
  std::set<std::string> sync_roots;
  ParentCache parents;
  // Removes the temp files made so far (best effort: each folder resolved beneath again).
  auto drop_temps = [&](size_t from) {
    ParentCache again;
    for (size_t i = from; i < pending.size(); ++i) {
      const Parent& pd =
          again.Get(pending[i].root, roots[pending[i].root].get(), pending[i].parent);
      if (pd.fd.ok()) unlinkat(pd.fd.get(), pending[i].temp.c_str(), 0);
    }
  };
  auto fail = [&](const std::string& what, int err) -> Error {
    drop_temps(0);
    return MakeError(ErrorCode::kIo, "cannot restore " + what + ": " + ErrnoText(err) +
                                         " (the undo stopped part way; files restored so far "
                                         "stay restored)");
  };
  for (Plan* p : order) {
    if (!p->restore) continue;
    const PathState& want = p->track.first;
    if (want.kind == Kind::kAbsent) continue;
    auto [parent, name] = SplitRel(p->track.path);
    // Folders made above may be the parents of what follows: resolve each path afresh
    // unless it shares the folder of the one before.
    if (want.kind == Kind::kDir) parents.Forget();
    const Parent& pd = parents.Get(p->track.root, roots[p->track.root].get(), parent);
    if (!pd.fd.ok()) {
      std::string why =
          Blocked(pd.err) ? "a symlink stands in place of a folder on its path" : ErrnoText(pd.err);
      report.notes.push_back(p->shown + ": not restored (" + why + ")");
      for (auto* list : {&report.created, &report.restored}) {
        list->erase(std::remove(list->begin(), list->end(), p->shown), list->end());
      }
      continue;
    }
    if (want.kind == Kind::kDir) {
      struct stat st {};
      bool exists = fstatat(pd.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (exists && !S_ISDIR(st.st_mode)) return fail(p->shown, EEXIST);
      if (!exists && mkdirat(pd.fd.get(), name.c_str(), 0700) != 0) return fail(p->shown, errno);
      if (!exists || (st.st_mode & 07777) != want.mode) {
        Fd d(openat(pd.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!d.ok() || fchmod(d.get(), want.mode & 07777) != 0) return fail(p->shown, errno);
      }
      continue;
    }
    std::string temp = TempName(name);
    if (want.kind == Kind::kLink) {
      if (symlinkat(want.target.c_str(), pd.fd.get(), temp.c_str()) != 0) {
        return fail(p->shown, errno);
      }
    } else {
      Fd to(openat(pd.fd.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0600));
      if (!to.ok()) return fail(p->shown, errno);
      pending.push_back({p->track.root, parent, temp, name, p->shown});
      if (auto s = CopyPreImage(dir, want, to.get()); !s) {
        drop_temps(0);
        return MakeError(s.error().code, "cannot restore " + p->shown + ": " + s.error().message);
      }
      if (fchmod(to.get(), want.mode & 0777) != 0) return fail(p->shown, errno);
      sync_roots.insert(p->track.root);
      continue;
    }
    pending.push_back({p->track.root, parent, temp, name, p->shown});
  }
  // 3. The restored bytes reach the disk (one syncfs per filesystem covers every temp file
  // at once), then each is renamed over its path.
  for (const std::string& r : sync_roots) {
    // syncfs needs an fd open for reading, not the O_PATH one.
    Fd fs_fd(openat(roots[r].get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fs_fd.ok() || syncfs(fs_fd.get()) != 0) return fail(r, errno);
  }
  parents.Forget();
  for (size_t i = 0; i < pending.size(); ++i) {
    const Pending& q = pending[i];
    const Parent& pd = parents.Get(q.root, roots[q.root].get(), q.parent);
    if (!pd.fd.ok() || renameat(pd.fd.get(), q.temp.c_str(), pd.fd.get(), q.name.c_str()) != 0) {
      int err = pd.fd.ok() ? errno : pd.err;
      drop_temps(i);
      return MakeError(ErrorCode::kIo, "cannot restore " + q.what + ": " + ErrnoText(err) +
                                           " (the undo stopped part way)");
    }
  }

  // 4. The journal: each call undone, so a second undo finds nothing to do.
  std::string path = dir + "/journal.jsonl";
  Fd jfd(open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
  if (!jfd.ok()) return MakeError(ErrorCode::kIo, "cannot open " + path + ": " + ErrnoText(errno));
  std::string ts = UtcNowIso();
  for (const CallCheckpoint* c : range) {
    // Each on a line of its own even after a torn last line (a blank line is skipped).
    std::string line = "\n" + DumpJson({{"t", "undone"}, {"call", c->call}, {"ts", ts}}) + "\n";
    if (write(jfd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return MakeError(ErrorCode::kIo, "cannot write " + path + ": " + ErrnoText(errno));
    }
  }
  return report;
}

json UndoToJson(const UndoReport& r) {
  json calls = json::array();
  for (uint64_t c : r.calls) calls.push_back(c);
  return {{"refused", r.refused},
          {"dry_run", r.dry_run},
          {"calls", calls},
          {"restored", Strings(r.restored)},
          {"created", Strings(r.created)},
          {"deleted", Strings(r.deleted)},
          {"conflicts", Strings(r.conflicts)},
          {"not_undoable", Strings(r.not_undoable)},
          {"notes", Strings(r.notes)}};
}

// ---- Prune ----

namespace {

// `dir` as .../.moat/checkpoints/NAME: the parent and the name.
bool CheckpointPath(const std::string& dir, std::string* parent, std::string* name) {
  size_t slash = dir.rfind('/');
  if (slash == std::string::npos || slash + 1 >= dir.size()) return false;
  *parent = dir.substr(0, slash);
  *name = dir.substr(slash + 1);
  if (*name == "." || *name == "..") return false;
  const std::string tail = "/.moat/checkpoints";
  return parent->size() >= tail.size() &&
         parent->compare(parent->size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

Result<std::vector<std::string>> Prune(const std::string& state_dir, uint64_t older_than_seconds) {
  std::vector<std::string> removed;
  if (state_dir.size() < 6 || state_dir.compare(state_dir.size() - 6, 6, "/.moat") != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     state_dir + " is not a workspace's .moat folder; nothing pruned");
  }
  std::string base = state_dir + "/checkpoints";
  for (const std::string& p : {state_dir, base}) {
    if (auto st = CheckCheckpointFolder(p); !st) return st.error();
  }
  Fd fd(open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.ok()) {
    if (errno == ENOENT) return removed;
    return MakeError(ErrorCode::kIo, "cannot open " + base + ": " + ErrnoText(errno));
  }
  std::vector<std::string> names;
  {
    int lfd = openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = lfd >= 0 ? fdopendir(lfd) : nullptr;  // owns lfd
    if (d == nullptr) {
      int err = errno;
      if (lfd >= 0) close(lfd);
      return MakeError(ErrorCode::kIo, "cannot list " + base + ": " + ErrnoText(err));
    }
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  time_t now = time(nullptr);
  for (const std::string& n : names) {
    struct stat st {};
    if (fstatat(fd.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      continue;
    }
    time_t last = st.st_mtime;
    Fd sub(openat(fd.get(), n.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.ok()) continue;
    struct stat js {};
    if (fstatat(sub.get(), "journal.jsonl", &js, AT_SYMLINK_NOFOLLOW) == 0) last = js.st_mtime;
    if (now < last || static_cast<uint64_t>(now - last) <= older_than_seconds) continue;
    // A session open in a process (its checkpoints locked) is left alone.
    Fd journal(openat(sub.get(), "journal.jsonl", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (journal.ok() && flock(journal.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (auto s = RemoveTreeAt(fd.get(), n, base + "/" + n); !s) return s.error();
    removed.push_back(n);
  }
  return removed;
}

Status DeleteCheckpoints(const std::string& dir) {
  std::string parent, name;
  if (!CheckpointPath(dir, &parent, &name)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     dir + " is not a checkpoint folder (.moat/checkpoints/NAME)");
  }
  Fd fd(open(parent.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.ok()) {
    if (errno == ENOENT) return OkStatus();
    return MakeError(ErrorCode::kIo, "cannot open " + parent + ": " + ErrnoText(errno));
  }
  struct stat st {};
  if (fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return MakeError(ErrorCode::kIo, "cannot stat " + dir + ": " + ErrnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument, dir + " is not a folder; left alone");
  }
  if (auto s = CheckCheckpointFolder(dir); !s) return s.error();
  Fd journal(
      open((dir + "/journal.jsonl").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (journal.ok() && flock(journal.get(), LOCK_EX | LOCK_NB) != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the session is open in another moat process: its checkpoints are kept");
  }
  return RemoveTreeAt(fd.get(), name, dir);
}

}  // namespace moat::undo
