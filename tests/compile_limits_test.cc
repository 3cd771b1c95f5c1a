// Compile bombs through the real binary: modules whose native compile would take minutes
// and gigabytes are refused by shape before anything is built, and a compile that is slow
// anyway stops at its own limits, at the run's --timeout and at Ctrl-C, leaving no process
// and no file behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "execution/limits.h"
#include "execution/module_pipeline.h"
#include "test_util.h"

namespace moat {
namespace {

using test::CliResult;

// ---- a tiny wasm writer ------------------------------------------------------------------

void Leb(std::vector<uint8_t>& b, uint64_t v) {
  do {
    uint8_t x = v & 0x7f;
    v >>= 7;
    b.push_back(v ? (x | 0x80) : x);
  } while (v);
}

void Section(std::vector<uint8_t>& m, uint8_t id, const std::vector<uint8_t>& body) {
  m.push_back(id);
  Leb(m, body.size());
  m.insert(m.end(), body.begin(), body.end());
}

struct Func {
  std::vector<std::pair<uint32_t, uint8_t>> locals;  // (count, type) declarations
  std::vector<uint8_t> code;                         // instructions, without the final end
};

// A command module of `funcs` (each () -> ()); the first is exported as _start and calls
// the others.
std::vector<uint8_t> Module(std::vector<Func> funcs) {
  std::vector<uint8_t> m = {0, 'a', 's', 'm', 1, 0, 0, 0};
  Section(m, 1, {1, 0x60, 0, 0});
  std::vector<uint8_t> fs;
  Leb(fs, funcs.size());
  for (size_t i = 0; i < funcs.size(); ++i) fs.push_back(0);
  Section(m, 3, fs);
  Section(m, 7, {1, 6, '_', 's', 't', 'a', 'r', 't', 0, 0});
  for (size_t i = 1; i < funcs.size(); ++i) {
    funcs[0].code.push_back(0x10);  // call i
    Leb(funcs[0].code, i);
  }
  std::vector<uint8_t> code;
  Leb(code, funcs.size());
  for (const Func& f : funcs) {
    std::vector<uint8_t> body;
    Leb(body, f.locals.size());
    for (auto [n, t] : f.locals) {
      Leb(body, n);
      body.push_back(t);
    }
    body.insert(body.end(), f.code.begin(), f.code.end());
    body.push_back(0x0b);
    Leb(code, body.size());
    code.insert(code.end(), body.begin(), body.end());
  }
  Section(m, 10, code);
  return m;
}

constexpr uint8_t kI64 = 0x7e;

// A command module with one active data segment of `size` bytes (pseudo-random, so that
// nothing compresses it) in a memory large enough for it.
std::vector<uint8_t> DataModule(uint64_t size) {
  std::vector<uint8_t> m = {0, 'a', 's', 'm', 1, 0, 0, 0};
  Section(m, 1, {1, 0x60, 0, 0});
  Section(m, 3, {1, 0});
  std::vector<uint8_t> mem = {1, 0};
  Leb(mem, (size >> 16) + 1);
  Section(m, 5, mem);
  Section(m, 7, {1, 6, '_', 's', 't', 'a', 'r', 't', 0, 0});
  Section(m, 10, {1, 2, 0, 0x0b});
  std::vector<uint8_t> data = {1, 0, 0x41, 0, 0x0b};
  Leb(data, size);
  uint32_t x = 7;
  for (uint64_t i = 0; i < size; ++i) {
    x = x * 1664525u + 1013904223u;
    data.push_back(static_cast<uint8_t>(x >> 24));
  }
  Section(m, 11, data);
  return m;
}

// A function of `locals` i64 locals whose body, `ops` times, adds two locals into a third:
// the shape whose C the compiler is slow on (all live at once, all in one function).
Func Mixer(uint32_t locals, uint32_t ops, uint32_t seed = 1) {
  Func f;
  f.locals = {{locals, kI64}};
  uint32_t x = seed;
  auto next = [&] {
    x = x * 1103515245u + 12345u;
    return (x >> 8) % locals;
  };
  for (uint32_t i = 0; i < ops; ++i) {
    f.code.push_back(0x20);  // local.get
    Leb(f.code, next());
    f.code.push_back(0x20);
    Leb(f.code, next());
    f.code.push_back(0x7c);  // i64.add
    f.code.push_back(0x21);  // local.set
    Leb(f.code, next());
  }
  return f;
}

std::string Write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Each test gets its own cache and its own TMPDIR, both empty.
class CompileLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::TempDir("compile-limits");
    std::filesystem::create_directories(dir_ + "/tmpdir");
    cache_ = dir_ + "/cache";
    env_ = "MOAT_CACHE_DIR=" + cache_ + " TMPDIR=" + dir_ + "/tmpdir ";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `moat ARGS` with this test's cache and TMPDIR.
  CliResult RunEnv(const std::string& args) { return test::Cli(args, "", env_); }

  // Names in `path` (dot names too): what a compile left behind.
  std::vector<std::string> Entries(const std::string& path) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
      names.push_back(e.path().filename().string());
    }
    return names;
  }

  // Processes whose working folder is inside this test's cache: the compile step's.
  int CompileProcesses() {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      std::string name = e.path().filename().string();
      if (name.empty() || name[0] < '1' || name[0] > '9') continue;
      char buf[4096];
      ssize_t len = readlink((e.path().string() + "/cwd").c_str(), buf, sizeof buf - 1);
      if (len <= 0) continue;
      if (std::string(buf, static_cast<size_t>(len)).rfind(cache_, 0) == 0) ++n;
    }
    return n;
  }

  void ExpectNothingLeft() {
    EXPECT_EQ(Entries(cache_ + "/tmp"), std::vector<std::string>{}) << "cache tmp/";
    EXPECT_EQ(Entries(dir_ + "/tmpdir"), std::vector<std::string>{}) << "TMPDIR";
    EXPECT_EQ(CompileProcesses(), 0);
  }

  // A module under every shape cap that takes the C compiler many seconds.
  std::string SlowModule() {
    std::vector<Func> funcs;
    for (uint32_t i = 0; i < 8; ++i) funcs.push_back(Mixer(6000, 20'000, i + 1));
    return Write(dir_ + "/slow.wasm", Module(funcs));
  }

  std::string dir_, cache_, env_;
};

TEST_F(CompileLimits, TwentyThousandLocalsAreRefusedBeforeCompiling) {
  // The bomb: one function, 20,000 locals, all used (about 400 KB of code).
  std::string bomb = Write(dir_ + "/locals.wasm", Module({Mixer(20'000, 40'000)}));
  CliResult r = RunEnv("run " + bomb);
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("invalid_module"), std::string::npos) << r.err;
  EXPECT_NE(
      r.err.find("20000 locals, over the limit of " +
                 std::to_string(moat::CompileLimits::kMaxFunctionLocals) + " locals per function"),
      std::string::npos)
      << r.err;
  EXPECT_LT(r.ms, 3000) << "refused by shape, not after a compile";
  // The same locals spread over many declarations are counted together.
  Func spread;
  for (int i = 0; i < 20'000; ++i) spread.locals.push_back({1, kI64});
  r = RunEnv("run " + Write(dir_ + "/spread.wasm", Module({spread})));
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("20000 locals"), std::string::npos) << r.err;
  // A declaration of four billion locals is a few bytes of wasm: refused as fast.
  Func huge;
  huge.locals = {{0xffffffffu, kI64}, {0xffffffffu, kI64}};
  r = RunEnv("run " + Write(dir_ + "/huge.wasm", Module({huge})));
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("locals per function"), std::string::npos) << r.err;
  ExpectNothingLeft();
}

TEST_F(CompileLimits, HugeFunctionBodiesAreRefused) {
  Func big;  // about 1.5 MB of `i64.const 0; drop`
  for (int i = 0; i < 500'000; ++i) big.code.insert(big.code.end(), {0x42, 0x00, 0x1a});
  CliResult r = RunEnv("run " + Write(dir_ + "/body.wasm", Module({big})));
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("bytes of code, over the limit of " +
                       std::to_string(moat::CompileLimits::kMaxFunctionBodyBytes)),
            std::string::npos)
      << r.err;
  EXPECT_LT(r.ms, 3000);
  // Under both per-function caps, but their product past the cost cap.
  r = RunEnv("run " + Write(dir_ + "/cost.wasm", Module({Mixer(16'000, 90'000)})));
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("locals times bytes of code is over the limit"), std::string::npos) << r.err;
  // Data segments past the cap.
  r = RunEnv("run " +
             Write(dir_ + "/data.wasm", DataModule(moat::CompileLimits::kMaxDataBytes + 1)));
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("bytes of data segments, over the limit of " +
                       std::to_string(moat::CompileLimits::kMaxDataBytes)),
            std::string::npos)
      << r.err;
  // Nesting deeper than the cap.
  Func deep;
  for (int i = 0; i < 5000; ++i) deep.code.insert(deep.code.end(), {0x02, 0x40});  // block
  for (int i = 0; i < 5000; ++i) deep.code.push_back(0x0b);
  r = RunEnv("run " + Write(dir_ + "/deep.wasm", Module({deep})));
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("levels of block nesting"), std::string::npos) << r.err;
  // `moat compile` refuses the same way.
  r = RunEnv("compile " + dir_ + "/body.wasm");
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("per function"), std::string::npos) << r.err;
  ExpectNothingLeft();
}

TEST_F(CompileLimits, CompileTimeoutStopsASlowCompileAndCleansUp) {
  std::string slow = SlowModule();
  CliResult r = RunEnv("run --compile-timeout 1s " + slow);
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("invalid_module: module refused: compiling it took longer than the "
                       "compile time limit of 1 s (--compile-timeout)"),
            std::string::npos)
      << r.err;
  EXPECT_LT(r.ms, 1000 + 2500) << "stopped at its limit";
  ExpectNothingLeft();
  // The environment sets it too; a bad value is a usage error.
  env_ += "MOAT_COMPILE_TIMEOUT=1s ";
  r = RunEnv("compile " + slow);
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("compile time limit of 1 s"), std::string::npos) << r.err;
  EXPECT_LT(r.ms, 1000 + 2500);
  ExpectNothingLeft();
  EXPECT_EQ(RunEnv("run --compile-timeout 1ms " + slow).status, 2);
  EXPECT_EQ(RunEnv("run --compile-memory 1K " + slow).status, 2);
}

TEST_F(CompileLimits, CompileMemoryLimitStopsTheCompiler) {
  // A data segment at the cap becomes a C initializer that cc1 needs about 2 GB for: too
  // much for 1 GiB of address space.
  std::string big = Write(dir_ + "/data.wasm", DataModule(moat::CompileLimits::kMaxDataBytes));
  CliResult r = RunEnv("compile --compile-memory 1G --compile-timeout 2m " + big);
  EXPECT_EQ(r.status, 120) << r.err;
  EXPECT_NE(r.err.find("compile memory limit of 1 GiB (--compile-memory)"), std::string::npos)
      << r.err;
  ExpectNothingLeft();
}

TEST_F(CompileLimits, RunTimeoutAppliesToTheCompile) {
  std::string slow = SlowModule();
  CliResult r = RunEnv("run --timeout 1500ms " + slow);
  EXPECT_EQ(r.status, 123) << r.err;
  EXPECT_NE(r.err.find("timeout: deadline of 1500 ms passed while compiling the module"),
            std::string::npos)
      << r.err;
  EXPECT_LT(r.ms, 1500 + 2500);
  ExpectNothingLeft();
  // A compile that finishes in time leaves the guest only the rest of the deadline: the
  // whole command ends near it, and the message says where the time went.
  r = RunEnv("run --fuel 1000G --timeout 1500ms " + test::Guest("infinite_loop"));
  EXPECT_EQ(r.status, 123) << r.err;
  EXPECT_TRUE(r.err.find("compiling the module took") != std::string::npos ||
              r.err.find("passed while compiling the module") != std::string::npos)
      << r.err;
  EXPECT_LT(r.ms, 1500 + 700) << "the guest got a fresh 1500 ms after the compile";
  // Once cached, the guest gets (nearly) all of it.
  r = RunEnv("run --fuel 1000G --timeout 1500ms " + test::Guest("infinite_loop"));
  EXPECT_EQ(r.status, 123) << r.err;
  EXPECT_GE(r.ms, 1450);
  EXPECT_EQ(r.err.find("compiling"), std::string::npos) << r.err;
}

TEST_F(CompileLimits, InterruptAndKillDuringACompileLeaveNothing) {
  std::string slow = SlowModule();
  for (int signo : {SIGINT, SIGTERM, SIGKILL}) {
    SCOPED_TRACE(signo);
    pid_t pid = fork();
    if (pid == 0) {
      setenv("MOAT_CACHE_DIR", cache_.c_str(), 1);
      setenv("TMPDIR", (dir_ + "/tmpdir").c_str(), 1);
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      execl(MOAT_BINARY, "moat", "run", slow.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // Until the compiler runs in its work folder.
    auto start = std::chrono::steady_clock::now();
    while (CompileProcesses() < 2 &&
           std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
      usleep(20'000);
    }
    ASSERT_GE(CompileProcesses(), 2) << "the compile never started";
    usleep(300'000);
    auto sent = std::chrono::steady_clock::now();
    kill(pid, signo);
    int status = 0;
    waitpid(pid, &status, 0);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count();
    EXPECT_LT(ms, 2000);
    if (signo == SIGKILL) {
      // moat had no say: its compile's processes die with it; the work folder it left is
      // removed by the next compile in the cache.
      for (int i = 0; i < 200 && CompileProcesses() > 0; ++i) usleep(10'000);
      EXPECT_EQ(CompileProcesses(), 0);
      EXPECT_EQ(RunEnv("compile " + test::Guest("hello")).status, 0);
    } else {
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 130);
    }
    ExpectNothingLeft();
  }
}

// The largest real guests pass every shape cap (validation only: their compile, under the
// default limits, is what sqlshell_test, tool_js_test and languages_test do).
// Attack: a `moat` copied without `moat-translator` beside it ran the translator from the
// build folder's absolute path, which whoever can create that path controls. Outside the
// build tree, moat finds its helper beside itself only.
TEST_F(CompileLimits, AMoatElsewhereRunsNoHelperFromTheBuildTree) {
  std::string bin = dir_ + "/bin";
  std::filesystem::create_directories(bin);
  std::filesystem::copy_file(MOAT_BINARY, bin + "/moat");
  std::string cmd = "</dev/null env -u MOAT_TRANSLATOR " + env_ + bin + "/moat compile " +
                    test::Guest("hello") + " >" + dir_ + "/out 2>" + dir_ + "/err";
  // Not a fixture: the shell runs the copied binary, which is what is tested.
  int rc = system(cmd.c_str());
  EXPECT_NE(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 0);
  std::string err = test::Slurp(dir_ + "/err");
  EXPECT_NE(err.find(bin + "/moat-translator"), std::string::npos) << err;
  EXPECT_EQ(Entries(cache_ + "/objects"), std::vector<std::string>{}) << "nothing compiled";
  // With its helper beside it, the same copy works.
  std::string helper = std::string(MOAT_BINARY);
  helper = helper.substr(0, helper.rfind('/')) + "/moat-translator";
  std::filesystem::copy_file(helper, bin + "/moat-translator");
  rc = system(cmd.c_str());
  EXPECT_EQ(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 0) << test::Slurp(dir_ + "/err");
  ExpectNothingLeft();
}

TEST(CompileLimitsGuests, RealGuestsStayUnderTheShapeCaps) {
  std::string bin = MOAT_BINARY;
  std::string tools = bin.substr(0, bin.find_last_of('/')) + "/tools/";
  int checked = 0;
  for (const std::string& path : {test::Guest("sqlshell"), test::Guest("rust_std_probe"),
                                  tools + "js.wasm", tools + "sql.wasm", test::Guest("fsprobe")}) {
    auto bytes = ReadFile(path, 64 << 20);
    if (!bytes) continue;
    auto shape = ValidateWasm(*bytes);
    EXPECT_TRUE(shape.ok()) << path << ": " << shape.error().message;
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

}  // namespace
}  // namespace moat
