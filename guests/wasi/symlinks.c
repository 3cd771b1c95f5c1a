// WASI conformance: symbolic links inside the sandbox. Dangling links, loops (ELOOP),
// opening a link without SYMLINK_FOLLOW, filestat on a link and on its target, links
// through intermediate components, hard links to links. Links that leave the sandbox are
// in paths_escape.c.
//
// Preopen: argv[1] = scratch directory. Fixture from the harness: host_link -> "real.txt"
// and real.txt = "real", made on the host.
#include "wasi_check.h"

static __wasi_fd_t scratch;
static const __wasi_lookupflags_t kFollow = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;

static __wasi_errno_t Open(__wasi_lookupflags_t lf, const char* path, __wasi_oflags_t of) {
  __wasi_fd_t fd;
  __wasi_errno_t e = __wasi_path_open(scratch, lf, path, of, R(FD_READ), 0, 0, &fd);
  if (e == 0) CHECK_OK(__wasi_fd_close(fd));
  return e;
}

// dangling_symlink.rs
static void TestDangling(void) {
  CHECK_OK(__wasi_path_symlink("target", scratch, "dangling"));
  CHECK_ERRNO(Open(0, "dangling", __WASI_OFLAGS_DIRECTORY), ENOTDIR_, ELOOP_);
  CHECK_ERRNO(Open(0, "dangling", 0), ELOOP_);
  CHECK_ERRNO(Open(kFollow, "dangling", 0), ENOENT_);
  __wasi_filestat_t st;
  CHECK_OK(__wasi_path_filestat_get(scratch, 0, "dangling", &st));
  CHECK_EQ(st.filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_ERRNO(__wasi_path_filestat_get(scratch, kFollow, "dangling", &st), ENOENT_);
  CHECK_OK(__wasi_path_unlink_file(scratch, "dangling"));
  PASS("dangling_symlink");
}

// symlink_loop.rs
static void TestLoops(void) {
  CHECK_OK(__wasi_path_symlink("self", scratch, "self"));
  CHECK_ERRNO(Open(0, "self", 0), ELOOP_);
  CHECK_ERRNO(Open(kFollow, "self", 0), ELOOP_);
  __wasi_filestat_t st;
  CHECK_ERRNO(__wasi_path_filestat_get(scratch, kFollow, "self", &st), ELOOP_);
  CHECK_OK(__wasi_path_filestat_get(scratch, 0, "self", &st));  // the link itself
  CHECK_ERRNO(Open(kFollow, "self/x", 0), ELOOP_);
  CHECK_OK(__wasi_path_symlink("loop_b", scratch, "loop_a"));
  CHECK_OK(__wasi_path_symlink("loop_a", scratch, "loop_b"));
  CHECK_ERRNO(Open(kFollow, "loop_a", 0), ELOOP_);
  CHECK_ERRNO(__wasi_path_create_directory(scratch, "loop_a/sub"), ELOOP_);
  CHECK_OK(__wasi_path_unlink_file(scratch, "self"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "loop_a"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "loop_b"));
  PASS("symlink_loop");
}

// nofollow_errors.rs
static void TestNofollowErrors(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "target"));
  CHECK_OK(__wasi_path_symlink("target", scratch, "symlink"));
  CHECK_ERRNO(Open(0, "symlink", __WASI_OFLAGS_DIRECTORY), ELOOP_, ENOTDIR_);
  CHECK_ERRNO(Open(0, "symlink", 0), ELOOP_, EACCES_);
  __wasi_fd_t fd;
  CHECK_OK(__wasi_path_open(scratch, kFollow, "symlink", __WASI_OFLAGS_DIRECTORY, 0, 0, 0, &fd));
  CHECK_EQ(FdFdstat(fd).fs_filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_OK(__wasi_fd_close(fd));
  CHECK_OK(__wasi_path_unlink_file(scratch, "symlink"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "target"));

  MakeFile(scratch, "target", "t");
  CHECK_OK(__wasi_path_symlink("target", scratch, "symlink"));
  CHECK_ERRNO(Open(0, "symlink", __WASI_OFLAGS_DIRECTORY), ELOOP_, ENOTDIR_);
  CHECK_ERRNO(Open(0, "symlink", 0), ELOOP_);
  CHECK_ERRNO(Open(kFollow, "symlink", __WASI_OFLAGS_DIRECTORY), ENOTDIR_);
  CHECK_OK(Open(kFollow, "symlink", 0));
  // Removing a directory through a link to it is refused; unlink removes the link.
  CHECK_ERRNO(__wasi_path_remove_directory(scratch, "symlink"), ENOTDIR_);
  CHECK_OK(__wasi_path_unlink_file(scratch, "target"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "symlink"));
  PASS("nofollow_errors");
}

// path_exists.rs and symlink_filestat.rs
static void TestFilestat(void) {
  CHECK_OK(__wasi_path_create_directory(scratch, "subdir"));
  MakeFile(scratch, "subdir/file", "");
  CHECK_OK(__wasi_path_symlink("subdir/file", scratch, "link1"));
  CHECK_OK(__wasi_path_symlink("subdir", scratch, "link2"));
  CHECK_EQ(StatAt(scratch, 0, "link1").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_EQ(StatAt(scratch, kFollow, "link1").filetype, __WASI_FILETYPE_REGULAR_FILE);
  CHECK_EQ(StatAt(scratch, 0, "link2").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_EQ(StatAt(scratch, kFollow, "link2").filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK_EQ(StatAt(scratch, 0, "link1").size, strlen("subdir/file"));
  CHECK_EQ(StatAt(scratch, kFollow, "link1").ino, StatAt(scratch, 0, "subdir/file").ino);
  // Intermediate components are always followed, whatever the lookup flags say.
  CHECK_EQ(StatAt(scratch, 0, "link2/file").filetype, __WASI_FILETYPE_REGULAR_FILE);
  CHECK_OK(Open(0, "link2/file", 0));

  __wasi_filestat_t file_st = StatAt(scratch, 0, "subdir/file");
  __wasi_filestat_t sym_st = StatAt(scratch, 0, "link1");
  uint64_t sym_mtim = sym_st.mtim - 200;
  CHECK_OK(__wasi_path_filestat_set_times(scratch, 0, "link1", 0, sym_mtim, __WASI_FSTFLAGS_MTIM));
  CHECK_EQ(StatAt(scratch, 0, "link1").mtim, sym_mtim);
  CHECK_EQ(StatAt(scratch, 0, "subdir/file").mtim, file_st.mtim);
  CHECK_EQ(StatAt(scratch, kFollow, "link1").mtim, file_st.mtim);
  uint64_t file_mtim = file_st.mtim - 300;
  CHECK_OK(__wasi_path_filestat_set_times(scratch, kFollow, "link1", 0, file_mtim,
                                          __WASI_FSTFLAGS_MTIM));
  CHECK_EQ(StatAt(scratch, 0, "subdir/file").mtim, file_mtim);
  CHECK_EQ(StatAt(scratch, 0, "link1").mtim, sym_mtim);
  PASS("symlink_filestat");

  // A chain of links inside the sandbox resolves.
  CHECK_OK(__wasi_path_symlink("link1", scratch, "chain"));
  CHECK_EQ(StatAt(scratch, kFollow, "chain").filetype, __WASI_FILETYPE_REGULAR_FILE);
  CHECK_OK(Open(kFollow, "chain", 0));
  // A relative link inside a subdirectory resolves from that subdirectory.
  CHECK_OK(__wasi_path_symlink("../subdir/file", scratch, "subdir/up"));
  CHECK_EQ(StatAt(scratch, kFollow, "subdir/up").ino, StatAt(scratch, 0, "subdir/file").ino);
  CHECK_OK(__wasi_path_unlink_file(scratch, "subdir/up"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "chain"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "link1"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "link2"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "subdir/file"));
  CHECK_OK(__wasi_path_remove_directory(scratch, "subdir"));
  PASS("symlink_chain");
}

// path_link.rs: hard links to links never follow them.
static void TestHardLinksToLinks(void) {
  CHECK_OK(__wasi_path_symlink("target", scratch, "symlink"));
  CHECK_OK(__wasi_path_link(scratch, 0, "symlink", scratch, "link"));
  CHECK_EQ(StatAt(scratch, 0, "link").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_OK(__wasi_path_unlink_file(scratch, "symlink"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "link"));
  CHECK_OK(__wasi_path_symlink("symlink", scratch, "symlink"));
  CHECK_OK(__wasi_path_link(scratch, 0, "symlink", scratch, "link"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "symlink"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "link"));
  MakeFile(scratch, "file", "");
  CHECK_OK(__wasi_path_symlink("target", scratch, "symlink"));
  CHECK_ERRNO(__wasi_path_link(scratch, 0, "file", scratch, "symlink"), EEXIST_);
  CHECK_ERRNO(__wasi_path_link(scratch, kFollow, "symlink", scratch, "link"), EINVAL_, ENOENT_);
  CHECK(!Exists(scratch, "link"), "no link made");
  CHECK_OK(__wasi_path_unlink_file(scratch, "symlink"));
  CHECK_OK(__wasi_path_unlink_file(scratch, "file"));
  PASS("hard_link_to_symlink");
}

// A link made on the host is seen as a link, with its content.
static void TestHostLink(void) {
  CHECK_EQ(StatAt(scratch, 0, "host_link").filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  char buf[32];
  __wasi_size_t n = 0;
  CHECK_OK(__wasi_path_readlink(scratch, "host_link", (uint8_t*)buf, sizeof buf, &n));
  CHECK_STR(buf, n, "real.txt");
  __wasi_fd_t fd;
  CHECK_OK(__wasi_path_open(scratch, kFollow, "host_link", 0, R(FD_READ), 0, 0, &fd));
  n = (__wasi_size_t)ReadSome(fd, buf, sizeof buf);
  CHECK_STR(buf, n, "real");
  CHECK_OK(__wasi_fd_close(fd));
  PASS("host_symlink");
}

// The guest makes a link; the host checks it is a real link with this content.
static void TestGuestLinkForHost(void) {
  CHECK_OK(__wasi_path_symlink("real.txt", scratch, "guest_link"));
  PASS("guest_symlink");
}

int main(int argc, char** argv) {
  scratch = ScratchDir(argc, argv);
  TestDangling();
  TestLoops();
  TestNofollowErrors();
  TestFilestat();
  TestHardLinksToLinks();
  TestHostLink();
  TestGuestLinkForHost();
  return Finish();
}
