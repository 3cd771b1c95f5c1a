// WASI conformance: trailing slashes on every path operation. A trailing slash names a
// directory: on a directory it is accepted, on a file it is ENOTDIR, for a new name it
// follows the testsuite (interesting_paths.rs, unlink_file_trailing_slashes.rs,
// remove_directory_trailing_slashes.rs, path_rename_dir_trailing_slashes.rs,
// path_symlink_trailing_slashes.rs, path_link.rs), Linux errno values.
//
// Preopen: argv[1] = scratch directory (empty).
#include "wasi_check.h"

static __wasi_fd_t scratch;

static void TestOpen(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "dir"));
  MakeFile(scratch, "file", "x");
  __wasi_fd_t fd;
  CHECK_ERRNO(__wasi_path_open(scratch, 0, "file/", 0, 0, 0, 0, &fd), ENOTDIR_, ENOENT_);
  CHECK_ERRNO(__wasi_path_open(scratch, 0, "file///", 0, 0, 0, 0, &fd), ENOTDIR_, ENOENT_);
  CHECK_OK(__wasi_path_open(scratch, 0, "dir/", 0, 0, 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_open(scratch, 0, "dir///", __WASI_OFLAGS_DIRECTORY, 0, 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  // Creating a file whose name ends in a slash never makes a regular file.
  __wasi_errno_t e = __wasi_path_open(scratch, 0, "newfile/", __WASI_OFLAGS_CREAT, 0, 0, 0, &fd);
  CHECK_ERRNO(e, EISDIR_, ENOTDIR_, ENOENT_, EINVAL_);
  CHECK(!Exists(scratch, "newfile"), "no file made for a name ending in '/'");
  PASS("open_trailing_slash");
}

static void TestFilestat(void) {
  __wasi_filestat_t st;
  CHECK_ERRNO(__wasi_path_filestat_get(scratch, 0, "file/", &st), ENOTDIR_, ENOENT_);
  CHECK_OK(__wasi_path_filestat_get(scratch, 0, "dir/", &st));
  CHECK_EQ(st.filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_ERRNO(__wasi_path_filestat_set_times(scratch, 0, "file/", 0, 0, __WASI_FSTFLAGS_MTIM_NOW),
              ENOTDIR_, ENOENT_);
  CHECK_OK(__wasi_path_filestat_set_times(scratch, 0, "dir/", 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
  PASS("filestat_trailing_slash");
}

// unlink_file_trailing_slashes.rs
static void TestUnlink(void) {
  CHECK_ERRNO(__wasi_path_unlink_file(scratch, "dir"), EISDIR_);
  CHECK_ERRNO(__wasi_path_unlink_file(scratch, "dir/"), EISDIR_);
  CHECK_ERRNO(__wasi_path_unlink_file(scratch, "file/"), ENOTDIR_);
  CHECK(Exists(scratch, "file"), "file kept");
  CHECK_OK(__wasi_path_unlink_file(scratch, "file"));
  PASS("unlink_trailing_slash");
}

// remove_directory_trailing_slashes.rs: "dir/" removes the directory (EACCES tolerated
// by the testsuite for Windows hosts only, so not here).
static void TestRemoveDirectory(void) {
  CHECK_OK(__wasi_path_remove_directory(scratch, "dir/"));
  CHECK(!Exists(scratch, "dir"), "dir removed");
  CHECK_OK(__wasi_path_create_directory(scratch, "dir//"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "dir//"));
  MakeFile(scratch, "file", "");
  CHECK_ERRNO(__wasi_path_remove_directory(scratch, "file"), ENOTDIR_);
  CHECK_ERRNO(__wasi_path_remove_directory(scratch, "file/"), ENOTDIR_);
  CHECK_OK(__wasi_path_unlink_file(scratch, "file"));
  PASS("remove_directory_trailing_slash");
}

// path_rename_dir_trailing_slashes.rs, and files with a slash.
static void TestRename(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "source"));
  CHECK_OK(__wasi_path_rename(scratch, "source/", scratch, "target"));
  CHECK_OK(__wasi_path_rename(scratch, "target", scratch, "source/"));
  CHECK_OK(__wasi_path_rename(scratch, "source/", scratch, "target/"));
  CHECK_OK(__wasi_path_rename(scratch, "target", scratch, "source"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "source"));
  MakeFile(scratch, "file", "");
  CHECK_ERRNO(__wasi_path_rename(scratch, "file/", scratch, "other"), ENOTDIR_);
  CHECK_ERRNO(__wasi_path_rename(scratch, "file", scratch, "other/"), ENOTDIR_, ENOENT_);
  CHECK(Exists(scratch, "file"), "file still in place");
  CHECK(!Exists(scratch, "other"), "nothing made");
  CHECK_OK(__wasi_path_unlink_file(scratch, "file"));
  PASS("rename_trailing_slash");
}

// path_symlink_trailing_slashes.rs
static void TestSymlink(void) {
  CHECK_ERRNO(__wasi_path_symlink("source", scratch, "target/"), ENOENT_);
  CHECK(!Exists(scratch, "target"), "no link made");
  CHECK_OK(__wasi_path_symlink("source", scratch, "target"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "target"));
  CHECK_OK(__wasi_path_create_directory(scratch, "target"));
  CHECK_ERRNO(__wasi_path_symlink("source", scratch, "target/"), EEXIST_);
  CHECK_ERRNO(__wasi_path_symlink("source", scratch, "target"), EEXIST_);
  CHECK_OK(__wasi_path_remove_directory(scratch, "target"));
  MakeFile(scratch, "target", "");
  CHECK_ERRNO(__wasi_path_symlink("source", scratch, "target/"), ENOTDIR_, EEXIST_);
  CHECK_ERRNO(__wasi_path_symlink("source", scratch, "target"), EEXIST_);
  CHECK_OK(__wasi_path_unlink_file(scratch, "target"));
  PASS("symlink_trailing_slash");
}

// path_link.rs: a link destination with a trailing slash is ENOENT; a file source with a
// trailing slash is ENOTDIR.
static void TestLink(void) {
  MakeFile(scratch, "file", "");
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "file", scratch, "link/"), ENOENT_);
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "file/", scratch, "link"), ENOTDIR_, ENOENT_);
  CHECK(!Exists(scratch, "link"), "no link made");
  CHECK_OK(__wasi_path_unlink_file(scratch, "file"));
  PASS("link_trailing_slash");
}

// A symlink to a directory, named with a trailing slash, resolves to the directory.
static void TestSymlinkToDirSlash(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "realdir"));
  MakeFile(scratch, "realdir/inner", "i");
  CHECK_OK(__wasi_path_symlink("realdir", scratch, "dirlink"));
  __wasi_filestat_t st;
  CHECK_OK(__wasi_path_filestat_get(scratch, 0, "dirlink/", &st));
  CHECK_EQ(st.filetype, __WASI_FILETYPE_DIRECTORY);
  __wasi_fd_t fd;
  CHECK_OK(__wasi_path_open(scratch, 0, "dirlink/", __WASI_OFLAGS_DIRECTORY, 0, 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_open(scratch, 0, "dirlink/inner", 0, R(FD_READ), 0, 0, &fd));
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(scratch, "dirlink"));
  CHECK(Exists(scratch, "realdir/inner"), "target untouched");
  CHECK_OK(__wasi_path_unlink_file(scratch, "realdir/inner"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "realdir"));
  PASS("symlink_dir_trailing_slash");
}

int main(int argc, char** argv) {
  scratch = ScratchDir(argc, argv);
  TestOpen();
  TestFilestat();
  TestUnlink();
  TestRemoveDirectory();
  TestRename();
  TestSymlink();
  TestLink();
  TestSymlinkToDirSlash();
  return Finish();
}
