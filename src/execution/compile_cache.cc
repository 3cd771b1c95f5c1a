#include "execution/compile_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ctime>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "base/fs.h"
#include "base/sha256.h"

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
                          uint64_t c_source_bytes) const {
  std::string src = dir + "/moat_module.c";
  std::string inc = std::string("-I") + kRuntimeHeaderDir;
  std::vector<std::string> args = {path_, OptLevelFor(c_source_bytes)};
  for (const char* f : kFlags) args.emplace_back(f);
  args.push_back(inc);
  args.push_back("-o");
  args.push_back(out_path);
  args.push_back(src);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string log_path = dir + "/cc.log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, path_.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    errno = rc;
    return MakeError(ErrorCode::kCompile, Errno("cannot start " + path_));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return MakeError(ErrorCode::kCompile, Errno("waitpid"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return OkStatus();
  auto log = ReadFile(log_path, 1 << 20);
  std::string first;
  if (log) {
    first.assign(log->begin(), log->end());
    if (first.size() > 2000) first.resize(2000);
  }
  return MakeError(ErrorCode::kCompile,
                   "C compiler failed (status " + std::to_string(status) + "): " + first);
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
  if (const char* x = getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/moat";
  if (const char* h = getenv("HOME"); h && *h) return std::string(h) + "/.cache/moat";
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

Result<VerifiedObject> CompileCache::FindOrBuild(
    const std::string& key,
    const std::function<Status(const std::string&, const std::string&)>& build, bool* built) const {
  *built = false;
  auto found = Find(key);
  if (!found) return found.error();
  if (found->found()) return found;

  std::string lock_path = dir_ + "/locks/" + key + ".lock";
  Fd lock(open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock.fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot open " + lock_path));
  while (flock(lock.fd, LOCK_EX) != 0) {
    if (errno != EINTR) return MakeError(ErrorCode::kIo, Errno("cannot lock " + lock_path));
  }
  // Another process may have built it while we waited.
  found = Find(key);
  if (!found) return found.error();
  if (found->found()) return found;

  std::string work = dir_ + "/tmp/" + TempSuffix();
  if (mkdir(work.c_str(), 0700) != 0)
    return MakeError(ErrorCode::kIo, Errno("cannot create " + work));
  std::string out = work + "/module.so";
  Status s = build(work, out);
  if (!s) {
    RemoveTree(work);
    return s.error();
  }
  Fd fd(open(out.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) {
    RemoveTree(work);
    return MakeError(ErrorCode::kIo, Errno("compiled object missing"));
  }
  auto digest = Sha256Fd(fd.fd);
  if (!digest) {
    RemoveTree(work);
    return digest.error();
  }
  std::string hex = ToHex(*digest);
  std::string obj = dir_ + "/objects/" + hex + ".so";
  chmod(out.c_str(), 0500);
  if (rename(out.c_str(), obj.c_str()) != 0) {
    std::string msg = Errno("cannot move object into cache");
    RemoveTree(work);
    return MakeError(ErrorCode::kIo, msg);
  }
  RemoveTree(work);
  std::string rec = hex + "\n";
  if (auto w = WriteFileAtomic(dir_ + "/index", key, rec.data(), rec.size(), 0600); !w) {
    return w.error();
  }
  *built = true;
  struct stat st {};
  if (fstat(fd.fd, &st) != 0) return MakeError(ErrorCode::kIo, Errno("cannot stat " + obj));
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
    auto rec = ReadFile(index + "/" + name, 256);
    if (!rec) continue;
    std::string digest(rec->begin(), rec->end());
    while (!digest.empty() && digest.back() == '\n') digest.pop_back();
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
