// Programs from other wasm32-wasip1 toolchains, run unmodified by the real `moat` binary
// the way the WASI test suite runs its programs: `moat run --dir ROOT::/ --env K=V MODULE
// ARGS`, judged by exit status and output.
//   Rust: guests/rust/std_probe.rs (std::fs, std::env, std::io, std::time, a panic)
//   AssemblyScript: guests/assemblyscript/probe.ts (wasi-shim's process, console, Date,
//   crypto, and raw preview1 file calls)
// Each program checks itself and prints "ok <group>" lines; the host then checks what it
// left in the folders it was given.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace moat {
namespace {

namespace fs = std::filesystem;
using test::Cli;
using test::CliResult;

void Put(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

class Languages : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::TempDir("lang") + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    sandbox_ = root_ / "sandbox";
    ro_ = root_ / "ro";
    Put(sandbox_ / "file.txt", "hello\n");
    Put(sandbox_ / ".env", "SECRET=1\n");
    fs::create_directories(sandbox_ / "sub");
    Put(ro_ / "data.txt", "read-only\n");
    Put(root_ / "outside.txt", "outside\n");
    fs::create_symlink("../outside.txt", sandbox_ / "escape_link");
  }
  void TearDown() override { fs::remove_all(root_); }

  static bool Have(const std::string& guest) { return fs::exists(test::Guest(guest)); }

  // What the guest may leave behind: the fixtures, unchanged, and nothing else.
  void ExpectFixturesIntact() {
    EXPECT_EQ(test::Slurp(sandbox_ / "file.txt"), "hello\n");
    EXPECT_EQ(test::Slurp(sandbox_ / ".env"), "SECRET=1\n");
    EXPECT_EQ(test::Slurp(ro_ / "data.txt"), "read-only\n");
    EXPECT_EQ(test::Slurp(root_ / "outside.txt"), "outside\n");
    std::vector<std::string> ro;
    for (const auto& e : fs::directory_iterator(ro_)) ro.push_back(e.path().filename());
    EXPECT_EQ(ro, std::vector<std::string>{"data.txt"});
  }

  fs::path root_, sandbox_, ro_;
};

const char kAllRust[] =
    "ok args_env\nok files\nok dirs\nok links\nok confinement\nok time_random\n";
const char kAllAs[] = "ok args_env\nok files\nok confinement\nok time_random\n";

TEST_F(Languages, RustStdProgram) {
  if (!Have("rust_std_probe")) GTEST_SKIP() << "rustc for wasm32-wasi was not found at build";
  CliResult r =
      Cli("run --dir " + sandbox_.string() + "::/ --dir " + ro_.string() +
          "::/ro:ro --env MOAT_LANG=rust " + test::Guest("rust_std_probe") + " check a b");
  EXPECT_EQ(r.out, kAllRust) << r.err;
  EXPECT_EQ(r.status, 0) << r.err;
  ExpectFixturesIntact();
  // The program's own file stays; its scratch tree and links are gone.
  EXPECT_EQ(test::Slurp(sandbox_ / "new.txt"), "01234");
  EXPECT_FALSE(fs::exists(sandbox_ / "tree"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(sandbox_ / "escape")));
}

TEST_F(Languages, RustSeesOnlyWhatItIsGiven) {
  if (!Have("rust_std_probe")) GTEST_SKIP() << "rustc for wasm32-wasi was not found at build";
  // No --env and no read-only mount: the groups that depend on them fail, and say so.
  CliResult r =
      Cli("run --dir " + sandbox_.string() + "::/ " + test::Guest("rust_std_probe") + " check a b");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not ok args_env"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not ok confinement"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ok files\n"), std::string::npos) << r.out;
}

TEST_F(Languages, RustStdioExitAndPanic) {
  if (!Have("rust_std_probe")) GTEST_SKIP() << "rustc for wasm32-wasi was not found at build";
  std::string g = test::Guest("rust_std_probe");
  CliResult in = Cli("run " + g + " stdin", "printf 'héllo'");
  EXPECT_EQ(in.status, 0);
  EXPECT_EQ(in.out, "stdin 6 bytes: héllo");
  EXPECT_EQ(in.err, "to stderr\n");
  EXPECT_EQ(Cli("run " + g + " exit 7").status, 7);
  EXPECT_EQ(Cli("run " + g + " exit 0").status, 0);
  // A panic aborts with `unreachable`: a trap in the report, the panic message on stderr.
  CliResult p = Cli("run " + g + " panic");
  EXPECT_NE(p.status, 0);
  EXPECT_NE(p.err.find("panicked at 'index out of bounds"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("trap"), std::string::npos) << p.err;
}

TEST_F(Languages, RustDeterministicMode) {
  if (!Have("rust_std_probe")) GTEST_SKIP() << "rustc for wasm32-wasi was not found at build";
  std::string g = test::Guest("rust_std_probe");
  CliResult a = Cli("run --seed 42 " + g + " entropy");
  CliResult b = Cli("run --seed 42 " + g + " entropy");
  CliResult c = Cli("run --seed 43 " + g + " entropy");
  CliResult live = Cli("run " + g + " entropy");
  EXPECT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  EXPECT_EQ(a.out.rfind("time 9466848000", 0), 0u) << a.out;  // 2000-01-01 + fuel
  EXPECT_NE(live.out, a.out);
}

TEST_F(Languages, AssemblyScriptProgram) {
  if (!Have("as_probe")) GTEST_SKIP() << "the AssemblyScript compiler was not found at build";
  CliResult r = Cli("run --dir " + sandbox_.string() + "::/ --env MOAT_LANG=assemblyscript " +
                    test::Guest("as_probe") + " check a b");
  EXPECT_EQ(r.out, kAllAs) << r.err;
  EXPECT_EQ(r.status, 0) << r.err;
  ExpectFixturesIntact();
  EXPECT_FALSE(fs::exists(sandbox_ / "as.txt"));  // made, read back and removed
}

TEST_F(Languages, AssemblyScriptStdioExitAbortAndDeterminism) {
  if (!Have("as_probe")) GTEST_SKIP() << "the AssemblyScript compiler was not found at build";
  std::string g = test::Guest("as_probe");
  CliResult in = Cli("run " + g + " stdin", "printf 'hi there'");
  EXPECT_EQ(in.status, 0);
  EXPECT_EQ(in.out, "stdin 8 bytes: hi there");
  EXPECT_EQ(in.err, "to stderr\n");
  EXPECT_EQ(Cli("run " + g + " exit 9").status, 9);
  // AssemblyScript's abort() prints where and exits 255 through proc_exit.
  CliResult ab = Cli("run " + g + " abort");
  EXPECT_EQ(ab.status, 255);
  EXPECT_NE(ab.err.find("Index out of range"), std::string::npos) << ab.err;
  CliResult a = Cli("run --seed 7 " + g + " entropy");
  CliResult b = Cli("run --seed 7 " + g + " entropy");
  EXPECT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out.rfind("time 946684800", 0), 0u) << a.out;
}

}  // namespace
}  // namespace moat
