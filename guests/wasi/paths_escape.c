// WASI conformance: the sandbox boundary. Absolute paths, "..", "../" through
// subdirectories and through directory fds, symlinks (absolute or relative) that leave
// the preopen, the preopen itself, and a read-only mount. Every escape is refused with
// EPERM or ENOTCAPABLE (interesting_paths.rs accepts exactly these two; Wasmtime answers
// EPERM); the host checks afterwards that nothing outside changed.
//
// Preopens: argv[1] = scratch directory (read-write), argv[2] = read-only directory.
// Fixtures: scratch/file.txt = "inside", scratch/sub/, scratch/abs_link -> /etc/passwd,
// scratch/root_link -> /, scratch/up_link -> ../outside, scratch/sub/deep_up ->
// ../../outside/secret.txt, scratch/in_link -> sub; beside scratch: outside/secret.txt;
// read-only: readme.txt = "read only", subdir/.
#include "wasi_check.h"

static __wasi_fd_t scratch, ro;
static const __wasi_lookupflags_t kFollow = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;

#define CHECK_ESCAPE(expr) CHECK_ERRNO(expr, EPERM_, ENOTCAPABLE_)

static __wasi_errno_t OpenIn(__wasi_fd_t dir, __wasi_lookupflags_t lf, const char* path,
                             __wasi_oflags_t of, __wasi_rights_t rights) {
  __wasi_fd_t fd;
  __wasi_errno_t e = __wasi_path_open(dir, lf, path, of, rights, 0, 0, &fd);
  if (e == 0) CHECK_OK(__wasi_fd_close(fd));
  return e;
}

static __wasi_errno_t Open(__wasi_lookupflags_t lf, const char* path, __wasi_oflags_t of) {
  return OpenIn(scratch, lf, path, of, R(FD_READ));
}

static void TestAbsolute(void) {
  static const char* const kPaths[] = {"/", "/file.txt", "/sandbox/file.txt", "/etc/passwd",
                                       "//file.txt"};
  __wasi_filestat_t st;
  for (size_t i = 0; i < sizeof kPaths / sizeof kPaths[0]; ++i) {
    const char* p = kPaths[i];
    CHECK_ESCAPE(Open(0, p, 0));
    CHECK_ESCAPE(Open(kFollow, p, 0));
    CHECK_ESCAPE(__wasi_path_filestat_get(scratch, kFollow, p, &st));
  }
  CHECK_ESCAPE(Open(0, "/new.txt", __WASI_OFLAGS_CREAT));
  CHECK_ESCAPE(__wasi_path_create_directory(scratch, "/evil"));
  CHECK_ESCAPE(__wasi_path_unlink_file(scratch, "/file.txt"));
  CHECK_ESCAPE(__wasi_path_remove_directory(scratch, "/sub"));
  CHECK_ESCAPE(__wasi_path_rename(scratch, "file.txt", scratch, "/file2.txt"));
  CHECK_ESCAPE(__wasi_path_rename(scratch, "/file.txt", scratch, "file2.txt"));
  CHECK_ESCAPE(__wasi_path_link(scratch, 0, "file.txt", scratch, "/file2.txt"));
  CHECK_ESCAPE(__wasi_path_symlink("file.txt", scratch, "/file2.txt"));
  CHECK_ESCAPE(
      __wasi_path_filestat_set_times(scratch, 0, "/file.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
  uint8_t buf[64];
  __wasi_size_t n;
  CHECK_ESCAPE(__wasi_path_readlink(scratch, "/abs_link", buf, sizeof buf, &n));
  // symlink_create.rs: a link whose content is absolute cannot be made.
  CHECK_FAILS(__wasi_path_symlink("/", scratch, "made_root_link"));
  CHECK_FAILS(__wasi_path_symlink("/etc/passwd", scratch, "made_abs_link"));
  CHECK(!Exists(scratch, "made_root_link") && !Exists(scratch, "made_abs_link"),
        "no absolute link made");
  PASS("absolute_paths");
}

static void TestDotDot(void) {
  static const char* const kPaths[] = {"..",
                                       "../",
                                       "./..",
                                       "../outside/secret.txt",
                                       "sub/../../outside/secret.txt",
                                       "sub/../..",
                                       "sub/../../sandbox/file.txt",
                                       "file.txt/../../outside/secret.txt"};
  __wasi_filestat_t st;
  for (size_t i = 0; i < sizeof kPaths / sizeof kPaths[0]; ++i) {
    const char* p = kPaths[i];
    CHECK_ERRNO(Open(0, p, 0), EPERM_, ENOTCAPABLE_, ENOTDIR_);
    CHECK_ERRNO(__wasi_path_filestat_get(scratch, 0, p, &st), EPERM_, ENOTCAPABLE_, ENOTDIR_);
  }
  CHECK_ESCAPE(Open(0, "..", __WASI_OFLAGS_DIRECTORY));
  CHECK_ESCAPE(Open(0, "../evil.txt", __WASI_OFLAGS_CREAT));
  CHECK_ESCAPE(__wasi_path_create_directory(scratch, "../evil"));
  CHECK_ESCAPE(__wasi_path_create_directory(scratch, "sub/../../evil"));
  CHECK_ESCAPE(__wasi_path_rename(scratch, "file.txt", scratch, "../stolen.txt"));
  CHECK_ESCAPE(__wasi_path_rename(scratch, "../outside/secret.txt", scratch, "got.txt"));
  CHECK_ESCAPE(__wasi_path_link(scratch, 0, "file.txt", scratch, "../hard.txt"));
  CHECK_ESCAPE(__wasi_path_link(scratch, 0, "../outside/secret.txt", scratch, "hard.txt"));
  CHECK_ESCAPE(__wasi_path_symlink("file.txt", scratch, "../evil_link"));
  CHECK_ESCAPE(__wasi_path_unlink_file(scratch, "../outside/secret.txt"));
  CHECK_ESCAPE(__wasi_path_remove_directory(scratch, "../outside"));
  CHECK_ESCAPE(__wasi_path_filestat_set_times(scratch, 0, "../outside/secret.txt", 0, 0,
                                              __WASI_FSTFLAGS_MTIM_NOW));
  uint8_t buf[64];
  __wasi_size_t n;
  CHECK_ESCAPE(__wasi_path_readlink(scratch, "../x", buf, sizeof buf, &n));
  // ".." that stays inside is fine.
  CHECK_OK(Open(0, "sub/../file.txt", 0));
  CHECK_OK(Open(0, "sub/./../sub/..", __WASI_OFLAGS_DIRECTORY));
  // A directory fd is a root of its own: ".." from it is refused too.
  __wasi_fd_t sub = OpenDir(scratch, "sub");
  CHECK_ESCAPE(OpenIn(sub, 0, "../file.txt", 0, R(FD_READ)));
  CHECK_ESCAPE(OpenIn(sub, 0, "..", __WASI_OFLAGS_DIRECTORY, 0));
  CHECK_ESCAPE(__wasi_path_filestat_get(sub, 0, "..", &st));
  CHECK_ESCAPE(__wasi_path_create_directory(sub, "../made_from_sub"));
  CHECK_OK(__wasi_fd_close(sub));
  CHECK(!Exists(scratch, "made_from_sub"), "nothing made from sub");
  PASS("dotdot_escapes");
}

static void TestSymlinkEscapes(void) {
  __wasi_filestat_t st;
  // The links are there, and are links.
  CHECK_EQ(StatAt(scratch, 0, "abs_link").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_EQ(StatAt(scratch, 0, "up_link").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  // Following them is refused, as the last component or in the middle.
  CHECK_ESCAPE(Open(kFollow, "abs_link", 0));
  CHECK_ESCAPE(Open(kFollow, "root_link", __WASI_OFLAGS_DIRECTORY));
  CHECK_ESCAPE(Open(0, "root_link/etc/passwd", 0));
  CHECK_ESCAPE(Open(0, "up_link/secret.txt", 0));
  CHECK_ESCAPE(Open(kFollow, "up_link", __WASI_OFLAGS_DIRECTORY));
  CHECK_ESCAPE(Open(kFollow, "sub/deep_up", 0));
  CHECK_ESCAPE(__wasi_path_filestat_get(scratch, kFollow, "abs_link", &st));
  CHECK_ESCAPE(__wasi_path_filestat_get(scratch, kFollow, "sub/deep_up", &st));
  CHECK_ESCAPE(__wasi_path_filestat_get(scratch, 0, "up_link/secret.txt", &st));
  // Not following the last component: it is a link (ELOOP), not an escape.
  CHECK_ERRNO(Open(0, "abs_link", 0), ELOOP_, EPERM_, ENOTCAPABLE_);
  // Writing through an escaping link.
  CHECK_ESCAPE(Open(0, "up_link/new.txt", __WASI_OFLAGS_CREAT));
  CHECK_ESCAPE(__wasi_path_create_directory(scratch, "up_link/evil"));
  CHECK_ESCAPE(__wasi_path_unlink_file(scratch, "up_link/secret.txt"));
  CHECK_ESCAPE(__wasi_path_rename(scratch, "file.txt", scratch, "up_link/stolen.txt"));
  CHECK_ESCAPE(__wasi_path_rename(scratch, "up_link/secret.txt", scratch, "got.txt"));
  CHECK_ESCAPE(__wasi_path_link(scratch, 0, "up_link/secret.txt", scratch, "hard.txt"));
  CHECK_ESCAPE(__wasi_path_symlink("x", scratch, "up_link/evil_link"));
  CHECK_ESCAPE(__wasi_path_filestat_set_times(scratch, kFollow, "sub/deep_up", 0, 0,
                                              __WASI_FSTFLAGS_MTIM_NOW));
  CHECK_ESCAPE(__wasi_path_filestat_set_times(scratch, 0, "up_link/secret.txt", 0, 0,
                                              __WASI_FSTFLAGS_MTIM_NOW));
  // A link the guest makes that points out: made or not, it never leads out.
  __wasi_errno_t e = __wasi_path_symlink("../outside/secret.txt", scratch, "mine");
  if (e == 0) {
    CHECK_ESCAPE(Open(kFollow, "mine", 0));
    CHECK_OK(__wasi_path_unlink_file(scratch, "mine"));
  } else {
    CHECK_ESCAPE(e);
  }
  // A link that stays inside works, as the last component and in the middle.
  CHECK_OK(Open(kFollow, "in_link", __WASI_OFLAGS_DIRECTORY));
  CHECK_OK(__wasi_path_filestat_get(scratch, kFollow, "in_link", &st));
  CHECK_EQ(st.filetype, __WASI_FILETYPE_DIRECTORY);
  PASS("symlink_escapes");
}

static void TestPreopenRoot(void) {
  CHECK_FAILS(__wasi_path_remove_directory(scratch, "."));
  CHECK_FAILS(__wasi_path_unlink_file(scratch, "."));
  CHECK_FAILS(__wasi_path_rename(scratch, ".", scratch, "moved_root"));
  CHECK_FAILS(__wasi_path_rename(scratch, "file.txt", scratch, "."));
  CHECK_FAILS(__wasi_path_link(scratch, 0, ".", scratch, "root_hard"));
  CHECK_OK(Open(0, ".", __WASI_OFLAGS_DIRECTORY));
  CHECK_EQ(StatAt(scratch, 0, "file.txt").size, 6);
  // A path with every kind of separator noise is still inside.
  CHECK_OK(Open(0, ".//./sub/..//file.txt", 0));
  PASS("preopen_root");
}

#define CHECK_RO(expr) CHECK_ERRNO(expr, EPERM_, EROFS_, ENOTCAPABLE_, EACCES_)

static void TestReadOnly(void) {
  __wasi_fd_t fd = OpenAt(ro, "readme.txt", 0, R(FD_READ) | R(FD_FILESTAT_GET), 0);
  char buf[32];
  size_t n = ReadSome(fd, buf, sizeof buf);
  CHECK_STR(buf, n, "read only");
  // Changing the file through a read fd.
  CHECK_ERRNO(__wasi_fd_filestat_set_size(fd, 0), EPERM_, EROFS_, ENOTCAPABLE_, EACCES_, EBADF_,
              EINVAL_);
  CHECK_ERRNO(__wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_MTIM_NOW), EPERM_, EROFS_,
              ENOTCAPABLE_, EACCES_, EBADF_);
  __wasi_ciovec_t c = {(const uint8_t*)"x", 1};
  __wasi_size_t w;
  CHECK_ERRNO(__wasi_fd_write(fd, &c, 1, &w), EPERM_, EROFS_, ENOTCAPABLE_, EACCES_, EBADF_);
  CHECK_OK(__wasi_fd_close(fd));
  // Opening for writing, creating, truncating.
  CHECK_RO(OpenIn(ro, 0, "readme.txt", 0, R(FD_WRITE)));
  CHECK_RO(OpenIn(ro, 0, "readme.txt", __WASI_OFLAGS_TRUNC, 0));
  CHECK_RO(OpenIn(ro, 0, "new.txt", __WASI_OFLAGS_CREAT, 0));
  CHECK_RO(OpenIn(ro, 0, "new.txt", __WASI_OFLAGS_CREAT, R(FD_WRITE)));
  // Every path operation that changes something.
  CHECK_RO(__wasi_path_create_directory(ro, "newdir"));
  CHECK_RO(__wasi_path_unlink_file(ro, "readme.txt"));
  CHECK_RO(__wasi_path_remove_directory(ro, "subdir"));
  CHECK_RO(__wasi_path_rename(ro, "readme.txt", ro, "renamed.txt"));
  // Across mounts EXDEV is a refusal too.
  CHECK_ERRNO(__wasi_path_rename(ro, "readme.txt", scratch, "taken.txt"), EPERM_, EROFS_,
              ENOTCAPABLE_, EACCES_, EXDEV_);
  CHECK_ERRNO(__wasi_path_rename(scratch, "file.txt", ro, "given.txt"), EPERM_, EROFS_,
              ENOTCAPABLE_, EACCES_, EXDEV_);
  CHECK_RO(__wasi_path_link(ro, 0, "readme.txt", ro, "hard.txt"));
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "file.txt", ro, "hard.txt"), EPERM_, EROFS_,
              ENOTCAPABLE_, EACCES_, EXDEV_);
  CHECK_RO(__wasi_path_symlink("readme.txt", ro, "link"));
  CHECK_RO(__wasi_path_filestat_set_times(ro, 0, "readme.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
  // A subdirectory fd of a read-only mount is read-only too.
  __wasi_fd_t sub;
  CHECK_OK(__wasi_path_open(ro, 0, "subdir", __WASI_OFLAGS_DIRECTORY, kAllDirRights,
                            kAllDirRights | kAllFileRights, 0, &sub));
  CHECK_RO(OpenIn(sub, 0, "new.txt", __WASI_OFLAGS_CREAT, R(FD_WRITE)));
  CHECK_RO(__wasi_path_create_directory(sub, "newdir"));
  CHECK_OK(__wasi_fd_close(sub));
  // Copying out of it is fine (a hard link would not be: it is a change to the mount).
  MakeFile(scratch, "copy.txt", "read only");
  CHECK_EQ(StatAt(ro, 0, "readme.txt").size, 9);
  CHECK(!Exists(ro, "new.txt") && !Exists(ro, "newdir"), "nothing made");
  PASS("read_only_mount");
}

int main(int argc, char** argv) {
  scratch = ScratchDir(argc, argv);
  if (argc < 3) return 2;
  ro = FindPreopen(argv[2]);
  TestAbsolute();
  TestDotDot();
  TestSymlinkEscapes();
  TestPreopenRoot();
  TestReadOnly();
  return Finish();
}
