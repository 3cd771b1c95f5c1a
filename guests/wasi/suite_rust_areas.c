// WASI conformance: the behaviours the WASI test suite's Rust programs check
// (wasi-testsuite, tests/rust/wasm32-wasip1), one group per program, with the errno
// values Wasmtime gives on Linux. Each group works the way the suite program does: inside
// a fresh "<area>.cleanup" directory opened with the suite's own rights set (or in the
// root directory, a fresh open of the preopen), with the same open rights (often none)
// and the same sequence of calls, and removes what it made.
//
// Areas already checked the same way elsewhere are not repeated here: sched_yield,
// clock_time_get, big_random_buf, poll_oneoff_stdio (misc.c). fd_filestat_get follows the
// suite's compiled program (stdio filestat: size and times 0).
//
// Preopen: argv[1] = scratch directory (writable, empty). Optional argv[2] = a second
// preopen, used by close_preopen (skipped without it). The last groups renumber over the
// scratch preopen and move stdin/stdout/stderr away, so they run last and the stdio group
// reports through the descriptor that holds stdout afterwards.
#include <unistd.h>

#include "wasi_check.h"

static __wasi_fd_t preopen;  // the scratch preopen
static __wasi_fd_t root;     // a fresh open of "." on it, with the preopen's rights
static const char* scratch_name;
static const __wasi_lookupflags_t kFollow = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;

// The rights the suite gives its per-program directories.
static const __wasi_rights_t kTmpBase =
    R(FD_FILESTAT_GET) | R(FD_READDIR) | R(PATH_CREATE_FILE) | R(PATH_CREATE_DIRECTORY) |
    R(PATH_REMOVE_DIRECTORY) | R(PATH_OPEN) | R(PATH_UNLINK_FILE) | R(PATH_LINK_SOURCE) |
    R(PATH_LINK_TARGET) | R(PATH_READLINK) | R(PATH_RENAME_SOURCE) | R(PATH_RENAME_TARGET) |
    R(PATH_FILESTAT_GET) | R(PATH_FILESTAT_SET_SIZE) | R(PATH_FILESTAT_SET_TIMES) |
    R(PATH_SYMLINK);
static const __wasi_rights_t kTmpInheriting =
    R(FD_READ) | R(FD_WRITE) | R(FD_READDIR) | R(FD_FILESTAT_GET) | R(FD_SEEK) |
    R(PATH_LINK_SOURCE) | R(PATH_LINK_TARGET) | R(PATH_OPEN) | R(PATH_UNLINK_FILE) |
    R(PATH_FILESTAT_GET) | R(FD_FDSTAT_SET_FLAGS) | R(FD_SYNC) | R(FD_TELL) | R(FD_ADVISE) |
    R(FD_ALLOCATE) | R(FD_FILESTAT_SET_SIZE) | R(FD_FILESTAT_SET_TIMES);

// Makes `name` in the root directory and opens it as a directory with the given rights.
#define MakeTmp(...) MakeTmpAt(__FILE__, __LINE__, __VA_ARGS__)
static __wasi_fd_t MakeTmpAt(const char* file, int line, const char* name, __wasi_rights_t base,
                             __wasi_rights_t inheriting) {
  __wasi_errno_t e = __wasi_path_create_directory(root, name);
  if (e != 0) Fail(file, line, "path_create_directory(%s): %s", name, ErrnoName(e));
  __wasi_fd_t fd = (__wasi_fd_t)-1;
  e = __wasi_path_open(root, 0, name, __WASI_OFLAGS_DIRECTORY, base, inheriting, 0, &fd);
  if (e != 0) Fail(file, line, "path_open(%s, DIRECTORY): %s", name, ErrnoName(e));
  return fd;
}
#define Tmp(name) MakeTmp(name, kTmpBase, kTmpInheriting)

// Closes the directory and removes it (it must be empty by then).
#define DropTmp(fd, name)                                        \
  do {                                                           \
    CHECK_OK(__wasi_fd_close(fd));                               \
    CHECK_OK(__wasi_path_remove_directory(root, name));          \
  } while (0)

// path_open with the given rights; returns the errno, the fd in *out.
static __wasi_errno_t Open(__wasi_fd_t dir, __wasi_lookupflags_t lf, const char* path,
                           __wasi_oflags_t of, __wasi_rights_t base, __wasi_rights_t inh,
                           __wasi_fdflags_t ff, __wasi_fd_t* out) {
  *out = (__wasi_fd_t)-1;
  return __wasi_path_open(dir, lf, path, of, base, inh, ff, out);
}

// Opens with rights 0 and no flags; closes again on success. Returns the errno.
static __wasi_errno_t TryOpen(__wasi_fd_t dir, __wasi_lookupflags_t lf, const char* path,
                              __wasi_oflags_t of) {
  __wasi_fd_t fd;
  __wasi_errno_t e = Open(dir, lf, path, of, 0, 0, 0, &fd);
  if (e == 0) {
    CHECK(fd > 2, "fd above stdio");
    CHECK_OK(__wasi_fd_close(fd));
  }
  return e;
}

// The suite's create_file: path_open(CREAT) with no rights, then close.
#define CreateFile(dir, path)                                                    \
  do {                                                                           \
    __wasi_fd_t cf_;                                                             \
    CHECK_OK(Open(dir, 0, path, __WASI_OFLAGS_CREAT, 0, 0, 0, &cf_));            \
    CHECK(cf_ > 2, "fd above stdio");                                            \
    CHECK_OK(__wasi_fd_close(cf_));                                              \
  } while (0)

static __wasi_errno_t Write(__wasi_fd_t fd, const void* p, size_t len, __wasi_size_t* n) {
  __wasi_ciovec_t iov = {(const uint8_t*)p, len};
  *n = 0;
  return __wasi_fd_write(fd, &iov, 1, n);
}
static __wasi_errno_t Read(__wasi_fd_t fd, void* p, size_t len, __wasi_size_t* n) {
  __wasi_iovec_t iov = {(uint8_t*)p, len};
  *n = 0;
  return __wasi_fd_read(fd, &iov, 1, n);
}
static int AllBytes(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != v) return 0;
  return 1;
}

// Whether fd_fdstat_set_rights is supported at all (the suite skips rights checks if not).
static int SupportsRights(__wasi_fd_t fd) {
  __wasi_fdstat_t st = FdFdstat(fd);
  return __wasi_fd_fdstat_set_rights(fd, st.fs_rights_base, st.fs_rights_inheriting) !=
         __WASI_ERRNO_NOTSUP;
}

// ---------------------------------------------------------------------------------------

static void TestFdAdvise(void) {
  const char* name = "fd_advise_file.cleanup";
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, name, __WASI_OFLAGS_CREAT,
                R(FD_READ) | R(FD_WRITE) | R(FD_ADVISE) | R(FD_FILESTAT_GET) |
                    R(FD_FILESTAT_SET_SIZE) | R(FD_ALLOCATE),
                0, 0, &fd));
  CHECK(fd > 2, "fd above stdio");
  CHECK_EQ(FdStat(fd).size, 0);
  CHECK_OK(__wasi_fd_filestat_set_size(fd, 100));
  CHECK_EQ(FdStat(fd).size, 100);
  CHECK_OK(__wasi_fd_advise(fd, 10, 50, __WASI_ADVICE_NORMAL));
  CHECK_EQ(FdStat(fd).size, 100);
  __wasi_errno_t e = __wasi_fd_allocate(fd, 100, 100);
  if (e == 0)
    CHECK_EQ(FdStat(fd).size, 200);
  else
    CHECK_ERRNO(e, ENOTSUP_);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(root, name));
  PASS("fd_advise");
}

static void TestFdFdstatSetRights(void) {
  const char* tmp = "rights_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  if (SupportsRights(dir)) {
    __wasi_fd_t fd;
    CHECK_OK(Open(dir, 0, "file.cleanup", __WASI_OFLAGS_CREAT,
                  R(FD_READ) | R(FD_WRITE) | R(FD_SEEK) | R(FD_TELL), 0, 0, &fd));
    const uint8_t data[4] = {0, 1, 2, 3};
    uint8_t got[4] = {9, 9, 9, 9};
    __wasi_size_t n;
    __wasi_filesize_t pos;
    CHECK_OK(Write(fd, data, 4, &n));
    CHECK_OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
    CHECK_OK(Read(fd, got, 4, &n));
    CHECK_EQ(n, 4);
    CHECK(memcmp(got, data, 4) == 0, "read back what was written");
    __wasi_fdstat_t st = FdFdstat(fd);
    CHECK_OK(__wasi_fd_fdstat_set_rights(fd, st.fs_rights_base & ~(R(FD_READ) | R(FD_WRITE)),
                                         st.fs_rights_inheriting));
    st = FdFdstat(fd);
    CHECK_EQ(st.fs_rights_base & (R(FD_READ) | R(FD_WRITE)), 0);
    CHECK(st.fs_rights_base & R(FD_SEEK), "FD_SEEK kept");
    CHECK_ERRNO(Read(fd, got, 4, &n), EBADF_, ENOTCAPABLE_);
    CHECK_ERRNO(Write(fd, data, 4, &n), EBADF_, ENOTCAPABLE_);
    const __wasi_rights_t more = R(FD_READ) | R(FD_WRITE) | R(FD_SEEK) | R(FD_TELL);
    CHECK_ERRNO(__wasi_fd_fdstat_set_rights(fd, st.fs_rights_base | more,
                                            st.fs_rights_inheriting | more),
                ENOTCAPABLE_);
    CHECK_OK(__wasi_fd_close(fd));
    CHECK_OK(__wasi_path_unlink_file(dir, "file.cleanup"));
  }
  DropTmp(dir, tmp);
  PASS("fd_fdstat_set_rights");
}

static void TestFdFilestatSet(void) {
  const char* name = "fd_filestat_set_file.cleanup";
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, name, __WASI_OFLAGS_CREAT,
                R(FD_READ) | R(FD_WRITE) | R(FD_FILESTAT_GET) | R(FD_FILESTAT_SET_SIZE) |
                    R(FD_FILESTAT_SET_TIMES),
                0, 0, &fd));
  CHECK_EQ(FdStat(fd).size, 0);
  CHECK_OK(__wasi_fd_filestat_set_size(fd, 100));
  __wasi_filestat_t st = FdStat(fd);
  CHECK_EQ(st.size, 100);
  uint64_t old_atim = st.atim, new_mtim = st.mtim - 100;
  CHECK_OK(__wasi_fd_filestat_set_times(fd, new_mtim, new_mtim, __WASI_FSTFLAGS_MTIM));
  st = FdStat(fd);
  CHECK_EQ(st.size, 100);
  CHECK_EQ(st.mtim, new_mtim);
  CHECK_EQ(st.atim, old_atim);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(root, name));
  PASS("fd_filestat_set");
}

// stdin, stdout and stderr are streams: fd_filestat_get works and gives size and times 0,
// whatever the host has behind them.
static void TestFdFilestatGet(void) {
  for (__wasi_fd_t fd = 0; fd <= 2; ++fd) {
    __wasi_filestat_t st;
    memset(&st, 0xAB, sizeof st);
    __wasi_errno_t e = __wasi_fd_filestat_get(fd, &st);
    CHECK_OK(e);
    if (e != 0) continue;
    if (st.size || st.atim || st.mtim || st.ctim)
      Fail(__FILE__, __LINE__,
           "fd_filestat_get(%u): size %llu atim %llu mtim %llu ctim %llu, expected all 0", fd,
           (unsigned long long)st.size, (unsigned long long)st.atim,
           (unsigned long long)st.mtim, (unsigned long long)st.ctim);
  }
  PASS("fd_filestat_get");
}

static void TestFdFlagsSet(void) {
  const char* name = "fd_flags_set_file.cleanup";
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, name, __WASI_OFLAGS_CREAT,
                R(FD_READ) | R(FD_WRITE) | R(FD_SEEK) | R(FD_TELL) | R(FD_FDSTAT_SET_FLAGS), 0,
                __WASI_FDFLAGS_APPEND, &fd));
  uint8_t data[100], buf[100];
  __wasi_size_t n;
  __wasi_filesize_t pos;
  memset(data, 0, sizeof data);
  CHECK_OK(Write(fd, data, 100, &n));
  CHECK_EQ(n, 100);
  CHECK_OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  memset(buf, 7, sizeof buf);
  CHECK_OK(Read(fd, buf, 100, &n));
  CHECK_EQ(n, 100);
  CHECK(AllBytes(buf, 100, 0), "first 100 bytes are zeros");
  // Append mode: a write after seeking to 0 still goes to the end.
  memset(data, 1, sizeof data);
  CHECK_OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  CHECK_OK(Write(fd, data, 100, &n));
  CHECK_EQ(n, 100);
  CHECK_OK(__wasi_fd_seek(fd, 100, __WASI_WHENCE_SET, &pos));
  CHECK_OK(Read(fd, buf, 100, &n));
  CHECK_EQ(n, 100);
  CHECK(AllBytes(buf, 100, 1), "appended bytes at 100");
  // Append off: a write at 0 overwrites.
  CHECK_OK(__wasi_fd_fdstat_set_flags(fd, 0));
  CHECK_OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  memset(data, 2, sizeof data);
  CHECK_OK(Write(fd, data, 100, &n));
  CHECK_EQ(n, 100);
  CHECK_OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  CHECK_OK(Read(fd, buf, 100, &n));
  CHECK_EQ(n, 100);
  CHECK(AllBytes(buf, 100, 2), "overwritten at 0");
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_EQ(StatAt(root, 0, name).size, 200);
  CHECK_OK(__wasi_path_unlink_file(root, name));
  PASS("fd_flags_set");
}

// fd_readdir with a 256-byte buffer: the entries that fit whole, and eof when the buffer
// was not filled.
typedef struct {
  __wasi_dirent_t d;
  char name[64];
} Entry;

static int ReadDir256(__wasi_fd_t fd, __wasi_dircookie_t cookie, Entry* out, int max, int* eof) {
  uint8_t buf[256];
  __wasi_size_t used = 0;
  __wasi_errno_t e = __wasi_fd_readdir(fd, buf, sizeof buf, cookie, &used);
  CHECK_OK(e);
  if (e != 0) {
    *eof = 1;
    return 0;
  }
  CHECK(used <= sizeof buf, "bufused within the buffer");
  *eof = used < sizeof buf;
  int count = 0;
  size_t off = 0;
  while (count < max && used - off >= sizeof(__wasi_dirent_t)) {
    __wasi_dirent_t d;
    memcpy(&d, buf + off, sizeof d);
    if (used - off - sizeof d < d.d_namlen) break;
    out[count].d = d;
    size_t len = d.d_namlen < sizeof out[count].name - 1 ? d.d_namlen : sizeof out[count].name - 1;
    memcpy(out[count].name, buf + off + sizeof d, len);
    out[count].name[len] = 0;
    off += sizeof d + d.d_namlen;
    ++count;
  }
  return count;
}

static int CompareEntries(const void* a, const void* b) {
  return strcmp(((const Entry*)a)->name, ((const Entry*)b)->name);
}

static void TestFdReaddir(void) {
  const char* tmp = "fd_readdir_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_filestat_t dst = FdStat(dir);
  Entry ents[16];
  int eof = 0;
  int n = ReadDir256(dir, 0, ents, 16, &eof);
  CHECK(eof, "empty directory read whole");
  qsort(ents, n, sizeof ents[0], CompareEntries);
  CHECK_EQ(n, 2);
  if (n == 2) {
    CHECK(strcmp(ents[0].name, ".") == 0, "first entry is .");
    CHECK_EQ(ents[0].d.d_type, __WASI_FILETYPE_DIRECTORY);
    CHECK_EQ(ents[0].d.d_ino, dst.ino);
    CHECK_EQ(ents[0].d.d_namlen, 1);
    CHECK(strcmp(ents[1].name, "..") == 0, "second entry is ..");
    CHECK_EQ(ents[1].d.d_type, __WASI_FILETYPE_DIRECTORY);
  }
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT,
                R(FD_READ) | R(FD_WRITE) | R(FD_READDIR) | R(FD_FILESTAT_GET), 0, 0, &fd));
  __wasi_filestat_t fst = FdStat(fd);
  CHECK_OK(__wasi_fd_close(fd));
  n = ReadDir256(dir, 0, ents, 16, &eof);
  CHECK(eof, "directory read whole");
  CHECK_EQ(n, 3);
  if (n == 3) {
    __wasi_dircookie_t last_cookie = ents[1].d.d_next;
    char last_name[64];
    strcpy(last_name, ents[2].name);
    qsort(ents, n, sizeof ents[0], CompareEntries);
    CHECK(strcmp(ents[0].name, ".") == 0, "first entry is .");
    CHECK(strcmp(ents[1].name, "..") == 0, "second entry is ..");
    CHECK(strcmp(ents[2].name, "file") == 0, "third entry is file");
    CHECK_EQ(ents[2].d.d_type, __WASI_FILETYPE_REGULAR_FILE);
    CHECK_EQ(ents[2].d.d_ino, fst.ino);
    n = ReadDir256(dir, last_cookie, ents, 16, &eof);
    CHECK(eof, "rest read whole");
    CHECK_EQ(n, 1);
    if (n == 1) CHECK(strcmp(ents[0].name, last_name) == 0, "the entry after the cookie");
  }
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));

  // Lots of entries, read 256 bytes at a time from the last whole entry's d_next.
  char name[32];
  for (int i = 0; i < 1000; ++i) {
    snprintf(name, sizeof name, "file.%d", i);
    CHECK_OK(Open(dir, 0, name, __WASI_OFLAGS_CREAT,
                  R(FD_READ) | R(FD_WRITE) | R(FD_READDIR) | R(FD_FILESTAT_GET), 0, 0, &fd));
    CHECK_OK(__wasi_fd_close(fd));
  }
  int total = 0, rounds = 0;
  __wasi_dircookie_t cookie = 0;
  for (;;) {
    n = ReadDir256(dir, cookie, ents, 16, &eof);
    total += n;
    if (eof || n == 0 || ++rounds > 5000) break;
    cookie = ents[n - 1].d.d_next;
  }
  CHECK_EQ(total, 1002);
  for (int i = 0; i < 1000; ++i) {
    snprintf(name, sizeof name, "file.%d", i);
    CHECK_OK(__wasi_path_unlink_file(dir, name));
  }
  DropTmp(dir, tmp);
  PASS("fd_readdir");
}

static void TestFileAllocate(void) {
  const char* tmp = "file_allocate_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT,
                R(FD_READ) | R(FD_WRITE) | R(FD_ALLOCATE) | R(FD_FILESTAT_GET), 0, 0, &fd));
  CHECK_EQ(FdStat(fd).size, 0);
  __wasi_errno_t e = __wasi_fd_allocate(fd, 0, 100);
  if (e == 0) {
    CHECK_EQ(FdStat(fd).size, 100);
    CHECK_OK(__wasi_fd_allocate(fd, 10, 10));
    CHECK_EQ(FdStat(fd).size, 100);
    CHECK_OK(__wasi_fd_allocate(fd, 90, 20));
    CHECK_EQ(FdStat(fd).size, 110);
  } else {
    CHECK_ERRNO(e, ENOTSUP_);
  }
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("file_allocate");
}

static void TestFilePreadPwrite(void) {
  const char* tmp = "file_pread_pwrite_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT, R(FD_READ) | R(FD_SEEK) | R(FD_WRITE), 0,
                0, &fd));
  const uint8_t data[4] = {0, 1, 2, 3};
  uint8_t got[4];
  __wasi_size_t n;
  __wasi_ciovec_t civ = {data, 4};
  CHECK_OK(__wasi_fd_pwrite(fd, &civ, 1, 0, &n));
  CHECK_EQ(n, 4);
  memset(got, 9, 4);
  __wasi_iovec_t iv = {got, 4};
  CHECK_OK(__wasi_fd_pread(fd, &iv, 1, 0, &n));
  CHECK_EQ(n, 4);
  CHECK(memcmp(got, data, 4) == 0, "pread what pwrite wrote");

  // Two iovecs at a time, until everything is written.
  size_t off = 0;
  for (int guard = 0; off < 4 && guard < 16; ++guard) {
    __wasi_ciovec_t civs[2];
    size_t remaining = 4 - off;
    int k = 0;
    if (remaining > 2) {
      civs[k++] = (__wasi_ciovec_t){data + off, 2};
      remaining -= 2;
    }
    civs[k++] = (__wasi_ciovec_t){data + 4 - remaining, remaining};
    __wasi_errno_t e = __wasi_fd_pwrite(fd, civs, k, off, &n);
    CHECK_OK(e);
    if (e != 0 || n == 0) break;
    off += n;
  }
  CHECK_EQ(off, 4);
  // Two iovecs at a time, until pread returns 0.
  uint8_t all[4] = {9, 9, 9, 9};
  off = 0;
  for (int guard = 0; guard < 16; ++guard) {
    uint8_t b[4] = {0};
    __wasi_iovec_t ivs[2] = {{b, 2}, {b + 2, 2}};
    __wasi_errno_t e = __wasi_fd_pread(fd, ivs, 2, off, &n);
    CHECK_OK(e);
    if (e != 0 || n == 0 || off + n > 4) break;
    memcpy(all + off, b, n);
    off += n;
  }
  CHECK_EQ(off, 4);
  CHECK(memcmp(all, data, 4) == 0, "vectored pread");
  // A read past the end is short.
  memset(got, 0, 4);
  CHECK_OK(__wasi_fd_pread(fd, &iv, 1, 2, &n));
  CHECK_EQ(n, 2);
  CHECK(got[0] == 2 && got[1] == 3 && got[2] == 0 && got[3] == 0, "short pread at 2");
  const uint8_t patch[2] = {1, 0};
  civ = (__wasi_ciovec_t){patch, 2};
  CHECK_OK(__wasi_fd_pwrite(fd, &civ, 1, 2, &n));
  CHECK_EQ(n, 2);
  memset(got, 9, 4);
  CHECK_OK(__wasi_fd_pread(fd, &iv, 1, 0, &n));
  CHECK_EQ(n, 4);
  CHECK(got[0] == 0 && got[1] == 1 && got[2] == 1 && got[3] == 0, "pwrite at 2");
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("file_pread_pwrite");
}

static void TestFileSeekTell(void) {
  const char* tmp = "file_seek_tell_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT,
                R(FD_READ) | R(FD_WRITE) | R(FD_SEEK) | R(FD_TELL), 0, 0, &fd));
  __wasi_filesize_t pos = 99;
  CHECK_OK(__wasi_fd_tell(fd, &pos));
  CHECK_EQ(pos, 0);
  uint8_t data[100] = {0};
  __wasi_size_t n;
  CHECK_OK(Write(fd, data, 100, &n));
  CHECK_EQ(n, 100);
  CHECK_OK(__wasi_fd_tell(fd, &pos));
  CHECK_EQ(pos, 100);
  CHECK_OK(__wasi_fd_seek(fd, -50, __WASI_WHENCE_CUR, &pos));
  CHECK_EQ(pos, 50);
  CHECK_OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  CHECK_EQ(pos, 0);
  CHECK_OK(__wasi_fd_seek(fd, 1000, __WASI_WHENCE_CUR, &pos));
  CHECK_ERRNO(__wasi_fd_seek(fd, -2000, __WASI_WHENCE_CUR, &pos), EINVAL_);
  CHECK_OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  CHECK_OK(Read(fd, data, 100, &n));
  CHECK_EQ(n, 100);
  CHECK_OK(__wasi_fd_tell(fd, &pos));
  CHECK_EQ(pos, 100);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("file_seek_tell");
}

static void TestFileTruncation(void) {
  const char* tmp = "file_truncation_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t fd;
  const char* content = "this content will be truncated!";
  __wasi_size_t n;
  CHECK_OK(Open(dir, 0, "test.txt", __WASI_OFLAGS_CREAT, R(FD_WRITE), 0, 0, &fd));
  CHECK_OK(Write(fd, content, strlen(content), &n));
  CHECK_EQ(n, strlen(content));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(Open(dir, 0, "test.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC,
                R(FD_WRITE) | R(FD_READ), 0, 0, &fd));
  uint8_t buf[100];
  CHECK_OK(Read(fd, buf, sizeof buf, &n));
  CHECK_EQ(n, 0);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(dir, "test.txt"));
  DropTmp(dir, tmp);
  PASS("file_truncation");
}

static void TestFileUnbufferedWrite(void) {
  const char* tmp = "file_unbuffered_write_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t rfd, wfd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT, R(FD_READ), 0, 0, &rfd));
  CHECK_OK(Open(dir, 0, "file", 0, R(FD_WRITE), 0, 0, &wfd));
  const uint8_t one = 1;
  uint8_t got = 0;
  __wasi_size_t n;
  CHECK_OK(Write(wfd, &one, 1, &n));
  CHECK_EQ(n, 1);
  CHECK_OK(Read(rfd, &got, 1, &n));
  CHECK_EQ(n, 1);
  CHECK_EQ(got, 1);
  CHECK_OK(__wasi_fd_close(wfd));
  CHECK_OK(__wasi_fd_close(rfd));
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("file_unbuffered_write");
}

static void TestFstflagsValidate(void) {
  const char* name = "fstflags_validate.cleanup";
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, name, __WASI_OFLAGS_CREAT, R(FD_READ) | R(FD_FILESTAT_SET_TIMES), 0, 0,
                &fd));
  CHECK_ERRNO(__wasi_fd_filestat_set_times(fd, 100, 200,
                                           __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW),
              EINVAL_);
  CHECK_ERRNO(__wasi_fd_filestat_set_times(fd, 100, 200,
                                           __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW),
              EINVAL_);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(root, name));
  PASS("fstflags_validate");
}

static void TestInterestingPaths(void) {
  // This program's directory has fewer rights than the other programs' ones.
  const char* tmp = "interesting_paths_dir.cleanup";
  __wasi_fd_t dir = MakeTmp(tmp,
                            R(FD_FILESTAT_GET) | R(FD_READDIR) | R(PATH_CREATE_FILE) |
                                R(PATH_CREATE_DIRECTORY) | R(PATH_REMOVE_DIRECTORY) |
                                R(PATH_OPEN) | R(PATH_UNLINK_FILE),
                            R(FD_READ) | R(FD_WRITE) | R(FD_READDIR) | R(FD_FILESTAT_GET) |
                                R(FD_SEEK));
  CHECK_OK(__wasi_path_create_directory(dir, "dir"));
  CHECK_OK(__wasi_path_create_directory(dir, "dir/nested"));
  CreateFile(dir, "dir/nested/file");
  CHECK_ERRNO(TryOpen(dir, 0, "/dir/nested/file", 0), EPERM_, ENOTCAPABLE_);
  CHECK_OK(TryOpen(dir, 0, "dir/.//nested/../../dir/nested/../nested///./file", 0));
  // A trailing NUL inside the path's length.
  static const char with_nul[] = "dir/nested/file";  // sizeof includes the NUL
  int32_t fd_out = -1;
  int32_t e = RAW(path_open)(dir, 0, (int32_t)(uintptr_t)with_nul, (int32_t)sizeof with_nul, 0,
                             0, 0, 0, (int32_t)(uintptr_t)&fd_out);
  CHECK_ERRNO(e, EINVAL_, EILSEQ_, ENOENT_);
  if (e == 0) (void)__wasi_fd_close((__wasi_fd_t)fd_out);
  CHECK_ERRNO(TryOpen(dir, 0, "dir/nested/file/", 0), ENOTDIR_, ENOENT_);
  CHECK_ERRNO(TryOpen(dir, 0, "dir/nested/file///", 0), ENOTDIR_, ENOENT_);
  CHECK_OK(TryOpen(dir, 0, "dir/nested/", 0));
  CHECK_OK(TryOpen(dir, 0, "dir/nested///", 0));
  char bad[256];
  snprintf(bad, sizeof bad, "dir/nested/../../../%s/dir/nested/file", scratch_name);
  CHECK_ERRNO(TryOpen(dir, 0, bad, 0), EPERM_, ENOTCAPABLE_);
  CHECK_OK(__wasi_path_unlink_file(dir, "dir/nested/file"));
  CHECK_OK(__wasi_path_remove_directory(dir, "dir/nested"));
  CHECK_OK(__wasi_path_remove_directory(dir, "dir"));
  DropTmp(dir, tmp);
  PASS("interesting_paths");
}

static void TestIsatty(void) {
  const char* tmp = "isatty_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT, 0, 0, 0, &fd));
  CHECK(fd > 2, "fd above stdio");
  CHECK_EQ(isatty((int)fd), 0);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("isatty");
}

static void TestNofollowErrors(void) {
  const char* tmp = "nofollow_errors_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_OK(__wasi_path_create_directory(dir, "target"));
  CHECK_OK(__wasi_path_symlink("target", dir, "symlink"));
  CHECK_ERRNO(TryOpen(dir, 0, "symlink", __WASI_OFLAGS_DIRECTORY), ELOOP_, ENOTDIR_);
  CHECK_ERRNO(TryOpen(dir, 0, "symlink", 0), ELOOP_, EACCES_);
  CHECK_OK(TryOpen(dir, kFollow, "symlink", __WASI_OFLAGS_DIRECTORY));
  CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  CreateFile(dir, "target");
  CHECK_OK(__wasi_path_symlink("target", dir, "symlink"));
  CHECK_ERRNO(TryOpen(dir, 0, "symlink", __WASI_OFLAGS_DIRECTORY), ELOOP_, ENOTDIR_);
  CHECK_ERRNO(TryOpen(dir, 0, "symlink", 0), ELOOP_);
  CHECK_ERRNO(TryOpen(dir, kFollow, "symlink", __WASI_OFLAGS_DIRECTORY), ENOTDIR_);
  CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  DropTmp(dir, tmp);
  PASS("nofollow_errors");
}

static void TestPathExists(void) {
  const char* tmp = "path_exists_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_OK(__wasi_path_create_directory(dir, "subdir"));
  CHECK_EQ(StatAt(dir, 0, "subdir").filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(StatAt(dir, kFollow, "subdir").filetype, __WASI_FILETYPE_DIRECTORY);
  CreateFile(dir, "subdir/file");
  CHECK_EQ(StatAt(dir, 0, "subdir/file").filetype, __WASI_FILETYPE_REGULAR_FILE);
  CHECK_EQ(StatAt(dir, kFollow, "subdir/file").filetype, __WASI_FILETYPE_REGULAR_FILE);
  CHECK_OK(__wasi_path_symlink("subdir/file", dir, "link1"));
  CHECK_EQ(StatAt(dir, 0, "link1").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_EQ(StatAt(dir, kFollow, "link1").filetype, __WASI_FILETYPE_REGULAR_FILE);
  CHECK_OK(__wasi_path_symlink("subdir", dir, "link2"));
  CHECK_EQ(StatAt(dir, 0, "link2").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_EQ(StatAt(dir, kFollow, "link2").filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_OK(__wasi_path_unlink_file(dir, "link1"));
  CHECK_OK(__wasi_path_unlink_file(dir, "link2"));
  CHECK_OK(__wasi_path_unlink_file(dir, "subdir/file"));
  CHECK_OK(__wasi_path_remove_directory(dir, "subdir"));
  DropTmp(dir, tmp);
  PASS("path_exists");
}

static void TestPathFilestat(void) {
  const char* tmp = "path_filestat_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK(FdFdstat(dir).fs_rights_base & R(PATH_FILESTAT_GET), "dir has PATH_FILESTAT_GET");
  const __wasi_rights_t rights = R(FD_READ) | R(FD_WRITE) | R(PATH_FILESTAT_GET);
  __wasi_fdflags_t flags = __WASI_FDFLAGS_APPEND | __WASI_FDFLAGS_SYNC;
  __wasi_fd_t fd;
  __wasi_errno_t e = Open(dir, 0, "file", __WASI_OFLAGS_CREAT, rights, 0, flags, &fd);
  if (e == __WASI_ERRNO_NOTSUP) {
    flags = __WASI_FDFLAGS_APPEND;
    e = Open(dir, 0, "file", __WASI_OFLAGS_CREAT, rights, 0, flags, &fd);
  }
  CHECK_OK(e);
  if (e == 0) {
    __wasi_fdstat_t st = FdFdstat(fd);
    CHECK(st.fs_flags & __WASI_FDFLAGS_APPEND, "APPEND kept");
    if (flags & __WASI_FDFLAGS_SYNC) CHECK(st.fs_flags & __WASI_FDFLAGS_SYNC, "SYNC kept");
    __wasi_filestat_t fst = StatAt(dir, 0, "file");
    CHECK_EQ(fst.size, 0);
    uint64_t new_mtim = fst.mtim - 100;
    CHECK_OK(__wasi_path_filestat_set_times(dir, 0, "file", 0, new_mtim, __WASI_FSTFLAGS_MTIM));
    CHECK_EQ(StatAt(dir, 0, "file").mtim, new_mtim);
    CHECK_ERRNO(__wasi_path_filestat_set_times(dir, 0, "file", 0, new_mtim,
                                               __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW),
                EINVAL_);
    CHECK_EQ(StatAt(dir, 0, "file").mtim, new_mtim);
    CHECK_ERRNO(__wasi_path_filestat_set_times(dir, 0, "file", 0, 0,
                                               __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW),
                EINVAL_);
    CHECK_OK(__wasi_fd_close(fd));
    CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  }
  DropTmp(dir, tmp);
  PASS("path_filestat");
}

// path_link.rs
static const __wasi_rights_t kLinkRights = R(FD_READ) | R(PATH_LINK_SOURCE) |
                                           R(PATH_LINK_TARGET) | R(FD_FILESTAT_GET) |
                                           R(PATH_OPEN) | R(PATH_UNLINK_FILE);

static __wasi_fd_t LinkOpen(__wasi_fd_t dir, const char* name, __wasi_oflags_t of) {
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, name, of, kLinkRights, kLinkRights, 0, &fd));
  CHECK(fd > 2, "fd above stdio");
  return fd;
}

static void SameFile(__wasi_fd_t a, __wasi_fd_t b) {
  __wasi_filestat_t x = FdStat(a), y = FdStat(b);
  CHECK_EQ(x.dev, y.dev);
  CHECK_EQ(x.ino, y.ino);
  CHECK_EQ(x.atim, y.atim);
  CHECK_EQ(x.ctim, y.ctim);
  CHECK_EQ(x.mtim, y.mtim);
  CHECK_EQ(x.size, y.size);
  CHECK_EQ(x.nlink, y.nlink);
  CHECK_EQ(x.filetype, y.filetype);
  __wasi_fdstat_t s = FdFdstat(a), t = FdFdstat(b);
  CHECK_EQ(s.fs_flags, t.fs_flags);
  CHECK_EQ(s.fs_filetype, t.fs_filetype);
  if (SupportsRights(a)) {
    CHECK_EQ(s.fs_rights_base, t.fs_rights_base);
    CHECK_EQ(s.fs_rights_inheriting, t.fs_rights_inheriting);
  }
}

static void TestPathLink(void) {
  const char* tmp = "path_link_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t file = LinkOpen(dir, "file", __WASI_OFLAGS_CREAT);
  CHECK_OK(__wasi_path_link(dir, 0, "file", dir, "link"));
  __wasi_fd_t link = LinkOpen(dir, "link", 0);
  SameFile(file, link);
  CHECK_OK(__wasi_fd_close(link));
  CHECK_OK(__wasi_path_unlink_file(dir, "link"));
  // Into another directory.
  CHECK_OK(__wasi_path_create_directory(dir, "subdir"));
  __wasi_fd_t sub = LinkOpen(dir, "subdir", __WASI_OFLAGS_DIRECTORY);
  CHECK_OK(__wasi_path_link(dir, 0, "file", sub, "link"));
  link = LinkOpen(sub, "link", 0);
  SameFile(file, link);
  CHECK_OK(__wasi_fd_close(link));
  CHECK_OK(__wasi_fd_close(file));
  CHECK_OK(__wasi_path_unlink_file(sub, "link"));
  CHECK_OK(__wasi_fd_close(sub));
  CHECK_OK(__wasi_path_remove_directory(dir, "subdir"));
  // Onto an existing file, onto itself, onto a directory.
  CreateFile(dir, "link");
  CHECK_ERRNO(__wasi_path_link(dir, 0, "file", dir, "link"), EEXIST_);
  CHECK_OK(__wasi_path_unlink_file(dir, "link"));
  CHECK_ERRNO(__wasi_path_link(dir, 0, "file", dir, "file"), EEXIST_);
  CHECK_OK(__wasi_path_create_directory(dir, "link"));
  CHECK_ERRNO(__wasi_path_link(dir, 0, "file", dir, "link"), EEXIST_);
  CHECK_OK(__wasi_path_remove_directory(dir, "link"));
  // A directory cannot be hard-linked.
  CHECK_OK(__wasi_path_create_directory(dir, "subdir"));
  sub = LinkOpen(dir, "subdir", __WASI_OFLAGS_DIRECTORY);
  CHECK_ERRNO(__wasi_path_link(dir, 0, "subdir", dir, "link"), EPERM_, EACCES_);
  CHECK_OK(__wasi_fd_close(sub));
  CHECK_OK(__wasi_path_remove_directory(dir, "subdir"));
  // A new name with a trailing slash.
  CHECK_ERRNO(__wasi_path_link(dir, 0, "file", dir, "link/"), ENOENT_);
  // Links to symlinks are not followed.
  if (__wasi_path_symlink("target", dir, "symlink") == 0) {
    CHECK_OK(__wasi_path_link(dir, 0, "symlink", dir, "link"));
    CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
    CHECK_OK(__wasi_path_unlink_file(dir, "link"));
    CHECK_OK(__wasi_path_symlink("symlink", dir, "symlink"));
    CHECK_OK(__wasi_path_link(dir, 0, "symlink", dir, "link"));
    CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
    CHECK_OK(__wasi_path_unlink_file(dir, "link"));
    CHECK_OK(__wasi_path_symlink("target", dir, "symlink"));
    CHECK_ERRNO(__wasi_path_link(dir, 0, "file", dir, "symlink"), EEXIST_);
    CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
    CHECK_OK(__wasi_path_symlink("target", dir, "symlink"));
    CHECK_ERRNO(__wasi_path_link(dir, kFollow, "symlink", dir, "link"), EINVAL_, ENOENT_);
    CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  } else {
    Fail(__FILE__, __LINE__, "path_symlink(target, symlink) failed");
  }
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("path_link");
}

static void TestPathOpenCreateExisting(void) {
  const char* tmp = "path_open_create_existing_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CreateFile(dir, "file");
  CHECK_ERRNO(TryOpen(dir, 0, "file", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL), EEXIST_);
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("path_open_create_existing");
}

static void TestPathOpenDirfdNotDir(void) {
  const char* tmp = "path_open_dirfd_not_dir_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT, 0, 0, 0, &fd));
  CHECK_ERRNO(TryOpen(fd, 0, "foo", __WASI_OFLAGS_CREAT), ENOTDIR_, ENOTCAPABLE_);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("path_open_dirfd_not_dir");
}

static void TestPathOpenMissing(void) {
  const char* tmp = "path_open_missing_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_ERRNO(TryOpen(dir, 0, "file", 0), ENOENT_);
  DropTmp(dir, tmp);
  PASS("path_open_missing");
}

static void TestPathOpenNonblock(void) {
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, ".", 0, 0, 0, __WASI_FDFLAGS_NONBLOCK, &fd));
  if (fd != (__wasi_fd_t)-1) CHECK_OK(__wasi_fd_close(fd));
  PASS("path_open_nonblock");
}

static void TestPathOpenPreopen(void) {
  __wasi_prestat_t ps;
  CHECK_OK(__wasi_fd_prestat_get(preopen, &ps));
  CHECK_EQ(ps.tag, __WASI_PREOPENTYPE_DIR);
  __wasi_fdstat_t st = FdFdstat(preopen);
  const __wasi_rights_t base =
      R(PATH_CREATE_DIRECTORY) | R(PATH_CREATE_FILE) | R(PATH_LINK_SOURCE) |
      R(PATH_LINK_TARGET) | R(PATH_OPEN) | R(FD_READDIR) | R(PATH_READLINK) |
      R(PATH_RENAME_SOURCE) | R(PATH_RENAME_TARGET) | R(PATH_SYMLINK) |
      R(PATH_REMOVE_DIRECTORY) | R(PATH_UNLINK_FILE) | R(PATH_FILESTAT_GET) |
      R(PATH_FILESTAT_SET_TIMES) | R(FD_FILESTAT_GET) | R(FD_FILESTAT_SET_TIMES);
  const __wasi_rights_t inheriting =
      base | R(FD_DATASYNC) | R(FD_READ) | R(FD_SEEK) | R(FD_FDSTAT_SET_FLAGS) | R(FD_SYNC) |
      R(FD_TELL) | R(FD_WRITE) | R(FD_ADVISE) | R(FD_ALLOCATE) | R(FD_FILESTAT_GET) |
      R(FD_FILESTAT_SET_SIZE) | R(FD_FILESTAT_SET_TIMES) | R(POLL_FD_READWRITE);
  if ((st.fs_rights_base & base) != base)
    Fail(__FILE__, __LINE__, "preopen base rights lack 0x%llx",
         (unsigned long long)(base & ~st.fs_rights_base));
  if ((st.fs_rights_inheriting & inheriting) != inheriting)
    Fail(__FILE__, __LINE__, "preopen inheriting rights lack 0x%llx",
         (unsigned long long)(inheriting & ~st.fs_rights_inheriting));
  __wasi_fd_t fd;
  CHECK_OK(Open(preopen, 0, ".", 0, st.fs_rights_base, st.fs_rights_inheriting, 0, &fd));
  if (fd != (__wasi_fd_t)-1) CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(TryOpen(preopen, 0, ".", 0));
  CHECK_OK(TryOpen(preopen, 0, ".", __WASI_OFLAGS_DIRECTORY));
  CHECK_OK(Open(preopen, 0, ".", __WASI_OFLAGS_DIRECTORY, R(FD_READ), 0, 0, &fd));
  if (fd != (__wasi_fd_t)-1) CHECK_OK(__wasi_fd_close(fd));
  __wasi_errno_t e =
      Open(preopen, 0, ".", __WASI_OFLAGS_DIRECTORY, R(FD_READ) | R(FD_WRITE), 0, 0, &fd);
  CHECK_ERRNO(e, EISDIR_);
  if (e == 0) (void)__wasi_fd_close(fd);
  PASS("path_open_preopen");
}

static void TestPathOpenReadWrite(void) {
  const char* name = "file.cleanup";
  CreateFile(root, name);
  uint8_t buf[100];
  const uint8_t ones[50] = {[0 ... 49] = 1};
  const uint8_t twos[25] = {[0 ... 24] = 2};
  __wasi_size_t n;
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, name, 0, R(FD_READ), 0, 0, &fd));
  __wasi_fdstat_t st = FdFdstat(fd);
  CHECK(st.fs_rights_base & R(FD_READ), "read-only open has FD_READ");
  CHECK_EQ(st.fs_rights_base & R(FD_WRITE), 0);
  CHECK_OK(Read(fd, buf, sizeof buf, &n));
  CHECK_EQ(n, 0);
  CHECK_ERRNO(Write(fd, ones, sizeof ones, &n), EBADF_, ENOTCAPABLE_, EACCES_);
  CHECK_OK(__wasi_fd_close(fd));

  CHECK_OK(Open(root, 0, name, 0, R(FD_WRITE), 0, 0, &fd));
  st = FdFdstat(fd);
  CHECK_EQ(st.fs_rights_base & R(FD_READ), 0);
  CHECK(st.fs_rights_base & R(FD_WRITE), "write-only open has FD_WRITE");
  CHECK_ERRNO(Read(fd, buf, sizeof buf, &n), EBADF_, ENOTCAPABLE_, EACCES_);
  CHECK_OK(Write(fd, ones, sizeof ones, &n));
  CHECK_EQ(n, sizeof ones);
  CHECK_OK(__wasi_fd_close(fd));

  CHECK_OK(Open(root, 0, name, 0, R(FD_READ) | R(FD_WRITE) | R(FD_FILESTAT_GET), 0, 0, &fd));
  st = FdFdstat(fd);
  CHECK(st.fs_rights_base & R(FD_READ), "read-write open has FD_READ");
  CHECK(st.fs_rights_base & R(FD_WRITE), "read-write open has FD_WRITE");
  CHECK_OK(Read(fd, buf, sizeof buf, &n));
  CHECK_EQ(n, sizeof ones);
  CHECK_OK(Write(fd, twos, sizeof twos, &n));
  CHECK_EQ(n, sizeof twos);
  CHECK_EQ(FdStat(fd).size, sizeof ones + sizeof twos);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(root, name));
  PASS("path_open_read_write");
}

static void TestPathRename(void) {
  const char* tmp = "path_rename_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  // A directory to a new name.
  CHECK_OK(__wasi_path_create_directory(dir, "source"));
  CHECK_OK(__wasi_path_rename(dir, "source", dir, "target"));
  CHECK_ERRNO(TryOpen(dir, 0, "source", __WASI_OFLAGS_DIRECTORY), ENOENT_);
  CHECK_OK(TryOpen(dir, 0, "target", __WASI_OFLAGS_DIRECTORY));
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  // A directory over an empty directory.
  CHECK_OK(__wasi_path_create_directory(dir, "source"));
  CHECK_OK(__wasi_path_create_directory(dir, "target"));
  CHECK_OK(__wasi_path_rename(dir, "source", dir, "target"));
  CHECK_ERRNO(TryOpen(dir, 0, "source", __WASI_OFLAGS_DIRECTORY), ENOENT_);
  CHECK_OK(TryOpen(dir, 0, "target", __WASI_OFLAGS_DIRECTORY));
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  // A directory over a non-empty directory, and over a file.
  CHECK_OK(__wasi_path_create_directory(dir, "source"));
  CHECK_OK(__wasi_path_create_directory(dir, "target"));
  CreateFile(dir, "target/file");
  CHECK_ERRNO(__wasi_path_rename(dir, "source", dir, "target"), ENOTEMPTY_);
  __wasi_errno_t e = __wasi_path_rename(dir, "source", dir, "target/file");
  CHECK_ERRNO(e, ENOTDIR_);
  if (e == 0) {
    CHECK_OK(__wasi_path_remove_directory(dir, "target/file"));
  } else {
    CHECK_OK(__wasi_path_unlink_file(dir, "target/file"));
    CHECK_OK(__wasi_path_remove_directory(dir, "source"));
  }
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  // A file to a new name, over a file, over a directory.
  CreateFile(dir, "source");
  CHECK_OK(__wasi_path_rename(dir, "source", dir, "target"));
  CHECK_ERRNO(TryOpen(dir, 0, "source", 0), ENOENT_);
  CHECK_OK(TryOpen(dir, 0, "target", 0));
  CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  CreateFile(dir, "source");
  CreateFile(dir, "target");
  CHECK_OK(__wasi_path_rename(dir, "source", dir, "target"));
  CHECK_ERRNO(TryOpen(dir, 0, "source", 0), ENOENT_);
  CHECK_OK(TryOpen(dir, 0, "target", 0));
  CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  CreateFile(dir, "source");
  CHECK_OK(__wasi_path_create_directory(dir, "target"));
  CHECK_ERRNO(__wasi_path_rename(dir, "source", dir, "target"), EISDIR_);
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  CHECK_OK(__wasi_path_unlink_file(dir, "source"));
  DropTmp(dir, tmp);
  PASS("path_rename");
}

static void TestPathRenameDirTrailingSlashes(void) {
  const char* tmp = "path_rename_dir_trailing_slashes_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_OK(__wasi_path_create_directory(dir, "source"));
  CHECK_OK(__wasi_path_rename(dir, "source/", dir, "target"));
  CHECK_OK(__wasi_path_rename(dir, "target", dir, "source/"));
  CHECK_OK(__wasi_path_rename(dir, "source/", dir, "target/"));
  CHECK_OK(__wasi_path_rename(dir, "target", dir, "source"));
  CHECK_OK(__wasi_path_remove_directory(dir, "source"));
  DropTmp(dir, tmp);
  PASS("path_rename_dir_trailing_slashes");
}

static void TestPathSymlinkTrailingSlashes(void) {
  const char* tmp = "path_symlink_trailing_slashes_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_ERRNO(__wasi_path_symlink("source", dir, "target/"), ENOENT_);
  if (__wasi_path_symlink("source", dir, "target") == 0)
    CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  CHECK_OK(__wasi_path_create_directory(dir, "target"));
  CHECK_ERRNO(__wasi_path_symlink("source", dir, "target/"), EEXIST_);
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  CHECK_OK(__wasi_path_create_directory(dir, "target"));
  CHECK_ERRNO(__wasi_path_symlink("source", dir, "target"), EEXIST_);
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  CreateFile(dir, "target");
  CHECK_ERRNO(__wasi_path_symlink("source", dir, "target/"), ENOTDIR_, EEXIST_);
  CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  CreateFile(dir, "target");
  CHECK_ERRNO(__wasi_path_symlink("source", dir, "target"), EEXIST_);
  CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  DropTmp(dir, tmp);
  PASS("path_symlink_trailing_slashes");
}

static void TestReadlink(void) {
  const char* tmp = "readlink_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CreateFile(dir, "target");
  CHECK_OK(__wasi_path_symlink("target", dir, "symlink"));
  uint8_t buf[10] = {0};
  __wasi_size_t used = 0;
  CHECK_OK(__wasi_path_readlink(dir, "symlink", buf, sizeof buf, &used));
  CHECK_EQ(used, 6);
  CHECK(memcmp(buf, "target", 6) == 0, "link content");
  CHECK(AllBytes(buf + 6, 4, 0), "bytes past the content untouched");
  uint8_t small[4] = {0};
  CHECK_OK(__wasi_path_readlink(dir, "symlink", small, sizeof small, &used));
  CHECK_EQ(used, 4);
  CHECK(memcmp(small, "targ", 4) == 0, "truncated link content");
  CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  DropTmp(dir, tmp);
  PASS("readlink");
}

static void TestRemoveDirectoryTrailingSlashes(void) {
  CHECK_OK(__wasi_path_create_directory(root, "dir.cleanup"));
  CHECK_OK(__wasi_path_remove_directory(root, "dir.cleanup"));
  CHECK_OK(__wasi_path_create_directory(root, "dir.cleanup"));
  __wasi_errno_t e = __wasi_path_remove_directory(root, "dir.cleanup/");
  CHECK_OK(e);
  if (e != 0) (void)__wasi_path_remove_directory(root, "dir.cleanup");
  CreateFile(root, "file.cleanup");
  CHECK_ERRNO(__wasi_path_remove_directory(root, "file.cleanup"), ENOTDIR_);
  CHECK_ERRNO(__wasi_path_remove_directory(root, "file.cleanup/"), ENOTDIR_);
  CHECK_OK(__wasi_path_unlink_file(root, "file.cleanup"));
  PASS("remove_directory_trailing_slashes");
}

static void TestRemoveNonemptyDirectory(void) {
  const char* tmp = "remove_nonempty_directory_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_OK(__wasi_path_create_directory(dir, "dir"));
  CHECK_OK(__wasi_path_create_directory(dir, "dir/nested"));
  CHECK_ERRNO(__wasi_path_remove_directory(dir, "dir"), ENOTEMPTY_);
  CHECK_OK(__wasi_path_remove_directory(dir, "dir/nested"));
  CHECK_OK(__wasi_path_remove_directory(dir, "dir"));
  DropTmp(dir, tmp);
  PASS("remove_nonempty_directory");
}

static void TestRenumber(void) {
  const char* tmp = "renumber_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  __wasi_fd_t from, to;
  CHECK_OK(Open(dir, 0, "file1", __WASI_OFLAGS_CREAT, R(FD_READ) | R(FD_WRITE), 0, 0, &from));
  __wasi_fdstat_t sf = FdFdstat(from);
  CHECK_OK(Open(dir, 0, "file2", __WASI_OFLAGS_CREAT, R(FD_READ) | R(FD_WRITE), 0, 0, &to));
  CHECK_OK(__wasi_fd_renumber(from, to));
  CHECK_ERRNO(__wasi_fd_close(from), EBADF_);
  __wasi_fdstat_t st = FdFdstat(to);
  CHECK_EQ(st.fs_filetype, sf.fs_filetype);
  CHECK_EQ(st.fs_flags, sf.fs_flags);
  CHECK_EQ(st.fs_rights_base, sf.fs_rights_base);
  CHECK_EQ(st.fs_rights_inheriting, sf.fs_rights_inheriting);
  CHECK_ERRNO(__wasi_fd_renumber(to, from), EBADF_);
  CHECK_OK(__wasi_fd_close(to));
  CHECK_OK(__wasi_path_unlink_file(dir, "file1"));
  CHECK_OK(__wasi_path_unlink_file(dir, "file2"));
  DropTmp(dir, tmp);
  PASS("renumber");
}

static void TestSymlinkCreate(void) {
  const char* tmp = "symlink_create_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  // To a file.
  CreateFile(dir, "target");
  CHECK_OK(__wasi_path_symlink("target", dir, "symlink"));
  CHECK_OK(TryOpen(dir, kFollow, "symlink", 0));
  CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  CHECK_OK(__wasi_path_unlink_file(dir, "target"));
  // To a directory.
  CHECK_OK(__wasi_path_create_directory(dir, "target"));
  CHECK_OK(__wasi_path_symlink("target", dir, "symlink"));
  CHECK_OK(TryOpen(dir, kFollow, "symlink", __WASI_OFLAGS_DIRECTORY));
  CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  CHECK_OK(__wasi_path_remove_directory(dir, "target"));
  // To an absolute path: refused.
  __wasi_errno_t e = __wasi_path_symlink("/", dir, "symlink");
  CHECK_FAILS(e);
  if (e == 0) (void)__wasi_path_unlink_file(dir, "symlink");
  DropTmp(dir, tmp);
  PASS("symlink_create");
}

static void TestSymlinkFilestat(void) {
  const char* tmp = "symlink_filestat_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK(FdFdstat(dir).fs_rights_base & R(PATH_FILESTAT_GET), "dir has PATH_FILESTAT_GET");
  __wasi_fd_t fd;
  CHECK_OK(Open(dir, 0, "file", __WASI_OFLAGS_CREAT,
                R(FD_READ) | R(FD_WRITE) | R(PATH_FILESTAT_GET), 0, 0, &fd));
  __wasi_filestat_t fst = StatAt(dir, 0, "file");
  CHECK_EQ(fst.size, 0);
  CHECK_OK(__wasi_path_symlink("file", dir, "symlink"));
  __wasi_filestat_t sst = StatAt(dir, 0, "symlink");
  uint64_t sym_mtim = sst.mtim - 200;
  CHECK_OK(__wasi_path_filestat_set_times(dir, 0, "symlink", 0, sym_mtim, __WASI_FSTFLAGS_MTIM));
  CHECK_EQ(StatAt(dir, 0, "symlink").mtim, sym_mtim);
  CHECK_EQ(StatAt(dir, 0, "file").mtim, fst.mtim);
  CHECK_EQ(StatAt(dir, kFollow, "symlink").mtim, fst.mtim);
  CHECK_OK(__wasi_path_filestat_set_times(dir, kFollow, "symlink", 0, sst.mtim,
                                          __WASI_FSTFLAGS_MTIM));
  CHECK_EQ(StatAt(dir, 0, "file").mtim, sst.mtim);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("symlink_filestat");
}

static void TestSymlinkLoop(void) {
  const char* tmp = "symlink_loop_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_OK(__wasi_path_symlink("symlink", dir, "symlink"));
  CHECK_ERRNO(TryOpen(dir, 0, "symlink", 0), ELOOP_);
  CHECK_OK(__wasi_path_unlink_file(dir, "symlink"));
  DropTmp(dir, tmp);
  PASS("symlink_loop");
}

static void TestTruncationRights(void) {
  const char* tmp = "truncation_rights_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CreateFile(dir, "file");
  __wasi_fdstat_t st = FdFdstat(dir);
  CHECK_EQ(st.fs_filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(st.fs_flags, 0);
  CHECK_EQ(st.fs_rights_base & R(FD_FILESTAT_SET_SIZE), 0);
  if (st.fs_rights_base & R(PATH_FILESTAT_SET_SIZE)) {
    CHECK_OK(TryOpen(dir, 0, "file", __WASI_OFLAGS_TRUNC));
    __wasi_rights_t base = st.fs_rights_base, inh = st.fs_rights_inheriting;
    if (inh & R(FD_FILESTAT_SET_SIZE)) {
      inh &= ~R(FD_FILESTAT_SET_SIZE);
      CHECK_OK(__wasi_fd_fdstat_set_rights(dir, base, inh));
    }
    CHECK_OK(TryOpen(dir, 0, "file", __WASI_OFLAGS_TRUNC));
    base &= ~R(PATH_FILESTAT_SET_SIZE);
    CHECK_OK(__wasi_fd_fdstat_set_rights(dir, base, inh));
    CHECK_EQ(FdFdstat(dir).fs_rights_base & R(PATH_FILESTAT_SET_SIZE), 0);
    CHECK_ERRNO(TryOpen(dir, 0, "file", __WASI_OFLAGS_TRUNC), EPERM_, ENOTCAPABLE_);
  }
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("truncation_rights");
}

static void TestUnlinkFileTrailingSlashes(void) {
  const char* tmp = "unlink_file_trailing_slashes_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK_OK(__wasi_path_create_directory(dir, "dir"));
  CHECK_ERRNO(__wasi_path_unlink_file(dir, "dir"), EISDIR_);
  CHECK_ERRNO(__wasi_path_unlink_file(dir, "dir/"), EISDIR_);
  CHECK_OK(__wasi_path_remove_directory(dir, "dir"));
  CreateFile(dir, "file");
  CHECK_ERRNO(__wasi_path_unlink_file(dir, "file/"), ENOTDIR_);
  CHECK_OK(__wasi_path_unlink_file(dir, "file"));
  DropTmp(dir, tmp);
  PASS("unlink_file_trailing_slashes");
}

static void TestDanglingFd(void) {
  const char* file = "dangling_fd_file.cleanup";
  const char* sub = "dangling_fd_subdir.cleanup";
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, file, __WASI_OFLAGS_CREAT, 0, 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(Open(root, 0, file, 0, 0, 0, 0, &fd));
  CHECK(fd > 2, "fd above stdio");
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(root, file));
  CHECK_OK(Open(root, 0, file, __WASI_OFLAGS_CREAT, 0, 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(root, file));
  CHECK_OK(__wasi_path_create_directory(root, sub));
  CHECK_OK(Open(root, 0, sub, __WASI_OFLAGS_DIRECTORY, 0, 0, 0, &fd));
  CHECK(fd > 2, "fd above stdio");
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_remove_directory(root, sub));
  CHECK_OK(__wasi_path_create_directory(root, sub));
  CHECK_OK(__wasi_path_remove_directory(root, sub));  // cleanup (the suite leaves it)
  PASS("dangling_fd");
}

static void TestDanglingSymlink(void) {
  const char* name = "dangling_symlink_symlink.cleanup";
  CHECK_OK(__wasi_path_symlink("target", root, name));
  CHECK_ERRNO(TryOpen(root, 0, name, __WASI_OFLAGS_DIRECTORY), ENOTDIR_, ELOOP_);
  CHECK_ERRNO(TryOpen(root, 0, name, 0), ELOOP_);
  CHECK_OK(__wasi_path_unlink_file(root, name));
  PASS("dangling_symlink");
}

static void TestDirectorySeek(void) {
  const char* name = "directory_seek_dir.cleanup";
  CHECK_OK(__wasi_path_create_directory(root, name));
  __wasi_fd_t fd;
  CHECK_OK(Open(root, 0, name, __WASI_OFLAGS_DIRECTORY, R(FD_SEEK), 0, 0, &fd));
  CHECK(fd > 2, "fd above stdio");
  __wasi_filesize_t pos;
  CHECK_ERRNO(__wasi_fd_seek(fd, 0, __WASI_WHENCE_CUR, &pos), EISDIR_, ENOTCAPABLE_, EBADF_);
  __wasi_fdstat_t st = FdFdstat(fd);
  CHECK_EQ(st.fs_filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(st.fs_rights_base & R(FD_SEEK), 0);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_remove_directory(root, name));
  PASS("directory_seek");
}

// On the root directory fd (a fresh open with all the preopen's rights).
static void TestDirFdOpFailures(void) {
  CHECK_EQ(FdStat(root).filetype, __WASI_FILETYPE_DIRECTORY);
  // The first preopen directory: its name with a zero-length buffer, then a longer one.
  __wasi_fd_t pr = (__wasi_fd_t)-1;
  size_t len = 0;
  for (__wasi_fd_t fd = 3; fd < 64; ++fd) {
    __wasi_prestat_t ps;
    if (__wasi_fd_prestat_get(fd, &ps) != 0) break;
    if (ps.tag == __WASI_PREOPENTYPE_DIR) {
      pr = fd;
      len = ps.u.dir.pr_name_len;
      break;
    }
  }
  CHECK(pr != (__wasi_fd_t)-1, "a preopen directory");
  if (pr != (__wasi_fd_t)-1) {
    uint8_t name[256];
    CHECK_ERRNO(__wasi_fd_prestat_dir_name(pr, name, 0), EINVAL_, ENAMETOOLONG_);
    if (len + 1 <= sizeof name) CHECK_OK(__wasi_fd_prestat_dir_name(pr, name, len + 1));
  }
  uint8_t buf[128] = {0};
  __wasi_iovec_t iov = {buf, sizeof buf};
  __wasi_ciovec_t ciov = {buf, sizeof buf};
  __wasi_size_t n;
  __wasi_filesize_t pos;
  CHECK_ERRNO(__wasi_fd_read(root, &iov, 1, &n), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_pread(root, &iov, 1, 0, &n), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_write(root, &ciov, 1, &n), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_pwrite(root, &ciov, 1, 0, &n), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_seek(root, 0, __WASI_WHENCE_CUR, &pos), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_seek(root, 0, __WASI_WHENCE_SET, &pos), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_seek(root, 0, __WASI_WHENCE_END, &pos), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_tell(root, &pos), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_allocate(root, 0, 1), EISDIR_, EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_filestat_set_size(root, 0), EISDIR_, EINVAL_, EBADF_, ENOTCAPABLE_);
  PASS("dir_fd_op_failures");
}

// A second preopen (argv[2]) is closed; the scratch directory's fds stay usable.
static void TestClosePreopen(const char* other) {
  __wasi_fd_t pre = FindPreopen(other);
  CHECK_OK(__wasi_fd_close(pre));
  CHECK_EQ(FdFdstat(root).fs_filetype, __WASI_FILETYPE_DIRECTORY);
  __wasi_fdstat_t st;
  CHECK_ERRNO(__wasi_fd_fdstat_get(pre, &st), EBADF_);
  PASS("close_preopen");
}

// A subdirectory's fd renumbered over the scratch preopen's fd. The preopen is gone
// afterwards; the root fd is still usable.
static void TestOverwritePreopen(void) {
  const char* tmp = "overwrite_preopen_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  CHECK(dir > preopen, "the new fd is above the preopen");
  __wasi_filestat_t before = FdStat(dir);
  CHECK_OK(__wasi_fd_renumber(dir, preopen));
  __wasi_filestat_t after = FdStat(preopen);
  CHECK_EQ(after.dev, before.dev);
  CHECK_EQ(after.ino, before.ino);
  __wasi_fdstat_t st;
  CHECK_ERRNO(__wasi_fd_fdstat_get(dir, &st), EBADF_);
  CHECK_OK(__wasi_fd_close(preopen));
  CHECK_OK(__wasi_path_remove_directory(root, tmp));
  PASS("overwrite_preopen");
}

// stdin, stdout and stderr each renumbered onto a fresh file's fd. Runs last: stdout is
// only reachable through its new number afterwards, so this group reports through it.
static void TestStdio(void) {
  const char* tmp = "stdio_dir.cleanup";
  __wasi_fd_t dir = Tmp(tmp);
  fflush(stdout);
  fflush(stderr);
  int failures = 0;
  char msg[512] = "";
  __wasi_fd_t out_fd = 1;
  const __wasi_fd_t order[3] = {0, 2, 1};  // stdout last, to report through it
  for (int i = 0; i < 3; ++i) {
    __wasi_fd_t from = order[i], to;
    __wasi_errno_t e = Open(dir, 0, "file.cleanup", __WASI_OFLAGS_CREAT, 0, 0, 0, &to);
    if (e != 0) {
      ++failures;
      snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "FAIL stdio: open: %s\n",
               ErrnoName(e));
      continue;
    }
    e = __wasi_fd_renumber(from, to);
    if (e != 0) {
      ++failures;
      snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "FAIL stdio: fd_renumber(%u, %u): %s\n",
               from, to, ErrnoName(e));
    } else if (from == 1) {
      out_fd = to;
    }
    __wasi_fdstat_t st;
    e = __wasi_fd_fdstat_get(to, &st);
    if (e != 0) {
      ++failures;
      snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "FAIL stdio: fd_fdstat_get(%u): %s\n",
               to, ErrnoName(e));
    }
    if (__wasi_fd_fdstat_get(from, &st) == 0) {
      ++failures;
      snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
               "FAIL stdio: fd %u still open after renumbering it away\n", from);
    }
    e = __wasi_path_unlink_file(dir, "file.cleanup");
    if (e != 0) {
      ++failures;
      snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "FAIL stdio: unlink: %s\n",
               ErrnoName(e));
    }
  }
  if (__wasi_fd_close(dir) != 0 || __wasi_path_remove_directory(root, tmp) != 0) {
    ++failures;
    snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "FAIL stdio: cleanup\n");
  }
  snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s stdio\n",
           failures ? "not ok" : "ok");
  __wasi_size_t n;
  Write(out_fd, msg, strlen(msg), &n);
  g_failures += failures;
}

int main(int argc, char** argv) {
  preopen = ScratchDir(argc, argv);
  scratch_name = argv[1];
  __wasi_fdstat_t pst = FdFdstat(preopen);
  CHECK_OK(Open(preopen, 0, ".", __WASI_OFLAGS_DIRECTORY, pst.fs_rights_base,
                pst.fs_rights_inheriting, 0, &root));
  if (root == (__wasi_fd_t)-1) return 1;

  TestDanglingFd();
  TestDanglingSymlink();
  TestDirFdOpFailures();
  TestDirectorySeek();
  TestFdAdvise();
  TestFdFdstatSetRights();
  TestFdFilestatGet();
  TestFdFilestatSet();
  TestFdFlagsSet();
  TestFdReaddir();
  TestFileAllocate();
  TestFilePreadPwrite();
  TestFileSeekTell();
  TestFileTruncation();
  TestFileUnbufferedWrite();
  TestFstflagsValidate();
  TestInterestingPaths();
  TestIsatty();
  TestNofollowErrors();
  TestPathExists();
  TestPathFilestat();
  TestPathLink();
  TestPathOpenCreateExisting();
  TestPathOpenDirfdNotDir();
  TestPathOpenMissing();
  TestPathOpenNonblock();
  TestPathOpenPreopen();
  TestPathOpenReadWrite();
  TestPathRename();
  TestPathRenameDirTrailingSlashes();
  TestPathSymlinkTrailingSlashes();
  TestReadlink();
  TestRemoveDirectoryTrailingSlashes();
  TestRemoveNonemptyDirectory();
  TestRenumber();
  TestSymlinkCreate();
  TestSymlinkFilestat();
  TestSymlinkLoop();
  TestTruncationRights();
  TestUnlinkFileTrailingSlashes();
  if (argc >= 3) TestClosePreopen(argv[2]);
  TestOverwritePreopen();
  TestStdio();
  return Finish();
}
