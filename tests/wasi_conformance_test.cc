// moat's WASI preview1 conformance programs (guests/wasi/*.c), each run in-process on a
// fresh scratch directory with its fixtures. A program prints "ok <group>" per passed group
// and exits 0; each failed check prints "FAIL file:line: call: got E, expected E", its
// group ends "not ok <group>", and the program exits 1. The host then checks what the guest
// left behind (or did not touch).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "test_util.h"

namespace moat {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

std::string Read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every path under `root` with its content, link text or "<dir>".
std::map<std::string, std::string> Snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    std::string key = it->path().lexically_relative(root).string();
    fs::file_status st = it->symlink_status();
    if (fs::is_symlink(st)) {
      m[key] = "-> " + fs::read_symlink(it->path()).string();
    } else if (fs::is_regular_file(st)) {
      m[key] = Read(it->path());
    } else {
      m[key] = "<dir>";
    }
  }
  return m;
}

std::string Lines(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& l : v) s += "ok " + l + "\n";
  return s;
}

// The verdict lines ("ok", "not ok", "FAIL") of a guest's stdout; it may print more.
std::string Verdicts(const std::string& out) {
  std::istringstream in(out);
  std::string line, s;
  while (std::getline(in, line)) {
    for (const char* p : {"ok ", "not ok ", "FAIL "}) {
      if (line.rfind(p, 0) == 0) {
        s += line + "\n";
        break;
      }
    }
  }
  return s;
}

class WasiConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::TempDir("conf") + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    scratch_ = root_ / "sandbox";
    fs::create_directories(scratch_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  // Runs guest wasi_<name> with `argv` after the program name and `mounts`, and expects
  // exit 0 with exactly the "ok" lines of `groups` on stdout.
  ExecResult Run(const std::string& name, std::vector<std::string> args, std::vector<Mount> mounts,
                 const std::vector<std::string>& groups, ExecRequest req = {}) {
    req.argv = {name + ".wasm"};
    req.argv.insert(req.argv.end(), args.begin(), args.end());
    req.mounts = std::move(mounts);
    req.limits.timeout_us = 60'000'000;
    ExecResult r = test::RunGuest("wasi_" + name, req);
    std::string report = "status " + std::string(RunStatusName(r.status)) + ", exit " +
                         std::to_string(r.exit_code) + " " + r.message + "\n--- stdout\n" +
                         r.stdout_bytes + "--- stderr\n" + r.stderr_bytes;
    EXPECT_EQ(r.status, RunStatus::kOk) << report;
    EXPECT_EQ(r.exit_code, 0) << report;
    EXPECT_EQ(Verdicts(r.stdout_bytes), Lines(groups)) << report;
    return r;
  }

  Mount Scratch() { return {scratch_.string(), "/sandbox", false}; }

  fs::path root_, scratch_;
};

TEST_F(WasiConformance, FdBasic) {
  Write(scratch_ / "fixture.txt", "0123456789abcdef");
  fs::path extra = root_ / "extra";
  fs::create_directories(extra);
  Run("fd_basic", {"/sandbox", "/extra"}, {Scratch(), {extra.string(), "/extra", false}},
      {"read_fixture", "write_seek_tell", "pread_pwrite", "sync_datasync", "advise", "allocate",
       "filestat_set_size", "filestat_set_times", "fdstat_get", "fdstat_set_flags_append",
       "fdstat_set_rights", "preopen_rights", "truncation_rights", "dir_fd_op_failures", "renumber",
       "close", "renumber_over_preopen", "close_preopen"});
  EXPECT_EQ(Read(scratch_ / "guest.txt"), "from the guest\n");
  EXPECT_EQ(Read(scratch_ / "fixture.txt"), "0123456789abcdef");
  EXPECT_EQ(Read(scratch_ / "append.txt"), "ccaabbbbdd");
  EXPECT_EQ(fs::file_size(scratch_ / "rw.txt"), 101u);
  EXPECT_TRUE(fs::is_directory(extra)) << "closing a preopen leaves the host directory";
}

TEST_F(WasiConformance, PathBasic) {
  Write(scratch_ / "existing.txt", "keep me");
  Write(scratch_ / "to_delete.txt", "bye");
  Write(scratch_ / "hostdir" / "inner.txt", "inner");
  Run("path_basic", {"/sandbox"}, {Scratch()},
      {"path_open_create", "path_open_missing", "path_open_directories", "dirfd_not_dir",
       "path_open_rights", "path_create_directory", "path_remove_directory", "path_unlink_file",
       "path_rename", "path_link", "path_symlink_readlink", "path_filestat", "path_strings"});
  EXPECT_EQ(Read(scratch_ / "created.txt"), "made by guest");
  EXPECT_EQ(Read(scratch_ / "existing.txt"), "keep me");
  EXPECT_EQ(Read(scratch_ / "renamed" / "final.txt"), "moved");
  EXPECT_FALSE(fs::exists(fs::symlink_status(scratch_ / "to_delete.txt")));
  EXPECT_EQ(Read(scratch_ / "hostdir" / "inner.txt"), "inner");
  EXPECT_FALSE(fs::exists(fs::symlink_status(scratch_ / "foo")));
}

// The testsuite's layout: the scratch directory is the preopen named "/".
TEST_F(WasiConformance, PathBasicMountedAtRoot) {
  Write(scratch_ / "existing.txt", "keep me");
  Write(scratch_ / "to_delete.txt", "bye");
  Write(scratch_ / "hostdir" / "inner.txt", "inner");
  Run("path_basic", {"/"}, {{scratch_.string(), "/", false}},
      {"path_open_create", "path_open_missing", "path_open_directories", "dirfd_not_dir",
       "path_open_rights", "path_create_directory", "path_remove_directory", "path_unlink_file",
       "path_rename", "path_link", "path_symlink_readlink", "path_filestat", "path_strings"});
  EXPECT_EQ(Read(scratch_ / "created.txt"), "made by guest");
  EXPECT_EQ(Read(scratch_ / "renamed" / "final.txt"), "moved");
}

TEST_F(WasiConformance, LibcPosix) {
  Write(scratch_ / "lseek.txt", "01234567");
  Write(scratch_ / "file", "f");
  fs::path outside = root_ / "outside.txt";
  Run("libc_posix", {"/sandbox"}, {Scratch()},
      {"fopen_no_access", "stdio_files", "lseek", "stat_dev_ino", "posix_calls", "dirent",
       "pwrite_append", "sock_isatty", "clocks_entropy"});
  EXPECT_EQ(Read(scratch_ / "data.txt"), "line one\nline 2\nthree\n");
  EXPECT_FALSE(fs::exists(outside));
  EXPECT_FALSE(fs::exists(scratch_ / "d"));
}

TEST_F(WasiConformance, TrailingSlashes) {
  Run("trailing_slashes", {"/sandbox"}, {Scratch()},
      {"open_trailing_slash", "filestat_trailing_slash", "unlink_trailing_slash",
       "remove_directory_trailing_slash", "rename_trailing_slash", "symlink_trailing_slash",
       "link_trailing_slash", "symlink_dir_trailing_slash"});
  // Every step cleans up after itself; only what it made is gone again.
  EXPECT_TRUE(Snapshot(scratch_).empty());
}

TEST_F(WasiConformance, Symlinks) {
  Write(scratch_ / "real.txt", "real");
  fs::create_symlink("real.txt", scratch_ / "host_link");
  Run("symlinks", {"/sandbox"}, {Scratch()},
      {"dangling_symlink", "symlink_loop", "nofollow_errors", "symlink_filestat", "symlink_chain",
       "hard_link_to_symlink", "host_symlink", "guest_symlink"});
  ASSERT_TRUE(fs::is_symlink(fs::symlink_status(scratch_ / "guest_link")));
  EXPECT_EQ(fs::read_symlink(scratch_ / "guest_link").string(), "real.txt");
  EXPECT_EQ(Read(scratch_ / "guest_link"), "real");
}

TEST_F(WasiConformance, Readdir) {
  Write(scratch_ / "listing" / "alpha", "alpha");
  fs::create_directories(scratch_ / "listing" / "beta");
  fs::create_symlink("alpha", scratch_ / "listing" / "gamma");
  Run("readdir", {"/sandbox"}, {Scratch()},
      {"readdir_empty", "readdir_entries", "readdir_cookies", "readdir_small_buffer",
       "readdir_lots", "readdir_sees_changes", "readdir_errors"});
  EXPECT_TRUE(fs::is_empty(scratch_ / "lots"));
}

TEST_F(WasiConformance, PathsEscape) {
  fs::path outside = root_ / "outside", ro = root_ / "ro";
  Write(outside / "secret.txt", "secret");
  Write(scratch_ / "file.txt", "inside");
  fs::create_directories(scratch_ / "sub");
  fs::create_symlink("/etc/passwd", scratch_ / "abs_link");
  fs::create_symlink("/", scratch_ / "root_link");
  fs::create_symlink("../outside", scratch_ / "up_link");
  fs::create_symlink("../../outside/secret.txt", scratch_ / "sub" / "deep_up");
  fs::create_symlink("sub", scratch_ / "in_link");
  Write(ro / "readme.txt", "read only");
  fs::create_directories(ro / "subdir");
  auto outside_before = Snapshot(outside);
  auto ro_before = Snapshot(ro);
  struct stat etc_before {};
  ASSERT_EQ(stat("/etc/passwd", &etc_before), 0);

  Run("paths_escape", {"/sandbox", "/ro"}, {Scratch(), {ro.string(), "/ro", true}},
      {"absolute_paths", "dotdot_escapes", "symlink_escapes", "preopen_root", "read_only_mount"});

  EXPECT_EQ(Snapshot(outside), outside_before) << "nothing outside the sandbox changed";
  EXPECT_EQ(Snapshot(ro), ro_before) << "the read-only mount is unchanged";
  for (const char* p : {"evil", "evil.txt", "stolen.txt", "hard.txt", "evil_link", "file2.txt",
                        "made_from_sub", "moved_root", "root_hard"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / p))) << p;
  }
  // The scratch directory holds only the fixtures and the guest's copy.
  auto scratch_now = Snapshot(scratch_);
  std::string listing;
  for (const auto& [k, v] : scratch_now) listing += k + ": " + v + "\n";
  EXPECT_EQ(scratch_now.size(), 8u) << listing;
  EXPECT_EQ(scratch_now["copy.txt"], "read only");
  EXPECT_EQ(scratch_now["file.txt"], "inside");
  struct stat etc_after {};
  ASSERT_EQ(stat("/etc/passwd", &etc_after), 0);
  EXPECT_EQ(etc_after.st_mtime, etc_before.st_mtime);
  EXPECT_EQ(Snapshot(root_).count("evil"), 0u);
}

TEST_F(WasiConformance, Misc) {
  Write(scratch_ / "fixture.txt", "fixture");
  ExecRequest req;
  req.env = {{"A", "1"}, {"EMPTY", ""}, {"WITH_EQ", "x=y"}, {"UNICODE", "\xc3\xa9"}};
  req.stdin_bytes = "input line\n";
  ExecResult r = Run("misc",
                     {"/sandbox", "two words", "",
                      "\xc3\xbcnic\xc3\xb6"
                      "de",
                      "--flag=x"},
                     {Scratch()},
                     {"args", "environ", "clocks", "random_get", "poll_oneoff_clock",
                      "poll_oneoff_fds", "poll_oneoff_errors", "sched_yield", "proc_raise",
                      "prestat", "stdio", "sock_not_socket", "bad_pointers"},
                     req);
  // The guest's raw fd_write calls, between its verdict lines.
  EXPECT_NE(r.stdout_bytes.find("\nhello stdout\nok stdio\n"), std::string::npos) << r.stdout_bytes;
  EXPECT_NE(r.stderr_bytes.find("hello stderr\n"), std::string::npos) << r.stderr_bytes;
  EXPECT_EQ(Snapshot(scratch_).size(), 1u) << "the guest's links are gone again";
}

// The areas of the WASI test suite's Rust programs (guests/wasi/suite_rust_areas.c): the
// suite's rights, call orders and errno values (Linux's where it branches by platform).
// The last groups renumber over and close preopens and move stdio, so they run last.
TEST_F(WasiConformance, SuiteRustAreas) {
  fs::path extra = root_ / "extra";
  fs::create_directories(extra);
  Run("suite_rust_areas", {"/sandbox", "/extra"}, {Scratch(), {extra.string(), "/extra", false}},
      {"dangling_fd",
       "dangling_symlink",
       "dir_fd_op_failures",
       "directory_seek",
       "fd_advise",
       "fd_fdstat_set_rights",
       "fd_filestat_get",
       "fd_filestat_set",
       "fd_flags_set",
       "fd_readdir",
       "file_allocate",
       "file_pread_pwrite",
       "file_seek_tell",
       "file_truncation",
       "file_unbuffered_write",
       "fstflags_validate",
       "interesting_paths",
       "isatty",
       "nofollow_errors",
       "path_exists",
       "path_filestat",
       "path_link",
       "path_open_create_existing",
       "path_open_dirfd_not_dir",
       "path_open_missing",
       "path_open_nonblock",
       "path_open_preopen",
       "path_open_read_write",
       "path_rename",
       "path_rename_dir_trailing_slashes",
       "path_symlink_trailing_slashes",
       "readlink",
       "remove_directory_trailing_slashes",
       "remove_nonempty_directory",
       "renumber",
       "symlink_create",
       "symlink_filestat",
       "symlink_loop",
       "truncation_rights",
       "unlink_file_trailing_slashes",
       "close_preopen",
       "overwrite_preopen",
       "stdio"});
  EXPECT_TRUE(Snapshot(scratch_).empty()) << "every group cleans up after itself";
  EXPECT_TRUE(fs::is_directory(extra));
}

// The areas of the WASI test suite's C and AssemblyScript programs
// (guests/wasi/suite_c_as_areas.c), through the real binary with the suite's kind of
// command line: several arguments, environment variables with quotes and a newline.
TEST_F(WasiConformance, SuiteCAndAssemblyScriptAreas) {
  std::string m = test::Guest("wasi_suite_c_as_areas");
  test::CliResult r =
      test::Cli("run --dir " + scratch_.string() +
                "::/sandbox --env a=text --env 'b=escap \" ing' --env 'c=new\nline' " + m +
                " /sandbox first 'the \"second\" arg' 3");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Verdicts(r.out),
            Lines({"args_multiple", "environ_multiple", "fd_write_invalid_fd", "random_zero_length",
                   "random_non_zero_length", "clock_getres", "clock_gettime", "fixtures",
                   "fopen_with_access", "fopen_with_no_access", "lseek", "pread_with_access",
                   "pwrite_with_access", "pwrite_with_append", "sock_shutdown_invalid_fd",
                   "sock_shutdown_not_sock", "stat_dev_ino", "fdopendir_with_access"}))
      << r.out << r.err;
  // Nothing given: no arguments beyond the name, no variables.
  test::CliResult none = test::Cli("run " + m);
  EXPECT_EQ(none.status, 0) << none.err;
  EXPECT_EQ(none.out, "ok args_none\nok environ_none\n");
  // Exact stdout, and proc_exit's code as the process status.
  test::CliResult out =
      test::Cli("run --dir " + scratch_.string() + "::/sandbox " + m + " /sandbox stdout");
  EXPECT_EQ(out.status, 0) << out.err;
  EXPECT_EQ(out.out, "hello");
  for (int code : {0, 33}) {
    test::CliResult ex = test::Cli("run --dir " + scratch_.string() + "::/sandbox " + m +
                                   " /sandbox exit " + std::to_string(code));
    EXPECT_EQ(ex.status, code) << ex.err;
    EXPECT_EQ(ex.out, "");
  }
}

}  // namespace
}  // namespace moat
