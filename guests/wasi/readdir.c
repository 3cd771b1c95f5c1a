// WASI conformance: fd_readdir. "." and ".." are listed; d_type and d_ino agree with
// path_filestat_get; every d_next cookie resumes right after its entry; a buffer that
// cannot hold the next entry is filled completely (bufused == buf_len) with its first
// bytes; a fresh read sees changes (fd_readdir.rs).
//
// Preopen: argv[1] = scratch directory. Fixture from the harness: listing/ with alpha
// (file, "alpha"), beta/ (directory), gamma -> alpha (symlink).
#include "wasi_check.h"

static __wasi_fd_t scratch;

enum { kMaxEntries = 1200 };
typedef struct {
  __wasi_dirent_t d;
  char name[64];
} Entry;

static Entry entries[kMaxEntries];

// Reads one buffer from `cookie`; parses the complete entries into `out`. Returns how
// many; *eof is bufused < buf_len.
static int ReadOnce(__wasi_fd_t dir, uint8_t* buf, size_t len, __wasi_dircookie_t cookie,
                    Entry* out, int max, int* eof) {
  __wasi_size_t used = 0;
  CHECK_OK(__wasi_fd_readdir(dir, buf, len, cookie, &used));
  CHECK(used <= len, "bufused within the buffer");
  *eof = used < len;
  int n = 0;
  size_t pos = 0;
  while (pos + sizeof(__wasi_dirent_t) <= used && n < max) {
    memcpy(&out[n].d, buf + pos, sizeof(__wasi_dirent_t));
    size_t nl = out[n].d.d_namlen;
    if (pos + sizeof(__wasi_dirent_t) + nl > used) break;  // truncated entry
    CHECK(nl < sizeof out[n].name, "name fits");
    memcpy(out[n].name, buf + pos + sizeof(__wasi_dirent_t), nl);
    out[n].name[nl] = 0;
    pos += sizeof(__wasi_dirent_t) + nl;
    ++n;
  }
  return n;
}

// Reads the whole directory with a buffer of `len` bytes, resuming from the last whole
// entry's cookie.
static int ReadAll(__wasi_fd_t dir, size_t len, Entry* out, int max) {
  static uint8_t buf[65536];
  CHECK(len <= sizeof buf, "buffer size");
  int total = 0, eof = 0;
  __wasi_dircookie_t cookie = __WASI_DIRCOOKIE_START;
  while (!eof) {
    int n = ReadOnce(dir, buf, len, cookie, out + total, max - total, &eof);
    if (n == 0) {
      CHECK(eof, "a buffer too small for one entry");
      break;
    }
    total += n;
    cookie = out[total - 1].d.d_next;
  }
  return total;
}

static const Entry* Find(const Entry* e, int n, const char* name) {
  for (int i = 0; i < n; ++i) {
    if (strcmp(e[i].name, name) == 0) return &e[i];
  }
  return NULL;
}

static void TestEmpty(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "empty"));
  __wasi_fd_t dir = OpenDir(scratch, "empty");
  __wasi_filestat_t st = FdStat(dir);
  int n = ReadAll(dir, 256, entries, kMaxEntries);
  CHECK_EQ(n, 2);
  const Entry* dot = Find(entries, n, ".");
  const Entry* dotdot = Find(entries, n, "..");
  CHECK(dot && dotdot, "'.' and '..' listed");
  CHECK_EQ(dot->d.d_type, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(dot->d.d_namlen, 1);
  CHECK_EQ(dot->d.d_ino, st.ino);
  CHECK_EQ(dotdot->d.d_type, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(dotdot->d.d_namlen, 2);
  CHECK_OK(__wasi_fd_close(dir));
  PASS("readdir_empty");
}

static void TestEntriesMatchFilestat(void) {
  __wasi_fd_t dir = OpenDir(scratch, "listing");
  int n = ReadAll(dir, 4096, entries, kMaxEntries);
  CHECK_EQ(n, 5);
  static const char* const kNames[] = {"alpha", "beta", "gamma"};
  static const __wasi_filetype_t kTypes[] = {
      __WASI_FILETYPE_REGULAR_FILE, __WASI_FILETYPE_DIRECTORY, __WASI_FILETYPE_SYMBOLIC_LINK};
  for (int i = 0; i < 3; ++i) {
    const Entry* e = Find(entries, n, kNames[i]);
    CHECK(e != NULL, kNames[i]);
    CHECK_EQ(e->d.d_type, kTypes[i]);
    __wasi_filestat_t st = StatAt(dir, 0, kNames[i]);
    CHECK_EQ(e->d.d_type, st.filetype);
    CHECK_EQ(e->d.d_ino, st.ino);
    CHECK_EQ(e->d.d_namlen, strlen(kNames[i]));
  }
  CHECK_OK(__wasi_fd_close(dir));
  // The preopen itself lists its fixtures too.
  n = ReadAll(scratch, 4096, entries, kMaxEntries);
  CHECK(Find(entries, n, "listing") != NULL, "listing/ in the preopen");
  CHECK(Find(entries, n, ".") != NULL, "'.' in the preopen");
  PASS("readdir_entries");
}

static void TestCookies(void) {
  __wasi_fd_t dir = OpenDir(scratch, "listing");
  static Entry all[8], rest[8];
  static uint8_t buf[4096];
  int eof = 0;
  int n = ReadOnce(dir, buf, sizeof buf, 0, all, 8, &eof);
  CHECK(eof, "one buffer holds the listing");
  CHECK_EQ(n, 5);
  for (int i = 0; i < n; ++i) {
    int m = ReadOnce(dir, buf, sizeof buf, all[i].d.d_next, rest, 8, &eof);
    CHECK(eof, "to the end");
    CHECK_EQ(m, n - i - 1);
    for (int j = 0; j < m; ++j) {
      CHECK(strcmp(rest[j].name, all[i + 1 + j].name) == 0, "cookie resumes after its entry");
      CHECK_EQ(rest[j].d.d_next, all[i + 1 + j].d.d_next);
    }
  }
  // Reading again from the start gives the same listing; a cookie past the end gives none.
  int again = ReadOnce(dir, buf, sizeof buf, 0, rest, 8, &eof);
  CHECK_EQ(again, n);
  for (int i = 0; i < n; ++i) CHECK(strcmp(rest[i].name, all[i].name) == 0, "stable order");
  __wasi_size_t used = 1;
  CHECK_OK(__wasi_fd_readdir(dir, buf, sizeof buf, 1000000, &used));
  CHECK_EQ(used, 0);
  CHECK_OK(__wasi_fd_readdir(dir, buf, 0, 0, &used));  // zero-length buffer
  CHECK_EQ(used, 0);
  CHECK_OK(__wasi_fd_close(dir));
  PASS("readdir_cookies");
}

static void TestSmallBuffers(void) {
  __wasi_fd_t dir = OpenDir(scratch, "listing");
  static uint8_t big[4096];
  static Entry all[8];
  int eof = 0;
  int n = ReadOnce(dir, big, sizeof big, 0, all, 8, &eof);
  CHECK_EQ(n, 5);
  // A buffer one byte short of the first entry: filled completely with its first bytes.
  size_t first = sizeof(__wasi_dirent_t) + all[0].d.d_namlen;
  uint8_t small[64];
  memset(small, 0xEE, sizeof small);
  __wasi_size_t used = 0;
  CHECK_OK(__wasi_fd_readdir(dir, small, first - 1, 0, &used));
  CHECK_EQ(used, first - 1);
  CHECK(memcmp(small, big, first - 1) == 0, "truncated entry is a prefix of the real one");
  CHECK_EQ(small[first - 1], 0xEE);  // nothing written past buf_len
  // Smaller than a header.
  CHECK_OK(__wasi_fd_readdir(dir, small, 10, 0, &used));
  CHECK_EQ(used, 10);
  CHECK(memcmp(small, big, 10) == 0, "partial header");
  // Exactly one entry: bufused == buf_len, so the reader asks again.
  CHECK_OK(__wasi_fd_readdir(dir, small, first, 0, &used));
  CHECK_EQ(used, first);
  // Every buffer size from one entry up reads the whole listing by cookies.
  for (size_t len = 24 + 5; len <= 200; len += 7) {
    static Entry got[16];
    int m = ReadAll(dir, len, got, 16);
    CHECK_EQ(m, n);
    for (int i = 0; i < n; ++i) CHECK(strcmp(got[i].name, all[i].name) == 0, "same listing");
  }
  CHECK_OK(__wasi_fd_close(dir));
  PASS("readdir_small_buffer");
}

// fd_readdir.rs test_fd_readdir_lots: many entries across many calls.
static void TestLots(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "lots"));
  __wasi_fd_t dir = OpenDir(scratch, "lots");
  enum { kFiles = 1000 };
  for (int i = 0; i < kFiles; ++i) {
    char name[32];
    snprintf(name, sizeof name, "file.%d", i);
    __wasi_fd_t fd = OpenAt(dir, name, __WASI_OFLAGS_CREAT, 0, 0);
    CHECK_OK(__wasi_fd_close(fd));
  }
  int n = ReadAll(dir, 256, entries, kMaxEntries);
  CHECK_EQ(n, kFiles + 2);
  static unsigned char seen[kFiles];
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < n; ++i) {
    int k;
    if (sscanf(entries[i].name, "file.%d", &k) == 1) {
      CHECK(k >= 0 && k < kFiles && !seen[k], "each file once");
      seen[k] = 1;
      CHECK_EQ(entries[i].d.d_type, __WASI_FILETYPE_REGULAR_FILE);
    }
  }
  for (int i = 0; i < kFiles; ++i) {
    char name[32];
    snprintf(name, sizeof name, "file.%d", i);
    CHECK_OK(__wasi_path_unlink_file(dir, name));
  }
  CHECK_EQ(ReadAll(dir, 256, entries, kMaxEntries), 2);
  CHECK_OK(__wasi_fd_close(dir));
  PASS("readdir_lots");
}

static void TestSeesChanges(void) {
  __wasi_fd_t dir = OpenDir(scratch, "empty");
  CHECK_EQ(ReadAll(dir, 256, entries, kMaxEntries), 2);
  MakeFile(dir, "new", "n");
  int n = ReadAll(dir, 256, entries, kMaxEntries);
  CHECK_EQ(n, 3);
  CHECK(Find(entries, n, "new") != NULL, "new entry listed");
  CHECK_OK(__wasi_path_unlink_file(dir, "new"));
  CHECK_EQ(ReadAll(dir, 256, entries, kMaxEntries), 2);
  CHECK_OK(__wasi_fd_close(dir));
  PASS("readdir_sees_changes");
}

static void TestErrors(void) {
  uint8_t buf[256];
  __wasi_size_t used;
  __wasi_fd_t file = OpenAt(scratch, "listing/alpha", 0, R(FD_READ) | R(FD_READDIR), 0);
  CHECK_ERRNO(__wasi_fd_readdir(file, buf, sizeof buf, 0, &used), ENOTDIR_, EBADF_);
  CHECK_OK(__wasi_fd_close(file));
  CHECK_ERRNO(__wasi_fd_readdir(77, buf, sizeof buf, 0, &used), EBADF_);
  PASS("readdir_errors");
}

int main(int argc, char** argv) {
  scratch = ScratchDir(argc, argv);
  TestEmpty();
  TestEntriesMatchFilestat();
  TestCookies();
  TestSmallBuffers();
  TestLots();
  TestSeesChanges();
  TestErrors();
  return Finish();
}
