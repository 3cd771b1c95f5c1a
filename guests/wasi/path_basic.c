// WASI conformance: path operations. path_open flags (CREAT, EXCL, TRUNC, DIRECTORY),
// missing paths, directories opened as files, a dirfd that is not a directory, rights on
// open, create/remove directory, unlink, rename, link, symlink/readlink, path filestat
// get/set_times with fstflags validation, paths that are not valid strings.
//
// Preopen: argv[1] = scratch directory. Fixtures from the harness: existing.txt =
// "keep me", to_delete.txt, hostdir/inner.txt = "inner". Left for the host to check:
// created.txt = "made by guest", renamed/final.txt = "moved", to_delete.txt removed.
#include "wasi_check.h"

static __wasi_fd_t scratch;

static __wasi_errno_t TryOpen(const char* path, __wasi_oflags_t oflags, __wasi_rights_t rights,
                              __wasi_fd_t* out) {
  *out = (__wasi_fd_t)-1;
  return __wasi_path_open(scratch, 0, path, oflags, rights, rights, 0, out);
}

static void ReadContent(const char* path, const char* want) {
  __wasi_fd_t fd = OpenAt(scratch, path, 0, R(FD_READ), 0);
  char buf[256];
  size_t n = ReadSome(fd, buf, sizeof buf);
  CHECK_STR(buf, n, want);
  CHECK_OK(__wasi_fd_close(fd));
}

static void TestOpenCreate(void) {
  __wasi_fd_t fd;
  CHECK_OK(TryOpen("created.txt", __WASI_OFLAGS_CREAT, R(FD_WRITE), &fd));
  CHECK(fd > 2, "new fd above stdio");
  CHECK_EQ(WriteAll(fd, "made by guest", 13), 13);
  CHECK_OK(__wasi_fd_close(fd));
  // CREAT on an existing file opens it without truncating.
  CHECK_OK(TryOpen("existing.txt", __WASI_OFLAGS_CREAT, R(FD_READ), &fd));
  CHECK_OK(__wasi_fd_close(fd));
  ReadContent("existing.txt", "keep me");
  // path_open_create_existing.rs
  CHECK_ERRNO(TryOpen("existing.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, 0, &fd), EEXIST_);
  CHECK_ERRNO(TryOpen(".", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, 0, &fd), EEXIST_, EISDIR_);
  // EXCL without CREAT means nothing.
  CHECK_OK(TryOpen("existing.txt", __WASI_OFLAGS_EXCL, R(FD_READ), &fd));
  CHECK_OK(__wasi_fd_close(fd));
  ReadContent("existing.txt", "keep me");
  // CREAT|EXCL on a new name creates it.
  CHECK_OK(TryOpen("excl.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R(FD_WRITE), &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK(Exists(scratch, "excl.txt"), "excl.txt created");
  // file_truncation.rs: TRUNC empties an existing file.
  MakeFile(scratch, "trunc.txt", "this content will be truncated!");
  CHECK_OK(TryOpen("trunc.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, R(FD_READ) | R(FD_WRITE),
                   &fd));
  char buf[8];
  CHECK_EQ(ReadSome(fd, buf, sizeof buf), 0);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_EQ(StatAt(scratch, 0, "trunc.txt").size, 0);
  MakeFile(scratch, "trunc.txt", "again");
  CHECK_OK(TryOpen("trunc.txt", __WASI_OFLAGS_TRUNC, R(FD_WRITE), &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_EQ(StatAt(scratch, 0, "trunc.txt").size, 0);
  // path_open_nonblock.rs: NONBLOCK on a directory open is fine.
  CHECK_OK(__wasi_path_open(scratch, 0, ".", 0, 0, 0, __WASI_FDFLAGS_NONBLOCK, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  PASS("path_open_create");
}

static void TestOpenMissing(void) {
  __wasi_fd_t fd;
  CHECK_ERRNO(TryOpen("missing", 0, 0, &fd), ENOENT_);  // path_open_missing.rs
  CHECK_ERRNO(TryOpen("nodir/file", 0, 0, &fd), ENOENT_);
  CHECK_ERRNO(TryOpen("nodir/file", __WASI_OFLAGS_CREAT, 0, &fd), ENOENT_);
  CHECK_ERRNO(TryOpen("missing", __WASI_OFLAGS_DIRECTORY, 0, &fd), ENOENT_);
  CHECK_ERRNO(TryOpen("", 0, 0, &fd), ENOENT_);
  CHECK_ERRNO(TryOpen("existing.txt/x", 0, 0, &fd), ENOTDIR_);
  CHECK_ERRNO(TryOpen("existing.txt/x", __WASI_OFLAGS_CREAT, 0, &fd), ENOTDIR_);
  CHECK_ERRNO(__wasi_path_open(77, 0, "x", 0, 0, 0, 0, &fd), EBADF_);
  // Unknown bits in oflags or lookupflags: EINVAL (wiggle validates flag types).
  CHECK_ERRNO(TryOpen("existing.txt", 0x10, 0, &fd), EINVAL_);
  CHECK_ERRNO(__wasi_path_open(scratch, 0x2, "existing.txt", 0, 0, 0, 0, &fd), EINVAL_);
  __wasi_filestat_t st;
  CHECK_ERRNO(__wasi_path_filestat_get(scratch, 0x2, "existing.txt", &st), EINVAL_);
  CHECK_ERRNO(__wasi_path_filestat_set_times(scratch, 0x2, "existing.txt", 0, 0, 0), EINVAL_);
  CHECK_ERRNO(__wasi_path_link(scratch, 0x2, "existing.txt", scratch, "x"), EINVAL_);
  CHECK(!Exists(scratch, "x"), "no link made");
  // A component longer than NAME_MAX, a path longer than PATH_MAX: ENAMETOOLONG.
  static char longname[300];
  memset(longname, 'n', sizeof longname - 1);
  CHECK_ERRNO(TryOpen(longname, __WASI_OFLAGS_CREAT, R(FD_WRITE), &fd), ENAMETOOLONG_);
  CHECK_ERRNO(__wasi_path_create_directory(scratch, longname), ENAMETOOLONG_);
  static char longpath[5000];
  for (size_t i = 0; i + 2 < sizeof longpath; i += 2) memcpy(longpath + i, "./", 2);
  longpath[sizeof longpath - 2] = 'x';
  CHECK_ERRNO(TryOpen(longpath, 0, 0, &fd), ENAMETOOLONG_);
  PASS("path_open_missing");
}

static void TestOpenDirectories(void) {
  __wasi_fd_t fd;
  CHECK_ERRNO(TryOpen("existing.txt", __WASI_OFLAGS_DIRECTORY, 0, &fd), ENOTDIR_);
  CHECK_OK(TryOpen("hostdir", __WASI_OFLAGS_DIRECTORY, 0, &fd));
  CHECK_EQ(FdFdstat(fd).fs_filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_OK(__wasi_fd_close(fd));
  // Without DIRECTORY, a directory still opens when nothing asks to write it.
  CHECK_OK(TryOpen("hostdir", 0, 0, &fd));
  CHECK_EQ(FdFdstat(fd).fs_filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(TryOpen("hostdir", 0, R(FD_READ), &fd));
  CHECK_OK(__wasi_fd_close(fd));
  // path_open_preopen.rs: a directory opened for writing is EISDIR.
  CHECK_ERRNO(TryOpen(".", __WASI_OFLAGS_DIRECTORY, R(FD_READ) | R(FD_WRITE), &fd), EISDIR_);
  CHECK_ERRNO(TryOpen("hostdir", 0, R(FD_WRITE), &fd), EISDIR_);
  CHECK_ERRNO(TryOpen("hostdir", __WASI_OFLAGS_TRUNC, R(FD_WRITE), &fd), EISDIR_, EINVAL_);
  // Creating a directory through path_open is not a thing.
  CHECK_ERRNO(TryOpen("newdir", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_DIRECTORY, 0, &fd), EINVAL_);
  CHECK(!Exists(scratch, "newdir"), "nothing created");
  // "interesting" but legal paths (interesting_paths.rs).
  CHECK_OK(TryOpen("hostdir/./inner.txt", 0, R(FD_READ), &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(TryOpen("hostdir/.//../hostdir/../hostdir///./inner.txt", 0, R(FD_READ), &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(TryOpen("hostdir/", 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(TryOpen("hostdir///", 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(TryOpen("./", __WASI_OFLAGS_DIRECTORY, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  PASS("path_open_directories");
}

// path_open_dirfd_not_dir.rs: a regular file as the base of a path.
static void TestDirfdNotDir(void) {
  __wasi_fd_t file = OpenAt(scratch, "existing.txt", 0, R(FD_READ), 0);
  __wasi_fd_t fd;
  __wasi_filestat_t st;
  CHECK_ERRNO(__wasi_path_open(file, 0, "foo", __WASI_OFLAGS_CREAT, 0, 0, 0, &fd), ENOTDIR_,
              ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_path_open(file, 0, ".", 0, 0, 0, 0, &fd), ENOTDIR_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_path_create_directory(file, "foo"), ENOTDIR_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_path_filestat_get(file, 0, "foo", &st), ENOTDIR_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_path_unlink_file(file, "foo"), ENOTDIR_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_path_symlink("x", file, "foo"), ENOTDIR_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_path_rename(scratch, "existing.txt", file, "foo"), ENOTDIR_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_path_create_directory(77, "foo"), EBADF_);
  CHECK_OK(__wasi_fd_close(file));
  CHECK(!Exists(scratch, "foo"), "nothing created");
  PASS("dirfd_not_dir");
}

// path_open_read_write.rs and path_open_read_without_rights.rs.
static void TestOpenRights(void) {
  MakeFile(scratch, "rw.txt", "");
  char buf[64];
  memset(buf, 1, sizeof buf);
  __wasi_iovec_t iov = {(uint8_t*)buf, sizeof buf};
  __wasi_ciovec_t ciov = {(const uint8_t*)buf, 50};
  __wasi_size_t n;

  __wasi_fd_t ro = OpenAt(scratch, "rw.txt", 0, R(FD_READ), 0);
  __wasi_fdstat_t st = FdFdstat(ro);
  CHECK(st.fs_rights_base & R(FD_READ), "read-only fd has FD_READ");
  CHECK_EQ(st.fs_rights_base & R(FD_WRITE), 0);
  CHECK_EQ(ReadSome(ro, buf, sizeof buf), 0);
  CHECK_ERRNO(__wasi_fd_write(ro, &ciov, 1, &n), EBADF_, ENOTCAPABLE_, EACCES_);
  CHECK_OK(__wasi_fd_close(ro));

  __wasi_fd_t wo = OpenAt(scratch, "rw.txt", 0, R(FD_WRITE), 0);
  st = FdFdstat(wo);
  CHECK_EQ(st.fs_rights_base & R(FD_READ), 0);
  CHECK(st.fs_rights_base & R(FD_WRITE), "write-only fd has FD_WRITE");
  CHECK_ERRNO(__wasi_fd_read(wo, &iov, 1, &n), EBADF_, ENOTCAPABLE_, EACCES_);
  CHECK_EQ(WriteAll(wo, buf, 50), 50);
  CHECK_OK(__wasi_fd_close(wo));

  __wasi_fd_t rw = OpenAt(scratch, "rw.txt", 0, R(FD_READ) | R(FD_WRITE) | R(FD_FILESTAT_GET), 0);
  CHECK_EQ(ReadSome(rw, buf, sizeof buf), 50);
  CHECK_EQ(WriteAll(rw, buf, 25), 25);
  CHECK_EQ(FdStat(rw).size, 75);
  CHECK_OK(__wasi_fd_close(rw));

  // No rights at all: the file opens, but cannot be read or written.
  __wasi_fd_t none = OpenAt(scratch, "rw.txt", 0, 0, 0);
  st = FdFdstat(none);
  CHECK_EQ(st.fs_rights_base & (R(FD_READ) | R(FD_WRITE)), 0);
  CHECK_ERRNO(__wasi_fd_read(none, &iov, 1, &n), EBADF_, ENOTCAPABLE_);
  CHECK_ERRNO(__wasi_fd_write(none, &ciov, 1, &n), EBADF_, ENOTCAPABLE_);
  CHECK_OK(__wasi_fd_close(none));
  CHECK_EQ(StatAt(scratch, 0, "rw.txt").size, 75);
  PASS("path_open_rights");
}

static void TestCreateRemoveDirectory(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "d1"));
  CHECK_EQ(StatAt(scratch, 0, "d1").filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_ERRNO(__wasi_path_create_directory(scratch, "d1"), EEXIST_);
  CHECK_ERRNO(__wasi_path_create_directory(scratch, "existing.txt"), EEXIST_);
  CHECK_ERRNO(__wasi_path_create_directory(scratch, "."), EEXIST_);
  CHECK_ERRNO(__wasi_path_create_directory(scratch, "nodir/d"), ENOENT_);
  CHECK_ERRNO(__wasi_path_create_directory(scratch, "existing.txt/d"), ENOTDIR_);
  CHECK_OK(__wasi_path_create_directory(scratch, "d1/nested"));
  CHECK_OK(__wasi_path_create_directory(scratch, "d2/"));
  CHECK_EQ(StatAt(scratch, 0, "d2").filetype, __WASI_FILETYPE_DIRECTORY);
  PASS("path_create_directory");

  // remove_nonempty_directory.rs
  CHECK_ERRNO(__wasi_path_remove_directory(scratch, "d1"), ENOTEMPTY_);
  CHECK_OK(__wasi_path_remove_directory(scratch, "d1/nested"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "d1"));
  CHECK(!Exists(scratch, "d1"), "d1 removed");
  CHECK_ERRNO(__wasi_path_remove_directory(scratch, "d1"), ENOENT_);
  CHECK_ERRNO(__wasi_path_remove_directory(scratch, "existing.txt"), ENOTDIR_);
  MakeFile(scratch, "d2/f", "x");
  CHECK_ERRNO(__wasi_path_remove_directory(scratch, "d2"), ENOTEMPTY_);
  CHECK_OK(__wasi_path_unlink_file(scratch, "d2/f"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "d2"));
  PASS("path_remove_directory");
}

static void TestUnlink(void) {
  CHECK_OK(__wasi_path_unlink_file(scratch, "to_delete.txt"));
  CHECK(!Exists(scratch, "to_delete.txt"), "unlinked");
  CHECK_ERRNO(__wasi_path_unlink_file(scratch, "to_delete.txt"), ENOENT_);
  CHECK_ERRNO(__wasi_path_unlink_file(scratch, "hostdir"), EISDIR_);  // Linux: EISDIR
  CHECK_ERRNO(__wasi_path_unlink_file(scratch, "nodir/x"), ENOENT_);
  // dangling_fd.rs: an open fd outlives its name; the name can be made again.
  MakeFile(scratch, "open_then_unlink.txt", "still here");
  __wasi_fd_t fd = OpenAt(scratch, "open_then_unlink.txt", 0, R(FD_READ), 0);
  CHECK_OK(__wasi_path_unlink_file(scratch, "open_then_unlink.txt"));
  char buf[32];
  size_t n = ReadSome(fd, buf, sizeof buf);
  CHECK_STR(buf, n, "still here");
  MakeFile(scratch, "open_then_unlink.txt", "new");
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(scratch, "open_then_unlink.txt"));
  // The same for a directory.
  CHECK_OK(__wasi_path_create_directory(scratch, "dangling_dir"));
  fd = OpenDir(scratch, "dangling_dir");
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_remove_directory(scratch, "dangling_dir"));
  CHECK_OK(__wasi_path_create_directory(scratch, "dangling_dir"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "dangling_dir"));
  PASS("path_unlink_file");
}

static void ExpectGone(const char* path) {
  __wasi_fd_t fd;
  CHECK_ERRNO(TryOpen(path, 0, 0, &fd), ENOENT_);
}

// path_rename.rs, plus a few more.
static void TestRename(void) {
  __wasi_fd_t fd;
  // Directory to a new name.
  CHECK_OK(__wasi_path_create_directory(scratch, "source"));
  CHECK_OK(__wasi_path_rename(scratch, "source", scratch, "target"));
  CHECK_ERRNO(TryOpen("source", __WASI_OFLAGS_DIRECTORY, 0, &fd), ENOENT_);
  CHECK_OK(TryOpen("target", __WASI_OFLAGS_DIRECTORY, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  // Directory onto an empty directory.
  CHECK_OK(__wasi_path_create_directory(scratch, "source"));
  MakeFile(scratch, "source/marker", "m");
  CHECK_OK(__wasi_path_rename(scratch, "source", scratch, "target"));
  CHECK(Exists(scratch, "target/marker"), "moved with its content");
  ExpectGone("source");
  // Directory onto a non-empty directory: ENOTEMPTY; onto a file: ENOTDIR.
  CHECK_OK(__wasi_path_create_directory(scratch, "source"));
  CHECK_ERRNO(__wasi_path_rename(scratch, "source", scratch, "target"), ENOTEMPTY_);
  CHECK_ERRNO(__wasi_path_rename(scratch, "source", scratch, "target/marker"), ENOTDIR_);
  CHECK(Exists(scratch, "target/marker"), "file not replaced by a directory");
  // A directory into itself: EINVAL.
  CHECK_ERRNO(__wasi_path_rename(scratch, "target", scratch, "target/inside"), EINVAL_);
  CHECK_OK(__wasi_path_remove_directory(scratch, "source"));
  // File to a new name, to an existing file, onto a directory.
  MakeFile(scratch, "fsrc", "A");
  CHECK_OK(__wasi_path_rename(scratch, "fsrc", scratch, "fdst"));
  ExpectGone("fsrc");
  ReadContent("fdst", "A");
  MakeFile(scratch, "fsrc", "B");
  CHECK_OK(__wasi_path_rename(scratch, "fsrc", scratch, "fdst"));
  ExpectGone("fsrc");
  ReadContent("fdst", "B");
  CHECK_ERRNO(__wasi_path_rename(scratch, "fdst", scratch, "target"), EISDIR_);
  ReadContent("fdst", "B");
  // A missing source; a missing destination directory.
  CHECK_ERRNO(__wasi_path_rename(scratch, "nothing", scratch, "x"), ENOENT_);
  CHECK_ERRNO(__wasi_path_rename(scratch, "fdst", scratch, "nodir/x"), ENOENT_);
  // Onto itself, or onto another name of the same file: nothing happens.
  CHECK_OK(__wasi_path_rename(scratch, "fdst", scratch, "fdst"));
  ReadContent("fdst", "B");
  CHECK_OK(__wasi_path_link(scratch, 0, "fdst", scratch, "fdst_hard"));
  CHECK_OK(__wasi_path_rename(scratch, "fdst", scratch, "fdst_hard"));
  ReadContent("fdst", "B");
  ReadContent("fdst_hard", "B");
  CHECK_OK(__wasi_path_unlink_file(scratch, "fdst_hard"));
  // Across two directory fds; the host checks renamed/final.txt.
  CHECK_OK(__wasi_path_create_directory(scratch, "renamed"));
  __wasi_fd_t sub = OpenDir(scratch, "renamed");
  MakeFile(scratch, "fsrc", "moved");
  CHECK_OK(__wasi_path_rename(scratch, "fsrc", sub, "final.txt"));
  CHECK_OK(__wasi_fd_close(sub));
  ReadContent("renamed/final.txt", "moved");
  // An open fd follows the file across a rename.
  fd = OpenAt(scratch, "fdst", 0, R(FD_READ), 0);
  CHECK_OK(__wasi_path_rename(scratch, "fdst", scratch, "fdst2"));
  char buf[4];
  CHECK_EQ(ReadSome(fd, buf, sizeof buf), 1);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(scratch, "fdst2"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "target/marker"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "target"));
  PASS("path_rename");
}

// path_link.rs
static void TestLink(void) {
  MakeFile(scratch, "lfile", "linked");
  CHECK_OK(__wasi_path_link(scratch, 0, "lfile", scratch, "lname"));
  __wasi_filestat_t a = StatAt(scratch, 0, "lfile"), b = StatAt(scratch, 0, "lname");
  CHECK_EQ(a.ino, b.ino);
  CHECK_EQ(a.dev, b.dev);
  CHECK_EQ(a.nlink, 2);
  CHECK_EQ(b.size, 6);
  ReadContent("lname", "linked");
  CHECK_OK(__wasi_path_unlink_file(scratch, "lname"));
  CHECK_EQ(StatAt(scratch, 0, "lfile").nlink, 1);
  // Into another directory fd.
  CHECK_OK(__wasi_path_create_directory(scratch, "lsub"));
  __wasi_fd_t sub = OpenDir(scratch, "lsub");
  CHECK_OK(__wasi_path_link(scratch, 0, "lfile", sub, "lname"));
  CHECK_EQ(StatAt(sub, 0, "lname").ino, a.ino);
  CHECK_OK(__wasi_path_unlink_file(sub, "lname"));
  CHECK_OK(__wasi_fd_close(sub));
  // Existing destination, itself, a directory destination: EEXIST.
  MakeFile(scratch, "lexists", "");
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "lfile", scratch, "lexists"), EEXIST_);
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "lfile", scratch, "lfile"), EEXIST_);
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "lfile", scratch, "lsub"), EEXIST_);
  // A directory source: EPERM (Linux) or EACCES.
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "lsub", scratch, "ldir"), EPERM_, EACCES_);
  // A destination with a trailing slash: ENOENT.
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "lfile", scratch, "lnew/"), ENOENT_);
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "lmissing", scratch, "lnew"), ENOENT_);
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "lfile", scratch, "nodir/lnew"), ENOENT_);
  CHECK(!Exists(scratch, "lnew"), "nothing created");
  CHECK_OK(__wasi_path_remove_directory(scratch, "lsub"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "lexists"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "lfile"));
  PASS("path_link");
}

// readlink.rs and symlink_create.rs.
static void TestSymlinkReadlink(void) {
  MakeFile(scratch, "target", "t");
  CHECK_OK(__wasi_path_symlink("target", scratch, "symlink"));
  CHECK_EQ(StatAt(scratch, 0, "symlink").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  uint8_t buf[10];
  memset(buf, 0, sizeof buf);
  __wasi_size_t used = 0;
  CHECK_OK(__wasi_path_readlink(scratch, "symlink", buf, sizeof buf, &used));
  CHECK_EQ(used, 6);
  CHECK_STR(buf, 6, "target");
  CHECK(buf[6] == 0 && buf[9] == 0, "bytes past the link are untouched (no NUL added)");
  // A buffer shorter than the link: the first bytes, truncated, success.
  memset(buf, 0, sizeof buf);
  CHECK_OK(__wasi_path_readlink(scratch, "symlink", buf, 4, &used));
  CHECK_EQ(used, 4);
  CHECK_STR(buf, 4, "targ");
  CHECK_EQ(buf[4], 0);
  // Not a link, missing: EINVAL, ENOENT.
  CHECK_ERRNO(__wasi_path_readlink(scratch, "target", buf, sizeof buf, &used), EINVAL_);
  CHECK_ERRNO(__wasi_path_readlink(scratch, "nothing", buf, sizeof buf, &used), ENOENT_);
  CHECK_ERRNO(__wasi_path_readlink(scratch, ".", buf, sizeof buf, &used), EINVAL_);
  // An existing name: EEXIST.
  CHECK_ERRNO(__wasi_path_symlink("x", scratch, "target"), EEXIST_);
  CHECK_ERRNO(__wasi_path_symlink("x", scratch, "symlink"), EEXIST_);
  CHECK_ERRNO(__wasi_path_symlink("x", scratch, "nodir/l"), ENOENT_);
  CHECK_ERRNO(__wasi_path_symlink("", scratch, "empty_link"), ENOENT_);  // Linux symlinkat
  CHECK(!Exists(scratch, "empty_link"), "no link made");
  // Opened through the link (following it).
  __wasi_fd_t fd;
  CHECK_OK(__wasi_path_open(scratch, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "symlink", 0, R(FD_READ), 0,
                            0, &fd));
  char c;
  CHECK_EQ(ReadSome(fd, &c, 1), 1);
  CHECK_EQ(c, 't');
  CHECK_OK(__wasi_fd_close(fd));
  // unlink removes the link, not the target.
  CHECK_OK(__wasi_path_unlink_file(scratch, "symlink"));
  CHECK(Exists(scratch, "target"), "target kept");
  CHECK_OK(__wasi_path_unlink_file(scratch, "target"));
  PASS("path_symlink_readlink");
}

// path_filestat.rs
static void TestPathFilestat(void) {
  __wasi_fdstat_t ds = FdFdstat(scratch);
  CHECK(ds.fs_rights_base & R(PATH_FILESTAT_GET), "preopen has PATH_FILESTAT_GET");
  __wasi_rights_t rights = R(FD_READ) | R(FD_WRITE) | R(FD_FILESTAT_GET);
  __wasi_fd_t fd;
  __wasi_fdflags_t flags = __WASI_FDFLAGS_APPEND | __WASI_FDFLAGS_SYNC;
  __wasi_errno_t e =
      __wasi_path_open(scratch, 0, "pfile", __WASI_OFLAGS_CREAT, rights, 0, flags, &fd);
  if (e == __WASI_ERRNO_NOTSUP) {
    flags = __WASI_FDFLAGS_APPEND;
    e = __wasi_path_open(scratch, 0, "pfile", __WASI_OFLAGS_CREAT, rights, 0, flags, &fd);
  }
  CHECK_OK(e);
  CHECK_EQ(FdFdstat(fd).fs_flags & flags, flags);

  __wasi_filestat_t st = StatAt(scratch, 0, "pfile");
  CHECK_EQ(st.size, 0);
  CHECK_EQ(st.filetype, __WASI_FILETYPE_REGULAR_FILE);
  __wasi_filestat_t fst = FdStat(fd);
  CHECK_EQ(fst.ino, st.ino);
  CHECK_EQ(fst.dev, st.dev);
  CHECK_EQ(StatAt(scratch, 0, "hostdir").filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(StatAt(scratch, 0, ".").filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(StatAt(scratch, 0, ".").ino, FdStat(scratch).ino);

  uint64_t new_mtim = st.mtim - 100;
  CHECK_OK(__wasi_path_filestat_set_times(scratch, 0, "pfile", 0, new_mtim, __WASI_FSTFLAGS_MTIM));
  CHECK_EQ(StatAt(scratch, 0, "pfile").mtim, new_mtim);
  CHECK_ERRNO(__wasi_path_filestat_set_times(scratch, 0, "pfile", 0, 5,
                                             __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW),
              EINVAL_);
  CHECK_EQ(StatAt(scratch, 0, "pfile").mtim, new_mtim);
  CHECK_ERRNO(__wasi_path_filestat_set_times(scratch, 0, "pfile", 0, 0,
                                             __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW),
              EINVAL_);
  CHECK_ERRNO(__wasi_path_filestat_set_times(scratch, 0, "missing", 0, 0, __WASI_FSTFLAGS_MTIM_NOW),
              ENOENT_);
  __wasi_filestat_t tmp;
  CHECK_ERRNO(__wasi_path_filestat_get(scratch, 0, "missing", &tmp), ENOENT_);
  CHECK_ERRNO(__wasi_path_filestat_get(scratch, 0, "pfile/x", &tmp), ENOTDIR_);
  // Writes land at the end (APPEND) and show in the size.
  CHECK_EQ(WriteAll(fd, "12345", 5), 5);
  CHECK_EQ(StatAt(scratch, 0, "pfile").size, 5);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(scratch, "pfile"));
  PASS("path_filestat");
}

// Paths must be UTF-8 strings without NUL (interesting_paths.rs; wiggle answers EILSEQ
// for invalid UTF-8).
static void TestBadStrings(void) {
  int32_t fd = -1;
  static const char kNul[] = "existing.txt\0";
  CHECK_ERRNO(RAW(path_open)(scratch, 0, (int32_t)kNul, sizeof kNul - 1, 0, 0, 0, 0, (int32_t)&fd),
              EINVAL_, EILSEQ_, ENOENT_);
  static const char kNulMid[] = "exist\0ing.txt";
  CHECK_ERRNO(
      RAW(path_open)(scratch, 0, (int32_t)kNulMid, sizeof kNulMid - 1, 0, 0, 0, 0, (int32_t)&fd),
      EINVAL_, EILSEQ_, ENOENT_);
  static const char kBad[] = "bad\xff\xfe";
  CHECK_ERRNO(RAW(path_open)(scratch, 0, (int32_t)kBad, sizeof kBad - 1, __WASI_OFLAGS_CREAT, 0, 0,
                             0, (int32_t)&fd),
              EILSEQ_);
  CHECK_ERRNO(RAW(path_create_directory)(scratch, (int32_t)kBad, sizeof kBad - 1), EILSEQ_);
  // A path given with its exact length, without a terminating NUL, works.
  static const char kExact[] = "existing.txtGARBAGE";
  CHECK_OK(RAW(path_open)(scratch, 0, (int32_t)kExact, 12, 0, R(FD_READ), 0, 0, (int32_t)&fd));
  CHECK_OK(__wasi_fd_close((__wasi_fd_t)fd));
  PASS("path_strings");
}

int main(int argc, char** argv) {
  scratch = ScratchDir(argc, argv);
  TestOpenCreate();
  TestOpenMissing();
  TestOpenDirectories();
  TestDirfdNotDir();
  TestOpenRights();
  TestCreateRemoveDirectory();
  TestUnlink();
  TestRename();
  TestLink();
  TestSymlinkReadlink();
  TestPathFilestat();
  TestBadStrings();
  return Finish();
}
