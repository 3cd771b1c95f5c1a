// The WASI layer as a capability boundary: escapes, read-only mounts, hidden paths, quotas
// and races, each driven through the real sandbox by guests/fs/fsprobe.c. Every refusal must
// also be a denial event naming the operation and the path as the guest gave it.
#include <fcntl.h>
#include <fnmatch.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "execution/wasi_abi.h"
#include "execution/wasi_fs.h"
#include "test_util.h"

namespace moat {
namespace {

namespace fs = std::filesystem;
using test::RunGuest;

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

// Every path and its content (or link text) under `root`, to prove nothing changed.
std::map<std::string, std::string> Snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path& p = it->path();
    std::string key = fs::relative(p, root).string();
    if (fs::is_symlink(it->symlink_status())) {
      m[key] = "-> " + fs::read_symlink(p).string();
    } else if (fs::is_regular_file(it->symlink_status())) {
      m[key] = Read(p);
    } else {
      m[key] = "<dir>";
    }
  }
  return m;
}

class WasiCapabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::TempDir("cap") + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    ws_ = root_ / "ws";
    ro_ = root_ / "ro";
    out_ = root_ / "outside";
    Write(out_ / "canary", "OUTSIDE SECRET");
    Write(ws_ / "file.txt", "hello");
    Write(ws_ / ".env", "SECRET=1");
    Write(ws_ / "key.pem", "PEM");
    Write(ws_ / ".git" / "config", "[core]");
    Write(ws_ / ".git" / "HEAD", "ref");
    Write(ws_ / "sub" / "dir" / "deep.txt", "deep");
    Write(ro_ / "ro.txt", "readonly");
    fs::create_directories(ro_ / "rsub");
    fs::create_symlink(out_ / "canary", ws_ / "abs_link");
    fs::create_symlink("../outside/canary", ws_ / "rel_escape");
    fs::create_symlink("chain2", ws_ / "chain1");
    fs::create_symlink("../outside/canary", ws_ / "chain2");
    fs::create_symlink("loop2", ws_ / "loop1");
    fs::create_symlink("loop1", ws_ / "loop2");
    fs::create_symlink("file.txt", ws_ / "inside_link");
    fs::create_symlink(".env", ws_ / "env_link");
    fs::create_symlink("../outside", ws_ / "dir_escape");
    fs::create_symlink("sub/dir", ws_ / "dir_inside");
    outside_before_ = Snapshot(out_);
    ro_before_ = Snapshot(ro_);
  }
  void TearDown() override {
    EXPECT_EQ(Snapshot(out_), outside_before_) << "something outside the mounts changed";
    fs::remove_all(root_);
  }

  ExecRequest Request(std::vector<std::string> args) {
    ExecRequest req;
    req.argv = {"fsprobe"};
    for (auto& a : args) req.argv.push_back(std::move(a));
    req.mounts.push_back({ws_.string(), "/w", false});
    req.mounts.push_back({ro_.string(), "/r", true});
    req.limits.timeout_us = 60'000'000;
    return req;
  }

  // Runs one operation; returns its output line.
  std::string Probe(std::vector<std::string> args, ExecRequest* with = nullptr) {
    ExecRequest req = with ? *with : Request({});
    if (with) req.argv = {"fsprobe"};
    for (auto& a : args) req.argv.push_back(std::move(a));
    last_ = RunGuest("fsprobe", req);
    EXPECT_EQ(last_.status, RunStatus::kOk) << last_.message << last_.stderr_bytes;
    EXPECT_EQ(last_.exit_code, 0) << last_.stderr_bytes;
    std::string out = last_.stdout_bytes;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  // The last run recorded a denial for `op` naming `subject`.
  bool Denied(const std::string& op, const std::string& subject) {
    for (const CapabilityEvent& e : last_.denied) {
      if (e.operation == op && e.subject == subject && !e.reason.empty()) return true;
    }
    return false;
  }

  fs::path root_, ws_, ro_, out_;
  std::map<std::string, std::string> outside_before_, ro_before_;
  ExecResult last_;
};

constexpr int kPerm = wasi::kEperm, kNoent = wasi::kEnoent;
std::string E(const char* op, int err) { return std::string(op) + " errno=" + std::to_string(err); }

TEST_F(WasiCapabilityTest, ReadsInsideTheMount) {
  EXPECT_EQ(Probe({"read", "/w:file.txt"}), "read errno=0 content=hello");
  EXPECT_EQ(Probe({"read", "/w:sub/dir/deep.txt"}), "read errno=0 content=deep");
  EXPECT_EQ(Probe({"read", "/w:sub/dir/../../file.txt"}), "read errno=0 content=hello");
  EXPECT_EQ(Probe({"read", "/w:inside_link"}), "read errno=0 content=hello");
  EXPECT_EQ(Probe({"read", "/w:dir_inside/deep.txt"}), "read errno=0 content=deep");
  EXPECT_EQ(Probe({"read", "/w:./file.txt"}), "read errno=0 content=hello");
  EXPECT_EQ(Probe({"read", "/r:ro.txt"}), "read errno=0 content=readonly");
  EXPECT_TRUE(last_.denied.empty());
}

TEST_F(WasiCapabilityTest, EscapesAreRefusedAndReported) {
  struct Case {
    const char* path;
    int err;
    bool event;
  } cases[] = {
      {"../outside/canary", kPerm, true},
      {"/etc/passwd", kPerm, true},
      {"sub/../../outside/canary", kPerm, true},
      {"sub/dir/../../../outside/canary", kPerm, true},
      {"abs_link", kPerm, true},
      {"rel_escape", kPerm, true},
      {"chain1", kPerm, true},
      {"dir_escape/canary", kPerm, true},
      {"dir_inside/../../../outside/canary", kPerm, true},
      {"dir_inside/../../outside/canary", kNoent, false},  // physical "..": ws/outside
      {"..", kPerm, true},
      {"loop1", wasi::kEloop, false},
      {"file.txt/", wasi::kEnotdir, false},
      {"file.txt/..", wasi::kEnotdir, false},
      {"missing", kNoent, false},
      {"", kNoent, false},
      {"file.txt\\0../../outside/canary", wasi::kEinval, false},
  };
  for (const Case& c : cases) {
    std::string path = std::string("/w:") + c.path;
    EXPECT_EQ(Probe({"read", path}), E("read", c.err)) << c.path;
    if (c.event) {
      EXPECT_TRUE(Denied("path_open", c.path)) << c.path;
    }
  }
  // Not following the final symlink: the link itself is not a file to read.
  EXPECT_EQ(Probe({"readnf", "/w:abs_link"}), E("readnf", wasi::kEloop));
  EXPECT_EQ(Probe({"stat", "/w:abs_link"}), E("stat", kPerm));
  EXPECT_EQ(Probe({"stat", "/w:../outside"}), E("stat", kPerm));
  EXPECT_EQ(Probe({"ls", "/w:dir_escape"}), E("ls", kPerm));
  EXPECT_EQ(Probe({"ls", "/w:.."}), E("ls", kPerm));
  // Reading a link's text is allowed: it is data inside the mount.
  EXPECT_EQ(Probe({"readlink", "/w:rel_escape"}), "readlink errno=0 target=../outside/canary");
}

TEST_F(WasiCapabilityTest, MutationsCannotLeaveTheMount) {
  EXPECT_EQ(Probe({"write", "/w:../outside/new", "x"}), E("write", kPerm));
  EXPECT_EQ(Probe({"write", "/w:dir_escape/new", "x"}), E("write", kPerm));
  EXPECT_EQ(Probe({"write", "/w:abs_link", "x"}), E("write", kPerm));
  EXPECT_EQ(Probe({"write", "/w:rel_escape", "x"}), E("write", kPerm));
  EXPECT_EQ(Probe({"append", "/w:chain1", "x"}), E("append", kPerm));
  EXPECT_EQ(Probe({"mkdir", "/w:../outside/d"}), E("mkdir", kPerm));
  EXPECT_EQ(Probe({"mkdir", "/w:dir_escape/d"}), E("mkdir", kPerm));
  EXPECT_EQ(Probe({"unlink", "/w:dir_escape/canary"}), E("unlink", kPerm));
  EXPECT_EQ(Probe({"unlink", "/w:../outside/canary"}), E("unlink", kPerm));
  EXPECT_EQ(Probe({"rmdir", "/w:.."}), E("rmdir", wasi::kEnotempty));
  EXPECT_EQ(Probe({"rename", "/w:file.txt", "/w:../outside/stolen"}), E("rename", kPerm));
  EXPECT_EQ(Probe({"rename", "/w:dir_escape/canary", "/w:got"}), E("rename", kPerm));
  EXPECT_EQ(Probe({"link", "/w:dir_escape/canary", "/w:hard"}), E("link", kPerm));
  EXPECT_EQ(Probe({"link", "/w:file.txt", "/w:dir_escape/hard"}), E("link", kPerm));
  EXPECT_EQ(Probe({"utimes", "/w:abs_link"}), E("utimes", kPerm));
  EXPECT_EQ(Probe({"utimes", "/w:.."}), E("utimes", kPerm));
  // Links whose text points out of the mount are not created at all.
  EXPECT_EQ(Probe({"symlink", "/etc/passwd", "/w:l1"}), E("symlink", kPerm));
  EXPECT_EQ(Probe({"symlink", "../outside/canary", "/w:l2"}), E("symlink", kPerm));
  EXPECT_EQ(Probe({"symlink", "../../outside", "/w:sub/l3"}), E("symlink", kPerm));
  EXPECT_TRUE(Denied("path_symlink", "sub/l3"));
  EXPECT_EQ(Probe({"symlink", "../file.txt", "/w:sub/l4"}), E("symlink", 0));
  EXPECT_EQ(Probe({"read", "/w:sub/l4"}), "read errno=0 content=hello");
  for (const char* l : {"l1", "l2", "l3"}) EXPECT_FALSE(fs::is_symlink(ws_ / l)) << l;
}

// Wasmtime's trailing-slash symlink advisory and uvwasi's host-planted symlinks: a slash
// after a link, or a dangling link pointing out, must not create or open anything outside.
TEST_F(WasiCapabilityTest, TrailingSlashAndDanglingSymlinksStayInside) {
  fs::create_symlink("../outside/newfile", ws_ / "dangle");
  fs::create_symlink(out_ / "newdir", ws_ / "dangle_abs");
  for (const char* p : {"abs_link/", "rel_escape/", "dir_escape/", "dir_escape//", "dangle",
                        "dangle/", "dangle_abs", "dangle_abs/", "chain1/"}) {
    std::string path = std::string("/w:") + p;
    EXPECT_NE(Probe({"write", path, "x"}), E("write", 0)) << p;
    EXPECT_NE(Probe({"create", path}), E("create", 0)) << p;
    EXPECT_NE(Probe({"mkdir", path}), E("mkdir", 0)) << p;
    EXPECT_NE(Probe({"read", path}).rfind("read errno=0", 0), 0u) << p;
    EXPECT_NE(Probe({"symlink", "file.txt", path}), E("symlink", 0)) << p;
    EXPECT_NE(Probe({"link", "/w:file.txt", path}), E("link", 0)) << p;
    if (path.back() == '/') {
      EXPECT_NE(Probe({"rename", "/w:file.txt", path}), E("rename", 0)) << p;
      ASSERT_TRUE(fs::exists(ws_ / "file.txt")) << p;
    }
  }
  // Renaming onto a link replaces the link itself, inside the mount.
  EXPECT_EQ(Probe({"rename", "/w:file.txt", "/w:dangle"}), E("rename", 0));
  EXPECT_EQ(Read(ws_ / "dangle"), "hello");
  EXPECT_FALSE(fs::exists(out_ / "newfile"));
  EXPECT_FALSE(fs::exists(out_ / "newdir"));
}

// Wasmtime's other advisory: a read-only mount stays read-only when the same folder is
// also mounted read-write, and the other way round nothing leaks between the two.
TEST_F(WasiCapabilityTest, SameFolderMountedReadOnlyAndReadWrite) {
  ExecRequest req = Request({});
  req.mounts.push_back({ws_.string(), "/same_ro", true});
  EXPECT_EQ(Probe({"write", "/same_ro:file.txt", "x"}, &req), E("write", kPerm));
  EXPECT_EQ(Probe({"unlink", "/same_ro:file.txt"}, &req), E("unlink", kPerm));
  EXPECT_EQ(Probe({"rename", "/same_ro:file.txt", "/w:moved"}, &req), E("rename", kPerm));
  EXPECT_EQ(Probe({"rename", "/w:file.txt", "/same_ro:moved"}, &req), E("rename", kPerm));
  EXPECT_EQ(Probe({"link", "/same_ro:file.txt", "/w:hl"}, &req), E("link", kPerm));
  EXPECT_EQ(Probe({"read", "/same_ro:file.txt"}, &req), "read errno=0 content=hello");
  EXPECT_EQ(Probe({"write", "/w:file.txt", "changed"}, &req), E("write", 0));
  EXPECT_EQ(Read(ws_ / "file.txt"), "changed");
}

TEST_F(WasiCapabilityTest, ReadOnlyMountRefusesEveryMutation) {
  struct Case {
    std::vector<std::string> args;
    const char* op;
  } cases[] = {
      {{"write", "/r:new.txt", "x"}, "path_open"},
      {{"write", "/r:ro.txt", "x"}, "path_open"},
      {{"append", "/r:ro.txt", "x"}, "path_open"},
      {{"create", "/r:new2"}, "path_open"},
      {{"truncate", "/r:ro.txt"}, "path_open"},
      {{"mkdir", "/r:d"}, "path_create_directory"},
      {{"rmdir", "/r:rsub"}, "path_remove_directory"},
      {{"unlink", "/r:ro.txt"}, "path_unlink_file"},
      {{"rename", "/r:ro.txt", "/r:moved"}, "path_rename"},
      {{"rename", "/r:ro.txt", "/w:stolen"}, "path_rename"},
      {{"rename", "/w:file.txt", "/r:planted"}, "path_rename"},
      {{"link", "/r:ro.txt", "/w:hard"}, "path_link"},
      {{"link", "/w:file.txt", "/r:hard"}, "path_link"},
      {{"symlink", "ro.txt", "/r:sl"}, "path_symlink"},
      {{"utimes", "/r:ro.txt"}, "path_filestat_set_times"},
  };
  for (const Case& c : cases) {
    std::string line = Probe(c.args);
    EXPECT_EQ(line, E(c.args[0].c_str(), kPerm)) << c.args[1];
    bool found = false;
    for (const CapabilityEvent& e : last_.denied) {
      found |= e.operation == c.op && e.reason == "mount is read-only";
    }
    EXPECT_TRUE(found) << c.args[0] << " " << c.args[1];
  }
  // An fd opened for reading cannot be used to write, resize, allocate or retouch.
  std::string out = Probe({"rofd", "/r:ro.txt"});
  EXPECT_NE(out.find("rofd.write errno=8"), std::string::npos) << out;
  EXPECT_NE(out.find("rofd.pwrite errno=8"), std::string::npos) << out;
  for (const char* op : {"set_size", "allocate", "set_times", "set_rights_up"}) {
    EXPECT_EQ(out.find(std::string("rofd.") + op + " errno=0"), std::string::npos) << out;
  }
  EXPECT_EQ(Snapshot(ro_), ro_before_);
  EXPECT_FALSE(fs::exists(ws_ / "stolen"));
  EXPECT_FALSE(fs::exists(ws_ / "hard"));
}

TEST_F(WasiCapabilityTest, HiddenPathsAreInvisible) {
  for (const char* p : {".env", "key.pem", ".git/config", "env_link", "sub/../.env", "./.env"}) {
    EXPECT_EQ(Probe({"read", std::string("/w:") + p}), E("read", kNoent)) << p;
    EXPECT_TRUE(Denied("path_open", p)) << p;
  }
  EXPECT_EQ(Probe({"stat", "/w:.env"}), E("stat", kNoent));
  EXPECT_EQ(Probe({"stat", "/w:env_link"}), E("stat", kNoent));
  EXPECT_EQ(Probe({"readlink", "/w:.env"}), E("readlink", kNoent));
  EXPECT_EQ(Probe({"read", "/w:.git/HEAD"}), "read errno=0 content=ref");
  // Absent from listings.
  std::string ls = Probe({"ls", "/w:."});
  EXPECT_NE(ls.find(" file.txt"), std::string::npos) << ls;
  EXPECT_EQ(ls.find(".env"), std::string::npos) << ls;
  EXPECT_EQ(ls.find("key.pem"), std::string::npos) << ls;
  ls = Probe({"ls", "/w:.git"});
  EXPECT_NE(ls.find(" HEAD"), std::string::npos) << ls;
  EXPECT_EQ(ls.find("config"), std::string::npos) << ls;
  // Cannot be created, renamed to, linked to or pointed at.
  EXPECT_EQ(Probe({"write", "/w:.env.local", "x"}), E("write", kPerm));
  EXPECT_EQ(Probe({"write", "/w:sub/server.key", "x"}), E("write", kPerm));
  EXPECT_EQ(Probe({"mkdir", "/w:id_rsa.d"}), E("mkdir", kPerm));
  EXPECT_EQ(Probe({"rename", "/w:file.txt", "/w:.npmrc"}), E("rename", kPerm));
  EXPECT_EQ(Probe({"rename", "/w:.env", "/w:visible"}), E("rename", kNoent));
  EXPECT_EQ(Probe({"link", "/w:file.txt", "/w:id_ed25519"}), E("link", kPerm));
  EXPECT_EQ(Probe({"link", "/w:.env", "/w:copy"}), E("link", kNoent));
  EXPECT_EQ(Probe({"symlink", ".env", "/w:pointer"}), E("symlink", kPerm));
  EXPECT_EQ(Probe({"unlink", "/w:.env"}), E("unlink", kNoent));
  EXPECT_EQ(Read(ws_ / ".env"), "SECRET=1");
  EXPECT_TRUE(fs::exists(ws_ / "file.txt"));
  EXPECT_FALSE(fs::exists(ws_ / ".env.local"));
  // The pattern list is configurable: with no patterns the file is an ordinary file.
  ExecRequest open = Request({});
  open.hidden.clear();
  EXPECT_EQ(Probe({"read", "/w:.env"}, &open), "read errno=0 content=SECRET=1");
  ExecRequest custom = Request({});
  custom.hidden = {"*.txt"};
  EXPECT_EQ(Probe({"read", "/w:file.txt"}, &custom), E("read", kNoent));
}

TEST_F(WasiCapabilityTest, QuotasEndInErrnoNotInDamage) {
  ExecRequest q = Request({});
  q.limits.max_write_bytes = 100'000;
  EXPECT_EQ(Probe({"fill", "/w:big", "1000000"}, &q), "fill errno=19 written=100000");
  EXPECT_EQ(fs::file_size(ws_ / "big"), 100'000u);
  EXPECT_TRUE(Denied("fd_write", "fd"));
  EXPECT_EQ(Probe({"grow", "/w:sparse", "200000"}, &q), E("grow", wasi::kEdquot));
  q = Request({});
  q.limits.max_open_fds = 10;
  EXPECT_EQ(Probe({"openmany", "/w:file.txt", "50"}, &q), "openmany errno=33 opened=10");
  EXPECT_TRUE(Denied("path_open", "file.txt"));
  q = Request({});
  q.limits.max_files_created = 3;
  EXPECT_EQ(Probe({"create", "/w:n1", "--", "mkdir", "/w:n2", "--", "symlink", "file.txt", "/w:n3",
                   "--", "create", "/w:n4", "--", "mkdir", "/w:n5"},
                  &q),
            "create errno=0\nmkdir errno=0\nsymlink errno=0\ncreate errno=19\nmkdir errno=19");
  EXPECT_FALSE(fs::exists(ws_ / "n4"));
  // The quota counts what the run created and still exists: removing gives it back, so a
  // program that keeps creating and deleting a lock file never runs out.
  std::vector<std::string> churn;
  for (int i = 0; i < 20; ++i) {
    for (const char* a : {"mkdir", "/w:lock", "--", "rmdir", "/w:lock", "--", "create", "/w:tmp",
                          "--", "unlink", "/w:tmp", "--"}) {
      churn.push_back(a);
    }
  }
  churn.insert(churn.end(), {"create", "/w:c1", "--", "create", "/w:c2", "--", "rename", "/w:c2",
                             "/w:c1", "--", "create", "/w:c3", "--", "create", "/w:c4"});
  q.limits.max_files_created = 2;
  std::string out = Probe(churn, &q);
  EXPECT_EQ(out.find("errno=19"), out.rfind("errno=19")) << out;  // only the last create
  EXPECT_EQ(out.substr(out.rfind('\n') + 1), "create errno=19") << out;
  EXPECT_EQ(last_.fs_files_created, 2u);
  // Opening an existing file with CREAT creates nothing and costs nothing.
  q.limits.max_files_created = 0;
  EXPECT_EQ(Probe({"write", "/w:file.txt", "again"}, &q), E("write", 0));
  EXPECT_EQ(Read(ws_ / "file.txt"), "again");
}

TEST_F(WasiCapabilityTest, CrossMountRenameAndLinkAreRefused) {
  fs::path ws2 = root_ / "ws2";
  fs::create_directories(ws2);
  ExecRequest two = Request({});
  two.mounts.push_back({ws2.string(), "/w2", false});
  EXPECT_EQ(Probe({"rename", "/w:file.txt", "/w2:file.txt"}, &two), E("rename", wasi::kExdev));
  EXPECT_EQ(Probe({"link", "/w:file.txt", "/w2:file.txt"}, &two), E("link", wasi::kExdev));
  EXPECT_TRUE(fs::exists(ws_ / "file.txt"));
  EXPECT_FALSE(fs::exists(ws2 / "file.txt"));
}

TEST_F(WasiCapabilityTest, MissingMountRefusesTheRun) {
  ExecRequest req = Request({"read", "/w:file.txt"});
  req.mounts[0].host_path = (root_ / "nope").string();
  ExecResult r = RunGuest("fsprobe", req);
  EXPECT_EQ(r.status, RunStatus::kDenied);
  EXPECT_NE(r.message.find("nope"), std::string::npos) << r.message;
}

// A host thread keeps swapping directories and symlinks inside the mount while the guest
// opens, reads, creates and renames through those paths. Nothing outside may be read or
// touched, whatever the interleaving.
TEST_F(WasiCapabilityTest, RaceWithHostSwappingDirectoriesAndSymlinks) {
  Write(ws_ / "a" / "b" / "target", "INSIDE-b");
  Write(ws_ / "c" / "target", "INSIDE-c");
  Write(ws_ / "a" / "target", "INSIDE-a");
  Write(out_ / "target", "OUTSIDE");
  fs::create_directories(out_ / "b" / "deeper");
  Write(out_ / "b" / "target", "OUTSIDE-b");
  outside_before_ = Snapshot(out_);
  std::atomic<bool> stop{false};
  std::atomic<long> swaps{0};
  std::thread swapper([&] {
    std::string b = (ws_ / "a" / "b").string(), keep = (ws_ / "a" / "b_keep").string();
    std::string c = (ws_ / "c").string(), a = (ws_ / "a").string();
    std::string a_keep = (ws_ / "a_keep").string();
    std::string outside = out_.string(), outside_b = (out_ / "b").string();
    while (!stop.load()) {
      // b: a real directory, then an absolute symlink out, a relative one out, a link to c.
      rename(b.c_str(), keep.c_str());
      symlink(outside_b.c_str(), b.c_str());
      unlink(b.c_str());
      symlink("../../outside/b", b.c_str());
      unlink(b.c_str());
      symlink("../c", b.c_str());
      unlink(b.c_str());
      rename(keep.c_str(), b.c_str());
      // Swap whole directories: a <-> c, and a replaced by a symlink out for a moment.
      rename(a.c_str(), a_keep.c_str());
      symlink(outside.c_str(), a.c_str());
      unlink(a.c_str());
      rename(c.c_str(), a.c_str());
      rename(a.c_str(), c.c_str());
      rename(a_keep.c_str(), a.c_str());
      swaps.fetch_add(1);
    }
  });
  int iterations = getenv("MOAT_QUICK") ? 500 : 20000;
  std::string line = Probe({"race", "/w", std::to_string(iterations)});
  stop = true;
  swapper.join();
  EXPECT_EQ(line.find("LEAK"), std::string::npos) << line;
  EXPECT_NE(line.find("race ok="), std::string::npos) << line;
  EXPECT_GT(swaps.load(), 10) << "the host thread barely ran; the race was not exercised";
  printf("race: %s, %ld host swaps\n", line.c_str(), swaps.load());
}

// A directory the guest holds open is moved out of the mount by someone else: paths from
// its fd are resolved through the mount, so the guest neither reads nor creates there.
TEST_F(WasiCapabilityTest, DirectoryMovedOutOfTheMountTakesNoGuestAlong) {
  Write(ws_ / "held" / "f", "INSIDE");
  std::thread mover([&] {
    usleep(100'000);
    fs::rename(ws_ / "held", out_ / "held");
  });
  std::string out = Probe({"holddir", "/w:held", "600"});
  mover.join();
  EXPECT_EQ(out, "holddir.read errno=44\nholddir.create errno=44") << out;
  EXPECT_FALSE(fs::exists(out_ / "held" / "created"));
  fs::remove_all(out_ / "held");  // the mover's doing; the snapshot check covers the rest
}

TEST(HiddenPaths, Patterns) {
  wasi::HiddenPaths h(DefaultHiddenPatterns());
  EXPECT_TRUE(h.Hidden(".env"));
  EXPECT_TRUE(h.Hidden("a/b/.env"));
  EXPECT_TRUE(h.Hidden(".env.production"));
  EXPECT_TRUE(h.Hidden("certs/server.pem"));
  EXPECT_TRUE(h.Hidden("id_rsa.pub"));
  EXPECT_TRUE(h.Hidden(".ssh/id_ed25519"));
  EXPECT_TRUE(h.Hidden(".git/config"));
  EXPECT_TRUE(h.Hidden("vendor/x/.git/config"));
  EXPECT_TRUE(h.Hidden(".env/inside"));  // everything under a hidden name
  EXPECT_FALSE(h.Hidden("environment"));
  EXPECT_FALSE(h.Hidden(".git/HEAD"));
  EXPECT_FALSE(h.Hidden("config"));
  EXPECT_FALSE(h.Hidden("src/main.c"));
  EXPECT_FALSE(h.Hidden(""));
  // From inside a mount of a repository's .git: the context is where the mount's root sits.
  EXPECT_TRUE(h.Hidden(".git", "config"));
  EXPECT_TRUE(h.Hidden("x/.git", "config"));
  EXPECT_FALSE(h.Hidden(".git", "HEAD"));
  EXPECT_FALSE(h.Hidden(".env", "x/y"));  // windows ending in the context are not checked
  EXPECT_TRUE(h.HiddenLeaf(".git", "", "config"));
  EXPECT_FALSE(h.HiddenLeaf(".git", "", "HEAD"));
  EXPECT_TRUE(h.HiddenOnTheWay(".git", "./config", true));
  EXPECT_TRUE(h.HiddenOnTheWay(".git", "refs/../config", true));
  EXPECT_FALSE(h.HiddenOnTheWay(".git", "config", false));
  // ".." never climbs into the context: at the root it stays at the root.
  EXPECT_TRUE(h.HiddenOnTheWay(".git", "../config", true));
}

// The fast matcher agrees with fnmatch(3) over every window of components, and
// HiddenLeaf agrees with Hidden whenever the directory itself is visible.
TEST(HiddenPaths, FastMatcherAgreesWithFnmatch) {
  std::vector<std::string> patterns = DefaultHiddenPatterns();
  for (const char* p : {"*.log", "tmp*", "a?c", "[xy]z", "cache/*.bin", "build", "\\*lit"}) {
    patterns.push_back(p);
  }
  wasi::HiddenPaths h(patterns);
  auto reference = [&](const std::vector<std::string>& comps) {
    for (const std::string& p : patterns) {
      size_t k = std::count(p.begin(), p.end(), '/') + 1;
      for (size_t s = 0; s + k <= comps.size(); ++s) {
        std::string w;
        for (size_t i = 0; i < k; ++i) w += (i ? "/" : "") + comps[s + i];
        if (fnmatch(p.c_str(), w.c_str(), FNM_PATHNAME) == 0) return true;
      }
    }
    return false;
  };
  const std::vector<std::string> names = {
      ".env",    ".env.x", "env",    "x.pem", "pem", "id_rsa", "id_rsa.pub", ".git",
      "config",  "cache",  "a.bin",  "abc",   "a/c", "xz",     "zz",         "tmp",
      "tmpfile", "build",  "builds", "*lit",  "lit", ".netrc", "x.key",      "k.ey"};
  std::mt19937 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::string> comps;
    size_t n = 1 + rng() % 4;
    for (size_t i = 0; i < n; ++i) {
      const std::string& c = names[rng() % names.size()];
      if (c.find('/') != std::string::npos) continue;  // not a component
      comps.push_back(c);
    }
    if (comps.empty()) continue;
    std::string rel, dir;
    for (size_t i = 0; i < comps.size(); ++i) {
      rel += (i ? "/" : "") + comps[i];
      if (i + 1 < comps.size()) dir += (i ? "/" : "") + comps[i];
    }
    bool want = reference(comps);
    ASSERT_EQ(h.Hidden(rel), want) << rel;
    std::vector<std::string> dir_comps(comps.begin(), comps.end() - 1);
    if (!reference(dir_comps)) {
      ASSERT_EQ(h.HiddenLeaf(dir, comps.back()), want) << rel;
    }
  }
}

}  // namespace
}  // namespace moat

namespace moat {
namespace {

ExecResult RunClock(bool deterministic, uint64_t seed, const char* sleep_ms) {
  ExecRequest req;
  req.argv = {"clock_random", sleep_ms};
  req.deterministic = deterministic;
  req.seed = seed;
  return test::RunGuest("clock_random", req);
}

TEST(DeterministicMode, SameSeedSameRunAndSleepsAreVirtual) {
  auto a = RunClock(true, 7, "10000");
  auto b = RunClock(true, 7, "10000");
  ASSERT_EQ(a.status, RunStatus::kOk) << a.message;
  EXPECT_EQ(a.stdout_bytes, b.stdout_bytes);
  EXPECT_EQ(a.fuel_used, b.fuel_used);
  // A 10 s sleep is a jump of the virtual clock, not a wait.
  EXPECT_NE(a.stdout_bytes.find("slept_ms 10000"), std::string::npos) << a.stdout_bytes;
  EXPECT_LT(a.wall_us, 2'000'000u);
  // The clock starts at 2000-01-01T00:00:00Z.
  EXPECT_EQ(a.stdout_bytes.rfind("realtime 9466848", 0), 0u) << a.stdout_bytes;
  auto c = RunClock(true, 8, "0");
  EXPECT_NE(a.stdout_bytes.substr(0, a.stdout_bytes.find("slept")),
            c.stdout_bytes.substr(0, c.stdout_bytes.find("slept")));
}

TEST(DeterministicMode, OffByDefault) {
  auto a = RunClock(false, 0, "0");
  auto b = RunClock(false, 0, "0");
  ASSERT_EQ(a.status, RunStatus::kOk) << a.message;
  EXPECT_NE(a.stdout_bytes, b.stdout_bytes);  // host clock and host entropy
  EXPECT_EQ(a.stdout_bytes.rfind("realtime 9466848", 0), std::string::npos);
}

}  // namespace
}  // namespace moat
