#include "execution/compile_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ctime>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "base/fs.h"
#include "base/sha256.h"
#include "execution/compile_step.h"

extern char** environ;

namespace moat {

namespace {

constexpr const char* kRuntimeHeaderDir = "/usr/src/wasm2c";

// Fixed flags. Stack-clash protection makes every frame probe its pages, so native stack
// exhaustion always lands in the guard page below the wasm stack. The optimisation level
// follows the size of the generated C (see OptLevelFor).
const char* const kFlags[] = {"-fPIC",
                              "-shared",
                              "-fvisibility=hidden",
                              "-fstack-clash-protection",
                              "-fno-stack-protector",
                              "-DNDEBUG",
                              "-w"};

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void RemoveTree(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child = path + "/" + name;
      struct stat st {};
      if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child);
      } else {
        unlink(child.c_str());
      }
    }
    closedir(d);
  }
  rmdir(path.c_str());
}

}  // namespace

Result<CCompiler> CCompiler::Find() {
  CCompiler c;
  const char* path_env = getenv("PATH");
  std::string paths = path_env ? path_env : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= paths.size()) {
    size_t end = paths.find(':', start);
    if (end == std::string::npos) end = paths.size();
    std::string cand = paths.substr(start, end - start) + "/cc";
    if (access(cand.c_str(), X_OK) == 0) {
      c.path_ = cand;
      break;
    }
    start = end + 1;
  }
  if (c.path_.empty()) {
    return MakeError(ErrorCode::kCompile, "no C compiler 'cc' on PATH (install gcc)");
  }
  char real[PATH_MAX];
  if (!realpath(c.path_.c_str(), real))
    return MakeError(ErrorCode::kCompile, Errno("cannot resolve " + c.path_));
  struct stat st {};
  if (stat(real, &st) != 0)
    return MakeError(ErrorCode::kCompile, Errno("cannot stat " + std::string(real)));
  auto header = ReadFile(std::string(kRuntimeHeaderDir) + "/wasm-rt.h", 1 << 20);
  if (!header) {
    return MakeError(ErrorCode::kCompile,
                     "wasm2c runtime header missing (install wabt): " + header.error().message);
  }
  std::string id = std::string(real) + "|" + std::to_string(st.st_size) + "|" +
                   std::to_string(st.st_mtim.tv_sec) + "|" + ToHex(Sha256(*header));
  for (const char* f : kFlags) id += std::string("|") + f;
  id += "|-O2 below " + std::to_string(kO2MaxSourceBytes) + " bytes of C, else -O1";
  c.identity_ = std::move(id);
  return c;
}

const char* CCompiler::OptLevelFor(uint64_t c_source_bytes) {
  return c_source_bytes <= kO2MaxSourceBytes ? "-O2" : "-O1";
}

Status CCompiler::Compile(const std::string& dir, const std::string& out_path,
                          uint64_t c_source_bytes, const CompileBudget& budget) const {
  std::string src = dir + "/moat_module.c";
  std::string inc = std::string("-I") + kRuntimeHeaderDir;
  ChildSpec spec;
  spec.argv = {path_, OptLevelFor(c_source_bytes)};
  for (const char* f : kFlags) spec.argv.emplace_back(f);
  spec.argv.push_back(inc);
  spec.argv.push_back("-o");
  spec.argv.push_back(out_path);
  spec.argv.push_back(src);
  // The user's environment, but temporaries go to the work folder, which is removed
  // whatever happens (gcc's own temporaries outlive a killed cc in $TMPDIR).
  for (char** e = environ; *e; ++e) {
    if (strncmp(*e, "TMPDIR=", 7) != 0) spec.env.emplace_back(*e);
  }
  spec.env.push_back("TMPDIR=" + dir);
  spec.cwd = dir;
  spec.stderr_path = dir + "/cc.log";
  spec.memory_bytes = budget.limits().memory_bytes;
  spec.cpu_seconds = budget.cpu_seconds();
  spec.file_bytes = CompileLimits::kMaxFileBytes;
  auto child = SupervisedChild::Start(spec);
  if (!child) return child.error();
  ChildEnd end = child->Wait(budget);
  if (end.kind == ChildEnd::kStopped) return budget.StopError();
  if (end.kind == ChildEnd::kExited && end.code == 0) return OkStatus();
  auto log = ReadFile(spec.stderr_path, 1 << 20);
  std::string first;
  if (log) {
    first.assign(log->begin(), log->end());
    if (first.size() > 2000) first.resize(2000);
  }
  // A limit that ended the compiler or one of its programs (cc reports theirs).
  if (end.kind == ChildEnd::kSignaled) {
    if (end.code == SIGXCPU) return budget.CpuError();
    if (end.code == SIGXFSZ) return budget.FileSizeError();
  }
  if (first.find("CPU time limit exceeded") != std::string::npos) return budget.CpuError();
  if (first.find("File size limit exceeded") != std::string::npos) return budget.FileSizeError();
  if (first.find("out of memory") != std::string::npos ||
      first.find("memory exhausted") != std::string::npos ||
      first.find("Cannot allocate memory") != std::string::npos) {
    return budget.MemoryError();
  }
  std::string how = end.kind == ChildEnd::kSignaled ? "signal " + std::to_string(end.code)
                                                    : "status " + std::to_string(end.code);
  return MakeError(ErrorCode::kCompile, "C compiler failed (" + how + "): " + first);
}

Result<CompileCache> CompileCache::Open(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (auto s = EnsurePrivateDir(dir); !s) return s.error();
  for (const char* sub : {"/index", "/objects", "/locks", "/tmp"}) {
    if (auto s = EnsurePrivateDir(dir + sub); !s) return s.error();
  }
  return CompileCache(std::move(dir));
}

std::string CompileCache::DefaultDir() {
  if (const char* d = getenv("MOAT_CACHE_DIR"); d && *d) return d;
  if (std::string d = UserCacheDir(); !d.empty()) return d;
  return "/tmp/moat-cache-" + std::to_string(geteuid());
}

namespace {

// The identity of an object file as the kernel keeps it. Any write, truncation, chmod or
// rename of the file moves its ctime, which a process without root cannot set back, so
// an unchanged fingerprint means unchanged bytes since the digest was last checked.
std::string Fingerprint(const struct stat& st) {
  return std::to_string(st.st_dev) + " " + std::to_string(st.st_ino) + " " +
         std::to_string(st.st_size) + " " + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec);
}

}  // namespace

Result<VerifiedObject> CompileCache::Find(const std::string& key) const {
  std::string index_path = dir_ + "/index/" + key;
  auto rec = ReadFile(index_path, 512);
  if (!rec) return VerifiedObject{};  // absent or unreadable: rebuild
  // "DIGEST\n", or "DIGEST\nFINGERPRINT CHECKED_AT\n" once a full check has passed.
  std::string text(rec->begin(), rec->end());
  size_t nl = text.find('\n');
  std::string digest = text.substr(0, nl);
  std::string recorded;
  if (nl != std::string::npos) {
    recorded = text.substr(nl + 1);
    while (!recorded.empty() && (recorded.back() == '\n' || recorded.back() == ' ')) {
      recorded.pop_back();
    }
  }
  while (!digest.empty() && digest.back() == ' ') digest.pop_back();
  if (!IsHexDigest(digest)) {
    unlink(index_path.c_str());
    return VerifiedObject{};
  }
  std::string obj = dir_ + "/objects/" + digest + ".so";
  Fd fd(open(obj.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.fd < 0) {
    unlink(index_path.c_str());
    return VerifiedObject{};
  }
  struct stat st {};
  if (fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) return VerifiedObject{};
  VerifiedObject found{obj, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  // The fingerprint line ends with the time of the last full check; older than a day, the
  // bytes are hashed again (so even corruption that keeps the inode's ctime is caught).
  time_t now = time(nullptr);
  size_t sp = recorded.rfind(' ');
  if (sp != std::string::npos && recorded.substr(0, sp) == Fingerprint(st)) {
    long long checked = atoll(recorded.c_str() + sp + 1);
    if (checked <= now && now - checked < 24 * 3600) return found;
  }
  // First use since it was built, the file changed, or the last check is old: hash it all.
  auto actual = Sha256Fd(fd.fd);
  if (!actual) return actual.error();
  if (ToHex(*actual) != digest) {
    // Corrupted or tampered: never load it.
    unlink(obj.c_str());
    unlink(index_path.c_str());
    return VerifiedObject{};
  }
  std::string updated =
      digest + "\n" + Fingerprint(st) + " " + std::to_string(static_cast<long long>(now)) + "\n";
  (void)WriteFileAtomic(dir_ + "/index", key, updated.data(), updated.size(), 0600);
  return found;
}

namespace {

// A compilation's private folder under tmp/. It is created under a dot name, locked
// (flock on the folder itself, held while its owner lives) and only then given its real
// name, so a folder with a plain name that is not locked has no owner left: a process
// killed mid-compile. Removed with everything in it when the owner is done, whatever
// happened (built, failed, stopped).
class WorkDir {
 public:
  static Result<WorkDir> Create(const std::string& tmp) {
    std::string name = TempSuffix();
    std::string staging = tmp + "/." + name;
    if (mkdir(staging.c_str(), 0700) != 0)
      return MakeError(ErrorCode::kIo, Errno("cannot create " + staging));
    WorkDir w;
    w.path_ = staging;
    w.fd_ = open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (w.fd_ < 0 || flock(w.fd_, LOCK_EX) != 0)
      return MakeError(ErrorCode::kIo, Errno("cannot lock " + staging));
    std::string path = tmp + "/" + name;
    if (rename(staging.c_str(), path.c_str()) != 0)
      return MakeError(ErrorCode::kIo, Errno("cannot rename " + staging));
    w.path_ = path;
    return w;
  }
  WorkDir(WorkDir&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) {
    o.path_.clear();
    o.fd_ = -1;
  }
  WorkDir& operator=(WorkDir&&) = delete;
  WorkDir(const WorkDir&) = delete;
  ~WorkDir() {
    if (!path_.empty()) RemoveTree(path_);
    if (fd_ >= 0) close(fd_);
  }
  const std::string& path() const { return path_; }

 private:
  WorkDir() = default;
  std::string path_;
  int fd_ = -1;
};

// Staging names older than this are leftovers of a process that died between creating
// and naming its folder.
constexpr time_t kStaleStagingSeconds = 3600;

// Removes the work folders of compilations whose process is gone (see WorkDir).
void RemoveStaleWorkDirs(const std::string& tmp) {
  DIR* d = opendir(tmp.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  closedir(d);
  time_t now = time(nullptr);
  for (const std::string& name : names) {
    std::string path = tmp + "/" + name;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) continue;
    if (!S_ISDIR(st.st_mode)) {
      unlink(path.c_str());
      continue;
    }
    if (name[0] == '.') {
      if (now - st.st_mtim.tv_sec > kStaleStagingSeconds) RemoveTree(path);
      continue;
    }
    Fd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.fd >= 0 && flock(fd.fd, LOCK_EX | LOCK_NB) == 0) RemoveTree(path);
  }
}

}  // namespace

// Puts the object built at `out` (open as `built_fd`) into the cache as `obj`, named by its
// digest `hex`, without ever replacing a file whose bytes match that name. Returns a new fd
// of the file that is at `obj` afterwards (the one already there, or ours), or -1 with errno.
int PlaceObject(int built_fd, const std::string& out, const std::string& obj,
                const std::string& hex) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (link(out.c_str(), obj.c_str()) == 0) return fcntl(built_fd, F_DUPFD_CLOEXEC, 0);
    if (errno != EEXIST) break;  // no hard links here: fall back to a rename
    int existing = open(obj.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (existing < 0) {
      if (errno == ENOENT) continue;  // removed meanwhile (a cache clean): link again
      break;
    }
    struct stat st {};
    bool same = false;
    if (fstat(existing, &st) == 0 && S_ISREG(st.st_mode)) {
      auto digest = Sha256Fd(existing);
      same = digest && ToHex(*digest) == hex;
    }
    if (same) return existing;  // the same object: keep it
    close(existing);
    break;  // damaged or not a file: replace it
  }
  if (rename(out.c_str(), obj.c_str()) != 0) return -1;
  return fcntl(built_fd, F_DUPFD_CLOEXEC, 0);
}

Result<VerifiedObject> CompileCache::FindOrBuild(
    const std::string& key,
    const std::function<Status(const std::string&, const std::string&)>& build, bool* built,
    const CompileBudget& budget) const {
  *built = false;
  auto found = Find(key);
  if (!found) return found.error();
  if (found->found()) return found;

  std::string lock_path = dir_ + "/locks/" + key + ".lock";
  Fd lock(open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock.fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot open " + lock_path));
  // Another process compiling the same module holds the lock; wait for it within the
  // budget (its own compile is bounded by its limits).
  while (flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR)
      return MakeError(ErrorCode::kIo, Errno("cannot lock " + lock_path));
    if (budget.Stopped()) return budget.StopError();
    usleep(20'000);
  }
  // Another process may have built it while we waited.
  found = Find(key);
  if (!found) return found.error();
  if (found->found()) return found;

  RemoveStaleWorkDirs(dir_ + "/tmp");
  auto work = WorkDir::Create(dir_ + "/tmp");
  if (!work) return work.error();
  std::string out = work->path() + "/module.so";
  if (Status s = build(work->path(), out); !s) return s.error();
  Fd fd(open(out.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return MakeError(ErrorCode::kIo, Errno("compiled object missing"));
  auto digest = Sha256Fd(fd.fd);
  if (!digest) return digest.error();
  std::string hex = ToHex(*digest);
  std::string obj = dir_ + "/objects/" + hex + ".so";
  chmod(out.c_str(), 0500);
  // Objects are named by their digest, so different modules (or another process building
  // the same one under another key) can produce the same object. An object already in
  // place is never replaced while its bytes match its name: another process may have
  // checked it and be about to load it, and must find the very file it checked.
  Fd placed(PlaceObject(fd.fd, out, obj, hex));
  if (placed.fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot move object into cache"));
  std::string rec = hex + "\n";
  if (auto w = WriteFileAtomic(dir_ + "/index", key, rec.data(), rec.size(), 0600); !w) {
    return w.error();
  }
  *built = true;
  struct stat st {};
  if (fstat(placed.fd, &st) != 0) return MakeError(ErrorCode::kIo, Errno("cannot stat " + obj));
  return VerifiedObject{obj, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

Result<std::vector<CacheEntry>> CompileCache::List() const {
  std::vector<CacheEntry> out;
  std::string index = dir_ + "/index";
  DIR* d = opendir(index.c_str());
  if (!d) return MakeError(ErrorCode::kIo, Errno("cannot list " + index));
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    auto rec = ReadFile(index + "/" + name, 512);
    if (!rec) continue;
    // The digest is the first line; a checked entry has a fingerprint line after it (Find).
    std::string text(rec->begin(), rec->end());
    std::string digest = text.substr(0, text.find('\n'));
    while (!digest.empty() && digest.back() == ' ') digest.pop_back();
    if (!IsHexDigest(digest)) continue;  // never loaded; Find removes it
    CacheEntry ce;
    ce.key = name;
    ce.object_path = dir_ + "/objects/" + digest + ".so";
    struct stat st {};
    if (stat(ce.object_path.c_str(), &st) == 0) {
      ce.size_bytes = static_cast<uint64_t>(st.st_size);
      ce.mtime = st.st_mtim.tv_sec;
    }
    out.push_back(std::move(ce));
  }
  closedir(d);
  return out;
}

Result<size_t> CompileCache::Clear() const {
  auto entries = List();
  if (!entries) return entries.error();
  for (const char* sub : {"/index", "/objects", "/locks", "/tmp"}) {
    std::string p = dir_ + sub;
    RemoveTree(p);
    if (auto s = EnsurePrivateDir(p); !s) return s.error();
  }
  return entries->size();
}

}  // namespace moat
