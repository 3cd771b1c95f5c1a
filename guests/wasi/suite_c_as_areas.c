// WASI conformance for the areas the official WASI test suite exercises with its C
// programs (through wasi-libc) and its AssemblyScript programs (raw preview1 calls):
// clocks, fdopendir/readdir inodes, fopen with and without a preopen, lseek, pread,
// pwrite (plain and on an O_APPEND fd), shutdown on a bad fd and on a non-socket,
// st_dev/st_ino, args, environ, fd_write to stdout and to a bad fd, proc_exit,
// random_get. Written from scratch; the expectations are Wasmtime's.
//
// Invocations (the host test uses exactly these):
//
//  1. Main mode: one preopen, writable and initially empty, named argv[1]; exactly
//         suite_c_as_areas.wasm /sandbox first 'the "second" arg' 3
//     (so 5 args in all) and exactly these 3 environment variables, nothing else:
//         a=text
//         b=escap " ing          (a double quote between two spaces)
//         c=new<LF>line          (a real newline character)
//     Prints one "ok <group>" line per group (see main) and exits 0; a failed check
//     prints "FAIL ..." and "not ok <group>", and the exit status is 1.
//
//  2. No-arguments mode: no arguments at all after the module (argc == 1), no
//     environment variables, no preopen needed:
//         suite_c_as_areas.wasm
//     Prints "ok args_none\nok environ_none\n" and exits 0 (else 1).
//
//  3. stdout mode:  suite_c_as_areas.wasm /sandbox stdout
//     Writes exactly "hello" (5 bytes, no newline) to fd 1 with one raw fd_write (after
//     an empty fd_write with no iovecs) and exits 0. Stdout must be exactly "hello". (On a failed check it prints FAIL lines
//     after it and exits 1.)
//
//  4. exit mode:    suite_c_as_areas.wasm /sandbox exit N     (N = 0 and N = 33)
//     Calls proc_exit(N) first thing, printing nothing. The process must exit with
//     status N and empty stdout. If proc_exit returns, prints a FAIL line and exits 99.
//
// Env vars and args of modes 3 and 4 do not matter (the preopen is not even looked up).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wasi_check.h"

int32_t WASI_RAW(sock_shutdown)(int32_t fd, int32_t how);
int32_t WASI_RAW(environ_sizes_get)(int32_t count, int32_t size);
void WASI_RAW(proc_exit)(int32_t code);

static const char* const kMainArgs[] = {"first", "the \"second\" arg", "3"};
static const char* const kMainEnv[] = {"a=text", "b=escap \" ing", "c=new\nline"};

// Libc call fails with -1 and errno `want`.
#define CHECK_LIBC_ERRNO(call, want)                                                        \
  do {                                                                                      \
    errno = 0;                                                                              \
    long r_ = (long)(call);                                                                 \
    int e_ = errno;                                                                         \
    if (r_ != -1 || e_ != (want))                                                           \
      Fail(__FILE__, __LINE__, "%s: returned %ld, errno %s, expected -1 and %s", #call, r_, \
           ErrnoName(e_), ErrnoName(want));                                                 \
  } while (0)

// Raw args_sizes_get with 32-bit out cells, as the AssemblyScript programs call it.
static void RawSizes(int args, uint32_t* count, uint32_t* size) {
  uint32_t cells[2] = {0xdeadbeef, 0xdeadbeef};
  int e = args ? RAW(args_sizes_get)((int32_t)&cells[0], (int32_t)&cells[1])
               : RAW(environ_sizes_get)((int32_t)&cells[0], (int32_t)&cells[1]);
  CHECK_ERRNO(e, OK_);
  *count = cells[0];
  *size = cells[1];
}

// Fetches the whole args (or environ) block into one allocation laid out like the
// AssemblyScript programs do: the pointer array, then the string bytes right after it.
static char** RawBlock(int args, uint32_t* count_out) {
  uint32_t count, size;
  RawSizes(args, &count, &size);
  *count_out = count;
  size_t ptrs = (size_t)count * sizeof(char*);
  char* block = malloc(ptrs + size + 1);
  if (!block) exit(1);
  memset(block, 0x5a, ptrs + size + 1);
  int e = args ? RAW(args_get)((int32_t)block, (int32_t)(block + ptrs))
               : RAW(environ_get)((int32_t)block, (int32_t)(block + ptrs));
  CHECK_ERRNO(e, OK_);
  char** v = (char**)block;
  size_t total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    CHECK(v[i] >= block + ptrs && v[i] < block + ptrs + size, "string inside the buffer");
    if (v[i] < block + ptrs || v[i] >= block + ptrs + size) return v;
    total += strlen(v[i]) + 1;
  }
  CHECK_EQ(total, size);
  CHECK_EQ((unsigned char)block[ptrs + size], 0x5a);  // nothing written past the end
  return v;
}

// args_sizes_get-multiple-arguments, args_get-multiple-arguments.
static void TestArgs(char** argv) {
  uint32_t count;
  char** v = RawBlock(1, &count);
  CHECK_EQ(count, 5);
  if (count == 5) {
    CHECK(strcmp(v[0], argv[0]) == 0, "argv[0] as libc saw it");
    CHECK(strcmp(v[1], argv[1]) == 0, "argv[1] is the scratch preopen");
    for (int i = 0; i < 3; ++i) CHECK_STR(v[i + 2], strlen(v[i + 2]), kMainArgs[i]);
  }
  free(v);
  PASS("args_multiple");
}

// environ_sizes_get-multiple-variables, environ_get-multiple-variables (any order).
static void TestEnviron(void) {
  uint32_t count;
  char** v = RawBlock(0, &count);
  CHECK_EQ(count, 3);
  int seen[3] = {0, 0, 0};
  for (uint32_t i = 0; i < count && i < 8; ++i) {
    int found = 0;
    for (int j = 0; j < 3; ++j) {
      if (!seen[j] && strcmp(v[i], kMainEnv[j]) == 0) {
        seen[j] = found = 1;
        break;
      }
    }
    if (!found) Fail(__FILE__, __LINE__, "unexpected environ entry \"%s\"", v[i]);
  }
  for (int j = 0; j < 3; ++j) CHECK(seen[j], kMainEnv[j]);
  free(v);
  // libc's view agrees.
  CHECK(getenv("a") && strcmp(getenv("a"), "text") == 0, "getenv(a)");
  CHECK(getenv("b") && strcmp(getenv("b"), "escap \" ing") == 0, "getenv(b)");
  CHECK(getenv("c") && strcmp(getenv("c"), "new\nline") == 0, "getenv(c)");
  PASS("environ_multiple");
}

// args_sizes_get-no-arguments, environ_sizes_get-no-variables.
static int NoArgsMode(void) {
  uint32_t count, size;
  RawSizes(1, &count, &size);
  CHECK_EQ(count, 1);  // just the program name
  char** v = RawBlock(1, &count);
  if (count == 1) CHECK(strlen(v[0]) + 1 == size, "argv[0] fills the buffer");
  free(v);
  PASS("args_none");
  RawSizes(0, &count, &size);
  CHECK_EQ(count, 0);
  CHECK_EQ(size, 0);
  v = RawBlock(0, &count);
  free(v);
  PASS("environ_none");
  return Finish();
}

// fd_write-to-stdout: exactly "hello" on stdout.
static int StdoutMode(void) {
  static const char kMsg[] = "hello";
  __wasi_ciovec_t iov = {(const uint8_t*)kMsg, 5};
  uint32_t written = 0xdeadbeef;
  // An empty iovec list writes nothing and succeeds.
  CHECK_ERRNO(RAW(fd_write)(1, 0, 0, (int32_t)&written), OK_);
  CHECK_EQ(written, 0);
  written = 0xdeadbeef;
  int e = RAW(fd_write)(1, (int32_t)&iov, 1, (int32_t)&written);
  CHECK_ERRNO(e, OK_);
  CHECK_EQ(written, 5);
  return Finish();
}

// fd_write-to-invalid-fd.
static void TestFdWriteInvalid(void) {
  uint32_t written = 0xdeadbeef;
  CHECK_ERRNO(RAW(fd_write)(-31337, 0, 0, (int32_t)&written), EBADF_);
  __wasi_ciovec_t iov = {(const uint8_t*)"x", 1};
  CHECK_ERRNO(RAW(fd_write)(-31337, (int32_t)&iov, 1, (int32_t)&written), EBADF_);
  CHECK_ERRNO(RAW(fd_write)(420, (int32_t)&iov, 1, (int32_t)&written), EBADF_);
  PASS("fd_write_invalid_fd");
}

// random_get-zero-length, random_get-non-zero-length.
static void TestRandom(void) {
  uint8_t* p = malloc(1);
  CHECK_ERRNO(RAW(random_get)((int32_t)p, 0), OK_);
  free(p);
  // An empty range is in bounds anywhere up to the end of memory.
  CHECK_ERRNO(RAW(random_get)((int32_t)MemoryEnd(), 0), OK_);
  PASS("random_zero_length");
  uint8_t buf[32];
  memset(buf, 0, sizeof buf);
  CHECK_ERRNO(RAW(random_get)((int32_t)buf, 32), OK_);
  int nonzero = 0;
  for (int i = 0; i < 32; ++i) nonzero |= buf[i];
  CHECK(nonzero, "32 random bytes are not all zero");
  PASS("random_non_zero_length");
}

// clock_getres-monotonic/realtime, clock_gettime-monotonic/realtime (through libc).
static void TestClocks(void) {
  struct timespec ts;
  memset(&ts, 0, sizeof ts);
  CHECK(clock_getres(CLOCK_MONOTONIC, &ts) == 0, "clock_getres(CLOCK_MONOTONIC)");
  CHECK(ts.tv_sec > 0 || ts.tv_nsec > 0, "monotonic resolution is not zero");
  memset(&ts, 0, sizeof ts);
  CHECK(clock_getres(CLOCK_REALTIME, &ts) == 0, "clock_getres(CLOCK_REALTIME)");
  CHECK(ts.tv_sec > 0 || ts.tv_nsec > 0, "realtime resolution is not zero");
  PASS("clock_getres");

  CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0, "clock_gettime(CLOCK_REALTIME)");
  CHECK(ts.tv_sec > 1577836800, "realtime is after 2020");
  // Two back-to-back monotonic readings must be strictly increasing.
  for (int i = 0; i < 100; ++i) {
    struct timespec a, b;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0, "clock_gettime(CLOCK_MONOTONIC)");
    CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0, "clock_gettime(CLOCK_MONOTONIC)");
    int later = a.tv_sec == b.tv_sec ? a.tv_nsec < b.tv_nsec : a.tv_sec < b.tv_sec;
    if (!later) {
      Fail(__FILE__, __LINE__, "monotonic not strictly increasing: %lld.%09ld then %lld.%09ld",
           (long long)a.tv_sec, a.tv_nsec, (long long)b.tv_sec, b.tv_nsec);
      break;
    }
  }
  PASS("clock_gettime");
}

// Fixtures, made through libc after chdir into the scratch preopen:
//   fs-tests.dir/file                    "file"
//   fs-tests.dir/lseek.txt               "01234567"
//   fs-tests.dir/pread.txt               "pread-test"
//   fs-tests.dir/fopendir.dir/file-0     ""
//   fs-tests.dir/fopendir.dir/file-1     ""
//   fs-tests.dir/writeable/              (empty)
static void PutFile(const char* path, const char* content) {
  FILE* f = fopen(path, "w");
  CHECK(f != NULL, path);
  if (!f) return;
  if (*content) CHECK(fputs(content, f) >= 0, path);
  CHECK(fclose(f) == 0, path);
}

static void MakeFixtures(void) {
  CHECK(mkdir("fs-tests.dir", 0755) == 0, "mkdir fs-tests.dir");
  CHECK(mkdir("fs-tests.dir/fopendir.dir", 0755) == 0, "mkdir fopendir.dir");
  CHECK(mkdir("fs-tests.dir/writeable", 0755) == 0, "mkdir writeable");
  PutFile("fs-tests.dir/file", "file");
  PutFile("fs-tests.dir/lseek.txt", "01234567");
  PutFile("fs-tests.dir/pread.txt", "pread-test");
  PutFile("fs-tests.dir/fopendir.dir/file-0", "");
  PutFile("fs-tests.dir/fopendir.dir/file-1", "");
  PASS("fixtures");
}

// fopen-with-access, fopen-with-no-access.
static void TestFopen(void) {
  FILE* f = fopen("fs-tests.dir/file", "r");
  CHECK(f != NULL, "fopen of a file under the preopen");
  if (f) CHECK(fclose(f) == 0, "fclose");
  PASS("fopen_with_access");
  // A path under no preopen at all: wasi-libc refuses it itself with ENOTCAPABLE.
  errno = 0;
  f = fopen("/fs-tests.dir/file", "r");
  CHECK(f == NULL && errno == ENOTCAPABLE, "fopen under no preopen: NULL, ENOTCAPABLE");
  if (f) fclose(f);
  PASS("fopen_with_no_access");
}

// lseek: fread through a buffered stream, then the fd's offset.
static void TestLseek(void) {
  FILE* f = fopen("fs-tests.dir/lseek.txt", "r");
  CHECK(f != NULL, "fopen lseek.txt");
  if (!f) return;
  int fd = fileno(f);
  char buf[4];
  CHECK_EQ(fread(buf, 1, 4, f), 4);
  fflush(f);
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
  CHECK_EQ(fread(buf, 1, 1, f), 1);
  fflush(f);
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
  CHECK_EQ(buf[0], '4');
  CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
  CHECK_EQ(lseek(fd, 0, SEEK_END), 8);
  CHECK_EQ(lseek(fd, -3, SEEK_END), 5);
  CHECK_EQ(lseek(fd, 2, SEEK_CUR), 7);
  CHECK_LIBC_ERRNO(lseek(fd, -100, SEEK_CUR), EINVAL);
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 7);
  CHECK(fclose(f) == 0, "fclose");
  PASS("lseek");
}

// pread-with-access.
static void TestPread(void) {
  int fd = open("fs-tests.dir/pread.txt", O_RDONLY);
  CHECK(fd > 0, "open pread.txt");
  if (fd < 0) return;
  char buf[16];
  int got = 0;
  while (got < 3) {
    ssize_t r = pread(fd, buf + got, 3 - got, 4 + got);
    CHECK(r > 0, "pread makes progress");
    if (r <= 0) break;
    got += (int)r;
  }
  CHECK_STR(buf, got, "d-t");
  // pread does not move the offset.
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
  CHECK_EQ(pread(fd, buf, sizeof buf, 10), 0);  // at EOF
  CHECK_EQ(pread(fd, buf, sizeof buf, 8), 2);
  CHECK(close(fd) == 0, "close");
  PASS("pread_with_access");
}

static int PwriteFull(int fd, const char* s, int len, int off) {
  int done = 0;
  while (done < len) {
    ssize_t r = pwrite(fd, s + done, len - done, off + done);
    CHECK(r > 0, "pwrite makes progress");
    if (r <= 0) break;
    done += (int)r;
  }
  return done;
}

// pwrite-with-access.
static void TestPwrite(void) {
  const char* path = "fs-tests.dir/writeable/test_pwrite_pread.txt.cleanup";
  CHECK(access(path, F_OK) != 0, "test file does not exist yet");
  int fd = open(path, O_WRONLY | O_CREAT, 0644);
  CHECK(fd > 0, "open O_WRONLY|O_CREAT");
  if (fd < 0) return;
  CHECK_EQ(PwriteFull(fd, "very long text", 14, 0), 14);
  CHECK_EQ(PwriteFull(fd, "test", 4, 3), 4);
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);  // pwrite leaves the offset alone
  CHECK(close(fd) == 0, "close");
  fd = open(path, O_RDONLY);
  CHECK(fd > 0, "open O_RDONLY");
  if (fd < 0) return;
  char buf[16];
  int got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, sizeof buf - got);
    CHECK(r >= 0, "read");
    if (r <= 0) break;
    got += (int)r;
  }
  CHECK_STR(buf, got, "vertestng text");
  CHECK(close(fd) == 0, "close");
  CHECK(remove(path) == 0, "remove");
  CHECK(access(path, F_OK) != 0, "test file is gone");
  PASS("pwrite_with_access");
}

// pwrite-with-append: writes on an O_APPEND fd go to the end whatever the offset;
// pwrite there succeeds, does not move the offset, and lands at 0 (POSIX) or at the end
// (Linux) - both are accepted, as by the suite.
static void TestPwriteAppend(void) {
  const char* path = "fs-tests.dir/pwrite.cleanup";
  char buf[4] = {'a', 'b', 'c', 'd'};
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
  CHECK(fd != -1, "open O_APPEND");
  if (fd < 0) return;
  CHECK_EQ(write(fd, buf, 2), 2);
  CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
  CHECK_EQ(write(fd, buf, 2), 2);
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
  CHECK_EQ(pwrite(fd, buf, 3, 0), 3);
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
  off_t end = lseek(fd, 0, SEEK_END);
  CHECK(end == 4 || end == 7, "pwrite on O_APPEND writes at 0 or at the end");
  CHECK(close(fd) == 0, "close");

  // The stdio flavour ("a+").
  FILE* f = fopen(path, "a+");
  CHECK(f != NULL, "fopen a+");
  if (f) {
    int sfd = fileno(f);
    off_t before = lseek(sfd, 0, SEEK_END);
    CHECK_EQ(fwrite(buf, 1, 4, f), 4);
    fflush(f);
    CHECK_EQ(lseek(sfd, 0, SEEK_END), before + 4);
    CHECK_EQ(pwrite(sfd, buf, 4, 0), 4);
    off_t e2 = lseek(sfd, 0, SEEK_END);
    CHECK(e2 == before + 4 || e2 == before + 8, "pwrite on a+ writes at 0 or at the end");
    CHECK(fclose(f) == 0, "fclose");
  }
  CHECK(unlink(path) == 0, "unlink");
  PASS("pwrite_with_append");
}

// sock_shutdown-invalid_fd, sock_shutdown-not_sock (libc shutdown and raw sock_shutdown).
static void TestShutdown(void) {
  CHECK_LIBC_ERRNO(shutdown(420, SHUT_RD), EBADF);
  int fd = open("fs-tests.dir/file", O_RDONLY);
  CHECK(fd > 0, "open");
  CHECK(close(fd) == 0, "close");
  CHECK_LIBC_ERRNO(shutdown(fd, SHUT_RD), EBADF);  // just closed
  CHECK_ERRNO(RAW(sock_shutdown)(420, __WASI_SDFLAGS_RD), EBADF_);
  CHECK_ERRNO(RAW(sock_shutdown)(-31337, __WASI_SDFLAGS_WR), EBADF_);
  PASS("sock_shutdown_invalid_fd");
  CHECK_LIBC_ERRNO(shutdown(STDOUT_FILENO, SHUT_RD), ENOTSOCK);
  CHECK_ERRNO(RAW(sock_shutdown)(1, __WASI_SDFLAGS_RD), ENOTSOCK_);
  fd = open("fs-tests.dir/file", O_RDONLY);
  CHECK(fd > 0, "open");
  CHECK_LIBC_ERRNO(shutdown(fd, SHUT_RDWR), ENOTSOCK);
  close(fd);
  PASS("sock_shutdown_not_sock");
}

// stat-dev-ino.
static void TestStatDevIno(void) {
  int a = open("fs-tests.dir/file", O_RDONLY);
  int b = open("fs-tests.dir/lseek.txt", O_RDONLY);
  CHECK(a != -1 && b != -1, "open both files");
  struct stat sa, sb, pa;
  memset(&sa, 0, sizeof sa);
  memset(&sb, 0, sizeof sb);
  CHECK(fstat(a, &sa) == 0, "fstat a");
  CHECK(fstat(b, &sb) == 0, "fstat b");
  CHECK(sa.st_dev == sb.st_dev, "same st_dev in one directory");
  CHECK(sa.st_ino != sb.st_ino, "different st_ino for different files");
  // The path-based stat names the same file as fstat does.
  CHECK(stat("fs-tests.dir/file", &pa) == 0, "stat");
  CHECK(pa.st_dev == sa.st_dev && pa.st_ino == sa.st_ino, "stat agrees with fstat");
  close(a);
  close(b);
  PASS("stat_dev_ino");
}

// fdopendir-with-access: exactly file-0 and file-1 (besides dot entries), each d_ino
// equal to fstatat's st_ino (no follow), and the two inodes differ.
static void TestFdopendir(void) {
  int dfd = open("fs-tests.dir/fopendir.dir", O_RDONLY | O_DIRECTORY);
  CHECK(dfd != -1, "open O_DIRECTORY");
  if (dfd < 0) return;
  DIR* d = fdopendir(dfd);
  CHECK(d != NULL, "fdopendir");
  if (!d) return;
  int seen[2] = {0, 0};
  ino_t ino[2] = {0, 0};
  struct dirent* de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    int k = strcmp(de->d_name, "file-0") == 0 ? 0 : strcmp(de->d_name, "file-1") == 0 ? 1 : -1;
    if (k < 0) {
      Fail(__FILE__, __LINE__, "unexpected entry \"%s\"", de->d_name);
      continue;
    }
    CHECK(!seen[k], "each entry once");
    seen[k] = 1;
    ino[k] = de->d_ino;
    struct stat st;
    CHECK(fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0, "fstatat");
    if (st.st_ino != de->d_ino)
      Fail(__FILE__, __LINE__, "%s: d_ino %llu != st_ino %llu", de->d_name,
           (unsigned long long)de->d_ino, (unsigned long long)st.st_ino);
  }
  CHECK(closedir(d) == 0, "closedir");
  CHECK(seen[0] && seen[1], "file-0 and file-1 listed");
  CHECK(ino[0] != ino[1], "distinct inodes");
  PASS("fdopendir_with_access");
}

int main(int argc, char** argv) {
  if (argc == 1) return NoArgsMode();
  if (argc >= 3 && strcmp(argv[2], "stdout") == 0) return StdoutMode();
  if (argc >= 4 && strcmp(argv[2], "exit") == 0) {
    RAW(proc_exit)(atoi(argv[3]));
    Fail(__FILE__, __LINE__, "proc_exit returned");
    return 99;
  }

  ScratchDir(argc, argv);
  TestArgs(argv);
  TestEnviron();
  TestFdWriteInvalid();
  TestRandom();
  TestClocks();

  CHECK(chdir(argv[1]) == 0, "chdir into the scratch preopen");
  MakeFixtures();
  TestFopen();
  TestLseek();
  TestPread();
  TestPwrite();
  TestPwriteAppend();
  TestShutdown();
  TestStatDevIno();
  TestFdopendir();
  return Finish();
}
