#include "execution/wasi_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace moat {

std::vector<std::string> DefaultHiddenPatterns() {
  return {".env",        ".env.*",      "*.pem",  "*.key",  "id_rsa*",
          "id_ed25519*", ".git/config", ".npmrc", ".netrc", ".moat"};
}

std::vector<std::string> DefaultProtectedPatterns() { return {".git"}; }

namespace wasi {

Errno FromHostErrno(int e) {
  switch (e) {
    case 0: return kSuccess;
    case E2BIG: return kE2big;
    case EACCES: return kEacces;
    case EAGAIN: return kEagain;
    case EBADF: return kEbadf;
    case EBUSY: return kEbusy;
    case EDQUOT: return kEdquot;
    case EEXIST: return kEexist;
    case EFAULT: return kEfault;
    case EFBIG: return kEfbig;
    case EILSEQ: return kEilseq;
    case EINTR: return kEintr;
    case EINVAL: return kEinval;
    case EISDIR: return kEisdir;
    case ELOOP: return kEloop;
    case EMFILE: return kEmfile;
    case EMLINK: return kEmlink;
    case ENAMETOOLONG: return kEnametoolong;
    case ENFILE: return kEnfile;
    case ENODEV: return kEnodev;
    case ENOENT: return kEnoent;
    case ENOMEM: return kEnomem;
    case ENOSPC: return kEnospc;
    case ENOSYS: return kEnosys;
    case ENOTDIR: return kEnotdir;
    case ENOTEMPTY: return kEnotempty;
    case ENOTSOCK: return kEnotsock;
    case EOPNOTSUPP: return kEnotsup;
    case ENOTTY: return kEnotty;
    case ENXIO: return kEnxio;
    case EOVERFLOW: return kEoverflow;
    case EPERM: return kEperm;
    case EPIPE: return kEpipe;
    case EROFS: return kErofs;
    case ESPIPE: return kEspipe;
    case ETXTBSY: return kEtxtbsy;
    case EXDEV: return kExdev;
    default: return kEio;
  }
}

namespace {

constexpr size_t kMaxPathBytes = 4096;
constexpr int kResolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
constexpr uint64_t kWriteRights =
    kRightFdWrite | kRightFdDatasync | kRightFdAllocate | kRightFdFilestatSetSize;

int OpenAt2(int dirfd, const std::string& path, int flags, uint64_t resolve) {
  open_how how{};
  // openat2 refuses flags that do not apply: O_PATH takes only a few.
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);
  how.mode = (flags & O_CREAT) ? 0666 : 0;
  how.resolve = resolve;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    // EAGAIN: a rename raced with ".." resolution; the kernel asks to retry.
    if (fd < 0 && (errno == EAGAIN || errno == EINTR) && attempt < 64) continue;
    return static_cast<int>(fd);
  }
}

uint8_t FileTypeOf(mode_t m) {
  if (S_ISREG(m)) return kFileTypeRegular;
  if (S_ISDIR(m)) return kFileTypeDirectory;
  if (S_ISLNK(m)) return kFileTypeSymlink;
  if (S_ISCHR(m)) return kFileTypeCharDevice;
  if (S_ISBLK(m)) return kFileTypeBlockDevice;
  if (S_ISSOCK(m)) return kFileTypeSocketStream;
  return kFileTypeUnknown;
}

uint8_t HostFdType(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return kFileTypeUnknown;
  if (S_ISCHR(st.st_mode)) return kFileTypeCharDevice;
  if (S_ISREG(st.st_mode)) return kFileTypeRegular;
  if (S_ISSOCK(st.st_mode)) return kFileTypeSocketStream;
  return kFileTypeUnknown;
}

uint8_t FileTypeOfDirent(unsigned char t) {
  switch (t) {
    case DT_REG: return kFileTypeRegular;
    case DT_DIR: return kFileTypeDirectory;
    case DT_LNK: return kFileTypeSymlink;
    case DT_CHR: return kFileTypeCharDevice;
    case DT_BLK: return kFileTypeBlockDevice;
    case DT_SOCK: return kFileTypeSocketStream;
    default: return kFileTypeUnknown;
  }
}

uint64_t Ns(const timespec& t) {
  return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(t.tv_nsec);
}

FileStat ToFileStat(const struct stat& st) {
  FileStat f;
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.filetype = FileTypeOf(st.st_mode);
  f.nlink = st.st_nlink;
  f.size = static_cast<uint64_t>(st.st_size);
  f.atim = Ns(st.st_atim);
  f.mtim = Ns(st.st_mtim);
  f.ctim = Ns(st.st_ctim);
  return f;
}

// Builds utimensat times from WASI fstflags; false when the flags contradict each other.
bool TimesFrom(uint64_t atim, uint64_t mtim, uint16_t fst, timespec ts[2]) {
  if (((fst & kFstAtim) && (fst & kFstAtimNow)) || ((fst & kFstMtim) && (fst & kFstMtimNow)) ||
      (fst & ~(kFstAtim | kFstAtimNow | kFstMtim | kFstMtimNow))) {
    return false;
  }
  auto one = [](uint64_t v, bool set, bool now, timespec* t) {
    if (now) {
      t->tv_sec = 0;
      t->tv_nsec = UTIME_NOW;
    } else if (set) {
      t->tv_sec = static_cast<time_t>(v / 1'000'000'000ull);
      t->tv_nsec = static_cast<long>(v % 1'000'000'000ull);
    } else {
      t->tv_sec = 0;
      t->tv_nsec = UTIME_OMIT;
    }
  };
  one(atim, fst & kFstAtim, fst & kFstAtimNow, &ts[0]);
  one(mtim, fst & kFstMtim, fst & kFstMtimNow, &ts[1]);
  return true;
}

// Joins a mount-relative directory and a guest path lexically ("." and ".." folded).
// False when ".." climbs above the mount root.
bool JoinLexical(std::string_view base, std::string_view path, std::string* out) {
  std::vector<std::string_view> parts;
  auto push = [&](std::string_view s) {
    size_t i = 0;
    while (i <= s.size()) {
      size_t j = s.find('/', i);
      if (j == std::string_view::npos) j = s.size();
      std::string_view c = s.substr(i, j - i);
      if (c.empty() || c == ".") {
      } else if (c == "..") {
        if (parts.empty()) return false;
        parts.pop_back();
      } else {
        parts.push_back(c);
      }
      i = j + 1;
    }
    return true;
  };
  if (!push(base) || !push(path)) return false;
  out->clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out->push_back('/');
    out->append(parts[i]);
  }
  return true;
}

std::string JoinRel(std::string_view dir, std::string_view name) {
  std::string r(dir);
  if (!r.empty()) r.push_back('/');
  r.append(name);
  return r;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    if (c < 0x80) {
      n = 0;
    } else if ((c >> 5) == 0x6) {
      n = 1;
    } else if ((c >> 4) == 0xe) {
      n = 2;
    } else if ((c >> 3) == 0x1e) {
      n = 3;
    } else {
      return false;
    }
    if (i + n >= s.size() && n > 0) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n + 1;
  }
  return true;
}

// Splits "a/b/c//" into parent "a/b" and last component "c//" (trailing slashes kept, so
// the host call sees them). A path of only slashes or one component has an empty parent.
void SplitLast(std::string_view path, std::string_view* parent, std::string_view* name) {
  size_t end = path.size();
  while (end > 0 && path[end - 1] == '/') --end;
  size_t slash = path.rfind('/', end == 0 ? 0 : end - 1);
  if (end == 0 || slash == std::string_view::npos) {
    *parent = {};
    *name = path;
    return;
  }
  *parent = path.substr(0, slash + 1);
  *name = path.substr(slash + 1);
}

std::string_view StripSlashes(std::string_view s) {
  while (s.size() > 1 && s.back() == '/') s.remove_suffix(1);
  return s;
}

}  // namespace

namespace {

bool HasGlobMeta(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

// Splits a mount-relative path into its non-empty components.
void SplitComponents(std::string_view rel, std::vector<std::string_view>* out) {
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string_view::npos) j = rel.size();
    if (j > i) out->push_back(rel.substr(i, j - i));
    i = j + 1;
  }
}

}  // namespace

bool HiddenPaths::Piece::Matches(std::string_view c) const {
  switch (kind) {
    case kLiteral: return c == text;
    case kPrefix: return c.starts_with(text);
    case kSuffix: return c.ends_with(text);
    case kGlob: {
      char buf[NAME_MAX + 2];
      if (c.size() > NAME_MAX) {
        return fnmatch(text.c_str(), std::string(c).c_str(), FNM_PATHNAME) == 0;
      }
      std::memcpy(buf, c.data(), c.size());
      buf[c.size()] = '\0';
      return fnmatch(text.c_str(), buf, FNM_PATHNAME) == 0;
    }
  }
  return false;
}

HiddenPaths::HiddenPaths(const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (p.empty()) continue;
    Pattern pat;
    size_t i = 0;
    while (true) {
      size_t j = p.find('/', i);
      std::string_view part =
          std::string_view(p).substr(i, j == std::string::npos ? std::string::npos : j - i);
      Piece piece;
      if (!HasGlobMeta(part)) {
        piece = {Piece::kLiteral, std::string(part)};
      } else if (part.size() > 1 && part.back() == '*' &&
                 !HasGlobMeta(part.substr(0, part.size() - 1))) {
        piece = {Piece::kPrefix, std::string(part.substr(0, part.size() - 1))};
      } else if (part.size() > 1 && part.front() == '*' && !HasGlobMeta(part.substr(1))) {
        piece = {Piece::kSuffix, std::string(part.substr(1))};
      } else {
        piece = {Piece::kGlob, std::string(part)};
      }
      pat.pieces.push_back(std::move(piece));
      if (j == std::string::npos) break;
      i = j + 1;
    }
    multi_ = multi_ || pat.pieces.size() > 1;
    patterns_.push_back(std::move(pat));
  }
}

bool HiddenPaths::EndsHidden(std::span<const std::string_view> comps) const {
  for (const Pattern& p : patterns_) {
    size_t k = p.pieces.size();
    if (k > comps.size()) continue;
    size_t base = comps.size() - k;
    bool match = true;
    for (size_t i = k; i-- > 0;) {  // last piece first: it rejects most names
      if (!p.pieces[i].Matches(comps[base + i])) {
        match = false;
        break;
      }
    }
    if (match) return true;
  }
  return false;
}

bool HiddenPaths::Hidden(std::string_view context, std::string_view rel) const {
  if (patterns_.empty() || rel.empty()) return false;
  std::vector<std::string_view> comps;
  comps.reserve(16);
  if (multi_) SplitComponents(context, &comps);
  size_t base = comps.size();
  SplitComponents(rel, &comps);
  for (size_t end = base + 1; end <= comps.size(); ++end) {
    if (EndsHidden(std::span(comps.data(), end))) return true;
  }
  return false;
}

bool HiddenPaths::HiddenLeaf(std::string_view context, std::string_view dir_rel,
                             std::string_view name) const {
  if (patterns_.empty() || name.empty()) return false;
  if (!multi_) {
    for (const Pattern& p : patterns_) {
      if (p.pieces[0].Matches(name)) return true;
    }
    return false;
  }
  std::vector<std::string_view> comps;
  SplitComponents(context, &comps);
  SplitComponents(dir_rel, &comps);
  comps.push_back(name);
  return EndsHidden(comps);
}

bool HiddenPaths::HiddenOnTheWay(std::string_view context, std::string_view path,
                                 bool include_last) const {
  if (patterns_.empty()) return false;
  std::vector<std::string_view> comps, stack;
  comps.reserve(16);
  if (multi_) SplitComponents(context, &stack);
  size_t base = stack.size();  // ".." never climbs into the context
  SplitComponents(path, &comps);
  size_t last = comps.size();
  while (last > 0 && (comps[last - 1] == ".")) --last;  // "a/." ends at a
  for (size_t i = 0; i < comps.size(); ++i) {
    std::string_view c = comps[i];
    if (c == ".") continue;
    if (c == "..") {
      if (stack.size() > base) stack.pop_back();
      continue;
    }
    stack.push_back(c);
    if (!include_last && i + 1 == last) continue;
    if (EndsHidden(stack)) return true;
  }
  return false;
}

size_t HiddenPaths::longest() const {
  size_t n = 0;
  for (const Pattern& p : patterns_) n = std::max(n, p.pieces.size());
  return n;
}

// The directory a path operation acts in, and the last component of its path.
struct Fs::Parent {
  std::string full;  // the path from the mount root; `name` points into it
  int fd = -1;
  bool owned = false;
  std::string rel;        // mount-relative path of the parent directory
  std::string_view name;  // last component, trailing slashes kept
  int mount = -1;
  ~Parent() {
    if (owned) close(fd);
  }
};

namespace {

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// `path` made absolute and real as far as it exists: the real path of its longest existing
// ancestor, then the rest as written ("." and ".." folded). "" when that fails.
std::string RealAsFarAsItExists(const std::string& path) {
  std::string abs = path;
  if (abs.empty()) return "";
  if (abs[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return "";
    abs = std::string(cwd) + "/" + abs;
  }
  std::string folded;
  if (!JoinLexical("", abs.substr(1), &folded)) return "";
  std::string head = "/" + folded, tail;
  while (true) {
    char real[PATH_MAX];
    if (realpath(head.c_str(), real)) {
      std::string r = real;
      if (tail.empty()) return r;
      return r == "/" ? "/" + tail : r + "/" + tail;
    }
    if (errno != ENOENT && errno != ENOTDIR) return "";
    size_t slash = head.find_last_of('/');
    std::string name = head.substr(slash + 1);
    tail = tail.empty() ? name : name + "/" + tail;
    head = slash == 0 ? "/" : head.substr(0, slash);
  }
}

// `inner` is `outer` or beneath it (both real, absolute).
bool AtOrBeneath(std::string_view inner, std::string_view outer) {
  if (outer == "/") return true;
  return inner == outer ||
         (inner.size() > outer.size() && inner.starts_with(outer) && inner[outer.size()] == '/');
}

// A relative path as a pattern that matches exactly its components.
std::string LiteralPattern(std::string_view rel) {
  std::string out;
  for (char c : rel) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::vector<std::string> RealSealedPaths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    if (std::string r = RealAsFarAsItExists(p); !r.empty()) out.push_back(std::move(r));
  }
  return out;
}

Fs::Fs(const ExecRequest& req, std::vector<CapabilityEvent>* events)
    : req_(req),
      events_(events),
      hidden_(req.hidden),
      protected_(req.protect),
      untrusted_(req.untrusted) {}

Fs::~Fs() {
  for (auto& e : table_) {
    if (e && e->host_fd >= 0) close(e->host_fd);
  }
  for (int fd : mount_fd_) close(fd);
}

Result<std::unique_ptr<Fs>> Fs::Create(const ExecRequest& req, std::vector<CapabilityEvent>* events,
                                       const std::vector<std::string>& sealed) {
  std::unique_ptr<Fs> fs(new Fs(req, events));
  for (int i = 0; i < 3; ++i) {
    FdEntry e;
    e.kind = FdKind::kStdio;
    e.stdio = static_cast<uint8_t>(i);
    e.rights = kStdioRights;
    e.filetype = req.inherit_stdio ? HostFdType(i) : kFileTypeUnknown;
    fs->table_.push_back(std::make_unique<FdEntry>(std::move(e)));
  }
  for (size_t i = 0; i < req.mounts.size(); ++i) {
    const Mount& m = req.mounts[i];
    int fd = open(m.host_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char real[PATH_MAX];
    if (fd < 0 || !realpath(m.host_path.c_str(), real)) {
      int e = errno;
      if (fd >= 0) close(fd);
      return MakeError(ErrorCode::kInvalidArgument,
                       "cannot open mount '" + m.host_path + "': " + strerror(e));
    }
    fs->mount_real_.push_back(real);
    fs->mount_fd_.push_back(fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (fs->mount_fd_.back() < 0) {
      close(fd);
      return MakeError(ErrorCode::kInternal, "cannot duplicate a mount fd");
    }
    FdEntry e;
    e.kind = FdKind::kDir;
    e.host_fd = fd;
    e.filetype = kFileTypeDirectory;
    e.rights = kDirRights;
    e.inheriting = kDirRights | kFileRights;
    e.readable = true;
    e.preopen = true;
    e.mount = static_cast<int>(i);
    fs->table_.push_back(std::make_unique<FdEntry>(std::move(e)));
  }
  // moat's own folders, wherever they are: a mount inside one is refused, one inside a
  // mount is hidden and protected there by its path from the mount's root (a pattern, so it
  // also matches at that path beneath any other folder of any mount: more hidden, never
  // less).
  std::vector<std::string> sealed_patterns;
  for (size_t i = 0; i < req.mounts.size(); ++i) {
    const std::string& real = fs->mount_real_[i];
    for (const std::string& s : sealed) {
      if (AtOrBeneath(real, s)) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "cannot mount '" + req.mounts[i].host_path +
                             "': it is inside moat's own folder " + s +
                             " (secrets, config, approvals, compiled modules)");
      }
      if (AtOrBeneath(s, real)) {
        sealed_patterns.push_back(LiteralPattern(s.substr(real == "/" ? 1 : real.size() + 1)));
      }
    }
  }
  if (!sealed_patterns.empty()) {
    fs->hidden_ = HiddenPaths(Concat(req.hidden, sealed_patterns));
    fs->protected_ = HiddenPaths(Concat(req.protect, sealed_patterns));
  }
  // Patterns are matched from above each mount's root, through the host folders that hold
  // it: what ".git/config" hides through `--dir W` stays hidden through `--dir W/.git`.
  // A mount whose own folder is protected (say, a repository's .git) is protected whole; a
  // mount whose own folder is hidden is refused (the guest would see an empty folder).
  size_t reach =
      std::max({fs->hidden_.longest(), fs->protected_.longest(), fs->untrusted_.longest()});
  for (size_t i = 0; i < req.mounts.size(); ++i) {
    std::string_view real = fs->mount_real_[i];
    std::string_view host = real.substr(1);
    if (fs->hidden_.Hidden(host)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "cannot mount '" + req.mounts[i].host_path +
                           "': it is a hidden path (see --hide and --no-default-hide)");
    }
    fs->mount_protected_.push_back(fs->protected_.Hidden(host));
    fs->mount_untrusted_.push_back(fs->untrusted_.Hidden(host));
    size_t start = real.size();  // the last reach - 1 components of the real path
    for (size_t n = 1; n < reach && start > 0; ++n) start = real.rfind('/', start - 1);
    fs->mount_context_.emplace_back(reach > 1 ? real.substr(start == std::string::npos ? 0 : start)
                                              : std::string_view());
  }
  return fs;
}

void Fs::Deny(std::string_view op, std::string_view subject, std::string reason) {
  if (events_ && events_->size() < 256) {
    events_->push_back({std::string(op), std::string(subject), std::move(reason)});
  }
}

FdEntry* Fs::Get(uint32_t fd) { return fd < table_.size() ? table_[fd].get() : nullptr; }

uint32_t Fs::Insert(FdEntry e) {
  ++open_count_;
  for (uint32_t i = 3; i < table_.size(); ++i) {
    if (!table_[i]) {
      table_[i] = std::make_unique<FdEntry>(std::move(e));
      return i;
    }
  }
  table_.push_back(std::make_unique<FdEntry>(std::move(e)));
  return static_cast<uint32_t>(table_.size() - 1);
}

Errno Fs::FileFor(uint32_t fd, uint64_t right, FdEntry** out) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (e->kind == FdKind::kDir) return kEbadf;
  if ((e->rights & right) != right) return kEnotcapable;
  *out = e;
  return kSuccess;
}

Errno Fs::DirFor(uint32_t fd, uint64_t right, FdEntry** out) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (e->kind != FdKind::kDir) return kEnotdir;
  if ((e->rights & right) != right) return kEnotcapable;
  *out = e;
  return kSuccess;
}

Errno Fs::CheckPath(std::string_view op, std::string_view path) {
  if (path.size() > kMaxPathBytes) return kEnametoolong;
  if (path.find('\0') != std::string_view::npos) return kEinval;
  if (!ValidUtf8(path)) return kEilseq;
  if (!path.empty() && path[0] == '/') {
    Deny(op, path, "absolute paths are not allowed; paths are relative to a mount");
    return kEperm;
  }
  return kSuccess;
}

bool Fs::RealRel(int fd, int mount, std::string* rel) const {
  char link[64], buf[PATH_MAX + 1];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, PATH_MAX);
  if (n <= 0) return false;
  std::string_view p(buf, static_cast<size_t>(n));
  const std::string& root = mount_real_[static_cast<size_t>(mount)];
  if (p == root) {
    rel->clear();
    return true;
  }
  std::string_view r = root == "/" ? std::string_view() : std::string_view(root);
  if (p.size() <= r.size() + 1 || p.compare(0, r.size(), r) != 0 || p[r.size()] != '/') {
    return false;
  }
  rel->assign(p.substr(r.size() + 1));
  return true;
}

Errno Fs::Anchor(std::string_view op, const FdEntry& dir, std::string_view path,
                 std::string* full) {
  if (dir.rel.empty()) {
    full->assign(path);
    return kSuccess;
  }
  // A directory the guest opened is reached again from its mount's root, so a directory
  // moved out of the mount by someone else cannot take the guest along; ".." may not climb
  // above the directory itself.
  std::string folded;
  if (!JoinLexical("", path, &folded)) {
    Deny(op, path, "path escapes its directory");
    return kEperm;
  }
  *full = dir.rel + "/" + std::string(path);
  return kSuccess;
}

Errno Fs::OpenAt(std::string_view op, int mount, std::string_view subject, const std::string& full,
                 int flags, bool follow, int* out, std::string* rel) {
  if (full.empty()) return kEnoent;
  // Hidden names are refused before the kernel walks them, so no answer of the kernel's
  // (ENOTDIR for ".env/", say) tells whether they exist.
  if (hidden_.HiddenOnTheWay(Context(mount), full, true)) {
    Deny(op, subject, "hidden path");
    return kEnoent;
  }
  int root = mount_fd_[static_cast<size_t>(mount)];
  if (!follow) flags |= O_NOFOLLOW;
  // First without symlinks: then the lexical path is the real one.
  int fd = OpenAt2(root, full, flags, kResolve | RESOLVE_NO_SYMLINKS);
  bool lexical = fd >= 0;
  if (fd < 0 && errno == ELOOP) fd = OpenAt2(root, full, flags, kResolve);
  if (fd < 0) {
    int e = errno;
    if (e == EXDEV) {
      Deny(op, subject, "path escapes its mount");
      return kEperm;
    }
    return FromHostErrno(e);
  }
  bool ok = lexical ? JoinLexical("", full, rel) : RealRel(fd, mount, rel);
  if (!ok) {
    close(fd);
    Deny(op, subject, "path resolves outside its mount");
    return kEperm;
  }
  // Without symlinks the walk above already checked every component of the real path.
  if (!lexical && IsHidden(mount, *rel)) {
    close(fd);
    Deny(op, subject, "hidden path");
    return kEnoent;
  }
  *out = fd;
  return kSuccess;
}

Errno Fs::OpenBeneath(std::string_view op, const FdEntry& dir, std::string_view path, int flags,
                      bool follow, int* out, std::string* rel) {
  if (path.empty()) return kEnoent;
  std::string full;
  if (Errno e = Anchor(op, dir, path, &full)) return e;
  return OpenAt(op, dir.mount, path, full, flags, follow, out, rel);
}

void Fs::BeforeChange(int mount, const std::string& rel, int dir_fd, std::string_view name,
                      bool tree) {
  if (req_.preimages) {
    req_.preimages->Before(mount_real_[static_cast<size_t>(mount)], rel, dir_fd, name, tree);
  }
}

void Fs::KeepOpened(int mount, const std::string& rel) {
  size_t slash = rel.rfind('/');
  if (slash == std::string::npos) {
    BeforeChange(mount, rel, mount_fd_[static_cast<size_t>(mount)], rel, false);
    return;
  }
  // `rel` is the file's real path in the mount, so its folder opens without symlinks; when
  // it cannot (renamed meanwhile), the sink is handed no folder and records the path as
  // not kept.
  int pfd = OpenAt2(mount_fd_[static_cast<size_t>(mount)], rel.substr(0, slash),
                    O_PATH | O_DIRECTORY, kResolve | RESOLVE_NO_SYMLINKS);
  BeforeChange(mount, rel, pfd, std::string_view(rel).substr(slash + 1), false);
  if (pfd >= 0) close(pfd);
}

void Fs::MovedDirectory(const std::string& from, const std::string& to) {
  for (auto& e : table_) {
    if (!e || e->kind != FdKind::kDir || e->rel.size() < from.size()) continue;
    if (e->rel == from) {
      e->rel = to;
    } else if (e->rel.compare(0, from.size(), from) == 0 && e->rel[from.size()] == '/') {
      e->rel = to + e->rel.substr(from.size());
    }
  }
}

Errno Fs::ResolveParent(std::string_view op, const FdEntry& dir, std::string_view path,
                        Parent* out) {
  if (path.empty()) return kEnoent;
  if (Errno e = Anchor(op, dir, path, &out->full)) return e;
  std::string_view parent;
  SplitLast(out->full, &parent, &out->name);
  out->mount = dir.mount;
  if (parent.empty()) {
    out->fd = mount_fd_[static_cast<size_t>(dir.mount)];
    out->rel.clear();
    return kSuccess;
  }
  int fd = -1;
  if (Errno e = OpenAt(op, dir.mount, path, std::string(parent), O_PATH | O_DIRECTORY, true, &fd,
                       &out->rel)) {
    return e;
  }
  out->fd = fd;
  out->owned = true;
  return kSuccess;
}

Errno Fs::RefuseReadOnly(std::string_view op, const FdEntry& dir, std::string_view path) {
  if (dir.mount >= 0 && req_.mounts[static_cast<size_t>(dir.mount)].read_only) {
    Deny(op, path, "mount is read-only");
    return kEperm;
  }
  return kSuccess;
}

Errno Fs::ChargeCreate(std::string_view op, std::string_view path) {
  if (files_created_ >= req_.limits.max_files_created) {
    Deny(op, path,
         "quota of " + std::to_string(req_.limits.max_files_created) + " created files reached");
    return kEdquot;
  }
  ++files_created_;
  return kSuccess;
}

void Fs::NoteCreated(const struct stat& st) { ++created_[{st.st_dev, st.st_ino}]; }

void Fs::NoteRemoved(const struct stat& st) {
  auto it = created_.find({st.st_dev, st.st_ino});
  if (it == created_.end()) return;
  if (--it->second == 0) created_.erase(it);
  if (files_created_ > 0) --files_created_;
}

Errno Fs::ChargeWrite(std::string_view op, uint64_t bytes, uint64_t* allowed) {
  uint64_t room =
      req_.limits.max_write_bytes - std::min(bytes_written_, req_.limits.max_write_bytes);
  if (bytes > 0 && room == 0) {
    Deny(op, "fd",
         "quota of " + std::to_string(req_.limits.max_write_bytes) + " written bytes reached");
    return kEdquot;
  }
  *allowed = std::min(bytes, room);
  return kSuccess;
}

namespace {
// Whether a relative symlink text with ".." still resolves inside the mount when the link
// lives in `dir_rel` (absolute texts are judged by the caller).
bool StaysInside(std::string_view dir_rel, std::string_view text) {
  std::vector<std::string_view> comps;
  SplitComponents(text, &comps);
  size_t i = 0;
  while (i < comps.size() && comps[i] == "..") ++i;
  for (; i < comps.size(); ++i) {
    if (comps[i] == "..") return false;  // ".." after a name: where it leads depends on links
  }
  std::string folded;
  return JoinLexical(dir_rel, text, &folded);
}
}  // namespace

Errno Fs::RefuseProtected(std::string_view op, int mount, std::string_view subject,
                          std::string_view rel) {
  if (!IsProtected(mount, rel)) return kSuccess;
  Deny(op, subject, "protected path is read-only");
  return kEperm;
}

Errno Fs::CheckMove(std::string_view op, std::string_view subject, int mount, int dir_fd,
                    const std::string& from_rel, const std::string& to_rel) {
  if (Errno e = RefuseProtected(op, mount, subject, from_rel)) return e;
  if (Errno e = RefuseProtected(op, mount, subject, to_rel)) return e;
  if (dir_fd < 0) return kSuccess;
  if (hidden_.empty() && protected_.empty()) {
    close(dir_fd);
    return kSuccess;
  }
  // Everything beneath the directory keeps its relative path, so a rename changes a
  // descendant's status only through patterns that reach across the renamed component
  // (".git/config" when ".git" is renamed) or through a protected path inside it. Each
  // entry is checked under both names; an entry that cannot be read refuses the rename.
  struct Level {
    DIR* dir;
    std::string suffix;  // path beneath the renamed directory, "" for itself
  };
  std::vector<Level> stack;
  auto close_all = [&] {
    for (Level& l : stack) closedir(l.dir);
  };
  auto push = [&](int fd, std::string suffix) {
    DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
    if (!d) {
      if (fd >= 0) close(fd);
      return false;
    }
    stack.push_back({d, std::move(suffix)});
    return true;
  };
  if (!push(dir_fd, "")) {
    Deny(op, subject, "cannot read the directory to check what it holds");
    return kEperm;
  }
  uint64_t seen = 0;
  while (!stack.empty()) {
    errno = 0;
    struct dirent* de = readdir(stack.back().dir);
    if (!de) {
      int err = errno;
      closedir(stack.back().dir);
      stack.pop_back();
      if (err != 0) {
        close_all();
        Deny(op, subject, "cannot read the directory to check what it holds");
        return kEperm;
      }
      continue;
    }
    std::string_view name(de->d_name);
    if (name == "." || name == "..") continue;
    if (++seen > Limits::kMaxRenameScanEntries) {
      close_all();
      Deny(op, subject,
           "directory holds more than " + std::to_string(Limits::kMaxRenameScanEntries) +
               " entries to check; it cannot be renamed");
      return kEperm;
    }
    std::string suffix = JoinRel(stack.back().suffix, name);
    std::string was = from_rel + "/" + suffix, will = to_rel + "/" + suffix;
    if (IsProtected(mount, was) || IsProtected(mount, will)) {
      close_all();
      Deny(op, subject, "directory holds a protected path (" + suffix + ")");
      return kEperm;
    }
    if (IsHidden(mount, was) != IsHidden(mount, will)) {
      close_all();
      Deny(op, subject, "rename would change whether " + suffix + " is hidden");
      return kEperm;
    }
    unsigned char type = de->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st {};
      if (fstatat(dirfd(stack.back().dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
      }
    }
    if (type == DT_LNK) {  // a relative link with ".." inside must still lead inside
      char text[PATH_MAX];
      ssize_t n = readlinkat(dirfd(stack.back().dir), de->d_name, text, sizeof text - 1);
      std::string_view t(text, n > 0 ? static_cast<size_t>(n) : 0);
      std::string_view dir = std::string_view(will).substr(0, will.size() - name.size() - 1);
      if (n > 0 && t[0] != '/' && !StaysInside(dir, t)) {
        close_all();
        Deny(op, subject, "the symlink " + suffix + " would lead out of its mount");
        return kEperm;
      }
    }
    bool is_dir = type == DT_DIR;
    if (is_dir) {
      int sub = openat(dirfd(stack.back().dir), de->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (!push(sub, std::move(suffix))) {
        close_all();
        Deny(op, subject, "cannot read the directory to check what it holds");
        return kEperm;
      }
    }
  }
  return kSuccess;
}

Errno Fs::CheckLinkText(std::string_view op, std::string_view subject, int mount,
                        std::string_view dir_rel, std::string_view target) {
  // ".." only at the start, and no more of them than the link's directory is deep: the
  // link's own directory is a real one, so leading ".." climbs exactly as far as it reads,
  // and the names after it only descend (through links that obey the same rule, or the
  // user's, checked below). A ".." after a name could climb out of a link the name is
  // ("d -> ." then "x -> d/../.."). Moving such a link later is checked the same way.
  std::vector<std::string_view> comps;
  SplitComponents(target, &comps);
  size_t leading = 0;
  while (leading < comps.size() && comps[leading] == "..") ++leading;
  bool inner_dotdot = std::find(comps.begin() + static_cast<ptrdiff_t>(leading), comps.end(),
                                std::string_view("..")) != comps.end();
  std::string lexical;
  if (target.empty() || target[0] == '/' || inner_dotdot ||
      !JoinLexical(dir_rel, target, &lexical)) {
    Deny(op, subject,
         "symlink target '" + std::string(target) +
             "' must be relative, with '..' only at its start and staying in its mount");
    return kEperm;
  }
  if (hidden_.HiddenOnTheWay(Context(mount), lexical, true)) {
    Deny(op, subject, "symlink target is a hidden path");
    return kEperm;
  }
  if (IsProtected(mount, lexical)) {  // also before it exists
    Deny(op, subject, "symlink target is a protected path");
    return kEperm;
  }
  // Existing links on the way (the user's own, which may point anywhere) are followed the
  // way a host program would, but only beneath the mount.
  int fd = OpenAt2(mount_fd_[static_cast<size_t>(mount)], lexical, O_PATH, kResolve);
  if (fd < 0) {
    if (errno == EXDEV) {
      Deny(op, subject, "symlink target leads out of its mount through an existing link");
      return kEperm;
    }
    return kSuccess;  // dangling (or looping): nothing to lead to yet
  }
  std::string real;
  bool ok = RealRel(fd, mount, &real);
  close(fd);
  if (!ok) {
    Deny(op, subject, "symlink target resolves outside its mount");
    return kEperm;
  }
  if (IsHidden(mount, real)) {
    Deny(op, subject, "symlink target is a hidden path");
    return kEperm;
  }
  if (IsProtected(mount, real)) {
    Deny(op, subject, "symlink target is a protected path");
    return kEperm;
  }
  return kSuccess;
}

Errno Fs::CheckRelocation(std::string_view op, std::string_view subject, int mount, int parent_fd,
                          const std::string& name, const std::string& from_rel,
                          const std::string& to_dir, const std::string& to_rel, bool rename) {
  struct stat st {};
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return kSuccess;  // the rename or link itself will answer
  }
  if (S_ISLNK(st.st_mode)) {
    // Moving a link changes where a relative one leads: it must still lead inside.
    char text[PATH_MAX];
    ssize_t n = readlinkat(parent_fd, name.c_str(), text, sizeof text - 1);
    std::string_view t(text, n > 0 ? static_cast<size_t>(n) : 0);
    if (n <= 0 || t[0] == '/' || !StaysInside(to_dir, t)) {
      Deny(op, subject, "a symlink that would lead out of its mount cannot be moved or linked");
      return kEperm;
    }
  }
  int dir_fd = -1;
  if (rename && S_ISDIR(st.st_mode)) {
    dir_fd = OpenAt2(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                     kResolve | RESOLVE_NO_SYMLINKS);
    if (dir_fd < 0) {
      Deny(op, subject, "cannot read the directory to check what it holds");
      return kEperm;
    }
  }
  return CheckMove(op, subject, mount, dir_fd, from_rel, to_rel);
}

Errno Fs::ChargeFileWrite(std::string_view op, int fd, uint64_t pos, uint64_t bytes,
                          uint64_t* allowed) {
  struct stat st {};
  uint64_t hole = 0;
  if (bytes > 0 && pos > 0 && fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      pos > static_cast<uint64_t>(st.st_size)) {
    hole = pos - static_cast<uint64_t>(st.st_size);
  }
  if (hole > 0) {
    uint64_t got = 0;
    if (Errno r = ChargeWrite(op, hole, &got)) return r;
    if (got < hole) {
      Deny(op, "fd", "quota of written bytes reached (a write past the end grows the file)");
      return kEdquot;
    }
  }
  uint64_t room =
      req_.limits.max_write_bytes - std::min(bytes_written_ + hole, req_.limits.max_write_bytes);
  if (bytes > 0 && room == 0) {
    Deny(op, "fd",
         "quota of " + std::to_string(req_.limits.max_write_bytes) + " written bytes reached");
    return kEdquot;
  }
  *allowed = std::min(bytes, room);
  bytes_written_ += hole;  // charged up front: a write that then fails keeps it charged
  return kSuccess;
}

// ---- fd operations ----

Errno Fs::Close(uint32_t fd) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (e->host_fd >= 0) close(e->host_fd);
  DropListing(e);
  if (e->kind != FdKind::kStdio && !e->preopen) --open_count_;
  table_[fd].reset();
  return kSuccess;
}

Errno Fs::Renumber(uint32_t from, uint32_t to) {
  if (!Get(from) || !Get(to)) return kEbadf;
  if (from == to) return kSuccess;
  Close(to);
  table_[to] = std::move(table_[from]);
  return kSuccess;
}

Errno Fs::FdstatGet(uint32_t fd, FdStat* out) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  out->filetype = e->filetype;
  out->flags = e->fdflags;
  out->rights = e->rights;
  out->inheriting = e->inheriting;
  return kSuccess;
}

Errno Fs::FdstatSetFlags(uint32_t fd, uint16_t flags) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (!(e->rights & kRightFdFdstatSetFlags)) return kEnotcapable;
  if (flags & (kFdflagDsync | kFdflagRsync | kFdflagSync)) return kEnotsup;
  if (flags & ~(kFdflagAppend | kFdflagNonblock | kFdflagDsync | kFdflagRsync | kFdflagSync)) {
    return kEinval;
  }
  if (e->kind == FdKind::kFile) {
    int fl = fcntl(e->host_fd, F_GETFL);
    if (fl < 0) return FromHostErrno(errno);
    fl &= ~(O_APPEND | O_NONBLOCK);
    if (flags & kFdflagAppend) fl |= O_APPEND;
    if (flags & kFdflagNonblock) fl |= O_NONBLOCK;
    if (fcntl(e->host_fd, F_SETFL, fl) < 0) return FromHostErrno(errno);
  }
  e->fdflags = flags;
  return kSuccess;
}

Errno Fs::FdstatSetRights(uint32_t fd, uint64_t rights, uint64_t inheriting) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if ((rights & ~e->rights) || (inheriting & ~e->inheriting)) return kEnotcapable;
  e->rights = rights;
  e->inheriting = inheriting;
  return kSuccess;
}

Errno Fs::PrestatDirName(uint32_t fd, std::string* name) {
  FdEntry* e = Get(fd);
  if (!e || !e->preopen) return kEbadf;
  *name = req_.mounts[static_cast<size_t>(e->mount)].guest_path;
  return kSuccess;
}

Errno Fs::Read(uint32_t fd, std::span<const iovec> iov, uint64_t* n) {
  // An fd opened without this access mode is EBADF (as Wasmtime answers), before rights.
  if (FdEntry* x = Get(fd); x && x->kind == FdKind::kFile && !x->readable) return kEbadf;
  FdEntry* e;
  if (Errno r = FileFor(fd, kRightFdRead, &e)) return r;
  ssize_t got;
  do {
    got = readv(e->host_fd, iov.data(), static_cast<int>(iov.size()));
  } while (got < 0 && errno == EINTR);
  if (got < 0) return FromHostErrno(errno);
  *n = static_cast<uint64_t>(got);
  return kSuccess;
}

Errno Fs::Pread(uint32_t fd, std::span<const iovec> iov, uint64_t offset, uint64_t* n) {
  // An fd opened without this access mode is EBADF (as Wasmtime answers), before rights.
  if (FdEntry* x = Get(fd); x && x->kind == FdKind::kFile && !x->readable) return kEbadf;
  FdEntry* e;
  if (Errno r = FileFor(fd, kRightFdRead | kRightFdSeek, &e)) return r;
  if (offset > static_cast<uint64_t>(INT64_MAX)) return kEinval;
  ssize_t got;
  do {
    got = preadv(e->host_fd, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(offset));
  } while (got < 0 && errno == EINTR);
  if (got < 0) return FromHostErrno(errno);
  *n = static_cast<uint64_t>(got);
  return kSuccess;
}

namespace {
// Trims an iovec list to at most `limit` bytes.
std::vector<iovec> Trim(std::span<const iovec> iov, uint64_t limit) {
  std::vector<iovec> out;
  for (const iovec& v : iov) {
    if (limit == 0) break;
    iovec t = v;
    if (t.iov_len > limit) t.iov_len = limit;
    limit -= t.iov_len;
    out.push_back(t);
  }
  return out;
}
uint64_t Total(std::span<const iovec> iov) {
  uint64_t t = 0;
  for (const iovec& v : iov) t += v.iov_len;
  return t;
}
}  // namespace

Errno Fs::Write(uint32_t fd, std::span<const iovec> iov, uint64_t* n) {
  // An fd opened without this access mode is EBADF (as Wasmtime answers), before rights.
  if (FdEntry* x = Get(fd); x && x->kind == FdKind::kFile && !x->writable) return kEbadf;
  FdEntry* e;
  if (Errno r = FileFor(fd, kRightFdWrite, &e)) return r;
  uint64_t allowed, pos = 0;
  // Writing on from an offset at or before the end leaves no hole; only an fd whose offset
  // may have passed the end pays the two system calls of finding out.
  bool check = e->kind == FdKind::kFile && !(e->fdflags & kFdflagAppend) &&
               (e->may_pass_end || e->shrinks != shrinks_);
  if (check) {
    off_t cur = lseek(e->host_fd, 0, SEEK_CUR);
    if (cur > 0) pos = static_cast<uint64_t>(cur);
  }
  if (Errno r = ChargeFileWrite("fd_write", check ? e->host_fd : -1, pos, Total(iov), &allowed)) {
    return r;
  }
  std::vector<iovec> v = Trim(iov, allowed);
  ssize_t put;
  do {
    put = writev(e->host_fd, v.data(), static_cast<int>(v.size()));
  } while (put < 0 && errno == EINTR);
  if (put < 0) return FromHostErrno(errno);
  bytes_written_ += static_cast<uint64_t>(put);
  if (check) {  // the offset is now at or before the end
    e->may_pass_end = false;
    e->shrinks = shrinks_;
  }
  *n = static_cast<uint64_t>(put);
  return kSuccess;
}

Errno Fs::Pwrite(uint32_t fd, std::span<const iovec> iov, uint64_t offset, uint64_t* n) {
  // An fd opened without this access mode is EBADF (as Wasmtime answers), before rights.
  if (FdEntry* x = Get(fd); x && x->kind == FdKind::kFile && !x->writable) return kEbadf;
  FdEntry* e;
  if (Errno r = FileFor(fd, kRightFdWrite | kRightFdSeek, &e)) return r;
  if (offset > static_cast<uint64_t>(INT64_MAX)) return kEinval;
  uint64_t allowed;
  uint64_t pos = (e->fdflags & kFdflagAppend) ? 0 : offset;
  if (Errno r = ChargeFileWrite("fd_pwrite", e->host_fd, pos, Total(iov), &allowed)) return r;
  std::vector<iovec> v = Trim(iov, allowed);
  ssize_t put;
  do {
    // pwritev ignores O_APPEND on Linux only with RWF flags; with O_APPEND plain pwrite
    // appends, which matches what a POSIX guest expects from its host.
    put = pwritev(e->host_fd, v.data(), static_cast<int>(v.size()), static_cast<off_t>(offset));
  } while (put < 0 && errno == EINTR);
  if (put < 0) return FromHostErrno(errno);
  bytes_written_ += static_cast<uint64_t>(put);
  *n = static_cast<uint64_t>(put);
  return kSuccess;
}

Errno Fs::Seek(uint32_t fd, int64_t offset, uint8_t whence, uint64_t* pos) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (e->kind == FdKind::kStdio) return kEspipe;
  if (e->kind == FdKind::kDir) return kEbadf;
  uint64_t need = (whence == kWhenceCur && offset == 0) ? kRightFdTell : kRightFdSeek;
  if (!(e->rights & need)) return kEnotcapable;
  int w = whence == kWhenceSet   ? SEEK_SET
          : whence == kWhenceCur ? SEEK_CUR
          : whence == kWhenceEnd ? SEEK_END
                                 : -1;
  if (w < 0) return kEinval;
  off_t r = lseek(e->host_fd, static_cast<off_t>(offset), w);
  if (r < 0) return FromHostErrno(errno);
  if (whence != kWhenceCur || offset != 0) e->may_pass_end = true;
  *pos = static_cast<uint64_t>(r);
  return kSuccess;
}

Errno Fs::Tell(uint32_t fd, uint64_t* pos) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (e->kind == FdKind::kStdio) return kEspipe;
  if (e->kind == FdKind::kDir) return kEbadf;
  if (!(e->rights & kRightFdTell)) return kEnotcapable;
  off_t r = lseek(e->host_fd, 0, SEEK_CUR);
  if (r < 0) return FromHostErrno(errno);
  *pos = static_cast<uint64_t>(r);
  return kSuccess;
}

Errno Fs::Sync(uint32_t fd, bool data_only) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (e->kind == FdKind::kStdio) return kEinval;
  if (!(e->rights & (data_only ? kRightFdDatasync : kRightFdSync))) return kEnotcapable;
  if ((data_only ? fdatasync(e->host_fd) : fsync(e->host_fd)) != 0) return FromHostErrno(errno);
  return kSuccess;
}

Errno Fs::Advise(uint32_t fd, uint64_t offset, uint64_t len, uint8_t advice) {
  FdEntry* e;
  if (Errno r = FileFor(fd, kRightFdAdvise, &e)) return r;
  if (advice > 5) return kEinval;
  if (e->kind == FdKind::kStdio) return kEspipe;
  static const int kAdvice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                                POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED,   POSIX_FADV_NOREUSE};
  if (offset > static_cast<uint64_t>(INT64_MAX) || len > static_cast<uint64_t>(INT64_MAX)) {
    return kEinval;
  }
  int r = posix_fadvise(e->host_fd, static_cast<off_t>(offset), static_cast<off_t>(len),
                        kAdvice[advice]);
  return FromHostErrno(r);
}

Errno Fs::Allocate(uint32_t fd, uint64_t offset, uint64_t len) {
  FdEntry* e;
  if (Errno r = FileFor(fd, kRightFdAllocate, &e)) return r;
  if (e->kind == FdKind::kStdio) return kEspipe;
  if (!e->writable) return kEbadf;
  if (offset > static_cast<uint64_t>(INT64_MAX) || len > static_cast<uint64_t>(INT64_MAX) ||
      offset + len > static_cast<uint64_t>(INT64_MAX)) {
    return kEfbig;
  }
  if (len == 0) return kEinval;
  struct stat st {};
  if (fstat(e->host_fd, &st) != 0) return FromHostErrno(errno);
  uint64_t end = offset + len, size = static_cast<uint64_t>(st.st_size);
  // Real blocks count as much as growth: allocating inside a sparse hole takes disk space
  // without changing the size, so the whole range is charged, or the growth if larger.
  uint64_t growth = end > size ? end - size : 0, charge = std::max(growth, len), allowed = 0;
  if (Errno r = ChargeWrite("fd_allocate", charge, &allowed)) return r;
  if (allowed < charge) {
    Deny("fd_allocate", "fd", "quota of written bytes reached");
    return kEdquot;
  }
  int r = posix_fallocate(e->host_fd, static_cast<off_t>(offset), static_cast<off_t>(len));
  if (r != 0) return FromHostErrno(r);
  bytes_written_ += charge;
  return kSuccess;
}

Errno Fs::FilestatGet(uint32_t fd, FileStat* out) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (!(e->rights & kRightFdFilestatGet)) return kEnotcapable;
  if (e->kind == FdKind::kStdio) {
    *out = FileStat{};
    out->filetype = e->filetype;
    return kSuccess;
  }
  struct stat st {};
  if (fstat(e->host_fd, &st) != 0) return FromHostErrno(errno);
  *out = ToFileStat(st);
  return kSuccess;
}

Errno Fs::FilestatSetSize(uint32_t fd, uint64_t size) {
  FdEntry* e;
  if (Errno r = FileFor(fd, kRightFdFilestatSetSize, &e)) return r;
  if (e->kind == FdKind::kStdio) return kEinval;
  if (!e->writable) return kEbadf;
  if (size > static_cast<uint64_t>(INT64_MAX)) return kEfbig;
  struct stat st {};
  if (fstat(e->host_fd, &st) != 0) return FromHostErrno(errno);
  uint64_t cur = static_cast<uint64_t>(st.st_size);
  uint64_t growth = size > cur ? size - cur : 0, allowed = 0;
  if (Errno r = ChargeWrite("fd_filestat_set_size", growth, &allowed)) return r;
  if (allowed < growth) {
    Deny("fd_filestat_set_size", "fd", "quota of written bytes reached");
    return kEdquot;
  }
  if (ftruncate(e->host_fd, static_cast<off_t>(size)) != 0) return FromHostErrno(errno);
  if (size < cur) ++shrinks_;
  bytes_written_ += growth;
  return kSuccess;
}

Errno Fs::FilestatSetTimes(uint32_t fd, uint64_t atim, uint64_t mtim, uint16_t fst) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (!(e->rights & kRightFdFilestatSetTimes)) return kEnotcapable;
  timespec ts[2];
  if (!TimesFrom(atim, mtim, fst, ts)) return kEinval;
  if (e->kind == FdKind::kStdio) return kEbadf;
  if (e->mount >= 0 && req_.mounts[static_cast<size_t>(e->mount)].read_only) {
    Deny("fd_filestat_set_times", "fd", "mount is read-only");
    return kEperm;
  }
  if (e->protect) {
    Deny("fd_filestat_set_times", "fd", "protected path is read-only");
    return kEperm;
  }
  if (futimens(e->host_fd, ts) != 0) return FromHostErrno(errno);
  return kSuccess;
}

Errno Fs::Readdir(uint32_t fd, std::span<uint8_t> buf, uint64_t cookie, uint32_t* used) {
  FdEntry* e = Get(fd);
  if (!e) return kEbadf;
  if (e->kind != FdKind::kDir) return kEnotdir;
  if (!(e->rights & kRightFdReaddir)) return kEnotcapable;
  if (cookie == 0 || !e->listed) {
    DropListing(e);
    int dfd = -1;
    if (e->rel.empty()) {
      dfd =
          openat(mount_fd_[static_cast<size_t>(e->mount)], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0) return FromHostErrno(errno);
    } else {
      std::string rel;
      if (Errno r = OpenAt("fd_readdir", e->mount, e->rel, e->rel, O_RDONLY | O_DIRECTORY, true,
                           &dfd, &rel)) {
        return r;
      }
    }
    DIR* d = fdopendir(dfd);
    if (!d) {
      close(dfd);
      return FromHostErrno(errno);
    }
    struct stat self {};
    fstat(dirfd(d), &self);
    uint64_t up_ino = self.st_ino;
    if (!e->rel.empty()) {
      struct stat up {};
      if (fstatat(dirfd(d), "..", &up, 0) == 0) up_ino = up.st_ino;
    }
    e->listing.push_back({".", self.st_ino, kFileTypeDirectory});
    e->listing.push_back({"..", up_ino, kFileTypeDirectory});
    e->listing_bytes = 2 * sizeof(DirEntry);
    errno = 0;
    while (struct dirent* de = readdir(d)) {
      std::string_view name(de->d_name);
      if (name == "." || name == "..") continue;
      if (hidden_.HiddenLeaf(Context(e->mount), e->rel, name)) continue;
      // Host memory the guest makes moat hold is bounded: a snapshot counts its names.
      e->listing_bytes += sizeof(DirEntry) + name.size();
      if (listing_bytes_ + e->listing_bytes > Limits::kMaxListingBytes) {
        closedir(d);
        e->listing.clear();
        e->listing.shrink_to_fit();
        e->listing_bytes = 0;
        Deny("fd_readdir", e->rel.empty() ? "." : e->rel,
             "directory listings would hold more than " +
                 std::to_string(Limits::kMaxListingBytes >> 20) +
                 " MiB of host memory; close or finish other listings");
        return kEnomem;
      }
      DirEntry ent{std::string(name), de->d_ino, FileTypeOfDirent(de->d_type)};
      if (de->d_type == DT_UNKNOWN) {
        struct stat st {};
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
          ent.type = FileTypeOf(st.st_mode);
        }
      }
      e->listing.push_back(std::move(ent));
    }
    closedir(d);
    e->listed = true;
    listing_bytes_ += e->listing_bytes;
  }
  size_t pos = 0;
  uint64_t i = cookie;
  for (; i < e->listing.size() && pos < buf.size(); ++i) {
    const DirEntry& de = e->listing[i];
    uint8_t head[24] = {};
    uint64_t next = i + 1;
    uint32_t namlen = static_cast<uint32_t>(de.name.size());
    memcpy(head, &next, 8);
    memcpy(head + 8, &de.ino, 8);
    memcpy(head + 16, &namlen, 4);
    head[20] = de.type;
    size_t n = std::min<size_t>(sizeof head, buf.size() - pos);
    memcpy(buf.data() + pos, head, n);
    pos += n;
    n = std::min<size_t>(de.name.size(), buf.size() - pos);
    memcpy(buf.data() + pos, de.name.data(), n);
    pos += n;
  }
  // Read to the end with room to spare: the guest has it all (a short buffer is how
  // wasi-libc and Rust's std see the end), so the snapshot's memory goes back.
  if (i >= e->listing.size() && pos < buf.size()) DropListing(e);
  *used = static_cast<uint32_t>(pos);
  return kSuccess;
}

void Fs::DropListing(FdEntry* e) {
  listing_bytes_ -= std::min(listing_bytes_, e->listed ? e->listing_bytes : 0);
  e->listing.clear();
  e->listing.shrink_to_fit();
  e->listing_bytes = 0;
  e->listed = false;
}

// ---- path operations ----

Errno Fs::PathOpen(uint32_t dirfd, uint32_t lookup, std::string_view path, uint16_t oflags,
                   uint64_t rights, uint64_t inheriting, uint16_t fdflags, uint32_t* out) {
  constexpr std::string_view op = "path_open";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathOpen, &d)) return e;
  if (lookup & ~kLookupSymlinkFollow) return kEinval;
  if (Errno e = CheckPath(op, path)) return e;
  if (path.empty()) return kEnoent;
  if (oflags & ~(kOflagCreat | kOflagDirectory | kOflagExcl | kOflagTrunc)) return kEinval;
  bool create = oflags & kOflagCreat, excl = oflags & kOflagExcl, trunc = oflags & kOflagTrunc;
  bool follow = lookup & kLookupSymlinkFollow;
  if (create && !(d->rights & kRightPathCreateFile)) return kEnotcapable;
  if (trunc && !(d->rights & kRightPathFilestatSetSize)) return kEnotcapable;
  uint64_t eff = rights & d->inheriting;
  bool want_read = eff & (kRightFdRead | kRightFdReaddir);
  bool want_write = (eff & kWriteRights) || (fdflags & kFdflagAppend);
  if (create || trunc || want_write) {
    if (Errno e = RefuseReadOnly(op, *d, path)) return e;
  }
  if (open_count_ >= req_.limits.max_open_fds) {
    Deny(op, path, "quota of " + std::to_string(req_.limits.max_open_fds) + " open fds reached");
    return kEmfile;
  }
  bool mutate = create || trunc || want_write;
  int flags = want_write ? (want_read ? O_RDWR : O_WRONLY) : O_RDONLY;
  if (oflags & kOflagDirectory) flags |= O_DIRECTORY;
  // Truncation waits until the opened file is known not to be protected (below).

  if (fdflags & kFdflagAppend) flags |= O_APPEND;
  if (fdflags & kFdflagDsync) flags |= O_DSYNC;
  if (fdflags & kFdflagSync) flags |= O_SYNC;
  if (fdflags & kFdflagRsync) flags |= O_RSYNC;
  // Never block in open (a FIFO would wait for a writer with no deadline).
  flags |= O_NONBLOCK;

  int fd = -1;
  std::string rel;
  bool created = false;  // the file did not exist: its pre-image (nothing) is already kept
  if (create) {
    Parent par;
    if (Errno e = ResolveParent(op, *d, path, &par)) return e;
    std::string_view name = StripSlashes(par.name);
    std::string full = JoinRel(par.rel, name);
    if (IsHidden(par.mount, full)) {
      Deny(op, path, "hidden path cannot be created");
      return kEperm;
    }
    if (Errno e = RefuseProtected(op, d->mount, path, full)) return e;
    std::string nm(par.name);
    struct stat st {};
    bool exists = fstatat(par.fd, nm.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && excl) return kEexist;
    if (exists && S_ISLNK(st.st_mode)) {
      if (!follow) return kEloop;
      // An existing symlink: open what it points to (beneath), never create through it.
      if (Errno e = OpenBeneath(op, *d, path, flags, true, &fd, &rel)) return e;
    } else if (exists) {
      fd = OpenAt2(par.fd, nm, flags, kResolve | RESOLVE_NO_SYMLINKS);
      if (fd < 0) return FromHostErrno(errno);
      rel = full;
    } else {
      if (name == "." || name == "..") return kEisdir;
      if (Errno e = ChargeCreate(op, path)) return e;
      BeforeChange(par.mount, full, par.fd, name, false);
      created = true;
      fd = OpenAt2(par.fd, nm, flags | O_CREAT | O_EXCL, kResolve | RESOLVE_NO_SYMLINKS);
      if (fd < 0) {
        --files_created_;
        int err = errno;
        if (err == EEXIST && !excl) {  // created by someone else meanwhile: open it
          fd = OpenAt2(par.fd, nm, flags, kResolve | RESOLVE_NO_SYMLINKS);
          if (fd < 0) return FromHostErrno(errno);
        } else {
          return FromHostErrno(err);
        }
      } else if (struct stat cs{}; fstat(fd, &cs) == 0) {
        NoteCreated(cs);
      }
      rel = full;
    }
  } else {
    if (Errno e = OpenBeneath(op, *d, path, flags, follow, &fd, &rel)) return e;
  }

  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return FromHostErrno(err);
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    close(fd);
    Deny(op, path, "not a regular file or directory");
    return kEacces;
  }
  bool is_protected = IsProtected(d->mount, rel);
  if (mutate && is_protected) {
    close(fd);
    Deny(op, path, "protected path is read-only");
    return kEperm;
  }
  // Opened to be changed: what it holds now is kept first (checkpoints).
  if (mutate && !created && req_.preimages && S_ISREG(st.st_mode)) KeepOpened(d->mount, rel);
  if (trunc) {
    if (S_ISDIR(st.st_mode)) {
      close(fd);
      return kEisdir;
    }
    int tfd = fd;
    if (!want_write) {  // truncating through a read-only open: a writable twin of the fd
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
      tfd = open(link, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    }
    int r = tfd >= 0 ? ftruncate(tfd, 0) : -1;
    int err = errno;
    if (tfd >= 0 && tfd != fd) close(tfd);
    if (r != 0) {
      close(fd);
      return FromHostErrno(err);
    }
    ++shrinks_;
  }
  // O_NONBLOCK changes nothing for regular files and directories (the only kinds opened),
  // so it is left set rather than cleared with two more syscalls; fdflags reports what the
  // guest asked for.
  FdEntry e;
  e.host_fd = fd;
  e.mount = d->mount;
  e.fdflags = fdflags;
  e.protect = is_protected;
  e.shrinks = shrinks_;
  // A file with content the policy marks untrusted, opened for reading: the result names it
  // (a file this open truncates, or an empty one, holds nothing to read).
  if (want_read && !trunc && S_ISREG(st.st_mode) && st.st_size > 0 && !untrusted_.empty() &&
      (mount_untrusted_[static_cast<size_t>(d->mount)] ||
       untrusted_.Hidden(Context(d->mount), rel))) {
    ++untrusted_read_count_;
    const std::string& root = req_.mounts[static_cast<size_t>(d->mount)].guest_path;
    std::string guest = rel.empty() ? root : root == "/" ? "/" + rel : root + "/" + rel;
    if (untrusted_reads_.size() < kMaxUntrustedReadsListed &&
        std::find(untrusted_reads_.begin(), untrusted_reads_.end(), guest) ==
            untrusted_reads_.end()) {
      untrusted_reads_.push_back(std::move(guest));
    }
  }
  if (S_ISDIR(st.st_mode)) {
    e.kind = FdKind::kDir;
    e.filetype = kFileTypeDirectory;
    e.rights = rights & d->inheriting & kDirRights;
    e.inheriting = inheriting & d->inheriting;
    e.readable = true;
    e.rel = std::move(rel);
  } else {
    e.kind = FdKind::kFile;
    e.filetype = kFileTypeRegular;
    e.readable = want_read;
    e.writable = want_write;
    e.rights = eff & kFileRights;
    if (!e.readable) e.rights &= ~kRightFdRead;
    if (!e.writable) e.rights &= ~kRightFdWrite;
    e.inheriting = 0;
  }
  *out = Insert(std::move(e));
  return kSuccess;
}

Errno Fs::PathFilestatGet(uint32_t dirfd, uint32_t lookup, std::string_view path, FileStat* out) {
  constexpr std::string_view op = "path_filestat_get";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathFilestatGet, &d)) return e;
  if (lookup & ~kLookupSymlinkFollow) return kEinval;
  if (Errno e = CheckPath(op, path)) return e;
  if (path.empty()) return kEnoent;
  bool follow = lookup & kLookupSymlinkFollow;
  struct stat st {};
  // Fast path, one system call: a plain name in a directory the guest opened is looked up
  // by its real path from the mount's root (the directory's own fd is never used), so a
  // directory moved out of the mount after the guest opened it shows nothing. The path
  // holds no symlink when the directory was opened, and none a guest makes can lead out.
  if (path.find('/') == std::string_view::npos && path != "." && path != "..") {
    if (hidden_.HiddenLeaf(Context(d->mount), d->rel, path)) {
      Deny(op, path, "hidden path");
      return kEnoent;
    }
    std::string full = d->rel.empty() ? std::string(path) : d->rel + "/" + std::string(path);
    if (fstatat(mount_fd_[static_cast<size_t>(d->mount)], full.c_str(), &st, AT_SYMLINK_NOFOLLOW) !=
        0) {
      return FromHostErrno(errno);
    }
    if (!follow || !S_ISLNK(st.st_mode)) {
      *out = ToFileStat(st);
      return kSuccess;
    }
  }
  int fd;
  std::string rel;
  if (Errno e = OpenBeneath(op, *d, path, O_PATH, follow, &fd, &rel)) return e;
  int r = fstat(fd, &st);
  int err = errno;
  close(fd);
  if (r != 0) return FromHostErrno(err);
  *out = ToFileStat(st);
  return kSuccess;
}

Errno Fs::PathFilestatSetTimes(uint32_t dirfd, uint32_t lookup, std::string_view path,
                               uint64_t atim, uint64_t mtim, uint16_t fst) {
  constexpr std::string_view op = "path_filestat_set_times";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathFilestatSetTimes, &d)) return e;
  if (lookup & ~kLookupSymlinkFollow) return kEinval;
  if (Errno e = CheckPath(op, path)) return e;
  timespec ts[2];
  if (!TimesFrom(atim, mtim, fst, ts)) return kEinval;
  if (path.empty()) return kEnoent;
  if (Errno e = RefuseReadOnly(op, *d, path)) return e;
  bool follow = lookup & kLookupSymlinkFollow;
  std::string_view parent, name;
  SplitLast(path, &parent, &name);
  std::string_view bare = StripSlashes(name);
  if (!follow && bare != "." && bare != ".." && name.find('/') == std::string_view::npos) {
    Parent par;
    if (Errno e = ResolveParent(op, *d, path, &par)) return e;
    if (IsHidden(par.mount, JoinRel(par.rel, bare))) {
      Deny(op, path, "hidden path");
      return kEnoent;
    }
    if (Errno e = RefuseProtected(op, d->mount, path, JoinRel(par.rel, bare))) return e;
    std::string nm(par.name);
    if (utimensat(par.fd, nm.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return FromHostErrno(errno);
    return kSuccess;
  }
  int fd;
  std::string rel;
  if (Errno e = OpenBeneath(op, *d, path, O_PATH, follow, &fd, &rel)) return e;
  if (IsProtected(d->mount, rel)) {
    close(fd);
    Deny(op, path, "protected path is read-only");
    return kEperm;
  }
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  int r = utimensat(AT_FDCWD, link, ts, 0);
  int err = errno;
  close(fd);
  return r == 0 ? kSuccess : FromHostErrno(err);
}

Errno Fs::PathCreateDirectory(uint32_t dirfd, std::string_view path) {
  constexpr std::string_view op = "path_create_directory";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathCreateDirectory, &d)) return e;
  if (Errno e = CheckPath(op, path)) return e;
  if (path.empty()) return kEnoent;
  if (Errno e = RefuseReadOnly(op, *d, path)) return e;
  Parent par;
  if (Errno e = ResolveParent(op, *d, path, &par)) return e;
  std::string_view bare = StripSlashes(par.name);
  if (bare == "." || bare == "..") return kEexist;
  if (IsHidden(par.mount, JoinRel(par.rel, bare))) {
    Deny(op, path, "hidden path cannot be created");
    return kEperm;
  }
  if (Errno e = RefuseProtected(op, d->mount, path, JoinRel(par.rel, bare))) return e;
  if (Errno e = ChargeCreate(op, path)) return e;
  std::string nm(par.name);
  BeforeChange(par.mount, JoinRel(par.rel, bare), par.fd, bare, false);
  if (mkdirat(par.fd, nm.c_str(), 0777) != 0) {
    --files_created_;
    return FromHostErrno(errno);
  }
  if (struct stat st{}; fstatat(par.fd, nm.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    NoteCreated(st);
  }
  return kSuccess;
}

Errno Fs::PathRemoveDirectory(uint32_t dirfd, std::string_view path) {
  constexpr std::string_view op = "path_remove_directory";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathRemoveDirectory, &d)) return e;
  if (Errno e = CheckPath(op, path)) return e;
  if (path.empty()) return kEnoent;
  if (Errno e = RefuseReadOnly(op, *d, path)) return e;
  Parent par;
  if (Errno e = ResolveParent(op, *d, path, &par)) return e;
  std::string_view bare = StripSlashes(par.name);
  if (bare == ".") return kEinval;
  if (bare == "..") return kEnotempty;
  if (IsHidden(par.mount, JoinRel(par.rel, bare))) {
    Deny(op, path, "hidden path");
    return kEnoent;
  }
  if (Errno e = RefuseProtected(op, d->mount, path, JoinRel(par.rel, bare))) return e;
  std::string nm(par.name);
  struct stat st {};
  bool known = fstatat(par.fd, nm.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (known) BeforeChange(par.mount, JoinRel(par.rel, bare), par.fd, bare, false);
  if (unlinkat(par.fd, nm.c_str(), AT_REMOVEDIR) != 0) return FromHostErrno(errno);
  if (known) NoteRemoved(st);
  return kSuccess;
}

Errno Fs::PathUnlinkFile(uint32_t dirfd, std::string_view path) {
  constexpr std::string_view op = "path_unlink_file";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathUnlinkFile, &d)) return e;
  if (Errno e = CheckPath(op, path)) return e;
  if (path.empty()) return kEnoent;
  if (Errno e = RefuseReadOnly(op, *d, path)) return e;
  Parent par;
  if (Errno e = ResolveParent(op, *d, path, &par)) return e;
  std::string_view bare = StripSlashes(par.name);
  if (bare == "." || bare == "..") return kEisdir;
  if (IsHidden(par.mount, JoinRel(par.rel, bare))) {
    Deny(op, path, "hidden path");
    return kEnoent;
  }
  if (Errno e = RefuseProtected(op, d->mount, path, JoinRel(par.rel, bare))) return e;
  std::string nm(par.name);
  struct stat st {};
  bool known = fstatat(par.fd, nm.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (known) BeforeChange(par.mount, JoinRel(par.rel, bare), par.fd, bare, false);
  if (unlinkat(par.fd, nm.c_str(), 0) != 0) return FromHostErrno(errno);
  if (known) NoteRemoved(st);
  return kSuccess;
}

Errno Fs::PathRename(uint32_t dirfd, std::string_view from, uint32_t to_dirfd,
                     std::string_view to) {
  constexpr std::string_view op = "path_rename";
  FdEntry *d, *td;
  if (Errno e = DirFor(dirfd, kRightPathRenameSource, &d)) return e;
  if (Errno e = DirFor(to_dirfd, kRightPathRenameTarget, &td)) return e;
  if (Errno e = CheckPath(op, from)) return e;
  if (Errno e = CheckPath(op, to)) return e;
  if (from.empty() || to.empty()) return kEnoent;
  if (Errno e = RefuseReadOnly(op, *d, from)) return e;
  if (Errno e = RefuseReadOnly(op, *td, to)) return e;
  if (d->mount != td->mount) {
    Deny(op, to, "rename across mounts");
    return kExdev;
  }
  Parent a, b;
  if (Errno e = ResolveParent(op, *d, from, &a)) return e;
  if (Errno e = ResolveParent(op, *td, to, &b)) return e;
  std::string_view an = StripSlashes(a.name), bn = StripSlashes(b.name);
  if (an == "." || an == ".." || bn == "." || bn == "..") return kEbusy;
  if (IsHidden(a.mount, JoinRel(a.rel, an))) {
    Deny(op, from, "hidden path");
    return kEnoent;
  }
  if (IsHidden(b.mount, JoinRel(b.rel, bn))) {
    Deny(op, to, "hidden path cannot be a rename target");
    return kEperm;
  }
  std::string x(a.name), y(b.name);
  if (Errno e = CheckRelocation(op, from, d->mount, a.fd, x, JoinRel(a.rel, an), b.rel,
                                JoinRel(b.rel, bn), true)) {
    return e;
  }
  struct stat src {
  }, dst{};
  bool replaces = fstatat(b.fd, y.c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0 &&
                  fstatat(a.fd, x.c_str(), &src, AT_SYMLINK_NOFOLLOW) == 0 &&
                  (src.st_dev != dst.st_dev || src.st_ino != dst.st_ino);
  if (req_.preimages) {
    req_.preimages->BeforeMove(mount_real_[static_cast<size_t>(a.mount)], JoinRel(a.rel, an), a.fd,
                               an, JoinRel(b.rel, bn), b.fd, bn);
  }
  if (renameat(a.fd, x.c_str(), b.fd, y.c_str()) != 0) return FromHostErrno(errno);
  if (replaces) NoteRemoved(dst);
  MovedDirectory(JoinRel(a.rel, an), JoinRel(b.rel, bn));
  return kSuccess;
}

Errno Fs::PathLink(uint32_t dirfd, uint32_t lookup, std::string_view from, uint32_t to_dirfd,
                   std::string_view to) {
  constexpr std::string_view op = "path_link";
  FdEntry *d, *td;
  if (Errno e = DirFor(dirfd, kRightPathLinkSource, &d)) return e;
  if (Errno e = DirFor(to_dirfd, kRightPathLinkTarget, &td)) return e;
  if (lookup & ~kLookupSymlinkFollow) return kEinval;
  if (Errno e = CheckPath(op, from)) return e;
  if (Errno e = CheckPath(op, to)) return e;
  if (lookup & kLookupSymlinkFollow) return kEinval;
  if (from.empty() || to.empty()) return kEnoent;
  if (Errno e = RefuseReadOnly(op, *d, from)) return e;
  if (Errno e = RefuseReadOnly(op, *td, to)) return e;
  if (d->mount != td->mount) {
    Deny(op, to, "link across mounts");
    return kExdev;
  }
  Parent a, b;
  if (Errno e = ResolveParent(op, *d, from, &a)) return e;
  if (Errno e = ResolveParent(op, *td, to, &b)) return e;
  std::string_view an = StripSlashes(a.name), bn = StripSlashes(b.name);
  if (an == "." || an == "..") return kEperm;
  if (bn == "." || bn == "..") return kEexist;
  if (IsHidden(a.mount, JoinRel(a.rel, an))) {
    Deny(op, from, "hidden path");
    return kEnoent;
  }
  if (IsHidden(b.mount, JoinRel(b.rel, bn))) {
    Deny(op, to, "hidden path cannot be a link target");
    return kEperm;
  }
  std::string x(a.name), y(b.name);
  // A new name for a protected file would let it be written through that name.
  if (Errno e = CheckRelocation(op, from, d->mount, a.fd, x, JoinRel(a.rel, an), b.rel,
                                JoinRel(b.rel, bn), false)) {
    return e;
  }
  if (Errno e = ChargeCreate(op, to)) return e;
  // The file gets a second name: writes through it change the first one too, so that one
  // is kept now, while it has a single link.
  BeforeChange(a.mount, JoinRel(a.rel, an), a.fd, an, false);
  BeforeChange(b.mount, JoinRel(b.rel, bn), b.fd, bn, false);
  if (linkat(a.fd, x.c_str(), b.fd, y.c_str(), 0) != 0) {
    --files_created_;
    return FromHostErrno(errno);
  }
  if (struct stat st{}; fstatat(b.fd, y.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    NoteCreated(st);
  }
  return kSuccess;
}

Errno Fs::PathSymlink(std::string_view target, uint32_t dirfd, std::string_view path) {
  constexpr std::string_view op = "path_symlink";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathSymlink, &d)) return e;
  if (Errno e = CheckPath(op, path)) return e;
  if (target.size() > kMaxPathBytes) return kEnametoolong;
  if (target.find('\0') != std::string_view::npos) return kEinval;
  if (!ValidUtf8(target)) return kEilseq;
  if (path.empty() || target.empty()) return kEnoent;
  if (Errno e = RefuseReadOnly(op, *d, path)) return e;
  Parent par;
  if (Errno e = ResolveParent(op, *d, path, &par)) return e;
  std::string_view bare = StripSlashes(par.name);
  if (bare == "." || bare == "..") return kEexist;
  if (IsHidden(par.mount, JoinRel(par.rel, bare))) {
    Deny(op, path, "hidden path cannot be created");
    return kEperm;
  }
  if (Errno e = RefuseProtected(op, d->mount, path, JoinRel(par.rel, bare))) return e;
  // The link's text must keep inside the mount wherever the link is later moved, so that
  // no host program follows it out of the workspace.
  if (Errno e = CheckLinkText(op, path, d->mount, par.rel, target)) return e;
  if (Errno e = ChargeCreate(op, path)) return e;
  std::string t(target), nm(par.name);
  BeforeChange(par.mount, JoinRel(par.rel, bare), par.fd, bare, false);
  if (symlinkat(t.c_str(), par.fd, nm.c_str()) != 0) {
    --files_created_;
    return FromHostErrno(errno);
  }
  if (struct stat st{}; fstatat(par.fd, nm.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    NoteCreated(st);
  }
  return kSuccess;
}

Errno Fs::PathReadlink(uint32_t dirfd, std::string_view path, std::span<uint8_t> buf,
                       uint32_t* used) {
  constexpr std::string_view op = "path_readlink";
  FdEntry* d;
  if (Errno e = DirFor(dirfd, kRightPathReadlink, &d)) return e;
  if (Errno e = CheckPath(op, path)) return e;
  if (path.empty()) return kEnoent;
  Parent par;
  if (Errno e = ResolveParent(op, *d, path, &par)) return e;
  std::string_view bare = StripSlashes(par.name);
  if (bare == "." || bare == "..") return kEinval;
  if (IsHidden(par.mount, JoinRel(par.rel, bare))) {
    Deny(op, path, "hidden path");
    return kEnoent;
  }
  std::string nm(par.name);
  char tmp[PATH_MAX];
  ssize_t n = readlinkat(par.fd, nm.c_str(), tmp, sizeof tmp);
  if (n < 0) return FromHostErrno(errno);
  size_t copy = std::min<size_t>(static_cast<size_t>(n), buf.size());
  memcpy(buf.data(), tmp, copy);
  *used = static_cast<uint32_t>(copy);
  return kSuccess;
}

}  // namespace wasi
}  // namespace moat
