#include "orchestration/undo/checkpoints.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
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
#include "base/utf8.h"

namespace moat::undo {

using nlohmann::json;

namespace {

// Directories deeper than this beneath a moved one are not kept (the call is not undoable).
constexpr int kMaxTreeDepth = 256;
// The longest journal line read back (a pre line holds two paths of at most 4 KiB).
constexpr size_t kMaxJournalLine = 1 << 20;

std::string Now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
  return buf;
}

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

// Copies all of `from` into `to`: a reflink when the filesystem shares extents, else
// copy_file_range, else read/write.
bool CopyFile(int from, int to, uint64_t size) {
  if (ioctl(to, FICLONE, from) == 0) return true;
  uint64_t done = 0;
  off_t in = 0, out = 0;
  while (done < size) {
    ssize_t n = copy_file_range(from, &in, to, &out, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<uint64_t>(n);
  }
  if (done == size) {
    // The file may have grown since it was measured: the rest by plain copy below.
  }
  char buf[65536];
  for (;;) {
    ssize_t n = pread(from, buf, sizeof buf, in);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    for (ssize_t w = 0; w < n;) {
      ssize_t k = pwrite(to, buf + w, static_cast<size_t>(n - w), out);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return false;
      w += k;
      out += k;
    }
    in += n;
  }
}

json StateFields(const PathState& s) {
  json j;
  j["kind"] = KindName(s.kind);
  switch (s.kind) {
    case PathState::Kind::kFile:
      j["mode"] = s.mode;
      j["size"] = s.size;
      if (!s.sha256.empty()) j["sha256"] = s.sha256;
      if (!s.blob.empty()) j["blob"] = s.blob;
      break;
    case PathState::Kind::kDir: j["mode"] = s.mode; break;
    case PathState::Kind::kLink: j["target"] = s.target; break;
    case PathState::Kind::kAbsent: break;
  }
  return j;
}

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
      !Str(j, "blob", &s->blob, false)) {
    return false;
  }
  // A blob name is a number: it is joined to the blobs folder's path.
  if (!s->blob.empty() &&
      (s->blob.size() > 20 || !std::all_of(s->blob.begin(), s->blob.end(),
                                           [](char c) { return c >= '0' && c <= '9'; }))) {
    return false;
  }
  if (s->kind == PathState::Kind::kFile && j.contains("blob") == false && !j.contains("sha256")) {
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

Result<PathState> CurrentState(const std::string& root, const std::string& rel) {
  int rootfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + root).c_str()));
  auto close_root = [&] { close(rootfd); };
  size_t slash = rel.rfind('/');
  std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  int pfd = rootfd;
  if (!parent.empty()) {
    pfd = OpenBeneath(rootfd, parent, O_PATH | O_DIRECTORY);
    if (pfd < 0) {
      int err = errno;
      close_root();
      if (err == ENOENT || err == ENOTDIR) return PathState{};
      errno = err;
      return MakeError(ErrorCode::kIo, Errno(("cannot open " + parent + " in " + root).c_str()));
    }
  }
  PathState s;
  struct stat st {};
  if (fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    if (pfd != rootfd) close(pfd);
    close_root();
    if (err == ENOENT) return s;
    errno = err;
    return MakeError(ErrorCode::kIo, Errno(("cannot stat " + rel).c_str()));
  }
  std::optional<Error> problem;
  if (S_ISREG(st.st_mode)) {
    s.kind = PathState::Kind::kFile;
    s.mode = st.st_mode & 07777;
    int fd = openat(pfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      problem = MakeError(ErrorCode::kIo, Errno(("cannot open " + rel).c_str()));
    } else {
      auto d = Sha256Fd(fd);
      struct stat fst {};
      fstat(fd, &fst);
      close(fd);
      if (!d.ok()) {
        problem = d.error();
      } else {
        s.sha256 = ToHex(*d);
        s.size = static_cast<uint64_t>(fst.st_size);
      }
    }
  } else if (S_ISDIR(st.st_mode)) {
    s.kind = PathState::Kind::kDir;
    s.mode = st.st_mode & 07777;
  } else if (S_ISLNK(st.st_mode)) {
    s.kind = PathState::Kind::kLink;
    char buf[4097];
    ssize_t n = readlinkat(pfd, name.c_str(), buf, sizeof buf - 1);
    if (n < 0) problem = MakeError(ErrorCode::kIo, Errno(("cannot read link " + rel).c_str()));
    else s.target.assign(buf, static_cast<size_t>(n));
  } else {
    problem = MakeError(ErrorCode::kIo, rel + " is not a file, directory or link");
  }
  if (pfd != rootfd) close(pfd);
  close_root();
  if (problem) return *problem;
  return s;
}

// ---- the store ----

Result<std::shared_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& dir,
                                                               CheckpointLimits limits) {
  // The parent (.moat/checkpoints) and the folder itself, owner only.
  size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string parent = dir.substr(0, slash);
    if (mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
      return MakeError(ErrorCode::kIo, Errno(("cannot create " + parent).c_str()));
    }
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, Errno(("cannot create " + dir).c_str()));
  }
  std::string blobs = dir + "/blobs";
  if (mkdir(blobs.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, Errno(("cannot create " + blobs).c_str()));
  }
  auto journal = ReadJournal(dir);
  if (!journal.ok()) return journal.error();
  std::shared_ptr<CheckpointStore> s(new CheckpointStore());
  s->dir_ = dir;
  s->limits_ = limits;
  s->blobs_fd_ = open(blobs.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s->blobs_fd_ < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + blobs).c_str()));
  std::string jpath = dir + "/journal.jsonl";
  s->journal_fd_ =
      open(jpath.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (s->journal_fd_ < 0) return MakeError(ErrorCode::kIo, Errno(("cannot open " + jpath).c_str()));
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
  // A blob written by a process killed before its line: never reuse its number.
  if (DIR* d = opendir(blobs.c_str())) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      unsigned long long n = strtoull(e->d_name, &end, 10);
      if (end && *end == '\0' && end != e->d_name) s->next_blob_ = std::max<uint64_t>(s->next_blob_, n + 1);
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
}

Status CheckpointStore::AppendLine(const std::string& line) {
  std::string text = line + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  ssize_t n = write(journal_fd_, text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    return MakeError(ErrorCode::kIo, n < 0 ? Errno("cannot write the checkpoint journal")
                                       : "checkpoint journal write cut short");
  }
  return OkStatus();
}

std::shared_ptr<CallRecorder> CheckpointStore::BeginCall(uint64_t step, const std::string& call_id,
                                                         const std::string& tool,
                                                         std::string* error) {
  uint64_t call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = next_call_++;
  }
  json line = {{"t", "call"}, {"call", call}, {"step", step}, {"id", call_id},
               {"tool", tool}, {"ts", Now()}};
  Status s = AppendLine(DumpJson(line));
  if (!s.ok()) {
    if (error) *error = s.error().message;
    return nullptr;
  }
  return std::make_shared<CallRecorder>(shared_from_this(), call);
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

bool CheckpointStore::Reserve(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (files_ >= limits_.max_files || bytes > limits_.max_bytes - std::min(bytes_, limits_.max_bytes)) {
    return false;
  }
  ++files_;
  bytes_ += bytes;
  return true;
}

// ---- one call ----

CallRecorder::CallRecorder(std::shared_ptr<CheckpointStore> store, uint64_t call)
    : store_(std::move(store)), call_(call) {}

void CallRecorder::Skip(const std::string& root, const std::string& rel,
                        const std::string& reason) {
  if (undoable_) {
    undoable_ = false;
    reason_ = rel + ": " + reason;
  }
  json line = {{"t", "skip"}, {"call", call_}, {"root", root}, {"path", rel}, {"reason", reason}};
  (void)store_->AppendLine(DumpJson(line));
}

void CallRecorder::Before(const std::string& root, std::string_view rel, int dir_fd,
                          std::string_view name, bool tree) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  Keep(root, std::string(rel), dir_fd, std::string(name), tree, 0);
}

void CallRecorder::BeforeMove(const std::string& root, std::string_view from_rel, int from_fd,
                              std::string_view from_name, std::string_view to_rel, int to_fd,
                              std::string_view to_name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  std::string from(from_rel), to(to_rel);
  std::vector<std::string> walked;
  Keep(root, from, from_fd, std::string(from_name), true, 0, &walked);
  Keep(root, to, to_fd, std::string(to_name), false, 0);
  // What moves beneath the target was not there before (the target is absent or an empty
  // directory, or the rename fails): an undo removes it.
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
  json line = {{"t", "pre"}, {"call", call_}, {"n", n},
               {"root", root}, {"path", rel}, {"kind", "absent"}};
  if (Status w = store_->AppendLine(DumpJson(line)); !w.ok()) {
    Skip(root, rel, w.error().message);
    return;
  }
  order_.push_back({root, rel});
  ++files_;
}

void CallRecorder::Keep(const std::string& root, const std::string& rel, int dir_fd,
                        const std::string& name, bool tree, int depth,
                        std::vector<std::string>* walked) {
  if (walked) walked->push_back(rel);
  bool fresh = kept_.insert({root, rel}).second;
  if (!fresh && !tree) return;
  struct stat st {};
  PathState s;
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) {
      if (fresh) Skip(root, rel, Errno("cannot stat"));
      return;
    }
    // Nothing there: undo removes what the call puts in its place.
  } else if (S_ISREG(st.st_mode)) {
    s.kind = PathState::Kind::kFile;
    s.mode = st.st_mode & 07777;
    s.size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISDIR(st.st_mode)) {
    s.kind = PathState::Kind::kDir;
    s.mode = st.st_mode & 07777;
  } else if (S_ISLNK(st.st_mode)) {
    s.kind = PathState::Kind::kLink;
    char buf[4097];
    ssize_t n = readlinkat(dir_fd, name.c_str(), buf, sizeof buf - 1);
    if (n < 0) {
      if (fresh) Skip(root, rel, Errno("cannot read the link"));
      return;
    }
    s.target.assign(buf, static_cast<size_t>(n));
    if (!IsUtf8(s.target)) {
      if (fresh) Skip(root, rel, "the link's text is not UTF-8");
      return;
    }
  } else {
    if (fresh) Skip(root, rel, "not a file, directory or link");
    return;
  }

  if (fresh) {
    if (s.kind == PathState::Kind::kFile && st.st_nlink > 1) {
      Skip(root, rel,
           "has " + std::to_string(st.st_nlink) + " hard links: its other names keep the change");
      return;
    }
    if (!store_->Reserve(s.kind == PathState::Kind::kFile ? s.size : 0)) {
      Skip(root, rel,
           "the session's checkpoint limit is reached (" +
               std::to_string(store_->limits().max_files) + " pre-images, " +
               std::to_string(store_->limits().max_bytes) + " bytes)");
      return;
    }
    uint64_t n;
    {
      std::lock_guard<std::mutex> lock(store_->mu_);
      n = store_->next_blob_++;
    }
    if (s.kind == PathState::Kind::kFile) {
      int from = openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      std::string blob = std::to_string(n);
      int to = openat(store_->blobs_fd_, blob.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      bool ok = from >= 0 && to >= 0 && CopyFile(from, to, s.size);
      struct stat got {};
      if (ok && fstat(to, &got) == 0) s.size = static_cast<uint64_t>(got.st_size);
      if (from >= 0) close(from);
      if (to >= 0) close(to);
      if (!ok) {
        std::string why = Errno("cannot copy");
        if (to >= 0) unlinkat(store_->blobs_fd_, blob.c_str(), 0);
        Skip(root, rel, why);
        return;
      }
      s.blob = blob;
    }
    json line = StateFields(s);
    line["t"] = "pre";
    line["call"] = call_;
    line["n"] = n;
    line["root"] = root;
    line["path"] = rel;
    if (Status w = store_->AppendLine(DumpJson(line)); !w.ok()) {
      Skip(root, rel, w.error().message);
      return;
    }
    order_.push_back({root, rel});
    ++files_;
    bytes_ += s.kind == PathState::Kind::kFile ? s.size : 0;
  }

  if (tree && s.kind == PathState::Kind::kDir) {
    if (depth >= kMaxTreeDepth) {
      Skip(root, rel, "more than " + std::to_string(kMaxTreeDepth) + " folders deep");
      return;
    }
    int dfd = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR* d = dfd >= 0 ? fdopendir(dfd) : nullptr;
    if (!d) {
      if (dfd >= 0) close(dfd);
      Skip(root, rel, Errno("cannot list"));
      return;
    }
    std::vector<std::pair<std::string, bool>> entries;
    while (dirent* e = readdir(d)) {
      std::string en = e->d_name;
      if (en == "." || en == "..") continue;
      entries.push_back({en, e->d_type == DT_DIR || e->d_type == DT_UNKNOWN});
    }
    std::sort(entries.begin(), entries.end());
    int walk = dirfd(d);
    for (const auto& [en, maybe_dir] : entries) {
      std::string child = JoinRel(rel, en);
      if (!IsUtf8(en)) {
        Skip(root, child, "the name is not UTF-8");
        continue;
      }
      Keep(root, child, walk, en, maybe_dir, depth + 1, walked);
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
  for (const auto& [root, rel] : order_) {
    auto now = CurrentState(root, rel);
    if (!now.ok()) {
      // No post state: an undo restores this path without checking it.
      continue;
    }
    json line = StateFields(*now);
    line["t"] = "post";
    line["call"] = call_;
    line["root"] = root;
    line["path"] = rel;
    (void)store_->AppendLine(DumpJson(line));
  }
  json end = {{"t", "end"},        {"call", call_},   {"undoable", undoable_},
              {"reason", reason_}, {"files", files_}, {"bytes", bytes_}};
  (void)store_->AppendLine(DumpJson(end));
  sum.undoable = undoable_;
  sum.reason = reason_;
  sum.files = files_;
  sum.bytes = bytes_;
  return sum;
}

// ---- reading ----

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
    auto parsed = line.size() > kMaxJournalLine ? Result<json>(MakeError(ErrorCode::kInvalidArgument, "too long"))
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
      if (!Str(j, "root", &ch.root) || !Str(j, "path", &ch.path) || ch.root.empty() ||
          ch.root.front() != '/' || !GoodRel(ch.path)) {
        return bad(line_no, "a record without a good root and path");
      }
      PathState s;
      if (!ParseState(j, &s)) return bad(line_no, "a path state that is not well formed");
      if (t == "pre") {
        if (s.kind == PathState::Kind::kFile && s.blob.empty()) {
          return bad(line_no, "a file pre-image without a blob");
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
