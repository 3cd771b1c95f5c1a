#include "orchestration/undo/checkpoints.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/sha256.h"
#include "base/units.h"
#include "base/utf8.h"

namespace moat::undo {

using nlohmann::json;

namespace {

// Directories deeper than this beneath a moved one are not kept (the call is not undoable).
constexpr int kMaxTreeDepth = 256;
// Files smaller than this are copied into the pack even where reflinks work: creating a
// file and cloning into it costs more than copying a few pages (measured on XFS: about
// 150 us against 40 us for a 10 KB file).
constexpr uint64_t kMinReflinkBytes = 256 * 1024;
// Paths not kept that one call names in the journal (the rest are counted in its end line).
constexpr uint64_t kMaxSkipLines = 64;
// The longest journal line read back (a pre line holds two paths of at most 4 KiB).
constexpr size_t kMaxJournalLine = 1 << 20;

std::string JoinRel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

int OpenBeneath(int dirfd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (fd < 0 && (errno == EAGAIN || errno == EINTR) && attempt < 64) continue;
    return static_cast<int>(fd);
  }
}

// Copies `size` bytes of `from` at `in` to `to` at `out` (copy_file_range, else
// pread/pwrite); false when fewer could be copied.
bool CopyRange(int from, uint64_t in, int to, uint64_t out, uint64_t size) {
  off_t i = static_cast<off_t>(in), o = static_cast<off_t>(out);
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = copy_file_range(from, &i, to, &o, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<uint64_t>(n);
  }
  // The rest (a filesystem without copy_file_range) through a buffer on the heap: this runs
  // on a guest's stack, in a host call.
  std::vector<char> buf;
  while (done < size) {
    if (buf.empty()) buf.resize(65536);
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    ssize_t n = pread(from, buf.data(), want, i);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    for (ssize_t w = 0; w < n;) {
      ssize_t k = pwrite(to, buf.data() + w, static_cast<size_t>(n - w), o);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return false;
      w += k;
      o += k;
    }
    i += n;
    done += static_cast<uint64_t>(n);
  }
  return done == size;
}

// One journal line, built as text: a line is written for every path a call changes, and
// building nlohmann objects for them cost more than the copy of a small file.
class Line {
 public:
  Line& Str(std::string_view key, std::string_view value) {
    Key(key);
    if (!IsUtf8(value)) {  // never expected (paths are checked): written, not lost
      text_ += DumpJson(json(std::string(value)));
      return *this;
    }
    text_ += '"';
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        text_ += '\\';
        text_ += c;
      } else if (u < 0x20) {
        char esc[8];
        snprintf(esc, sizeof esc, "\\u%04x", u);
        text_ += esc;
      } else {
        text_ += c;
      }
    }
    text_ += '"';
    return *this;
  }
  Line& Num(std::string_view key, uint64_t value) {
    Key(key);
    text_ += std::to_string(value);
    return *this;
  }
  Line& Bool(std::string_view key, bool value) {
    Key(key);
    text_ += value ? "true" : "false";
    return *this;
  }
  Line& State(const PathState& s) {
    Str("kind", KindName(s.kind));
    switch (s.kind) {
      case PathState::Kind::kFile:
        Num("mode", s.mode).Num("size", s.size);
        if (!s.sha256.empty()) Str("sha256", s.sha256);
        if (!s.blob.empty()) Str("blob", s.blob);
        if (s.packed) Num("at", s.at);
        break;
      case PathState::Kind::kDir: Num("mode", s.mode); break;
      case PathState::Kind::kLink: Str("target", s.target); break;
      case PathState::Kind::kAbsent: break;
    }
    return *this;
  }
  std::string Done() { return text_ + "}"; }

 private:
  void Key(std::string_view key) {
    text_ += text_.size() == 1 ? "\"" : ",\"";
    text_ += key;
    text_ += "\":";
  }
  std::string text_ = "{";
};

bool ParseKind(std::string_view name, PathState::Kind* k) {
  for (auto c : {PathState::Kind::kAbsent, PathState::Kind::kFile, PathState::Kind::kDir,
                 PathState::Kind::kLink}) {
    if (KindName(c) == name) {
      *k = c;
      return true;
    }
  }
  return false;
}

// A member that must be a string / a non-negative integer.
bool Str(const json& j, const char* key, std::string* out, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) return !required;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}
bool Num(const json& j, const char* key, uint64_t* out, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) return !required;
  if (!it->is_number_unsigned()) return false;
  *out = it->get<uint64_t>();
  return true;
}

bool ParseState(const json& j, PathState* s) {
  std::string kind;
  if (!Str(j, "kind", &kind) || !ParseKind(kind, &s->kind)) return false;
  uint64_t mode = 0;
  if (!Num(j, "mode", &mode, false) || mode > 07777) return false;
  s->mode = static_cast<uint32_t>(mode);
  if (!Num(j, "size", &s->size, false)) return false;
  if (!Str(j, "sha256", &s->sha256, false) || !Str(j, "target", &s->target, false) ||
      !Str(j, "blob", &s->blob, false) || !Num(j, "at", &s->at, false)) {
    return false;
  }
  s->packed = j.contains("at");
  if (s->packed && (!s->blob.empty() || s->at > (1ull << 62) || s->size > (1ull << 62))) {
    return false;
  }
  // A blob name is a number: it is joined to the blobs folder's path.
  if (!s->blob.empty() &&
      (s->blob.size() > 18 ||
       !std::all_of(s->blob.begin(), s->blob.end(), [](char c) { return c >= '0' && c <= '9'; }))) {
    return false;
  }
  return true;
}

// A journal path: relative, no empty, "." or ".." component, valid UTF-8.
bool GoodRel(const std::string& p) {
  if (p.empty() || p.size() > 4096 || p.front() == '/' || !IsUtf8(p)) return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view c(p.data() + start, end - start);
    if (c.empty() || c == "." || c == ".." || c.find('\0') != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

std::string_view KindName(PathState::Kind k) {
  switch (k) {
    case PathState::Kind::kAbsent: return "absent";
    case PathState::Kind::kFile: return "file";
    case PathState::Kind::kDir: return "dir";
    case PathState::Kind::kLink: return "link";
  }
  return "absent";
}

StatRead StateFromStat(int dir_fd, const std::string& name, const struct stat& st, PathState* s) {
  if (S_ISREG(st.st_mode)) {
    s->kind = PathState::Kind::kFile;
    s->mode = st.st_mode & 07777;
    s->size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISDIR(st.st_mode)) {
    s->kind = PathState::Kind::kDir;
    s->mode = st.st_mode & 07777;
  } else if (S_ISLNK(st.st_mode)) {
    s->kind = PathState::Kind::kLink;
    char buf[4097];
    ssize_t n = readlinkat(dir_fd, name.c_str(), buf, sizeof buf - 1);
    if (n < 0) return StatRead::kUnreadableLink;
    s->target.assign(buf, static_cast<size_t>(n));
  } else {
    return StatRead::kOther;
  }
  return StatRead::kOk;
}

Result<PathState> CurrentState(const std::string& root, const std::string& rel) {
  int rootfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + root).c_str()));
  auto r = CurrentStateAt(rootfd, rel);
  close(rootfd);
  return r;
}

Result<PathState> CurrentStateAt(int rootfd, const std::string& rel) {
  size_t slash = rel.rfind('/');
  std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  int pfd = rootfd;
  if (!parent.empty()) {
    pfd = OpenBeneath(rootfd, parent, O_PATH | O_DIRECTORY);
    if (pfd < 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) return PathState{};
      errno = err;
      return MakeError(ErrorCode::kIo, Errno(("cannot open " + parent).c_str()));
    }
  }
  PathState s;
  struct stat st {};
  if (fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    if (pfd != rootfd) close(pfd);
    if (err == ENOENT) return s;
    errno = err;
    return MakeError(ErrorCode::kIo, Errno(("cannot stat " + rel).c_str()));
  }
  std::optional<Error> problem;
  StatRead read = StateFromStat(pfd, name, st, &s);
  if (read == StatRead::kUnreadableLink) {
    problem = MakeError(ErrorCode::kIo, Errno(("cannot read link " + rel).c_str()));
  } else if (read == StatRead::kOther) {
    problem = MakeError(ErrorCode::kIo, rel + " is not a file, directory or link");
  } else if (s.kind == PathState::Kind::kFile) {
    int fd = openat(pfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      problem = MakeError(ErrorCode::kIo, Errno(("cannot open " + rel).c_str()));
    } else {
      // A small file is read in one call of its known size. (Had it grown since the stat,
      // the digest is of its first bytes: an undo then sees it changed, and asks for
      // --force, which is the safe side.)
      Result<Digest> d = Digest{};
      if (st.st_size <= (1 << 20)) {
        std::string bytes(static_cast<size_t>(st.st_size), '\0');
        size_t got = 0;
        while (got < bytes.size()) {
          ssize_t n = pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          got += static_cast<size_t>(n);
        }
        d = Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), got));
        st.st_size = static_cast<off_t>(got);
      } else {
        d = Sha256Fd(fd);
      }
      close(fd);
      if (!d.ok()) {
        problem = d.error();
      } else {
        s.sha256 = ToHex(*d);
        s.size = static_cast<uint64_t>(st.st_size);
      }
    }
  }
  if (pfd != rootfd) close(pfd);
  if (problem) return *problem;
  return s;
}

// ---- the store ----

Status CheckCheckpointFolder(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return OkStatus();
    return MakeError(ErrorCode::kIo, Errno(("cannot stat " + path).c_str()));
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     path +
                         " is not a folder of this user's (a symlink, say): checkpoints are "
                         "neither kept nor read there");
  }
  char* real = realpath(path.c_str(), nullptr);
  bool same = real != nullptr && path == real;
  free(real);
  if (!same) {
    return MakeError(ErrorCode::kInvalidArgument,
                     path +
                         " is reached through a symlink: checkpoints are neither kept nor "
                         "read there");
  }
  return OkStatus();
}

bool WithinRoots(const std::string& root, const std::vector<std::string>& roots) {
  for (const std::string& r : roots) {
    if (root == r) return true;
    if (root.size() > r.size() && root.compare(0, r.size(), r) == 0 &&
        (r.back() == '/' || root[r.size()] == '/')) {
      return true;
    }
  }
  return false;
}

Result<std::shared_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& dir,
                                                               CheckpointLimits limits) {
  // The parent (.moat/checkpoints) and the folder itself, owner only. Neither they nor
  // `.moat` may be symlinks a workspace brought along (they could put the pre-images where
  // tools read, or the journal where they write): each is checked before anything is made
  // in it.
  size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string parent = dir.substr(0, slash);
    size_t up = parent.rfind('/');
    if (up != std::string::npos && up > 0) {
      if (auto st = CheckCheckpointFolder(parent.substr(0, up)); !st) return st.error();
    }
    if (auto st = CheckCheckpointFolder(parent); !st) return st.error();
    if (mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
      return MakeError(ErrorCode::kIo, Errno(("cannot create " + parent).c_str()));
    }
    if (auto st = CheckCheckpointFolder(parent); !st) return st.error();
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, Errno(("cannot create " + dir).c_str()));
  }
  if (auto st = CheckCheckpointFolder(dir); !st) return st.error();
  std::string blobs = dir + "/blobs";
  if (mkdir(blobs.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, Errno(("cannot create " + blobs).c_str()));
  }
  std::shared_ptr<CheckpointStore> s(new CheckpointStore());
  s->dir_ = dir;
  s->limits_ = limits;
  s->blobs_fd_ = open(blobs.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s->blobs_fd_ < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + blobs).c_str()));
  std::string pack = dir + "/data.pack";
  s->pack_fd_ = open(pack.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (s->pack_fd_ < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + pack).c_str()));
  if (struct stat ps{}; fstat(s->pack_fd_, &ps) == 0) {
    s->pack_size_ = static_cast<uint64_t>(ps.st_size);
  }
  // Whether this filesystem shares extents: then a pre-image is a reflink (its own file).
  // The probe's source holds a byte: a clone of an empty file succeeds anywhere.
  {
    std::string a = ".probe-a-" + std::to_string(getpid()),
                b = ".probe-b-" + std::to_string(getpid());
    int from = openat(s->blobs_fd_, a.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int to = openat(s->blobs_fd_, b.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (from >= 0 && to >= 0 && write(from, "x", 1) == 1) {
      s->reflinks_ = ioctl(to, FICLONE, from) == 0;
    }
    if (from >= 0) close(from);
    if (to >= 0) close(to);
    unlinkat(s->blobs_fd_, a.c_str(), 0);
    unlinkat(s->blobs_fd_, b.c_str(), 0);
  }
  std::string jpath = dir + "/journal.jsonl";
  s->journal_fd_ =
      open(jpath.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (s->journal_fd_ < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + jpath).c_str()));
  // One process records a session at a time (call numbers continue from the journal), and
  // an undo takes the same lock: it never runs under a session's running calls.
  if (flock(s->journal_fd_, LOCK_EX | LOCK_NB) != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     errno == EWOULDBLOCK
                         ? "the session's checkpoints are in use by another moat process (" + dir +
                               "): is the session running elsewhere?"
                         : Errno(("cannot lock " + jpath).c_str()));
  }
  // Read under the lock: nobody appends meanwhile.
  auto journal = ReadJournal(dir);
  if (!journal.ok()) return journal.error();
  for (const CallCheckpoint& c : *journal) {
    s->next_call_ = std::max(s->next_call_, c.call + 1);
    for (const PathChange& ch : c.changes) {
      ++s->files_;
      if (ch.before.kind == PathState::Kind::kFile) s->bytes_ += ch.before.size;
      if (!ch.before.blob.empty()) {
        s->next_blob_ = std::max<uint64_t>(s->next_blob_, std::stoull(ch.before.blob) + 1);
      }
    }
  }
  s->next_blob_ = std::max<uint64_t>(s->next_blob_, s->files_ + 1);  // "n" goes on
  // A blob written by a process killed before its line: never reuse its number.
  if (DIR* d = opendir(blobs.c_str())) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      unsigned long long n = strtoull(e->d_name, &end, 10);
      if (end && *end == '\0' && end != e->d_name)
        s->next_blob_ = std::max<uint64_t>(s->next_blob_, n + 1);
    }
    closedir(d);
  }
  // A torn last line (a kill mid-write) must not swallow the next one: end it.
  if (struct stat st{}; fstat(s->journal_fd_, &st) == 0 && st.st_size > 0) {
    int rfd = open(jpath.c_str(), O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (rfd >= 0) {
      if (pread(rfd, &last, 1, st.st_size - 1) != 1) last = '\n';
      close(rfd);
    }
    if (last != '\n' && write(s->journal_fd_, "\n", 1) != 1) {
      return MakeError(ErrorCode::kIo, Errno(("cannot write " + jpath).c_str()));
    }
  }
  return s;
}

CheckpointStore::~CheckpointStore() {
  if (journal_fd_ >= 0) close(journal_fd_);
  if (blobs_fd_ >= 0) close(blobs_fd_);
  if (pack_fd_ >= 0) close(pack_fd_);
  for (const auto& [root, fd] : root_fds_) {
    if (fd >= 0) close(fd);
  }
}

Status CheckpointStore::AppendLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  // After a write cut short, the next record starts on a line of its own (a blank line is
  // skipped), so the torn one cannot swallow it.
  std::string text = (torn_ ? "\n" : "") + line + "\n";
  ssize_t n = write(journal_fd_, text.data(), text.size());
  torn_ = n != static_cast<ssize_t>(text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    return MakeError(ErrorCode::kIo, n < 0 ? Errno("cannot write the checkpoint journal")
                                           : "checkpoint journal write cut short");
  }
  return OkStatus();
}

std::shared_ptr<CallRecorder> CheckpointStore::BeginCall(uint64_t step, const std::string& call_id,
                                                         const std::string& tool) {
  uint64_t call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = next_call_++;
  }
  auto rec = std::make_shared<CallRecorder>(shared_from_this(), call);
  rec->header_ = Line()
                     .Str("t", "call")
                     .Num("call", call)
                     .Num("step", step)
                     .Str("id", call_id)
                     .Str("tool", tool)
                     .Str("ts", UtcNowIso())
                     .Done();
  return rec;
}

bool CheckpointStore::full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_ >= limits_.max_bytes || files_ >= limits_.max_files;
}
uint64_t CheckpointStore::bytes_used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}
uint64_t CheckpointStore::files_used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return files_;
}

int CheckpointStore::RootFd(const std::string& root) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = root_fds_.insert({root, -1});
  if (fresh) it->second = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  return it->second;
}

bool CheckpointStore::Reserve(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (files_ >= limits_.max_files ||
      bytes > limits_.max_bytes - std::min(bytes_, limits_.max_bytes)) {
    return false;
  }
  ++files_;
  bytes_ += bytes;
  return true;
}

// ---- one call ----

CallRecorder::CallRecorder(std::shared_ptr<CheckpointStore> store, uint64_t call)
    : store_(std::move(store)), call_(call) {}

Status CallRecorder::Emit(const std::string& lines) {
  if (header_written_) return store_->AppendLine(lines);
  // The call's line goes with its first record, in the same write.
  Status s = store_->AppendLine(header_ + "\n" + lines);
  if (s.ok()) header_written_ = true;
  return s;
}

void CallRecorder::Skip(const std::string& root, const std::string& rel,
                        const std::string& reason) {
  if (undoable_) {
    undoable_ = false;
    reason_ = rel + ": " + reason;
  }
  // The first ones are named; past them a call that keeps failing (renaming a big tree
  // over and over past the bound) does not grow the journal without end.
  if (++skips_ > kMaxSkipLines) return;
  (void)Emit(Line()
                 .Str("t", "skip")
                 .Num("call", call_)
                 .Str("root", root)
                 .Str("path", rel)
                 .Str("reason", reason)
                 .Done());
}

void CallRecorder::Before(const std::string& root, std::string_view rel, int dir_fd,
                          std::string_view name, bool tree) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  Keep(root, std::string(rel), dir_fd, std::string(name), tree);
}

void CallRecorder::BeforeMove(const std::string& root, std::string_view from_rel, int from_fd,
                              std::string_view from_name, std::string_view to_rel, int to_fd,
                              std::string_view to_name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  std::string from(from_rel), to(to_rel);
  std::vector<std::string> walked;
  Keep(root, from, from_fd, std::string(from_name), true, &walked);
  Keep(root, to, to_fd, std::string(to_name), false);
  // What moves beneath the target was not there before: the target is absent or an empty
  // folder. When it is anything else the rename fails, and nothing is recorded for paths
  // beneath it (an "absent" record there would stand in for files that are there, and a
  // later change to them in this call would not be kept).
  std::string tn(to_name);
  struct stat tst {};
  if (fstatat(to_fd, tn.c_str(), &tst, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISDIR(tst.st_mode)) return;
    int dfd = openat(to_fd, tn.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR* d = dfd >= 0 ? fdopendir(dfd) : nullptr;
    if (!d) {
      if (dfd >= 0) close(dfd);
      return;
    }
    bool empty = true;
    while (dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
        empty = false;
        break;
      }
    }
    closedir(d);
    if (!empty) return;
  }
  for (const std::string& w : walked) {
    if (w.size() > from.size() && w.compare(0, from.size(), from) == 0 && w[from.size()] == '/') {
      KeepAbsent(root, to + w.substr(from.size()));
    }
  }
}

void CallRecorder::KeepAbsent(const std::string& root, const std::string& rel) {
  if (!kept_.insert({root, rel}).second) return;
  if (!store_->Reserve(0)) {
    Skip(root, rel, "the session's checkpoint limit is reached");
    return;
  }
  uint64_t n;
  {
    std::lock_guard<std::mutex> lock(store_->mu_);
    n = store_->next_blob_++;
  }
  std::string line = Line()
                         .Str("t", "pre")
                         .Num("call", call_)
                         .Num("n", n)
                         .Str("root", root)
                         .Str("path", rel)
                         .Str("kind", "absent")
                         .Done();
  if (Status w = Emit(line); !w.ok()) {
    Skip(root, rel, w.error().message);
    return;
  }
  order_.push_back({root, rel});
  ++files_;
}

bool CallRecorder::KeepOne(const std::string& root, const std::string& rel, int dir_fd,
                           const std::string& name, bool look) {
  bool fresh = kept_.insert({root, rel}).second;
  if (!fresh && !look) return false;
  struct stat st {};
  PathState s;
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) {
      if (fresh) Skip(root, rel, Errno("cannot stat"));
      return false;
    }
    // Nothing there: undo removes what the call puts in its place.
  } else if (StatRead read = StateFromStat(dir_fd, name, st, &s); read != StatRead::kOk) {
    if (fresh) {
      Skip(root, rel,
           read == StatRead::kOther ? "not a file, directory or link"
                                    : Errno("cannot read the link"));
    }
    return false;
  } else if (s.kind == PathState::Kind::kLink && !IsUtf8(s.target)) {
    if (fresh) Skip(root, rel, "the link's text is not UTF-8");
    return false;
  }

  if (fresh) {
    if (s.kind == PathState::Kind::kFile && st.st_nlink > 1) {
      Skip(root, rel,
           "has " + std::to_string(st.st_nlink) + " hard links: its other names keep the change");
      return false;
    }
    if (!store_->Reserve(s.kind == PathState::Kind::kFile ? s.size : 0)) {
      Skip(root, rel,
           "the session's checkpoint limit is reached (" +
               std::to_string(store_->limits().max_files) + " pre-images, " +
               std::to_string(store_->limits().max_bytes) + " bytes)");
      return false;
    }
    uint64_t n;
    {
      std::lock_guard<std::mutex> lock(store_->mu_);
      n = store_->next_blob_++;
    }
    if (s.kind == PathState::Kind::kFile) {
      int from = openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (from < 0) {
        Skip(root, rel, Errno("cannot open"));
        return false;
      }
      bool kept = false;
      // A reflink for a large file (its own file, sharing the extents); a small one is
      // cheaper to copy into the pack than to give a file of its own.
      if (store_->reflinks_ && s.size >= kMinReflinkBytes) {
        std::string blob = std::to_string(n);
        int to = openat(store_->blobs_fd_, blob.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        struct stat got {};
        if (to >= 0 && ioctl(to, FICLONE, from) == 0 && fstat(to, &got) == 0) {
          s.blob = blob;
          s.size = static_cast<uint64_t>(got.st_size);
          kept = true;
        } else if (to >= 0) {
          unlinkat(store_->blobs_fd_, blob.c_str(), 0);
        }
        if (to >= 0) close(to);
      }
      if (!kept) {  // a copy at the end of the pack
        uint64_t at;
        {
          std::lock_guard<std::mutex> lock(store_->mu_);
          at = store_->pack_size_;
          store_->pack_size_ += s.size;  // room for what was measured
        }
        // The guest waits in this host call, so only another process could change the
        // file between its measure and its copy; then the bytes measured are kept.
        bool ok = CopyRange(from, 0, store_->pack_fd_, at, s.size);
        if (!ok) {
          std::string why = Errno("cannot copy");
          close(from);
          Skip(root, rel, why);
          return false;
        }
        s.packed = true;
        s.at = at;
      }
      close(from);
    }
    std::string line = Line()
                           .Str("t", "pre")
                           .Num("call", call_)
                           .Num("n", n)
                           .Str("root", root)
                           .Str("path", rel)
                           .State(s)
                           .Done();
    if (Status w = Emit(line); !w.ok()) {
      Skip(root, rel, w.error().message);
      return false;
    }
    order_.push_back({root, rel});
    ++files_;
    bytes_ += s.kind == PathState::Kind::kFile ? s.size : 0;
  }
  return s.kind == PathState::Kind::kDir;
}

void CallRecorder::Keep(const std::string& root, const std::string& rel, int dir_fd,
                        const std::string& name, bool tree, std::vector<std::string>* walked) {
  if (walked) walked->push_back(rel);
  if (!KeepOne(root, rel, dir_fd, name, tree) || !tree) return;
  // Everything beneath a folder about to move, walked without recursion (this runs on the
  // guest's stack) and one folder open at a time: each is opened from the mount root by
  // its real path, without following a symlink.
  int rootfd = store_->RootFd(root);
  std::vector<std::pair<std::string, int>> pending = {{rel, 0}};  // folder, depth
  while (!pending.empty()) {
    auto [drel, depth] = std::move(pending.back());
    pending.pop_back();
    int dfd = rootfd < 0 ? -1 : OpenBeneath(rootfd, drel, O_RDONLY | O_DIRECTORY);
    DIR* d = dfd >= 0 ? fdopendir(dfd) : nullptr;
    if (!d) {
      if (dfd >= 0) close(dfd);
      Skip(root, drel, Errno("cannot list"));
      continue;
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      std::string en = e->d_name;
      if (en != "." && en != "..") names.push_back(std::move(en));
    }
    std::sort(names.begin(), names.end());
    for (const std::string& en : names) {
      std::string child = JoinRel(drel, en);
      if (!IsUtf8(en)) {
        Skip(root, child, "the name is not UTF-8");
        continue;
      }
      if (walked) walked->push_back(child);
      if (!KeepOne(root, child, dirfd(d), en, true)) continue;
      if (depth + 1 >= kMaxTreeDepth) {
        Skip(root, child, "more than " + std::to_string(kMaxTreeDepth) + " folders deep");
        continue;
      }
      pending.push_back({child, depth + 1});
    }
    closedir(d);
  }
}

CallCheckpointSummary CallRecorder::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  CallCheckpointSummary sum;
  sum.call = call_;
  if (finished_) return sum;
  finished_ = true;
  // The post states and the end line in one write.
  std::string lines;
  for (const auto& [root, rel] : order_) {
    int rootfd = store_->RootFd(root);
    if (rootfd < 0) continue;
    auto now = CurrentStateAt(rootfd, rel);
    if (!now.ok()) continue;  // no post state: an undo restores this path without checking it
    lines += Line()
                 .Str("t", "post")
                 .Num("call", call_)
                 .Str("root", root)
                 .Str("path", rel)
                 .State(*now)
                 .Done();
    lines += '\n';
  }
  lines += Line()
               .Str("t", "end")
               .Num("call", call_)
               .Bool("undoable", undoable_)
               .Str("reason", reason_)
               .Num("files", files_)
               .Num("bytes", bytes_)
               .Num("skipped", skips_)
               .Done();
  if (!header_written_) return sum;  // nothing was changed: nothing on record
  (void)Emit(lines);
  sum.undoable = undoable_;
  sum.reason = reason_;
  sum.files = files_;
  sum.bytes = bytes_;
  return sum;
}

// ---- reading ----

namespace {

// An fd to read pre-image `s` from, and where its bytes start.
Result<int> OpenPreImage(const std::string& dir, const PathState& s, uint64_t* at) {
  if (s.kind != PathState::Kind::kFile) {
    return MakeError(ErrorCode::kInternal, "only a file's pre-image has bytes");
  }
  if (!s.packed && s.blob.empty()) return MakeError(ErrorCode::kInvalidArgument, "no pre-image");
  std::string path = s.packed ? dir + "/data.pack" : dir + "/blobs/" + s.blob;
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + path).c_str()));
  struct stat st {};
  *at = s.packed ? s.at : 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) < *at + s.size || *at + s.size < *at) {
    close(fd);
    return MakeError(ErrorCode::kIo, path + " does not hold the pre-image (cut short)");
  }
  return fd;
}

}  // namespace

Status CopyPreImage(const std::string& dir, const PathState& s, int to_fd) {
  uint64_t at = 0;
  auto fd = OpenPreImage(dir, s, &at);
  if (!fd) return fd.error();
  bool ok = !s.packed && ioctl(to_fd, FICLONE, *fd) == 0;
  if (!ok) ok = CopyRange(*fd, at, to_fd, 0, s.size);
  int err = errno;
  close(*fd);
  if (!ok) {
    errno = err;
    return MakeError(ErrorCode::kIo, Errno("cannot copy a pre-image"));
  }
  return OkStatus();
}

Result<std::string> ReadPreImage(const std::string& dir, const PathState& s, uint64_t max_bytes) {
  if (s.size > max_bytes) {
    return MakeError(ErrorCode::kLimit, "the pre-image has " + std::to_string(s.size) +
                                            " bytes, more than " + std::to_string(max_bytes));
  }
  uint64_t at = 0;
  auto fd = OpenPreImage(dir, s, &at);
  if (!fd) return fd.error();
  std::string out(static_cast<size_t>(s.size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = pread(*fd, out.data() + got, out.size() - got, static_cast<off_t>(at + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(*fd);
  if (got != out.size()) return MakeError(ErrorCode::kIo, "a pre-image is cut short");
  return out;
}

Result<std::vector<CallCheckpoint>> ReadJournal(const std::string& dir) {
  std::vector<CallCheckpoint> calls;
  std::string path = dir + "/journal.jsonl";
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return calls;
    return MakeError(ErrorCode::kIo, Errno(("cannot open " + path).c_str()));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return MakeError(ErrorCode::kIo, path + " is not a regular file");
  }
  std::string text;
  text.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  text.resize(got);

  std::map<uint64_t, size_t> index;  // call -> position in `calls`
  auto bad = [&](size_t line_no, const std::string& why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     path + ": line " + std::to_string(line_no) + ": " + why);
  };
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    bool last = end == std::string::npos;
    if (last) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;  // a torn line's end written by Open
    auto parsed = line.size() > kMaxJournalLine
                      ? Result<json>(MakeError(ErrorCode::kInvalidArgument, "too long"))
                      : ParseJson(line);
    if (!parsed.ok() || !parsed->is_object()) {
      // A kill mid-write leaves a torn record: the last line, or (once Open has ended it
      // with '\n') a line that is the start of a record and not JSON. Anything else is
      // refused.
      if (last || (!parsed.ok() && line.substr(0, 2) == "{\"")) continue;
      return bad(line_no, "not a journal record");
    }
    const json& j = *parsed;
    std::string t;
    uint64_t call = 0;
    if (!Str(j, "t", &t) || !Num(j, "call", &call)) return bad(line_no, "no record kind or call");
    if (t == "call") {
      CallCheckpoint c;
      c.call = call;
      if (!Num(j, "step", &c.step) || !Str(j, "id", &c.id) || !Str(j, "tool", &c.tool) ||
          !Str(j, "ts", &c.ts, false)) {
        return bad(line_no, "a call record without step, id or tool");
      }
      if (index.count(call)) return bad(line_no, "call " + std::to_string(call) + " twice");
      index[call] = calls.size();
      calls.push_back(std::move(c));
      continue;
    }
    auto it = index.find(call);
    if (it == index.end()) return bad(line_no, "a record of an unknown call");
    CallCheckpoint& c = calls[it->second];
    if (t == "pre" || t == "post") {
      PathChange ch;
      if (!Str(j, "root", &ch.root) || !Str(j, "path", &ch.path) || ch.root.size() < 2 ||
          ch.root.front() != '/' || !GoodRel(ch.root.substr(1)) || !GoodRel(ch.path)) {
        return bad(line_no, "a record without a good root and path");
      }
      PathState s;
      if (!ParseState(j, &s)) return bad(line_no, "a path state that is not well formed");
      if (t == "pre") {
        if (s.kind == PathState::Kind::kFile && s.blob.empty() && !s.packed) {
          return bad(line_no, "a file pre-image without its bytes (blob or at)");
        }
        ch.before = std::move(s);
        c.changes.push_back(std::move(ch));
      } else {
        bool found = false;
        for (PathChange& x : c.changes) {
          if (x.root == ch.root && x.path == ch.path) {
            x.after = std::move(s);
            found = true;
            break;
          }
        }
        if (!found) return bad(line_no, "a post state of a path the call did not keep");
      }
    } else if (t == "skip") {
      std::string root, p, reason;
      if (!Str(j, "root", &root) || !Str(j, "path", &p) || !Str(j, "reason", &reason)) {
        return bad(line_no, "a skip record without root, path or reason");
      }
      c.skipped.push_back(p + ": " + reason);
      if (c.undoable) {
        c.undoable = false;
        c.reason = p + ": " + reason;
      }
    } else if (t == "end") {
      c.ended = true;
      bool undoable = true;
      if (auto u = j.find("undoable"); u != j.end() && u->is_boolean()) undoable = u->get<bool>();
      if (!undoable) c.undoable = false;
      std::string reason;
      if (Str(j, "reason", &reason, false) && !reason.empty() && c.reason.empty()) {
        c.reason = reason;
      }
    } else if (t == "undone") {
      c.undone = true;
    } else {
      return bad(line_no, "an unknown record kind");
    }
  }
  return calls;
}

}  // namespace moat::undo
