#include "base/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace moat {

namespace {
std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + strerror(errno);
}

// Closes an fd on scope exit.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};
}  // namespace

Status CheckNotWritableByOthers(const struct stat& st, const std::string& path) {
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    return MakeError(ErrorCode::kDenied,
                     path + " belongs to another user (uid " + std::to_string(st.st_uid) + ")");
  }
  if ((st.st_mode & 022) != 0) {
    return MakeError(ErrorCode::kDenied, path + " can be written by others: chmod go-w it");
  }
  return OkStatus();
}

Status CheckNotWritableByOthers(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return MakeError(ErrorCode::kIo, Errno("cannot stat", path));
  return CheckNotWritableByOthers(st, path);
}

namespace {
Result<std::vector<uint8_t>> ReadRegularFile(const std::string& path, uint64_t max_bytes,
                                             bool trusted) {
  // The type is checked before opening (a FIFO would block the open, a device could act on
  // it), and again on the open file: O_NONBLOCK keeps a FIFO swapped in between from
  // blocking the open.
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kIo, path + ": not a regular file");
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot open", path));
  FdCloser closer{fd};
  if (fstat(fd, &st) != 0) return MakeError(ErrorCode::kIo, Errno("cannot stat", path));
  if (!S_ISREG(st.st_mode)) return MakeError(ErrorCode::kIo, path + ": not a regular file");
  if (trusted) {
    if (auto s = CheckNotWritableByOthers(st, path); !s) return s.error();
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return MakeError(ErrorCode::kLimit, path + ": file is " + std::to_string(st.st_size) +
                                            " bytes, more than the limit of " +
                                            std::to_string(max_bytes));
  }
  std::vector<uint8_t> out(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError(ErrorCode::kIo, Errno("cannot read", path));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}
}  // namespace

Result<std::vector<uint8_t>> ReadFile(const std::string& path, uint64_t max_bytes) {
  return ReadRegularFile(path, max_bytes, false);
}

Result<std::vector<uint8_t>> ReadTrustedFile(const std::string& path, uint64_t max_bytes) {
  return ReadRegularFile(path, max_bytes, true);
}

std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r) r = 0;
  return std::to_string(getpid()) + "." + std::to_string(counter.fetch_add(1)) + "." +
         std::to_string(r & 0xffffffffu);
}

Status WriteFileAtomic(const std::string& dir, const std::string& name, const void* data,
                       size_t size, int mode) {
  std::string tmp = dir + "/.tmp." + name + "." + TempSuffix();
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot create", tmp));
  const auto* p = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, p + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string msg = Errno("cannot write", tmp);
      close(fd);
      unlink(tmp.c_str());
      return MakeError(ErrorCode::kIo, msg);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    std::string msg = Errno("cannot flush", tmp);
    unlink(tmp.c_str());
    return MakeError(ErrorCode::kIo, msg);
  }
  std::string final_path = dir + "/" + name;
  if (rename(tmp.c_str(), final_path.c_str()) != 0) {
    std::string msg = Errno("cannot rename into", final_path);
    unlink(tmp.c_str());
    return MakeError(ErrorCode::kIo, msg);
  }
  return OkStatus();
}

Status EnsurePrivateDir(const std::string& dir) {
  if (dir.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty directory path");
  // Create parents with default permissions, the leaf with 0700.
  for (size_t pos = 1; pos < dir.size(); ++pos) {
    if (dir[pos] != '/') continue;
    std::string parent = dir.substr(0, pos);
    if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      return MakeError(ErrorCode::kIo, Errno("cannot create", parent));
    }
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, Errno("cannot create", dir));
  }
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return MakeError(ErrorCode::kIo, Errno("cannot stat", dir));
  if (!S_ISDIR(st.st_mode)) return MakeError(ErrorCode::kIo, dir + " is not a directory");
  if (st.st_uid != geteuid()) {
    return MakeError(ErrorCode::kIo, dir + " is owned by another user; refusing to use it");
  }
  if ((st.st_mode & 0777) != 0700 && chmod(dir.c_str(), 0700) != 0) {
    return MakeError(ErrorCode::kIo, Errno("cannot make private", dir));
  }
  return OkStatus();
}

namespace {
// An XDG base folder: the variable when it is an absolute path (a relative one is ignored,
// as the XDG spec says: it would put moat's files wherever moat happens to run), else
// $HOME/`fallback` when HOME is absolute, else "".
std::string XdgDir(const char* var, const char* fallback) {
  if (const char* x = getenv(var); x != nullptr && x[0] == '/') return std::string(x) + "/moat";
  if (const char* home = getenv("HOME"); home != nullptr && home[0] == '/') {
    return std::string(home) + "/" + fallback + "/moat";
  }
  return "";
}
}  // namespace

std::string UserConfigDir() { return XdgDir("XDG_CONFIG_HOME", ".config"); }

std::string UserStateDir() { return XdgDir("XDG_STATE_HOME", ".local/state"); }

std::string UserCacheDir() { return XdgDir("XDG_CACHE_HOME", ".cache"); }

Result<FileLock> FileLock::Acquire(const std::string& lock_path) {
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot open lock file", lock_path));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    std::string msg = Errno("cannot lock", lock_path);
    close(fd);
    return MakeError(ErrorCode::kIo, msg);
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) close(fd_);  // closing the only fd of the open file releases the lock
}

Status UpdateFileLocked(
    const std::string& path, uint64_t max_bytes,
    const std::function<Result<std::string>(const std::optional<std::string>&)>& change) {
  auto lock = FileLock::Acquire(path + ".lock");
  if (!lock) return lock.error();
  std::optional<std::string> current;
  auto bytes = ReadFile(path, max_bytes);
  if (bytes) {
    current.emplace(bytes->begin(), bytes->end());
  } else if (access(path.c_str(), F_OK) == 0 || errno != ENOENT) {
    return bytes.error();
  }
  auto next = change(current);
  if (!next) return next.error();
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return WriteFileAtomic(dir, name, next->data(), next->size(), 0600);
}

}  // namespace moat
