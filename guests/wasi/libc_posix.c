// WASI conformance through wasi-libc, as real tools use it: stdio files, lseek, stat
// (dev/ino), dirent, the POSIX file calls and their errno values, paths under no preopen
// (ENOTCAPABLE from wasi-libc itself), shutdown on a non-socket, isatty, clocks, entropy.
// Mirrors the testsuite's C programs (lseek.c, stat-dev-ino.c, fopen-with-no-access.c,
// sock_shutdown-not_sock.c, pwrite-with-append.c, isatty.rs).
//
// Preopen: argv[1] = scratch directory (an absolute guest path, e.g. /sandbox) with
// lseek.txt = "01234567" and file = "f".
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wasi_check.h"

#define CHECK_ERRNO_IS(call, want)                                                          \
  do {                                                                                      \
    errno = 0;                                                                              \
    long r_ = (long)(call);                                                                 \
    if (r_ != -1 || errno != (want))                                                        \
      Fail(__FILE__, __LINE__, "%s: returned %ld, errno %s, expected -1 and %s", #call, r_, \
           ErrnoName(errno), ErrnoName(want));                                              \
  } while (0)

static void TestNoAccess(const char* root) {
  // Before chdir the cwd is "/", under no preopen.
  errno = 0;
  CHECK(fopen("file", "r") == NULL && errno == ENOTCAPABLE, "relative path outside preopens");
  errno = 0;
  CHECK(fopen("/elsewhere/file", "r") == NULL && errno == ENOTCAPABLE, "no preopen matches");
  char path[256];
  snprintf(path, sizeof path, "%s/../outside.txt", root);
  errno = 0;
  CHECK(fopen(path, "w") == NULL && (errno == ENOTCAPABLE || errno == EPERM), "'..' out");
  CHECK(chdir(root) == 0, "chdir into the preopen");
  FILE* f = fopen("file", "r");
  CHECK(f != NULL, "relative path after chdir");
  if (f) fclose(f);
  PASS("fopen_no_access");
}

static void TestStdioFiles(void) {
  FILE* f = fopen("data.txt", "w");
  CHECK(f != NULL, "fopen w");
  if (!f) return;
  fprintf(f, "line one\nline %d\n", 2);
  CHECK(fclose(f) == 0, "fclose");
  f = fopen("data.txt", "r");
  CHECK(f != NULL, "fopen r");
  if (!f) return;
  char line[64];
  CHECK(fgets(line, sizeof line, f) && strcmp(line, "line one\n") == 0, "first line");
  CHECK(fgets(line, sizeof line, f) && strcmp(line, "line 2\n") == 0, "second line");
  CHECK(fgets(line, sizeof line, f) == NULL && feof(f), "end of file");
  fclose(f);
  f = fopen("data.txt", "a");
  fputs("three\n", f);
  fclose(f);
  struct stat st;
  CHECK(stat("data.txt", &st) == 0 && st.st_size == 22, "appended");
  PASS("stdio_files");
}

// lseek.c
static void TestLseek(void) {
  FILE* f = fopen("lseek.txt", "r");
  CHECK(f != NULL, "fopen lseek.txt");
  if (!f) return;
  int fd = fileno(f);
  char buf[4];
  CHECK(fread(buf, 1, 4, f) == 4, "fread 4");
  fflush(f);
  CHECK(lseek(fd, 0, SEEK_CUR) == 4, "offset 4");
  CHECK(fread(buf, 1, 1, f) == 1 && buf[0] == '4', "fifth byte");
  fflush(f);
  CHECK(lseek(fd, 0, SEEK_CUR) == 5, "offset 5");
  CHECK(lseek(fd, 0, SEEK_SET) == 0, "SEEK_SET");
  CHECK(lseek(fd, 0, SEEK_END) == 8, "SEEK_END");
  CHECK_ERRNO_IS(lseek(fd, -100, SEEK_SET), EINVAL);
  fclose(f);
  CHECK_ERRNO_IS(lseek(1, 0, SEEK_CUR), ESPIPE);
  PASS("lseek");
}

// stat-dev-ino.c, and stat agreeing with fstat.
static void TestStat(void) {
  int a = open("file", O_RDONLY), b = open("lseek.txt", O_RDONLY);
  CHECK(a >= 0 && b >= 0, "open");
  struct stat sa, sb, pa, dir;
  CHECK(fstat(a, &sa) == 0 && fstat(b, &sb) == 0, "fstat");
  CHECK(sa.st_dev == sb.st_dev, "same device");
  CHECK(sa.st_ino != sb.st_ino, "different inodes");
  CHECK(stat("file", &pa) == 0 && pa.st_ino == sa.st_ino && pa.st_dev == sa.st_dev,
        "stat == fstat");
  CHECK(S_ISREG(pa.st_mode) && pa.st_size == 1 && pa.st_nlink == 1, "regular file");
  CHECK(stat(".", &dir) == 0 && S_ISDIR(dir.st_mode), "directory");
  CHECK_ERRNO_IS(stat("missing", &pa), ENOENT);
  CHECK_ERRNO_IS(stat("file/x", &pa), ENOTDIR);
  close(a);
  close(b);
  PASS("stat_dev_ino");
}

static void TestPosixCalls(void) {
  CHECK(mkdir("d", 0755) == 0, "mkdir");
  CHECK_ERRNO_IS(mkdir("d", 0755), EEXIST);
  int fd = open("d/f", O_CREAT | O_WRONLY | O_EXCL, 0644);
  CHECK(fd >= 0, "open O_CREAT|O_EXCL");
  CHECK(write(fd, "hello", 5) == 5, "write");
  CHECK(ftruncate(fd, 3) == 0, "ftruncate");
  close(fd);
  CHECK_ERRNO_IS(open("d/f", O_CREAT | O_WRONLY | O_EXCL, 0644), EEXIST);
  CHECK_ERRNO_IS(open("d", O_WRONLY), EISDIR);
  CHECK_ERRNO_IS(open("nothing", O_RDONLY), ENOENT);
  CHECK_ERRNO_IS(rmdir("d"), ENOTEMPTY);
  CHECK(access("d/f", F_OK) == 0, "access");
  CHECK_ERRNO_IS(access("d/g", F_OK), ENOENT);
  CHECK(rename("d/f", "d/g") == 0, "rename");
  CHECK(link("d/g", "d/h") == 0, "link");
  CHECK(symlink("g", "d/s") == 0, "symlink");
  char buf[16];
  ssize_t n = readlink("d/s", buf, sizeof buf);
  CHECK(n == 1 && buf[0] == 'g', "readlink");
  struct stat st;
  CHECK(lstat("d/s", &st) == 0 && S_ISLNK(st.st_mode), "lstat sees the link");
  CHECK(stat("d/s", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 3, "stat follows");
  CHECK(st.st_nlink == 2, "two names");
  CHECK(truncate("d/h", 0) == 0, "truncate");
  CHECK(stat("d/g", &st) == 0 && st.st_size == 0, "truncated through the other name");
  struct timespec times[2] = {{1000000000, 0}, {1000000000, 500}};
  CHECK(utimensat(AT_FDCWD, "d/g", times, 0) == 0, "utimensat");
  CHECK(stat("d/g", &st) == 0 && st.st_mtim.tv_sec == 1000000000 && st.st_mtim.tv_nsec == 500,
        "mtime set");
  CHECK_ERRNO_IS(unlink("d"), EISDIR);
  CHECK(unlink("d/s") == 0 && unlink("d/h") == 0 && unlink("d/g") == 0, "unlink");
  CHECK(rmdir("d") == 0, "rmdir");
  CHECK_ERRNO_IS(rmdir("d"), ENOENT);
  PASS("posix_calls");
}

static void TestDirent(void) {
  CHECK(mkdir("list", 0755) == 0, "mkdir");
  static const char* const kNames[] = {"a", "bb", "ccc"};
  for (int i = 0; i < 3; ++i) {
    char p[32];
    snprintf(p, sizeof p, "list/%s", kNames[i]);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create");
    close(fd);
  }
  DIR* d = opendir("list");
  CHECK(d != NULL, "opendir");
  if (!d) return;
  int seen = 0, dots = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
      ++dots;
      CHECK(e->d_type == DT_DIR, "dots are directories");
      continue;
    }
    for (int i = 0; i < 3; ++i) {
      if (strcmp(e->d_name, kNames[i]) == 0) {
        seen |= 1 << i;
        CHECK(e->d_type == DT_REG, "regular files");
        struct stat st;
        char p[32];
        snprintf(p, sizeof p, "list/%s", kNames[i]);
        CHECK(stat(p, &st) == 0 && st.st_ino == e->d_ino, "d_ino matches stat");
      }
    }
  }
  CHECK(seen == 7 && dots == 2, "every entry once");
  rewinddir(d);
  int count = 0;
  while (readdir(d) != NULL) ++count;
  CHECK(count == 5, "rewinddir starts over");
  closedir(d);
  PASS("dirent");
}

// pwrite-with-append.c
static void TestPwriteAppend(void) {
  int fd = open("pwrite.txt", O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
  CHECK(fd >= 0, "open O_APPEND");
  char buf[4] = "abc";
  CHECK(write(fd, buf, 2) == 2, "write");
  CHECK(lseek(fd, 0, SEEK_SET) == 0, "seek 0");
  CHECK(write(fd, buf, 2) == 2, "write appends");
  CHECK(lseek(fd, 0, SEEK_CUR) == 4, "offset at the end");
  CHECK(pwrite(fd, buf, 3, 0) == 3, "pwrite");
  CHECK(lseek(fd, 0, SEEK_CUR) == 4, "pwrite keeps the offset");
  off_t end = lseek(fd, 0, SEEK_END);
  CHECK(end == 4 || end == 7, "pwrite at 0 or at the end");
  close(fd);
  PASS("pwrite_append");
}

static void TestMisc(void) {
  // sock_shutdown-not_sock.c, sock_shutdown-invalid_fd.c
  CHECK_ERRNO_IS(shutdown(STDOUT_FILENO, SHUT_RD), ENOTSOCK);
  CHECK_ERRNO_IS(shutdown(77, SHUT_RD), EBADF);
  // isatty.rs
  int fd = open("file", O_RDONLY);
  errno = 0;
  CHECK(isatty(fd) == 0, "a file is not a tty");
  close(fd);
  PASS("sock_isatty");
  struct timespec res, t0, t1;
  CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0 && (res.tv_sec > 0 || res.tv_nsec > 0),
        "monotonic resolution");
  CHECK(clock_getres(CLOCK_REALTIME, &res) == 0, "realtime resolution");
  CHECK(clock_gettime(CLOCK_REALTIME, &t0) == 0 && t0.tv_sec > 1577836800, "after 2020");
  CHECK(clock_gettime(CLOCK_MONOTONIC, &t0) == 0, "monotonic");
  struct timespec ten_ms = {0, 10000000};
  CHECK(nanosleep(&ten_ms, NULL) == 0, "nanosleep");
  CHECK(clock_gettime(CLOCK_MONOTONIC, &t1) == 0, "monotonic");
  long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec);
  CHECK(ns >= 10000000, "slept 10 ms");
  unsigned char ent[256];
  CHECK(getentropy(ent, sizeof ent) == 0, "getentropy");
  PASS("clocks_entropy");
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  FindPreopen(argv[1]);
  TestNoAccess(argv[1]);
  TestStdioFiles();
  TestLseek();
  TestStat();
  TestPosixCalls();
  TestDirent();
  TestPwriteAppend();
  TestMisc();
  return Finish();
}
