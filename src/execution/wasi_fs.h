// The WASI preview1 file layer as a capability boundary: one guest fd table per run, every
// path resolved beneath its mount with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS),
// read-only mounts, hidden paths, quotas and a denial event for each refusal.
//
// It works on host values (strings, byte spans, structs); wasi_host.cc moves them in and out
// of guest memory. Every function returns a WASI errno.
#pragma once

#include <sys/stat.h>
#include <sys/uio.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "execution/exec.h"
#include "execution/wasi_abi.h"

namespace moat::wasi {

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint8_t type = kFileTypeUnknown;
};

enum class FdKind : uint8_t { kStdio, kFile, kDir };

struct FdEntry {
  FdKind kind = FdKind::kFile;
  int host_fd = -1;   // owned; -1 for stdio
  uint8_t stdio = 0;  // 0, 1 or 2 for kStdio
  uint8_t filetype = kFileTypeUnknown;
  uint16_t fdflags = 0;
  uint64_t rights = 0;
  uint64_t inheriting = 0;
  bool readable = false;
  bool writable = false;
  bool preopen = false;
  bool protect = false;  // the path it was opened by is protected: its times stay too
  // For files: its offset may lie past the end (moved by fd_seek, or a file shrunk since
  // `shrinks` was read), so the next fd_write checks for the hole it would leave.
  bool may_pass_end = false;
  uint64_t shrinks = 0;
  int mount = -1;  // index into the request's mounts
  // For directories: the path relative to the mount root ("" is the root). Paths from a
  // directory are resolved from the mount root through it, never from its own fd.
  std::string rel;
  // fd_readdir snapshot, taken when a listing starts at cookie 0 and dropped when it has
  // been read to the end; its bytes count against the run's listing budget.
  std::vector<DirEntry> listing;
  uint64_t listing_bytes = 0;
  bool listed = false;
};

struct FdStat {
  uint8_t filetype = 0;
  uint16_t flags = 0;
  uint64_t rights = 0;
  uint64_t inheriting = 0;
};

struct FileStat {
  uint64_t dev = 0, ino = 0;
  uint8_t filetype = 0;
  uint64_t nlink = 0, size = 0, atim = 0, mtim = 0, ctim = 0;
};

// Compiled path patterns (the hidden, the protected and the untrusted ones). A pattern is
// matched one path component at a time (a `*` never crosses '/'); a pattern of k components
// matches any path with k consecutive components that match it, and so every path beneath
// one. Most patterns are a literal, a `prefix*` or a `*suffix`, matched without fnmatch(3).
class HiddenPaths {
 public:
  explicit HiddenPaths(const std::vector<std::string>& patterns);
  // `rel` is a path relative to a mount root, components separated by '/'. `context` is
  // where that root sits in the host tree (the last components of its real path, see
  // Fs::Context): a pattern of several components may begin there and end in `rel`, so a
  // path hidden through one mount stays hidden through a mount of a folder inside it.
  // Windows that end inside `context` are not checked (the mount would be hidden whole).
  bool Hidden(std::string_view context, std::string_view rel) const;
  bool Hidden(std::string_view rel) const { return Hidden({}, rel); }
  // Whether `dir_rel`/`name` is hidden, given that `dir_rel` itself is not:
  // only the windows that end at `name` are checked.
  bool HiddenLeaf(std::string_view context, std::string_view dir_rel, std::string_view name) const;
  bool HiddenLeaf(std::string_view dir_rel, std::string_view name) const {
    return HiddenLeaf({}, dir_rel, name);
  }
  // Whether a guest path, walked by name the way the kernel will walk it ("." skipped,
  // ".." going back up, never into `context`), passes through a matching component on
  // the way: decided before the kernel is asked, so its answer (ENOTDIR, ENOENT...) cannot
  // tell a hidden file exists. The last component is checked only when `include_last`.
  bool HiddenOnTheWay(std::string_view context, std::string_view path, bool include_last) const;
  bool empty() const { return patterns_.empty(); }
  // Components in the longest pattern.
  size_t longest() const;

 private:
  struct Piece {
    enum Kind : uint8_t { kLiteral, kPrefix, kSuffix, kGlob } kind = kLiteral;
    std::string text;  // the fixed part, or the whole glob for kGlob
    bool Matches(std::string_view component) const;
  };
  struct Pattern {
    std::vector<Piece> pieces;  // one per component
  };
  // Whether a pattern matches the components ending at comps.back().
  bool EndsHidden(std::span<const std::string_view> comps) const;
  std::vector<Pattern> patterns_;
  bool multi_ = false;  // some pattern has more than one component
};

// Host paths made absolute and real as far as they exist (the real path of the longest
// existing ancestor, then the rest as written), for Fs::Create's `sealed`; a path that
// cannot be resolved is dropped. Resolved once per engine, not per run.
std::vector<std::string> RealSealedPaths(const std::vector<std::string>& paths);

class Fs {
 public:
  // Opens every mount's folder. Fails (with a message) when one cannot be opened.
  // `sealed` are real host paths (RealSealedPaths) no guest may see or change, wherever
  // they are (moat's own config, state and cache folders, see Engine): one inside a mount
  // is hidden and protected there (also before it exists), and a mount at or inside one is
  // refused.
  static Result<std::unique_ptr<Fs>> Create(const ExecRequest& req,
                                            std::vector<CapabilityEvent>* events,
                                            const std::vector<std::string>& sealed = {});
  ~Fs();
  Fs(const Fs&) = delete;
  Fs& operator=(const Fs&) = delete;

  FdEntry* Get(uint32_t fd);
  size_t open_fds() const { return open_count_; }

  Errno Close(uint32_t fd);
  Errno Renumber(uint32_t from, uint32_t to);
  Errno FdstatGet(uint32_t fd, FdStat* out);
  Errno FdstatSetFlags(uint32_t fd, uint16_t flags);
  Errno FdstatSetRights(uint32_t fd, uint64_t rights, uint64_t inheriting);
  Errno PrestatDirName(uint32_t fd, std::string* name);

  // File data. `iov` spans point into guest memory, already bounds-checked.
  Errno Read(uint32_t fd, std::span<const iovec> iov, uint64_t* n);
  Errno Pread(uint32_t fd, std::span<const iovec> iov, uint64_t offset, uint64_t* n);
  Errno Write(uint32_t fd, std::span<const iovec> iov, uint64_t* n);
  Errno Pwrite(uint32_t fd, std::span<const iovec> iov, uint64_t offset, uint64_t* n);
  Errno Seek(uint32_t fd, int64_t offset, uint8_t whence, uint64_t* pos);
  Errno Tell(uint32_t fd, uint64_t* pos);
  Errno Sync(uint32_t fd, bool data_only);
  Errno Advise(uint32_t fd, uint64_t offset, uint64_t len, uint8_t advice);
  Errno Allocate(uint32_t fd, uint64_t offset, uint64_t len);
  Errno FilestatGet(uint32_t fd, FileStat* out);
  Errno FilestatSetSize(uint32_t fd, uint64_t size);
  Errno FilestatSetTimes(uint32_t fd, uint64_t atim, uint64_t mtim, uint16_t fst);
  // Fills `buf` with dirents from `cookie` on; *used == buf.size() means there may be more.
  Errno Readdir(uint32_t fd, std::span<uint8_t> buf, uint64_t cookie, uint32_t* used);

  // Paths, each relative to directory fd `dirfd`, exactly as the guest gave them.
  Errno PathOpen(uint32_t dirfd, uint32_t lookup, std::string_view path, uint16_t oflags,
                 uint64_t rights, uint64_t inheriting, uint16_t fdflags, uint32_t* fd);
  Errno PathFilestatGet(uint32_t dirfd, uint32_t lookup, std::string_view path, FileStat* out);
  Errno PathFilestatSetTimes(uint32_t dirfd, uint32_t lookup, std::string_view path, uint64_t atim,
                             uint64_t mtim, uint16_t fst);
  Errno PathCreateDirectory(uint32_t dirfd, std::string_view path);
  Errno PathRemoveDirectory(uint32_t dirfd, std::string_view path);
  Errno PathUnlinkFile(uint32_t dirfd, std::string_view path);
  Errno PathRename(uint32_t dirfd, std::string_view from, uint32_t to_dirfd, std::string_view to);
  Errno PathLink(uint32_t dirfd, uint32_t lookup, std::string_view from, uint32_t to_dirfd,
                 std::string_view to);
  Errno PathSymlink(std::string_view target, uint32_t dirfd, std::string_view path);
  Errno PathReadlink(uint32_t dirfd, std::string_view path, std::span<uint8_t> buf, uint32_t* used);

  // Bytes written to files so far, and entries (files, directories, links) the run created
  // that still exist: what the quotas count, also in the report.
  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t files_created() const { return files_created_; }
  // Files matching the request's untrusted patterns opened for reading: the first
  // kMaxUntrustedReadsListed guest paths (each once), and the count of every such open.
  const std::vector<std::string>& untrusted_reads() const { return untrusted_reads_; }
  uint64_t untrusted_read_count() const { return untrusted_read_count_; }

 private:
  struct Parent;
  Fs(const ExecRequest& req, std::vector<CapabilityEvent>* events);

  void Deny(std::string_view op, std::string_view subject, std::string reason);
  Errno FileFor(uint32_t fd, uint64_t right, FdEntry** out);
  Errno DirFor(uint32_t fd, uint64_t right, FdEntry** out);
  Errno CheckPath(std::string_view op, std::string_view path);
  Errno Anchor(std::string_view op, const FdEntry& dir, std::string_view path, std::string* full);
  Errno OpenAt(std::string_view op, int mount, std::string_view subject, const std::string& full,
               int flags, bool follow, int* fd, std::string* rel);
  Errno OpenBeneath(std::string_view op, const FdEntry& dir, std::string_view path, int flags,
                    bool follow, int* fd, std::string* rel);
  void MovedDirectory(const std::string& from, const std::string& to);
  // Tells the request's PreImageSink (if any) that `name` in directory `dir_fd`, at `rel`
  // in `mount`, is about to change; `tree`: a directory about to move.
  void BeforeChange(int mount, const std::string& rel, int dir_fd, std::string_view name,
                    bool tree);
  // The same for a regular file just opened at `rel` to be written or truncated.
  void KeepOpened(int mount, const std::string& rel);
  Errno ResolveParent(std::string_view op, const FdEntry& dir, std::string_view path, Parent* out);
  Errno RefuseReadOnly(std::string_view op, const FdEntry& dir, std::string_view path);
  Errno ChargeCreate(std::string_view op, std::string_view path);
  Errno ChargeWrite(std::string_view op, uint64_t bytes, uint64_t* allowed);
  uint32_t Insert(FdEntry e);
  void NoteCreated(const struct stat& st);
  void NoteRemoved(const struct stat& st);
  bool RealRel(int fd, int mount, std::string* rel) const;
  void DropListing(FdEntry* e);
  // The last components of a mount's real host path, as many as a pattern can reach back.
  std::string_view Context(int mount) const { return mount_context_[static_cast<size_t>(mount)]; }
  bool IsHidden(int mount, std::string_view rel) const {
    return hidden_.Hidden(Context(mount), rel);
  }
  bool IsProtected(int mount, std::string_view rel) const {
    return mount_protected_[static_cast<size_t>(mount)] || protected_.Hidden(Context(mount), rel);
  }
  // EPERM (and a denial) when `rel` in `mount` is protected.
  Errno RefuseProtected(std::string_view op, int mount, std::string_view subject,
                        std::string_view rel);
  // Checks that renaming `from_rel` to `to_rel` moves no protected path and, when it is a
  // directory (`dir_fd` >= 0, an fd of it this call takes and closes), changes nobody's
  // hiddenness beneath it.
  Errno CheckMove(std::string_view op, std::string_view subject, int mount, int dir_fd,
                  const std::string& from_rel, const std::string& to_rel);
  // Checks what renaming (or, with !rename, hard-linking) `name` in `parent_fd`, at
  // `from_rel`, to `to_rel` in directory `to_dir` would change: protected paths, hidden
  // paths beneath a directory, and where a moved symlink leads.
  Errno CheckRelocation(std::string_view op, std::string_view subject, int mount, int parent_fd,
                        const std::string& name, const std::string& from_rel,
                        const std::string& to_dir, const std::string& to_rel, bool rename);
  // Checks that a symlink whose text is `target`, placed in directory `dir_rel`, stays in
  // its mount however it is later followed: relative, ".." only leading and not above the
  // mount, not leading through an existing link out of the mount, not naming a hidden or
  // protected path.
  Errno CheckLinkText(std::string_view op, std::string_view subject, int mount,
                      std::string_view dir_rel, std::string_view target);
  // Charges a write of `bytes` at `pos` to file `fd`, with the hole a write past the end
  // leaves (apparent size counts: a sparse file is as large to a host program as a full one).
  Errno ChargeFileWrite(std::string_view op, int fd, uint64_t pos, uint64_t bytes,
                        uint64_t* allowed);

  const ExecRequest& req_;
  std::vector<CapabilityEvent>* events_;
  HiddenPaths hidden_;
  HiddenPaths protected_;
  HiddenPaths untrusted_;
  std::vector<bool> mount_untrusted_;  // the mount's own folder matches an untrusted pattern
  std::vector<std::string> untrusted_reads_;
  uint64_t untrusted_read_count_ = 0;
  std::vector<bool> mount_protected_;       // the mount's own folder is protected
  std::vector<std::string> mount_real_;     // realpath of each mount root
  std::vector<std::string> mount_context_;  // see Context()
  std::vector<int> mount_fd_;               // each mount root, whatever the guest does to its fds
  std::vector<std::unique_ptr<FdEntry>> table_;
  size_t open_count_ = 0;  // guest-opened fds (not stdio or preopens)
  uint64_t bytes_written_ = 0;
  uint64_t files_created_ = 0;
  uint64_t listing_bytes_ = 0;  // held by fd_readdir snapshots, all fds together
  uint64_t shrinks_ = 0;        // files this run truncated or shrank
  // Names the run created, per inode: removing one gives its quota back.
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> created_;
};

}  // namespace moat::wasi
