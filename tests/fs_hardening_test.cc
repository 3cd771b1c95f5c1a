// Hostile guests against the filesystem capability layer, through the real `moat run`
// binary: protected paths (a tool planting what git later runs), renames that would unhide a
// path, sparse files and allocation under the write quota, host memory held by directory
// listings, symlinks that could lead out later, hidden files' existence, and a directory
// moved out of the mount under an open fd. Each case is driven by guests/fs/fsprobe.c.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "test_util.h"

namespace moat {
namespace {

namespace fs = std::filesystem;
using test::Cli;
using test::CliResult;

void Put(const fs::path& p, const std::string& s) { test::PutFile(p.string(), s); }
std::string Get(const fs::path& p) { return test::Slurp(p.string()); }

// Every path beneath `root` with its content, link text or mode, to prove nothing changed.
std::map<std::string, std::string> Snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path& p = it->path();
    struct stat st {};
    lstat(p.c_str(), &st);
    std::string key = fs::relative(p, root).string();
    if (S_ISLNK(st.st_mode)) {
      m[key] = "-> " + fs::read_symlink(p).string();
    } else if (S_ISREG(st.st_mode)) {
      m[key] = std::to_string(st.st_mode) + ":" + Get(p);
    } else {
      m[key] = "<dir>";
    }
  }
  return m;
}

class FsHardening : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::TempDir("fsh") + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    ws_ = root_ / "ws";
    out_ = root_ / "outside";
    fs::create_directories(ws_);
    Put(out_ / "canary", "OUTSIDE");
  }
  void TearDown() override { fs::remove_all(root_); }

  // `moat run --dir WS::/w FLAGS fsprobe OPS`
  CliResult Probe(const std::string& ops, const std::string& flags = "") {
    return Cli("run --dir " + ws_.string() + "::/w " + flags + " " + test::Guest("fsprobe") + " " +
               ops);
  }

  fs::path root_, ws_, out_;
};

// `moat run ARGS` with the user's folders set by `env` alone ("HOME=... XDG_...=...").
CliResult Sealed(const std::string& env, const std::string& args) {
  return Cli("run " + args, "", "-u XDG_CONFIG_HOME -u XDG_STATE_HOME -u XDG_CACHE_HOME " + env);
}

bool HaveGit() { return system("git --version >/dev/null 2>&1") == 0; }

// Attack: a write tool moved .git/hooks/commit-msg.sample to commit-msg and appended a
// command, or renamed .git away, rewrote its config and renamed it back; the next git
// command ran it. .git is protected at any depth: read yes, change no.
TEST_F(FsHardening, GitMetadataIsReadOnlyInAWritableMount) {
  if (HaveGit()) {
    ASSERT_EQ(system(("git init -q " + ws_.string() + " && git -C " + ws_.string() +
                      " config user.email t@example.com")
                         .c_str()),
              0);
  } else {
    Put(ws_ / ".git" / "HEAD", "ref: refs/heads/main\n");
    Put(ws_ / ".git" / "config", "[core]\n");
  }
  Put(ws_ / ".git" / "hooks" / "commit-msg.sample", "#!/bin/sh\nexit 0\n");
  fs::permissions(ws_ / ".git" / "hooks" / "commit-msg.sample", fs::perms(0755));
  fs::create_directories(ws_ / ".git" / "refs" / "empty");
  Put(ws_ / "vendor" / "lib" / ".git" / "HEAD", "nested\n");  // a nested repository
  Put(ws_ / "file.txt", "hello\n");
  fs::create_directories(ws_ / "plain");
  auto before = Snapshot(ws_ / ".git");
  auto nested_before = Snapshot(ws_ / "vendor");

  const std::string marker = (root_ / "PWNED").string();
  CliResult r = Probe(
      "rename /w:.git/hooks/commit-msg.sample /w:.git/hooks/commit-msg"
      " -- append /w:.git/hooks/commit-msg.sample touch_" +
          marker +
          " -- write /w:.git/hooks/pre-commit x"
          " -- rename /w:.git /w:gitmeta"
          " -- write /w:.git/config x"
          " -- truncate /w:.git/HEAD"
          " -- unlink /w:.git/HEAD"
          " -- rmdir /w:.git/refs/empty"
          " -- mkdir /w:.git/newdir"
          " -- utimes /w:.git/HEAD"
          " -- link /w:.git/HEAD /w:headlink"
          " -- symlink .git/hooks/pre-commit /w:hooklink"
          " -- rename /w:file.txt /w:.git/hooks/post-checkout"
          " -- rename /w:vendor /w:vendor2"
          " -- write /w:vendor/lib/.git/HEAD x"
          " -- mkdir /w:plain/.git"
          " -- rename /w:plain /w:.git/plain"
          " -- read /w:.git/HEAD"
          " -- write /w:ok.txt fine",
      "--report json");
  EXPECT_EQ(r.status, 0) << r.err;
  std::string head = Get(ws_ / ".git" / "HEAD");
  head.pop_back();  // fsprobe prints content without its last newline
  EXPECT_EQ(r.out,
            "rename errno=63\nappend errno=63\nwrite errno=63\nrename errno=63\nwrite "
            "errno=63\ntruncate errno=63\nunlink errno=63\nrmdir errno=63\nmkdir errno=63\n"
            "utimes errno=63\nlink errno=63\nsymlink errno=63\nrename errno=63\nrename "
            "errno=63\nwrite errno=63\nmkdir errno=63\nrename errno=63\nread errno=0 content=" +
                head + "\nwrite errno=0\n");
  EXPECT_EQ(Snapshot(ws_ / ".git"), before);
  EXPECT_EQ(Snapshot(ws_ / "vendor"), nested_before);
  EXPECT_FALSE(fs::exists(ws_ / "plain" / ".git"));
  EXPECT_EQ(Get(ws_ / "ok.txt"), "fine");
  auto j = nlohmann::json::parse(r.err.substr(r.err.find('{')));
  bool named = false;
  for (const auto& d : j["denied"]) named |= d["reason"] == "protected path is read-only";
  EXPECT_TRUE(named) << r.err;

  if (HaveGit()) {  // and git, run by the user afterwards, runs nothing the tool planted
    EXPECT_EQ(system(("cd " + ws_.string() + " && git add ok.txt && git commit -q -m t " +
                      ">/dev/null 2>&1 && git status --short >/dev/null 2>&1")
                         .c_str()),
              0);
    EXPECT_FALSE(fs::exists(marker));
  }

  // The class is configurable, like hidden paths.
  r = Probe("write /w:notes.md x -- rename /w:plain /w:plain2", "--protect 'notes*'");
  EXPECT_EQ(r.out, "write errno=63\nrename errno=0\n") << r.err;
  r = Probe("mkdir /w:plain2/.git", "--no-default-protect");
  EXPECT_EQ(r.out, "mkdir errno=0\n") << r.err;
  EXPECT_EQ(Cli("run --protect '' " + test::Guest("hello")).status, 2);
}

// A mount whose own folder is protected is read-only whole.
TEST_F(FsHardening, AMountInsideAProtectedFolderIsReadOnly) {
  Put(ws_ / ".git" / "HEAD", "ref\n");
  CliResult r = Cli("run --dir " + (ws_ / ".git").string() + "::/g " + test::Guest("fsprobe") +
                    " write /g:hooks_pre-commit x -- read /g:HEAD");
  EXPECT_EQ(r.out, "write errno=63\nread errno=0 content=ref\n") << r.err;
}

// Attack: with `--dir W::/a --dir W/.git::/g`, "/a/.git/config" was hidden but "/g/config"
// was read: patterns were matched from each mount's own root. A pattern is matched through
// the host folders above a mount, so what one mount hides every other mount hides too (or
// a mount alone of a folder inside a hidden pattern's reach), by every way of naming it.
TEST_F(FsHardening, AHiddenPathStaysHiddenThroughEveryMount) {
  Put(ws_ / ".git" / "config", "[remote] token=SECRET");
  Put(ws_ / ".git" / "HEAD", "ref\n");
  Put(ws_ / "vault" / "keys" / "k.txt", "KEY");
  Put(ws_ / "vault" / "notes.txt", "notes");
  ASSERT_EQ(symlink("keys", (ws_ / "vault" / "alias").c_str()), 0);
  std::string a = "--dir " + ws_.string() + "::/a ";
  std::string g = "--dir " + (ws_ / ".git").string() + "::/g ";
  std::string v = "--dir " + (ws_ / "vault").string() + "::/v ";
  std::string probe = test::Guest("fsprobe");

  CliResult r = Cli("run " + a + g + probe +
                    " read /a:.git/config -- read /g:config -- read /g:./config -- stat /g:config"
                    " -- read /g:HEAD -- ls /g:.");
  EXPECT_EQ(r.out,
            "read errno=44\nread errno=44\nread errno=44\nstat errno=44\n"
            "read errno=0 content=ref\nls errno=0 . .. HEAD\n")
      << r.err;
  // The same folder mounted alone: still hidden.
  r = Cli("run " + g + probe + " read /g:config -- ls /g:.");
  EXPECT_EQ(r.out, "read errno=44\nls errno=0 . .. HEAD\n") << r.err;
  // A pattern of the user's, reached through a second mount by name, through "..", and
  // through a link the user made; the folder's other files stay readable.
  r = Cli("run --hide 'vault/keys' " + a + v + probe +
          " read /a:vault/keys/k.txt -- read /v:keys/k.txt -- read /v:alias/k.txt"
          " -- read /v:alias/../keys/k.txt -- ls /v:keys -- read /v:notes.txt");
  EXPECT_EQ(r.out,
            "read errno=44\nread errno=44\nread errno=44\nread errno=44\nls errno=44\n"
            "read errno=0 content=notes\n")
      << r.err;
  // Protected the same way: `--protect gen/out` holds through a mount of gen.
  Put(ws_ / "gen" / "out" / "x", "x");
  r = Cli("run --protect 'gen/out' --dir " + (ws_ / "gen").string() + "::/gen " + probe +
          " write /gen:out/x y -- write /gen:other z");
  EXPECT_EQ(r.out, "write errno=63\nwrite errno=0\n") << r.err;
  EXPECT_EQ(Get(ws_ / "gen" / "out" / "x"), "x");
  // A mount whose own folder is hidden is refused, naming the reason.
  Put(ws_ / ".env.d" / "prod", "P");
  r = Cli("run --dir " + (ws_ / ".env.d").string() + "::/e " + probe + " read /e:prod");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.err.find("it is a hidden path"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  r = Cli("run --no-default-hide --dir " + (ws_ / ".env.d").string() + "::/e " + probe +
          " read /e:prod");
  EXPECT_EQ(r.out, "read errno=0 content=P\n") << r.err;
}

// Attack: "move .git gitmeta, read gitmeta/config, move it back". Renaming a directory never
// changes whether a path beneath it is hidden, in either direction.
TEST_F(FsHardening, RenamingAParentNeverUnhidesAPath) {
  Put(ws_ / ".git" / "config", "[core] fsmonitor = evil");
  Put(ws_ / "keys" / "a.txt", "secret a");
  Put(ws_ / "plain" / "b.txt", "plain b");
  auto flags = "--no-default-protect --hide 'keys/*.txt' --hide 'vault/*.txt'";
  CliResult r = Probe(
      "rename /w:.git /w:gitmeta -- read /w:gitmeta/config"
      " -- rename /w:keys /w:k2 -- read /w:k2/a.txt"
      " -- rename /w:plain /w:vault -- read /w:plain/b.txt -- rename /w:plain /w:plain2",
      flags);
  EXPECT_EQ(r.out,
            "rename errno=63\nread errno=44\nrename errno=63\nread errno=44\nrename errno=63\n"
            "read errno=0 content=plain b\nrename errno=0\n")
      << r.err;
  EXPECT_EQ(Get(ws_ / ".git" / "config"), "[core] fsmonitor = evil");
  EXPECT_TRUE(fs::exists(ws_ / "keys" / "a.txt"));
  // A directory with nothing beneath it that a pattern would match moves freely.
  r = Probe("mkdir /w:empty -- rename /w:empty /w:vault", flags);
  EXPECT_EQ(r.out, "mkdir errno=0\nrename errno=0\n") << r.err;
}

// Attack: fd_allocate inside a sparse hole took 64 MiB of real blocks under a 1 MiB quota,
// and a pwrite at a huge offset grew the apparent size without bound.
TEST_F(FsHardening, AllocationAndSparseGrowthCountAgainstTheWriteQuota) {
  { std::ofstream f(ws_ / "sparse"); }
  fs::resize_file(ws_ / "sparse", 64ull << 20);  // a 64 MiB hole
  { std::ofstream f(ws_ / "big"); }
  fs::resize_file(ws_ / "big", 64ull << 20);
  CliResult r = Probe(
      "alloc /w:sparse 0 67108864 -- pwrite /w:huge 1099511627776 x"
      " -- seekwrite /w:seek 1099511627776 x -- shrinkwrite /w:big x"
      " -- alloc /w:small 0 4096 -- pwrite /w:near 10 y",
      "--max-write 1M --report json");
  EXPECT_EQ(r.out,
            "alloc errno=19\npwrite errno=19\nseekwrite errno=19\nshrinkwrite errno=19\n"
            "alloc errno=0\npwrite errno=0\n")
      << r.err;
  EXPECT_EQ(fs::file_size(ws_ / "big"), 0u) << "the write past the shrunk end was refused";
  struct stat st {};
  ASSERT_EQ(stat((ws_ / "sparse").c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "no real blocks were allocated in the hole";
  EXPECT_EQ(fs::file_size(ws_ / "huge"), 0u);
  EXPECT_EQ(fs::file_size(ws_ / "seek"), 0u);
  EXPECT_EQ(fs::file_size(ws_ / "near"), 11u);
  auto j = nlohmann::json::parse(r.err.substr(r.err.find('{')));
  EXPECT_EQ(j["fs_bytes_written"], 4096 + 11) << "allocation and the hole count";
}

// Attack: each directory fd kept a full host-side listing outside --memory (200 fds on a
// 20,000-entry folder: 1 GB RSS under --memory 16M). Listings are bounded; finished ones
// are given back.
TEST_F(FsHardening, DirectoryListingsHoldBoundedHostMemory) {
  fs::create_directories(ws_ / "big");
  for (int i = 0; i < 20000; ++i) {
    std::ofstream f(ws_ / "big" / ("file-with-a-longish-name-" + std::to_string(i)));
  }
  CliResult r = Probe("lsmany /w:big 200", "--memory 16M --report json");
  EXPECT_EQ(r.status, 0) << r.err;
  int listed = -1;
  ASSERT_EQ(sscanf(r.out.c_str(), "lsmany errno=48 listed=%d", &listed), 1) << r.out;
  EXPECT_GT(listed, 5);
  EXPECT_LT(listed, 200);
  EXPECT_NE(r.err.find("directory listings would hold more than 32 MiB"), std::string::npos)
      << r.err;
  // Listings read to the end hold nothing, however many fds stay open.
  r = Probe("lsall /w:big 150", "--memory 16M");
  EXPECT_EQ(r.out, "lsall errno=0 done=150 entries=" + std::to_string(150 * 20002) + "\n") << r.err;
}

// Attack: "d -> ." then "notes.txt -> d/../.ssh/authorized_keys" passed the lexical check,
// and a host program appending to notes.txt wrote outside. No chain of guest-made links can
// lead out, whatever is renamed afterwards; links of the user's are not moved to make one.
// ".." is allowed only leading, as far up as the link's own folder is deep.
TEST_F(FsHardening, GuestSymlinksCannotLeadOutLater) {
  fs::create_directories(ws_ / "sub");
  fs::create_symlink(out_, ws_ / "ext");  // the user's own link out
  Put(ws_ / "a" / "b" / "f", "f");
  fs::create_symlink("../../file", ws_ / "a" / "b" / "up");  // the user's, fine where it is
  CliResult r = Probe(
      "symlink . /w:d -- symlink d/../.ssh/authorized_keys /w:notes.txt"
      " -- symlink ../x /w:sub/l -- symlink ext/canary /w:l2 -- symlink /etc/passwd /w:abs"
      " -- rename /w:ext /w:notes2 -- link /w:ext /w:notes3 -- rename /w:a/b /w:b"
      " -- symlink sub/x /w:ok -- rename /w:ok /w:sub/ok2 -- symlink d/d/sub /w:ok3"
      " -- symlink ../../x /w:sub/l5 -- symlink d/../x /w:sub/l6 -- symlink ../file /w:sub/up"
      " -- rename /w:sub/up /w:up -- link /w:sub/up /w:up -- rename /w:sub /w:a/sub");
  EXPECT_EQ(r.out,
            "symlink errno=0\nsymlink errno=63\nsymlink errno=0\nsymlink errno=63\nsymlink "
            "errno=63\nrename errno=63\nlink errno=63\nrename errno=63\nsymlink "
            "errno=0\nrename errno=0\nsymlink errno=0\nsymlink errno=63\nsymlink errno=63\n"
            "symlink errno=0\nrename errno=63\nlink errno=63\nrename errno=0\n")
      << r.err;
  EXPECT_FALSE(fs::exists(ws_ / "notes.txt"));
  EXPECT_TRUE(fs::is_symlink(ws_ / "ext"));
  // Every link the guest made resolves inside the workspace, seen by a host program.
  for (const char* l : {"d", "a/sub/ok2", "ok3", "a/sub/l", "a/sub/up"}) {
    std::error_code ec;
    fs::path real = fs::weakly_canonical(ws_ / l, ec);
    EXPECT_EQ(real.string().rfind(fs::canonical(ws_).string(), 0), 0u) << l << " -> " << real;
  }
}

// Attack: stat ".env/" answered ENOTDIR when .env existed and ENOENT when not. Hidden names
// are decided before the kernel is asked: the answers are the same either way.
TEST_F(FsHardening, HiddenFilesExistenceDoesNotLeak) {
  const std::string ops =
      "stat /w:.env/ -- stat /w:.env/.. -- read /w:.env/x -- stat /w:.env -- mkdir /w:.env/d"
      " -- stat /w:sub/../.env/ -- unlink /w:.env/x -- read /w:.git/config/";
  fs::create_directories(ws_ / "sub");
  CliResult absent = Probe(ops);
  Put(ws_ / ".env", "SECRET=1");
  Put(ws_ / ".git" / "config", "[core]");
  CliResult present = Probe(ops);
  EXPECT_EQ(present.out, absent.out);
  EXPECT_EQ(present.out,
            "stat errno=44\nstat errno=44\nread errno=44\nstat errno=44\nmkdir errno=44\nstat "
            "errno=44\nunlink errno=44\nread errno=44\n")
      << present.err;
}

// Attack: a plain-name path_filestat_get still stat'ed inside a directory the host moved
// out of the mount. Names are resolved from the mount root like every other path.
TEST_F(FsHardening, StatThroughADirectoryMovedOutOfTheMount) {
  Put(ws_ / "sub" / "f", "0123456789");
  CliResult r;
  std::thread run([&] { r = Probe("holdstat /w:sub 1500 f"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  fs::rename(ws_ / "sub", out_ / "sub");
  run.join();
  EXPECT_EQ(r.out, "holdstat.stat errno=44\n") << r.err;
  // Unmoved, the same stat works.
  Put(ws_ / "sub" / "f", "0123456789");
  EXPECT_EQ(Probe("holdstat /w:sub 1 f").out, "holdstat.stat errno=0 size=10\n");
}

// Attack: with the workspace at ~ (or HOME unset), read_file handed the model every stored
// secret, and an approved write could rewrite moat's provider config or drop in a tool.
// moat's own config, state and cache folders are hidden and protected in every mount,
// wherever they are and whatever the hide flags say; a mount inside one is refused.
TEST_F(FsHardening, MoatsOwnFoldersAreSealedInEveryMount) {
  fs::path home = ws_;
  Put(home / ".config" / "moat" / "secrets.json", "S3CRET");
  Put(home / ".config" / "moat" / "config.json", "{}");
  Put(home / ".local" / "state" / "moat" / "approvals.json", "{}");
  Put(home / ".config" / "other" / "app.conf", "visible");
  std::string env = "HOME=" + home.string();
  std::string probe = test::Guest("fsprobe");
  auto before = Snapshot(home / ".config" / "moat");
  CliResult r = Sealed(env, "--no-default-hide --no-default-protect --dir " + home.string() +
                                "::/w " + probe +
                                " read /w:.config/moat/secrets.json"
                                " -- write /w:.config/moat/config.json x"
                                " -- mkdir /w:.config/moat/tools"
                                " -- rename /w:.config /w:cfg"
                                " -- rename /w:.config/moat /w:m"
                                " -- read /w:.local/state/moat/approvals.json"
                                " -- read /w:.config/other/app.conf"
                                " -- ls /w:.config -- write /w:notes.txt ok");
  EXPECT_EQ(r.out,
            "read errno=44\nwrite errno=44\nmkdir errno=44\nrename errno=63\nrename "
            "errno=44\nread errno=44\nread errno=0 content=visible\nls errno=0 . .. other\n"
            "write errno=0\n")
      << r.err;
  EXPECT_EQ(Snapshot(home / ".config" / "moat"), before);

  // Before the folder exists: nothing of it can be made.
  fs::path home2 = root_ / "home2";
  fs::create_directories(home2);
  r = Sealed("HOME=" + home2.string(), "--dir " + home2.string() + "::/w " + probe +
                                           " mkdir /w:.config -- mkdir /w:.config/moat"
                                           " -- write /w:.config/moat/config.json x");
  EXPECT_EQ(r.out, "mkdir errno=0\nmkdir errno=63\nwrite errno=44\n") << r.err;
  EXPECT_FALSE(fs::exists(home2 / ".config" / "moat"));

  // Wherever the variables put it, reached through a symlink or not.
  Put(home / "elsewhere" / "moat" / "secrets.json", "S3CRET");
  fs::create_directory_symlink(home / "elsewhere", root_ / "cfglink");
  r = Sealed(
      "HOME=" + (root_ / "nohome").string() + " XDG_CONFIG_HOME=" + (root_ / "cfglink").string(),
      "--dir " + home.string() + "::/w " + probe +
          " read /w:elsewhere/moat/secrets.json -- read /w:.config/moat/secrets.json");
  EXPECT_EQ(r.out, "read errno=44\nread errno=0 content=S3CRET\n") << r.err;

  // A mount at or inside one of them is refused.
  for (const fs::path& m : {home / ".config" / "moat", home / ".local" / "state" / "moat"}) {
    r = Sealed(env, "--dir " + m.string() + "::/c " + probe + " read /c:secrets.json");
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("moat's own folder"), std::string::npos) << r.err;
  }
}

// Attack: with HOME unset the secret store fell back to ./.config/moat, a path inside
// whatever workspace moat runs in. Without an absolute HOME or XDG folder there is no store.
TEST_F(FsHardening, NoSecretStoreRelativeToTheCurrentFolder) {
  std::string cmd =
      "cd " + ws_.string() +
      " && echo value-0123456789 | env -u HOME -u XDG_CONFIG_HOME -u MOAT_SECRETS_FILE " +
      MOAT_BINARY + " secrets set K --host example.com >/dev/null 2>&1";
  int rc = system(cmd.c_str());
  EXPECT_EQ(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 2);
  cmd = "cd " + ws_.string() +
        " && echo value-0123456789 | env -u XDG_CONFIG_HOME -u MOAT_SECRETS_FILE HOME=relative " +
        MOAT_BINARY + " secrets set K --host example.com " + ">/dev/null 2>&1";
  rc = system(cmd.c_str());
  EXPECT_EQ(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 2);
  EXPECT_TRUE(fs::is_empty(ws_)) << "nothing was stored in the current folder";
}

}  // namespace
}  // namespace moat
