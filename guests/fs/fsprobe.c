// fsprobe: runs filesystem operations named on its command line through raw WASI calls and
// prints one line per operation with the WASI errno, so host tests can drive hostile cases.
//   fsprobe OP ARG... [-- OP ARG...]...
// A path argument is MOUNT:PATH, e.g. /w:sub/file; PATH goes to WASI exactly as written
// (so "../x" or "/etc" reach the host unchanged). "\0" in a path becomes a NUL byte.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

#define IMPORT(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))

int32_t raw_path_open(int32_t fd, int32_t lookup, int32_t path, int32_t len, int32_t oflags,
                      int64_t base, int64_t inh, int32_t fdflags, int32_t out) IMPORT(path_open);

static int g_failed = 0;

// Finds the preopen named `name`; -1 if none.
static int PreopenFd(const char* name, size_t len) {
  for (int fd = 3; fd < 64; ++fd) {
    __wasi_prestat_t ps;
    if (__wasi_fd_prestat_get(fd, &ps) != 0) continue;
    char buf[256];
    if (ps.u.dir.pr_name_len >= sizeof buf) continue;
    if (__wasi_fd_prestat_dir_name(fd, (uint8_t*)buf, ps.u.dir.pr_name_len) != 0) continue;
    if (ps.u.dir.pr_name_len == len && memcmp(buf, name, len) == 0) return fd;
  }
  return -1;
}

typedef struct {
  int dirfd;
  char path[4096];
  size_t len;
} Target;

// MOUNT:PATH -> preopen fd + raw path bytes.
static Target Parse(const char* arg) {
  Target t = {-1, {0}, 0};
  const char* colon = strchr(arg, ':');
  if (!colon) {
    fprintf(stderr, "fsprobe: expected MOUNT:PATH, got %s\n", arg);
    exit(2);
  }
  t.dirfd = PreopenFd(arg, (size_t)(colon - arg));
  if (t.dirfd < 0) {
    fprintf(stderr, "fsprobe: no preopen %.*s\n", (int)(colon - arg), arg);
    exit(2);
  }
  for (const char* p = colon + 1; *p && t.len < sizeof t.path; ++p) {
    if (p[0] == '\\' && p[1] == '0') {
      t.path[t.len++] = 0;
      ++p;
    } else {
      t.path[t.len++] = *p;
    }
  }
  return t;
}

static int OpenT(Target t, int lookup, int oflags, uint64_t rights, int fdflags, __wasi_fd_t* fd) {
  return raw_path_open(t.dirfd, lookup, (int32_t)(uintptr_t)t.path, (int32_t)t.len, oflags,
                       (int64_t)rights, (int64_t)rights, fdflags, (int32_t)(uintptr_t)fd);
}

static const uint64_t kRead = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK |
                              __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FILESTAT_GET |
                              __WASI_RIGHTS_FD_READDIR;
static const uint64_t kWrite = __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_DATASYNC |
                               __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE |
                               __WASI_RIGHTS_FD_FILESTAT_SET_TIMES;

static void Report(const char* op, int err) { printf("%s errno=%d\n", op, err); }

// Prints the file's content (up to 256 bytes) as content=<...>.
static void PrintContent(__wasi_fd_t fd) {
  char buf[257];
  __wasi_iovec_t iov = {(uint8_t*)buf, 256};
  __wasi_size_t n = 0;
  int e = __wasi_fd_read(fd, &iov, 1, &n);
  if (e) {
    printf(" read_errno=%d", e);
    return;
  }
  buf[n] = 0;
  while (n && (buf[n - 1] == '\n')) buf[--n] = 0;
  printf(" content=%s", buf);
}

static int Run(int argc, char** argv) {
  const char* op = argv[0];
  if (!strcmp(op, "read") && argc == 2) {  // read MOUNT:PATH [follow]
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, 0, kRead, 0, &fd);
    printf("read errno=%d", e);
    if (!e) {
      PrintContent(fd);
      __wasi_fd_close(fd);
    }
    printf("\n");
  } else if (!strcmp(op, "readnf") && argc == 2) {  // read without following symlinks
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, 0, kRead, 0, &fd);
    printf("readnf errno=%d", e);
    if (!e) {
      PrintContent(fd);
      __wasi_fd_close(fd);
    }
    printf("\n");
  } else if (!strcmp(op, "write") && argc == 3) {  // write MOUNT:PATH DATA (create+trunc)
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC,
                  kRead | kWrite, 0, &fd);
    if (!e) {
      __wasi_ciovec_t iov = {(const uint8_t*)argv[2], strlen(argv[2])};
      __wasi_size_t n;
      e = __wasi_fd_write(fd, &iov, 1, &n);
      __wasi_fd_close(fd);
    }
    Report("write", e);
  } else if (!strcmp(op, "append") && argc == 3) {  // append MOUNT:PATH DATA (no create)
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e =
        OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, 0, kRead | kWrite, __WASI_FDFLAGS_APPEND, &fd);
    if (!e) {
      __wasi_ciovec_t iov = {(const uint8_t*)argv[2], strlen(argv[2])};
      __wasi_size_t n;
      e = __wasi_fd_write(fd, &iov, 1, &n);
      __wasi_fd_close(fd);
    }
    Report("append", e);
  } else if (!strcmp(op, "create") && argc == 2) {  // create MOUNT:PATH (excl)
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, kRead | kWrite, 0, &fd);
    if (!e) __wasi_fd_close(fd);
    Report("create", e);
  } else if (!strcmp(op, "rofd") && argc == 2) {  // every mutation through a read-only fd
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, 0, kRead, 0, &fd);
    if (e) {
      Report("rofd.open", e);
      return 0;
    }
    __wasi_ciovec_t iov = {(const uint8_t*)"x", 1};
    __wasi_size_t n;
    Report("rofd.write", __wasi_fd_write(fd, &iov, 1, &n));
    Report("rofd.pwrite", __wasi_fd_pwrite(fd, &iov, 1, 0, &n));
    Report("rofd.set_size", __wasi_fd_filestat_set_size(fd, 0));
    Report("rofd.allocate", __wasi_fd_allocate(fd, 0, 4096));
    Report("rofd.set_times", __wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_MTIM));
    Report("rofd.set_rights_up",
           __wasi_fd_fdstat_set_rights(fd, kRead | __WASI_RIGHTS_FD_WRITE, 0));
    __wasi_fd_close(fd);
  } else if (!strcmp(op, "mkdir") && argc == 2) {
    Target t = Parse(argv[1]);
    Report("mkdir", __wasi_path_create_directory(t.dirfd, t.path));
  } else if (!strcmp(op, "rmdir") && argc == 2) {
    Target t = Parse(argv[1]);
    Report("rmdir", __wasi_path_remove_directory(t.dirfd, t.path));
  } else if (!strcmp(op, "unlink") && argc == 2) {
    Target t = Parse(argv[1]);
    Report("unlink", __wasi_path_unlink_file(t.dirfd, t.path));
  } else if (!strcmp(op, "rename") && argc == 3) {
    Target a = Parse(argv[1]), b = Parse(argv[2]);
    Report("rename", __wasi_path_rename(a.dirfd, a.path, b.dirfd, b.path));
  } else if (!strcmp(op, "link") && argc == 3) {
    Target a = Parse(argv[1]), b = Parse(argv[2]);
    Report("link", __wasi_path_link(a.dirfd, 0, a.path, b.dirfd, b.path));
  } else if (!strcmp(op, "symlink") && argc == 3) {  // symlink TARGET MOUNT:PATH
    Target b = Parse(argv[2]);
    Report("symlink", __wasi_path_symlink(argv[1], b.dirfd, b.path));
  } else if (!strcmp(op, "readlink") && argc == 2) {
    Target t = Parse(argv[1]);
    char buf[256];
    __wasi_size_t n = 0;
    int e = __wasi_path_readlink(t.dirfd, t.path, (uint8_t*)buf, sizeof buf - 1, &n);
    buf[n] = 0;
    printf("readlink errno=%d%s%s\n", e, e ? "" : " target=", e ? "" : buf);
  } else if (!strcmp(op, "stat") && argc == 2) {
    Target t = Parse(argv[1]);
    __wasi_filestat_t st;
    int e = __wasi_path_filestat_get(t.dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, t.path, &st);
    if (e) {
      Report("stat", e);
    } else {
      printf("stat errno=0 type=%d size=%llu\n", st.filetype, (unsigned long long)st.size);
    }
  } else if (!strcmp(op, "utimes") && argc == 2) {
    Target t = Parse(argv[1]);
    Report("utimes", __wasi_path_filestat_set_times(t.dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW,
                                                    t.path, 0, 0, __WASI_FSTFLAGS_MTIM));
  } else if (!strcmp(op, "truncate") && argc == 2) {  // open with TRUNC only
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_TRUNC, kRead, 0, &fd);
    if (!e) __wasi_fd_close(fd);
    Report("truncate", e);
  } else if (!strcmp(op, "ls") && argc == 2) {  // ls MOUNT:DIR -> names, sorted by the host
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_DIRECTORY, kRead, 0, &fd);
    printf("ls errno=%d", e);
    if (!e) {
      static uint8_t buf[65536];
      __wasi_size_t used = 0;
      e = __wasi_fd_readdir(fd, buf, sizeof buf, 0, &used);
      for (size_t off = 0; !e && off + sizeof(__wasi_dirent_t) <= used;) {
        __wasi_dirent_t d;
        memcpy(&d, buf + off, sizeof d);
        off += sizeof d;
        printf(" %.*s", (int)d.d_namlen, (const char*)buf + off);
        off += d.d_namlen;
      }
      __wasi_fd_close(fd);
    }
    printf("\n");
  } else if (!strcmp(op, "openmany") && argc == 3) {  // openmany MOUNT:PATH N -> first errno
    Target t = Parse(argv[1]);
    int n = atoi(argv[2]), e = 0, opened = 0;
    for (; opened < n; ++opened) {
      __wasi_fd_t fd;
      e = OpenT(t, 0, 0, kRead, 0, &fd);
      if (e) break;
    }
    printf("openmany errno=%d opened=%d\n", e, opened);
  } else if (!strcmp(op, "fill") && argc == 3) {  // fill MOUNT:PATH BYTES -> bytes written
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, kRead | kWrite, 0, &fd);
    unsigned long long total = 0, want = strtoull(argv[2], 0, 10);
    static uint8_t chunk[65536];
    while (!e && total < want) {
      size_t len = want - total < sizeof chunk ? (size_t)(want - total) : sizeof chunk;
      __wasi_ciovec_t iov = {chunk, len};
      __wasi_size_t n = 0;
      e = __wasi_fd_write(fd, &iov, 1, &n);
      total += n;
    }
    printf("fill errno=%d written=%llu\n", e, total);
  } else if (!strcmp(op, "grow") && argc == 3) {  // grow MOUNT:PATH SIZE via set_size
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, __WASI_OFLAGS_CREAT, kRead | kWrite, 0, &fd);
    if (!e) e = __wasi_fd_filestat_set_size(fd, strtoull(argv[2], 0, 10));
    Report("grow", e);
  } else if (!strcmp(op, "alloc") && argc == 4) {  // alloc MOUNT:PATH OFFSET LEN (fd_allocate)
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, __WASI_OFLAGS_CREAT, kRead | kWrite, 0, &fd);
    if (!e) e = __wasi_fd_allocate(fd, strtoull(argv[2], 0, 10), strtoull(argv[3], 0, 10));
    Report("alloc", e);
  } else if (!strcmp(op, "pwrite") && argc == 4) {  // pwrite MOUNT:PATH OFFSET DATA
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, __WASI_OFLAGS_CREAT, kRead | kWrite, 0, &fd);
    __wasi_size_t n = 0;
    if (!e) {
      __wasi_ciovec_t iov = {(const uint8_t*)argv[3], strlen(argv[3])};
      e = __wasi_fd_pwrite(fd, &iov, 1, strtoull(argv[2], 0, 10), &n);
    }
    Report("pwrite", e);
  } else if (!strcmp(op, "seekwrite") && argc == 4) {  // seekwrite MOUNT:PATH OFFSET DATA
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, __WASI_OFLAGS_CREAT, kRead | kWrite, 0, &fd);
    __wasi_filesize_t pos;
    if (!e)
      e = __wasi_fd_seek(fd, (__wasi_filedelta_t)strtoull(argv[2], 0, 10), __WASI_WHENCE_SET, &pos);
    __wasi_size_t n = 0;
    if (!e) {
      __wasi_ciovec_t iov = {(const uint8_t*)argv[3], strlen(argv[3])};
      e = __wasi_fd_write(fd, &iov, 1, &n);
    }
    Report("seekwrite", e);
  } else if (!strcmp(op, "shrinkwrite") && argc == 3) {  // shrinkwrite MOUNT:PATH DATA
    // Reads to the end (no seek), shrinks the file to nothing and writes on at the offset
    // the reads left: the write would leave a hole as large as the file was.
    Target t = Parse(argv[1]);
    __wasi_fd_t fd;
    int e = OpenT(t, 0, 0, kRead | kWrite, 0, &fd);
    static uint8_t chunk[65536];
    __wasi_size_t got = 1;
    while (!e && got > 0) {
      __wasi_iovec_t iov = {chunk, sizeof chunk};
      e = __wasi_fd_read(fd, &iov, 1, &got);
    }
    if (!e) e = __wasi_fd_filestat_set_size(fd, 0);
    __wasi_size_t n = 0;
    if (!e) {
      __wasi_ciovec_t iov = {(const uint8_t*)argv[2], strlen(argv[2])};
      e = __wasi_fd_write(fd, &iov, 1, &n);
    }
    Report("shrinkwrite", e);
  } else if (!strcmp(op, "lsmany") && argc == 3) {  // lsmany MOUNT:DIR N -> first errno
    // Opens DIR N times and starts a listing on each (a small buffer, so none is finished):
    // every open listing is a host-side snapshot.
    Target t = Parse(argv[1]);
    int n = atoi(argv[2]), e = 0, listed = 0;
    for (; listed < n; ++listed) {
      __wasi_fd_t fd;
      e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_DIRECTORY, kRead, 0, &fd);
      if (e) break;
      uint8_t buf[64];
      __wasi_size_t used = 0;
      e = __wasi_fd_readdir(fd, buf, sizeof buf, 0, &used);
      if (e) break;
    }
    printf("lsmany errno=%d listed=%d\n", e, listed);
  } else if (!strcmp(op, "lsall") && argc == 3) {  // lsall MOUNT:DIR N: list DIR fully N times
    Target t = Parse(argv[1]);
    int n = atoi(argv[2]), e = 0, done = 0;
    unsigned long entries = 0;
    for (; done < n && !e; ++done) {
      __wasi_fd_t fd;
      e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_DIRECTORY, kRead, 0, &fd);
      if (e) break;
      static uint8_t buf[4096];
      __wasi_dircookie_t cookie = 0;
      for (;;) {
        __wasi_size_t used = 0;
        e = __wasi_fd_readdir(fd, buf, sizeof buf, cookie, &used);
        if (e) break;
        size_t off = 0;
        while (off + sizeof(__wasi_dirent_t) <= used) {
          __wasi_dirent_t d;
          memcpy(&d, buf + off, sizeof d);
          if (off + sizeof d + d.d_namlen > used) break;
          off += sizeof d + d.d_namlen;
          cookie = d.d_next;
          ++entries;
        }
        if (used < sizeof buf) break;
      }
      // Kept open on purpose: finished listings must not hold memory.
    }
    printf("lsall errno=%d done=%d entries=%lu\n", e, done, entries);
  } else if (!strcmp(op, "holdstat") && argc == 4) {  // holdstat MOUNT:DIR MS NAME
    // Opens DIR, sleeps (someone may move DIR out of the mount), then stats NAME through it.
    Target t = Parse(argv[1]);
    __wasi_fd_t dir;
    int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_DIRECTORY,
                  kRead | __WASI_RIGHTS_PATH_FILESTAT_GET, 0, &dir);
    if (e) {
      Report("holdstat.open", e);
      return 0;
    }
    __wasi_subscription_t sub = {0};
    sub.u.tag = __WASI_EVENTTYPE_CLOCK;
    sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub.u.u.clock.timeout = (uint64_t)atoi(argv[2]) * 1000000ull;
    __wasi_event_t ev;
    __wasi_size_t nev;
    __wasi_poll_oneoff(&sub, &ev, 1, &nev);
    __wasi_filestat_t st;
    e = __wasi_path_filestat_get(dir, 0, argv[3], &st);
    if (e) {
      Report("holdstat.stat", e);
    } else {
      printf("holdstat.stat errno=0 size=%llu\n", (unsigned long long)st.size);
    }
  } else if (!strcmp(op, "holddir") && argc == 3) {  // holddir MOUNT:DIR MS
    // Opens DIR, sleeps (someone may move DIR meanwhile), then reads and creates through
    // the directory fd.
    Target t = Parse(argv[1]);
    __wasi_fd_t dir;
    int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_DIRECTORY,
                  kRead | __WASI_RIGHTS_PATH_OPEN | __WASI_RIGHTS_PATH_CREATE_FILE, 0, &dir);
    if (e) {
      Report("holddir.open", e);
      return 0;
    }
    __wasi_subscription_t sub = {0};
    sub.u.tag = __WASI_EVENTTYPE_CLOCK;
    sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub.u.u.clock.timeout = (uint64_t)atoi(argv[2]) * 1000000ull;
    __wasi_event_t ev;
    __wasi_size_t nev;
    __wasi_poll_oneoff(&sub, &ev, 1, &nev);
    __wasi_fd_t fd;
    e = __wasi_path_open(dir, 0, "f", 0, kRead, 0, 0, &fd);
    printf("holddir.read errno=%d", e);
    if (!e) PrintContent(fd);
    printf("\n");
    e = __wasi_path_open(dir, 0, "created", __WASI_OFLAGS_CREAT, kRead | kWrite, 0, 0, &fd);
    Report("holddir.create", e);
  } else if (!strcmp(op, "race") && argc == 3) {  // race MOUNT ITERATIONS
    // Opens, reads, creates and renames through paths a host thread keeps swapping; prints
    // LEAK for any content that did not come from inside the mount.
    int dirfd = PreopenFd(argv[1], strlen(argv[1]));
    int iters = atoi(argv[2]), ok = 0, denied = 0;
    static const char* kPaths[] = {
        "a/b/target",           "a/b/../b/target", "a/b/../../outside/canary",
        "a/b/deeper/../target", "c/target",        "a/b"};
    for (int i = 0; i < iters; ++i) {
      for (size_t k = 0; k < sizeof kPaths / sizeof kPaths[0]; ++k) {
        Target t = {dirfd, {0}, strlen(kPaths[k])};
        memcpy(t.path, kPaths[k], t.len);
        __wasi_fd_t fd;
        int e = OpenT(t, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, 0, kRead, 0, &fd);
        if (e) {
          ++denied;
          continue;
        }
        char buf[64] = {0};
        __wasi_iovec_t iov = {(uint8_t*)buf, sizeof buf - 1};
        __wasi_size_t n = 0;
        if (__wasi_fd_read(fd, &iov, 1, &n) == 0 && n > 0) {
          ++ok;
          if (strncmp(buf, "INSIDE", 6) != 0) printf("LEAK %s: %s\n", kPaths[k], buf);
        }
        __wasi_fd_close(fd);
      }
      // Writes through the swapped path must never land outside.
      Target w = {dirfd, "a/b/written", strlen("a/b/written")};
      __wasi_fd_t fd;
      if (OpenT(w, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, __WASI_OFLAGS_CREAT, kRead | kWrite, 0,
                &fd) == 0) {
        __wasi_ciovec_t iov = {(const uint8_t*)"INSIDE-written", 14};
        __wasi_size_t n;
        __wasi_fd_write(fd, &iov, 1, &n);
        __wasi_fd_close(fd);
      }
      __wasi_path_rename(dirfd, "a/b/written", dirfd, "a/b/renamed");
      __wasi_path_unlink_file(dirfd, "a/b/renamed");
      __wasi_path_create_directory(dirfd, "a/b/newdir");
      __wasi_path_remove_directory(dirfd, "a/b/newdir");
      __wasi_path_symlink("target", dirfd, "a/b/lnk");
      __wasi_path_unlink_file(dirfd, "a/b/lnk");
    }
    printf("race ok=%d denied=%d\n", ok, denied);
  } else {
    fprintf(stderr, "fsprobe: bad operation %s (%d args)\n", op, argc - 1);
    return 2;
  }
  return 0;
}

int main(int argc, char** argv) {
  int start = 1;
  for (int i = 1; i <= argc; ++i) {
    if (i == argc || !strcmp(argv[i], "--")) {
      if (i > start) {
        int r = Run(i - start, argv + start);
        if (r) return r;
      }
      start = i + 1;
    }
  }
  return g_failed;
}
