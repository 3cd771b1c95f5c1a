#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

struct stat;

namespace moat {

// Reads a whole regular file; refuses anything larger than max_bytes. Anything else (a
// FIFO, a device, a folder) is refused without blocking and before it is opened.
Result<std::vector<uint8_t>> ReadFile(const std::string& path, uint64_t max_bytes);

// Refuses what another user could change: owned by neither the current user nor root, or
// writable by its group or by others (ErrorCode::kDenied naming the path). For files and
// folders whose contents moat runs or obeys (tool modules, their manifests and folders).
Status CheckNotWritableByOthers(const std::string& path);
Status CheckNotWritableByOthers(const struct stat& st, const std::string& path);

// ReadFile that also refuses a file CheckNotWritableByOthers refuses (checked on the file
// it opened, so a rename in between cannot swap in another).
Result<std::vector<uint8_t>> ReadTrustedFile(const std::string& path, uint64_t max_bytes);

// Writes bytes to dir/name through a temp file in the same folder and rename(2),
// so a reader sees either the old file or the whole new one, never a torn one.
Status WriteFileAtomic(const std::string& dir, const std::string& name, const void* data,
                       size_t size, int mode);

// Creates dir (and parents) if missing; the last component is made mode 0700 and must be
// owned by the current user, else an error.
Status EnsurePrivateDir(const std::string& dir);

// A unique-enough suffix for temp files: pid + counter + random.
std::string TempSuffix();

// moat's folder in the user's configuration: $XDG_CONFIG_HOME/moat, else ~/.config/moat;
// "" when neither is an absolute path (never a folder relative to where moat runs).
std::string UserConfigDir();

// moat's folder for the user's state (standing approvals): $XDG_STATE_HOME/moat, else
// ~/.local/state/moat; "" when neither is an absolute path.
std::string UserStateDir();

// moat's folder for caches (compiled modules): $XDG_CACHE_HOME/moat, else ~/.cache/moat;
// "" when neither is an absolute path.
std::string UserCacheDir();

// An exclusive flock(2) on a lock file, held until destruction. Processes that change one
// file by read-modify-write take it first, so none loses another's change. The lock file
// (created 0600 if missing, never followed as a symlink) is left in place.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& lock_path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Read-modify-write of a small file, under FileLock(path + ".lock"): `change` gets the
// current bytes (nullopt when the file is missing) and returns the new ones, which replace
// the file atomically (mode 0600). An error from `change` leaves the file as it was.
Status UpdateFileLocked(
    const std::string& path, uint64_t max_bytes,
    const std::function<Result<std::string>(const std::optional<std::string>&)>& change);

}  // namespace moat
