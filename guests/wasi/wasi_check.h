// Shared helpers for moat's WASI conformance programs: raw wasi_snapshot_preview1 calls
// (so errno values are exact), checks that name the call, the file:line and the errno
// got/expected, and small helpers to find preopens and make fixtures.
//
// A failed check prints "FAIL file:line: call: got ENAME (n), expected ENAME[|ENAME...]"
// on stdout and stderr; the program goes on and exits 1 at the end. Each group of checks
// ends with "ok <name>" (all passed) or "not ok <name>".
#pragma once

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

// Raw imports (same symbols wasi-libc binds), for arguments the typed wrappers cannot
// express: paths with an explicit length (embedded NUL, invalid UTF-8) and pointers
// outside linear memory.
#define WASI_RAW(name)                                                         \
  __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name))) \
  __imported_wasi_snapshot_preview1_##name

int32_t WASI_RAW(path_open)(int32_t fd, int32_t dirflags, int32_t path, int32_t path_len,
                            int32_t oflags, int64_t base, int64_t inheriting, int32_t fdflags,
                            int32_t out_fd);
int32_t WASI_RAW(path_create_directory)(int32_t fd, int32_t path, int32_t path_len);
int32_t WASI_RAW(path_filestat_get)(int32_t fd, int32_t flags, int32_t path, int32_t path_len,
                                    int32_t out);
int32_t WASI_RAW(path_readlink)(int32_t fd, int32_t path, int32_t path_len, int32_t buf,
                                int32_t buf_len, int32_t out);
int32_t WASI_RAW(fd_write)(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t out);
int32_t WASI_RAW(fd_read)(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t out);
int32_t WASI_RAW(fd_pread)(int32_t fd, int32_t iovs, int32_t iovs_len, int64_t offset, int32_t out);
int32_t WASI_RAW(fd_readdir)(int32_t fd, int32_t buf, int32_t buf_len, int64_t cookie, int32_t out);
int32_t WASI_RAW(fd_filestat_get)(int32_t fd, int32_t out);
int32_t WASI_RAW(fd_fdstat_get)(int32_t fd, int32_t out);
int32_t WASI_RAW(fd_prestat_get)(int32_t fd, int32_t out);
int32_t WASI_RAW(fd_prestat_dir_name)(int32_t fd, int32_t buf, int32_t len);
int32_t WASI_RAW(fd_seek)(int32_t fd, int64_t offset, int32_t whence, int32_t out);
int32_t WASI_RAW(fd_tell)(int32_t fd, int32_t out);
int32_t WASI_RAW(args_sizes_get)(int32_t argc, int32_t size);
int32_t WASI_RAW(args_get)(int32_t argv, int32_t buf);
int32_t WASI_RAW(environ_get)(int32_t env, int32_t buf);
int32_t WASI_RAW(clock_time_get)(int32_t id, int64_t precision, int32_t out);
int32_t WASI_RAW(clock_res_get)(int32_t id, int32_t out);
int32_t WASI_RAW(random_get)(int32_t buf, int32_t len);
int32_t WASI_RAW(poll_oneoff)(int32_t in, int32_t out, int32_t n, int32_t nevents);
int32_t WASI_RAW(path_symlink)(int32_t old_path, int32_t old_len, int32_t fd, int32_t new_path,
                               int32_t new_len);
int32_t WASI_RAW(proc_raise)(int32_t sig);

#define RAW(name) __imported_wasi_snapshot_preview1_##name

static inline const char* ErrnoName(int e) {
  static const char* const kNames[] = {
      "SUCCESS",      "E2BIG",           "EACCES",       "EADDRINUSE",   "EADDRNOTAVAIL",
      "EAFNOSUPPORT", "EAGAIN",          "EALREADY",     "EBADF",        "EBADMSG",
      "EBUSY",        "ECANCELED",       "ECHILD",       "ECONNABORTED", "ECONNREFUSED",
      "ECONNRESET",   "EDEADLK",         "EDESTADDRREQ", "EDOM",         "EDQUOT",
      "EEXIST",       "EFAULT",          "EFBIG",        "EHOSTUNREACH", "EIDRM",
      "EILSEQ",       "EINPROGRESS",     "EINTR",        "EINVAL",       "EIO",
      "EISCONN",      "EISDIR",          "ELOOP",        "EMFILE",       "EMLINK",
      "EMSGSIZE",     "EMULTIHOP",       "ENAMETOOLONG", "ENETDOWN",     "ENETRESET",
      "ENETUNREACH",  "ENFILE",          "ENOBUFS",      "ENODEV",       "ENOENT",
      "ENOEXEC",      "ENOLCK",          "ENOLINK",      "ENOMEM",       "ENOMSG",
      "ENOPROTOOPT",  "ENOSPC",          "ENOSYS",       "ENOTCONN",     "ENOTDIR",
      "ENOTEMPTY",    "ENOTRECOVERABLE", "ENOTSOCK",     "ENOTSUP",      "ENOTTY",
      "ENXIO",        "EOVERFLOW",       "EOWNERDEAD",   "EPERM",        "EPIPE",
      "EPROTO",       "EPROTONOSUPPORT", "EPROTOTYPE",   "ERANGE",       "EROFS",
      "ESPIPE",       "ESRCH",           "ESTALE",       "ETIMEDOUT",    "ETXTBSY",
      "EXDEV",        "ENOTCAPABLE",
  };
  if (e >= 0 && e < (int)(sizeof kNames / sizeof kNames[0])) return kNames[e];
  return "E?";
}

// Short aliases for expected errno values.
enum {
  OK_ = __WASI_ERRNO_SUCCESS,
  EACCES_ = __WASI_ERRNO_ACCES,
  EBADF_ = __WASI_ERRNO_BADF,
  EEXIST_ = __WASI_ERRNO_EXIST,
  EFAULT_ = __WASI_ERRNO_FAULT,
  EFBIG_ = __WASI_ERRNO_FBIG,
  EDQUOT_ = __WASI_ERRNO_DQUOT,
  ENOSPC_ = __WASI_ERRNO_NOSPC,
  EILSEQ_ = __WASI_ERRNO_ILSEQ,
  EINVAL_ = __WASI_ERRNO_INVAL,
  EISDIR_ = __WASI_ERRNO_ISDIR,
  ELOOP_ = __WASI_ERRNO_LOOP,
  ENAMETOOLONG_ = __WASI_ERRNO_NAMETOOLONG,
  ENOENT_ = __WASI_ERRNO_NOENT,
  ENOSYS_ = __WASI_ERRNO_NOSYS,
  ENOTDIR_ = __WASI_ERRNO_NOTDIR,
  ENOTEMPTY_ = __WASI_ERRNO_NOTEMPTY,
  ENOTSOCK_ = __WASI_ERRNO_NOTSOCK,
  ENOTSUP_ = __WASI_ERRNO_NOTSUP,
  EPERM_ = __WASI_ERRNO_PERM,
  EROFS_ = __WASI_ERRNO_ROFS,
  ESPIPE_ = __WASI_ERRNO_SPIPE,
  EXDEV_ = __WASI_ERRNO_XDEV,
  ENOTCAPABLE_ = __WASI_ERRNO_NOTCAPABLE,
};

// Failed checks so far, in the program and in the current group. A failed check is
// reported and the program goes on (so one run shows every failure); the group then prints
// "not ok", and the program exits 1 at the end (or at once after kMaxFailures).
static int g_failures, g_group_failures;
enum { kMaxFailures = 60 };

static inline void FailV(const char* file, int line, const char* fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  printf("FAIL %s:%d: %s\n", file, line, msg);
  fflush(stdout);
  fprintf(stderr, "FAIL %s:%d: %s\n", file, line, msg);
  ++g_group_failures;
  if (++g_failures >= kMaxFailures) exit(1);
}

static inline void Fail(const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  FailV(file, line, fmt, ap);
  va_end(ap);
}

// Checks that `got` is one of the `n` values in `want`.
static inline void CheckErrno(const char* file, int line, const char* call, int got, int n,
                              const int* want) {
  for (int i = 0; i < n; ++i) {
    if (got == want[i]) return;
  }
  char names[256] = "";
  for (int i = 0; i < n; ++i) {
    if (i) strncat(names, "|", sizeof names - strlen(names) - 1);
    strncat(names, ErrnoName(want[i]), sizeof names - strlen(names) - 1);
  }
  Fail(file, line, "%s: got %s (%d), expected %s", call, ErrnoName(got), got, names);
}

// CHECK_ERRNO(call, E1[, E2...]): the call returns one of the listed errno values.
#define CHECK_ERRNO(expr, ...)                                                                \
  do {                                                                                        \
    const int want_[] = {__VA_ARGS__};                                                        \
    CheckErrno(__FILE__, __LINE__, #expr, (int)(expr), (int)(sizeof want_ / sizeof want_[0]), \
               want_);                                                                        \
  } while (0)

#define CHECK_OK(expr) CHECK_ERRNO(expr, OK_)

// CHECK_FAILS(call): any errno but success (a refusal whose exact errno is not specified).
#define CHECK_FAILS(expr)                                                               \
  do {                                                                                  \
    int got_ = (int)(expr);                                                             \
    if (got_ == 0) Fail(__FILE__, __LINE__, "%s: succeeded, expected an error", #expr); \
  } while (0)

// CHECK(cond, "what"): a plain condition.
#define CHECK(cond, what)                                         \
  do {                                                            \
    if (!(cond)) Fail(__FILE__, __LINE__, "%s: %s", what, #cond); \
  } while (0)

#define CHECK_EQ(a, b)                                                                           \
  do {                                                                                           \
    unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);               \
    if (a_ != b_) Fail(__FILE__, __LINE__, "%s == %s: got %llu, expected %llu", #a, #b, a_, b_); \
  } while (0)

#define CHECK_STR(got, len, want)                                                     \
  do {                                                                                \
    size_t wl_ = strlen(want);                                                        \
    if ((size_t)(len) != wl_ || memcmp((got), (want), wl_) != 0)                      \
      Fail(__FILE__, __LINE__, "%s: got \"%.*s\", expected \"%s\"", #got, (int)(len), \
           (const char*)(got), (want));                                               \
  } while (0)

// Ends a group of checks: "ok <name>" when all passed, else "not ok <name>".
#define PASS(name)                                               \
  do {                                                           \
    printf("%s %s\n", g_group_failures ? "not ok" : "ok", name); \
    fflush(stdout);                                              \
    g_group_failures = 0;                                        \
  } while (0)

// main's return value: 1 when any check failed.
static inline int Finish(void) { return g_failures ? 1 : 0; }

// Rights.
#define R(x) __WASI_RIGHTS_##x
static const __wasi_rights_t kAllFileRights =
    R(FD_DATASYNC) | R(FD_READ) | R(FD_SEEK) | R(FD_FDSTAT_SET_FLAGS) | R(FD_SYNC) | R(FD_TELL) |
    R(FD_WRITE) | R(FD_ADVISE) | R(FD_ALLOCATE) | R(FD_FILESTAT_GET) | R(FD_FILESTAT_SET_SIZE) |
    R(FD_FILESTAT_SET_TIMES) | R(POLL_FD_READWRITE);
static const __wasi_rights_t kAllDirRights =
    R(FD_FDSTAT_SET_FLAGS) | R(FD_SYNC) | R(FD_READDIR) | R(PATH_CREATE_DIRECTORY) |
    R(PATH_CREATE_FILE) | R(PATH_LINK_SOURCE) | R(PATH_LINK_TARGET) | R(PATH_OPEN) |
    R(PATH_READLINK) | R(PATH_RENAME_SOURCE) | R(PATH_RENAME_TARGET) | R(PATH_FILESTAT_GET) |
    R(PATH_FILESTAT_SET_SIZE) | R(PATH_FILESTAT_SET_TIMES) | R(FD_FILESTAT_GET) |
    R(FD_FILESTAT_SET_TIMES) | R(PATH_SYMLINK) | R(PATH_REMOVE_DIRECTORY) | R(PATH_UNLINK_FILE);

// Finds the preopened directory whose name is `name` (via fd_prestat_get and
// fd_prestat_dir_name, never assuming a number). Fails the program if there is none.
static inline __wasi_fd_t FindPreopen(const char* name) {
  for (__wasi_fd_t fd = 3; fd < 64; ++fd) {
    __wasi_prestat_t ps;
    __wasi_errno_t e = __wasi_fd_prestat_get(fd, &ps);
    if (e == __WASI_ERRNO_BADF) break;
    if (e != 0 || ps.tag != __WASI_PREOPENTYPE_DIR) continue;
    char buf[256];
    size_t n = ps.u.dir.pr_name_len;
    if (n >= sizeof buf) continue;
    if (__wasi_fd_prestat_dir_name(fd, (uint8_t*)buf, n) != 0) continue;
    if (n == strlen(name) && memcmp(buf, name, n) == 0) return fd;
  }
  Fail(__FILE__, __LINE__, "no preopen named %s", name);
  exit(1);
}

// The scratch preopen: argv[1] names it (the harness passes it).
static inline __wasi_fd_t ScratchDir(int argc, char** argv) {
  if (argc < 2) {
    Fail(__FILE__, __LINE__, "usage: %s PREOPEN_NAME", argc ? argv[0] : "?");
    exit(1);
  }
  return FindPreopen(argv[1]);
}

// The helpers below fail the program at the caller's file:line.
#define OpenAt(...) OpenAtAt(__FILE__, __LINE__, __VA_ARGS__)
static inline __wasi_fd_t OpenAtAt(const char* file, int line, __wasi_fd_t dir, const char* path,
                                   __wasi_oflags_t oflags, __wasi_rights_t rights,
                                   __wasi_fdflags_t fdflags) {
  __wasi_fd_t fd = (__wasi_fd_t)-1;
  __wasi_errno_t e = __wasi_path_open(dir, 0, path, oflags, rights, rights, fdflags, &fd);
  if (e != 0) Fail(file, line, "path_open(%s): %s", path, ErrnoName(e));
  return fd;
}

#define OpenDir(...) OpenDirAt(__FILE__, __LINE__, __VA_ARGS__)
static inline __wasi_fd_t OpenDirAt(const char* file, int line, __wasi_fd_t dir, const char* path) {
  __wasi_fd_t fd = (__wasi_fd_t)-1;
  __wasi_errno_t e = __wasi_path_open(dir, 0, path, __WASI_OFLAGS_DIRECTORY, kAllDirRights,
                                      kAllDirRights | kAllFileRights, 0, &fd);
  if (e != 0) Fail(file, line, "path_open(%s, DIRECTORY): %s", path, ErrnoName(e));
  return fd;
}

#define WriteAll(...) WriteAllAt(__FILE__, __LINE__, __VA_ARGS__)
static inline size_t WriteAllAt(const char* file, int line, __wasi_fd_t fd, const void* data,
                                size_t len) {
  __wasi_ciovec_t iov = {(const uint8_t*)data, len};
  __wasi_size_t n = 0;
  __wasi_errno_t e = __wasi_fd_write(fd, &iov, 1, &n);
  if (e != 0) Fail(file, line, "fd_write(%u): %s", fd, ErrnoName(e));
  return n;
}

#define ReadSome(...) ReadSomeAt(__FILE__, __LINE__, __VA_ARGS__)
static inline size_t ReadSomeAt(const char* file, int line, __wasi_fd_t fd, void* buf, size_t len) {
  __wasi_iovec_t iov = {(uint8_t*)buf, len};
  __wasi_size_t n = 0;
  __wasi_errno_t e = __wasi_fd_read(fd, &iov, 1, &n);
  if (e != 0) Fail(file, line, "fd_read(%u): %s", fd, ErrnoName(e));
  return n;
}

// Creates (or truncates) `path` under `dir` with `content`.
#define MakeFile(...) MakeFileAt(__FILE__, __LINE__, __VA_ARGS__)
static inline void MakeFileAt(const char* file, int line, __wasi_fd_t dir, const char* path,
                              const char* content) {
  __wasi_fd_t fd = OpenAtAt(file, line, dir, path, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC,
                            R(FD_WRITE) | R(FD_READ), 0);
  if (content && *content) WriteAllAt(file, line, fd, content, strlen(content));
  if (__wasi_fd_close(fd) != 0) Fail(file, line, "fd_close");
}

#define StatAt(...) StatAtAt(__FILE__, __LINE__, __VA_ARGS__)
static inline __wasi_filestat_t StatAtAt(const char* file, int line, __wasi_fd_t dir,
                                         __wasi_lookupflags_t flags, const char* path) {
  __wasi_filestat_t st;
  memset(&st, 0, sizeof st);
  __wasi_errno_t e = __wasi_path_filestat_get(dir, flags, path, &st);
  if (e != 0) Fail(file, line, "path_filestat_get(%s): %s", path, ErrnoName(e));
  return st;
}

#define FdStat(fd) FdStatAt(__FILE__, __LINE__, fd)
static inline __wasi_filestat_t FdStatAt(const char* file, int line, __wasi_fd_t fd) {
  __wasi_filestat_t st;
  memset(&st, 0, sizeof st);
  __wasi_errno_t e = __wasi_fd_filestat_get(fd, &st);
  if (e != 0) Fail(file, line, "fd_filestat_get(%u): %s", fd, ErrnoName(e));
  return st;
}

#define FdFdstat(fd) FdFdstatAt(__FILE__, __LINE__, fd)
static inline __wasi_fdstat_t FdFdstatAt(const char* file, int line, __wasi_fd_t fd) {
  __wasi_fdstat_t st;
  memset(&st, 0, sizeof st);
  __wasi_errno_t e = __wasi_fd_fdstat_get(fd, &st);
  if (e != 0) Fail(file, line, "fd_fdstat_get(%u): %s", fd, ErrnoName(e));
  return st;
}

// True when the path exists (without following a final symlink).
static inline int Exists(__wasi_fd_t dir, const char* path) {
  __wasi_filestat_t st;
  return __wasi_path_filestat_get(dir, 0, path, &st) == 0;
}

// An address just past the end of linear memory: any access there is out of bounds.
static inline uint32_t MemoryEnd(void) {
  return (uint32_t)(__builtin_wasm_memory_size(0) * 65536u);
}
