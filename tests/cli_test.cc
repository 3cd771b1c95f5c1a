// End to end: the real `moat` binary, its exit statuses, reports and stdio.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace moat {
namespace {

namespace fs = std::filesystem;
using test::Cli;
using test::CliResult;
using test::Slurp;

std::string G(const std::string& name) { return test::Guest(name); }

TEST(Cli, RunsHelloWithArgs) {
  CliResult r = Cli("run " + G("hello") + " a b");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hello from wasm a b\n");
  EXPECT_EQ(r.err, "");
}

TEST(Cli, GuestArgsThatLookLikeFlagsPassThrough) {
  CliResult r = Cli("run " + G("hello") + " --fuel 5 --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "hello from wasm --fuel 5 --help\n");
}

TEST(Cli, GuestExitCodeIsTheProcessStatus) {
  EXPECT_EQ(Cli("run " + G("echo") + " --exit 7").status, 7);
  EXPECT_EQ(Cli("run " + G("echo") + " --exit 0").status, 0);
}

TEST(Cli, EnvAndStdin) {
  setenv("MOAT_TEST_HOST_VAR", "from-host", 1);
  CliResult r = Cli("run --env GREETING=hey --env HOME " + G("echo"), "printf 'in!'");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("GREETING=hey\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HOME=" + std::string(getenv("HOME"))), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("in!"), std::string::npos);
  EXPECT_EQ(r.err, "to stderr\n");
  CliResult bare = Cli("run " + G("echo"));
  EXPECT_NE(bare.out.find("HOME=(unset)"), std::string::npos) << "nothing leaks by default";
}

struct StatusCase {
  const char* args;
  int exit_status;
  const char* status;
};

class CliStatus : public ::testing::TestWithParam<StatusCase> {};

TEST_P(CliStatus, OneFixedExitStatusPerOutcome) {
  const StatusCase& c = GetParam();
  std::string args = c.args;
  size_t pos = args.find("@");
  std::string guest = args.substr(pos + 1, args.find(' ', pos) - pos - 1);
  args.replace(pos, guest.size() + 1, G(guest));
  std::string report = "/tmp/moat-cli-report-" + std::to_string(getpid()) + ".json";
  CliResult r = Cli("run --report json --report-file " + report + " " + args);
  EXPECT_EQ(r.status, c.exit_status) << r.err;
  auto j = nlohmann::json::parse(Slurp(report), nullptr, false);
  unlink(report.c_str());
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["status"], c.status);
  for (const char* key : {"status", "exit_code", "fuel_used", "wall_us", "peak_memory_bytes",
                          "trap", "denied", "module_sha256", "compile_ms"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  if (std::string(c.status) != "ok") {
    EXPECT_NE(r.err.find(std::string("moat: ") + c.status), std::string::npos) << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cli, CliStatus,
    ::testing::Values(StatusCase{"@hello", 0, "ok"}, StatusCase{"@div_zero", 134, "trap"},
                      StatusCase{"--fuel 1M @infinite_loop", 122, "fuel_exhausted"},
                      StatusCase{"--timeout 200ms @infinite_loop", 123, "timeout"},
                      StatusCase{"--memory 64M @big_initial_memory", 124, "memory_limit"},
                      StatusCase{"--memory 8M @memory_bomb", 124, "memory_limit"},
                      StatusCase{"--max-output 1K @output_flood", 125, "output_limit"},
                      StatusCase{"@uses_simd", 120, "invalid_module"},
                      StatusCase{"@deep_recursion", 134, "trap"}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(Cli, JsonReportOnStderrDescribesATrap) {
  CliResult r = Cli("run --report json " + G("div_zero"));
  EXPECT_EQ(r.status, 134);
  std::string last = r.err.substr(r.err.rfind("\n{") + 1);
  auto j = nlohmann::json::parse(last, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.err;
  EXPECT_EQ(j["trap"]["kind"], "integer_divide_by_zero");
  EXPECT_EQ(j["module_sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(j["exit_code"].is_null());
}

TEST(Cli, BlockedStdinReadStillTimesOut) {
  CliResult r = Cli("run --timeout 300ms " + G("read_stdin"), "sleep 3");
  EXPECT_EQ(r.status, 123) << r.err;
  // The moat process itself ends near the deadline (the shell then waits for sleep).
  EXPECT_NE(r.err.find("timeout"), std::string::npos);
}

TEST(Cli, StdoutPipeNobodyReadsStillTimesOut) {
  // The guest floods stdout into a pipe whose reader sleeps: writes block, yet moat must
  // end at its deadline, long before the reader goes away.
  ASSERT_EQ(Cli("compile " + G("output_flood")).status, 0);  // time the run, not a compile
  std::string out = "/tmp/moat-cli-pipe-" + std::to_string(getpid());
  std::string cmd = "(t0=$(date +%s%N); " + std::string(MOAT_BINARY) + " run --timeout 300ms " +
                    G("output_flood") +
                    " 2>/dev/null; s=$?; t1=$(date +%s%N); echo $s $(( (t1 - t0) / 1000000 )) >" +
                    out + ") | sleep 3";
  // Through a shell on purpose: the pipe to a reader that sleeps is what is tested.
  ASSERT_EQ(system(cmd.c_str()), 0);
  std::istringstream in(Slurp(out));
  unlink(out.c_str());
  int status = -1, ms = -1;
  in >> status >> ms;
  EXPECT_EQ(status, 123);
  EXPECT_GE(ms, 300);
  EXPECT_LT(ms, 300 * 1.1 + 20 + 150) << "moat waited for the reader instead of its deadline";
}

TEST(Cli, RefusedModulesGetOneLineAndStatus120) {
  std::string bad = "/tmp/moat-cli-trunc-" + std::to_string(getpid()) + ".wasm";
  auto bytes = test::GuestBytes("hello");
  std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), 3000);
  CliResult r = Cli("run " + bad);
  unlink(bad.c_str());
  EXPECT_EQ(r.status, 120);
  EXPECT_NE(r.err.find("malformed module"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  CliResult missing = Cli("run /nonexistent/x.wasm");
  EXPECT_EQ(missing.status, 120);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos);
}

TEST(Cli, ParserAbortsOnHostileModulesAreContained) {
  // Inputs that made libwabt abort in process (found by fuzz/run.sh): moat refuses them
  // with status 120 and one line, and stays up.
  for (const char* f : {"wabt-assert-on-end.bin"}) {
    CliResult r = Cli("run " + std::string(MOAT_SOURCE_DIR) + "/fuzz/regressions/" + f);
    EXPECT_EQ(r.status, 120) << f << ": " << r.err;
    EXPECT_NE(r.err.find("invalid_module: malformed module"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(Cli("run").status, 2);
  EXPECT_EQ(Cli("run --memory lots " + G("hello")).status, 2);
  EXPECT_EQ(Cli("run --memory 1T " + G("hello")).status, 2);
  EXPECT_EQ(Cli("run --timeout 5parsecs " + G("hello")).status, 2);
  EXPECT_EQ(Cli("run --dir /nonexistent-dir " + G("hello")).status, 2);
  EXPECT_EQ(Cli("run --env =x " + G("hello")).status, 2);
  EXPECT_EQ(Cli("run --report yaml " + G("hello")).status, 2);
  EXPECT_EQ(Cli("frobnicate").status, 2);
}

TEST(Cli, DirSyntaxIsAccepted) {
  CliResult r = Cli("run --dir /tmp --dir /tmp::/work:ro " + G("hello"));
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(Cli, CompileAndCacheCommands) {
  std::string dir = test::TempDir("cli-cache");
  setenv("MOAT_CACHE_DIR", dir.c_str(), 1);
  CliResult c1 = Cli("compile " + G("hello"));
  EXPECT_EQ(c1.status, 0);
  EXPECT_NE(c1.out.find("compiled in"), std::string::npos);
  CliResult c2 = Cli("compile " + G("hello") + " " + G("uses_simd"));
  EXPECT_EQ(c2.status, 120);
  EXPECT_NE(c2.out.find("cached"), std::string::npos);
  EXPECT_NE(c2.err.find("SIMD"), std::string::npos);
  CliResult ls = Cli("cache ls");
  EXPECT_EQ(ls.status, 0);
  EXPECT_NE(ls.out.find("(1 entries)"), std::string::npos) << ls.out;
  CliResult clear = Cli("cache clear");
  EXPECT_NE(clear.out.find("removed 1"), std::string::npos);
  EXPECT_NE(Cli("cache ls").out.find("(0 entries)"), std::string::npos);
}

// Mounts from the command line: a read-only one refuses writes and the JSON report lists the
// denial with the path as the guest gave it; hidden patterns and quotas are flags.
TEST(Cli, MountsHiddenPathsAndQuotas) {
  std::string dir = test::TempDir("cli-mounts");
  test::PutFile(dir + "/ro/a.txt", "hi\n");
  test::PutFile(dir + "/ws/.env", "S\n");
  test::PutFile(dir + "/ws/notes.txt", "t\n");
  std::string mounts = "--dir " + dir + "/ws::/w --dir " + dir + "/ro::/r:ro ";
  CliResult r = Cli("run " + mounts + "--report json " + G("fsprobe") +
                    " read /r:a.txt -- write /r:a.txt x -- read /w:.env");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "read errno=0 content=hi\nwrite errno=63\nread errno=44\n");
  auto j = nlohmann::json::parse(r.err.substr(r.err.find('{')));
  ASSERT_EQ(j["denied"].size(), 2u) << r.err;
  EXPECT_EQ(j["denied"][0]["operation"], "path_open");
  EXPECT_EQ(j["denied"][0]["subject"], "a.txt");
  EXPECT_EQ(j["denied"][0]["reason"], "mount is read-only");
  EXPECT_EQ(j["denied"][1]["subject"], ".env");
  EXPECT_EQ(j["denied"][1]["reason"], "hidden path");
  EXPECT_EQ(j["fs_bytes_written"], 0);

  r = Cli("run " + mounts + "--no-default-hide --hide 'notes.*' " + G("fsprobe") +
          " read /w:.env -- read /w:notes.txt");
  EXPECT_EQ(r.out, "read errno=0 content=S\nread errno=44\n") << r.err;

  r = Cli("run " + mounts + "--max-files 1 --max-write 3 --report json " + G("fsprobe") +
          " write /w:one abcdef -- create /w:two");
  j = nlohmann::json::parse(r.err.substr(r.err.find('{')));
  EXPECT_EQ(j["fs_bytes_written"], 3);
  EXPECT_EQ(j["fs_files_created"], 1);
  EXPECT_EQ(r.out, "write errno=0\ncreate errno=19\n") << r.err;
  EXPECT_EQ(Slurp(dir + "/ws/one"), "abc");

  EXPECT_EQ(Cli("run --max-fds 0 " + G("hello")).status, 2);
  EXPECT_EQ(Cli("run --max-write lots " + G("hello")).status, 2);
  EXPECT_EQ(Cli("run --dir " + dir + "/missing " + G("hello")).status, 2);
  fs::remove_all(dir);
}

TEST(Cli, DeterministicRunsRepeat) {
  CliResult a = Cli("run --seed 42 " + G("clock_random") + " 5000");
  CliResult b = Cli("run --seed 42 " + G("clock_random") + " 5000");
  EXPECT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out.find("slept_ms 5000"), std::string::npos) << a.out;
  // The 5 s sleep is virtual. Timed on the second run: the first may include compiling
  // the module on a cold cache, which took over 3 s on a loaded machine.
  EXPECT_LT(b.ms, 3000);
}

TEST(Cli, SecretsAreStoredPrivatelyAndNeverPrinted) {
  std::string dir = test::TempDir("cli-secrets");
  std::string file = dir + "/conf/secrets.json";
  std::string f = "secrets --file " + file + " ";
  CliResult r = Cli(f + "set OPENAI_KEY --host api.openai.com --header Authorization",
                    "printf 'sk-live-0123456789\\n'");
  ASSERT_EQ(r.status, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(Slurp(file).find("sk-live-0123456789\""), std::string::npos);  // newline dropped
  r = Cli(f + "ls");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("OPENAI_KEY"), std::string::npos);
  EXPECT_NE(r.out.find("headers=authorization"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("sk-live"), std::string::npos);
  r = Cli(f + "ls --json");
  EXPECT_EQ(nlohmann::json::parse(r.out)["secrets"][0]["hosts"][0], "api.openai.com");
  EXPECT_EQ(r.out.find("sk-live"), std::string::npos);
  // Refused: a value too short to detect leaks of, a secret for any host, no value.
  EXPECT_EQ(Cli(f + "set SHORT --host h.example", "printf abc").status, 2);
  EXPECT_EQ(Cli(f + "set ANY --host '*'", "printf longenoughvalue").status, 2);
  EXPECT_EQ(Cli(f + "set NONE --host h.example").status, 2);
  EXPECT_EQ(Cli(f + "set 'bad name' --host h.example", "printf longenoughvalue").status, 2);
  EXPECT_NE(Cli(f + "set NOHOST", "printf longenoughvalue").status, 0);
  // A store others can read is refused until it is private again.
  chmod(file.c_str(), 0644);
  r = Cli(f + "ls");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  chmod(file.c_str(), 0600);
  EXPECT_EQ(Cli(f + "rm OPENAI_KEY").status, 0);
  EXPECT_EQ(Cli(f + "rm OPENAI_KEY").status, 1);
  EXPECT_EQ(Cli(f + "ls").out, "");
  fs::remove_all(dir);
}

// A guest can put any bytes in what it asks for: a denial's subject (here a URL) that is
// not UTF-8 or holds terminal controls never breaks the JSON report (U+FFFD) nor reaches
// the terminal raw in either report.
TEST(Cli, ReportsShowHostileSubjectsSafely) {
  std::string url = " \"http://h.example/a$(printf '\\377\\033[8mb\\302\\233c\\342\\200\\256d')\"";
  CliResult r = Cli("run --report json " + G("http_probe") + " fetch GET" + url);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::RawControlAt(r.err), "");
  auto j = nlohmann::json::parse(r.err.substr(r.err.find('{')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.err;
  ASSERT_EQ(j["denied"].size(), 1u) << r.err;
  EXPECT_EQ(j["denied"][0]["subject"],
            "GET http://h.example/a\xEF\xBF\xBD\x1b[8mb\xC2\x9B"
            "c\xE2\x80\xAE"
            "d");

  r = Cli("run --report text " + G("http_probe") + " fetch GET" + url);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::RawControlAt(r.err), "");
  EXPECT_NE(r.err.find("denied http_request GET http://h.example/a\\xff\\x1b[8mb\\u009bc\\u202ed: "
                       "no network access is granted"),
            std::string::npos)
      << r.err;
}

// An index entry that has passed its full check holds a second line (the object's
// fingerprint); `moat cache ls` still names the object file, and its size.
TEST(Cli, CacheLsNamesTheObjectOfACheckedEntry) {
  std::string dir = test::TempDir("cli-cache-ls");
  const char* before = getenv("MOAT_CACHE_DIR");
  std::string saved = before ? before : "";
  setenv("MOAT_CACHE_DIR", dir.c_str(), 1);
  ASSERT_EQ(Cli("run " + G("hello")).status, 0);
  ASSERT_EQ(Cli("run " + G("hello")).status, 0);  // the first use since the build: hashed
  CliResult ls = Cli("cache ls");
  EXPECT_EQ(ls.status, 0) << ls.err;
  std::istringstream lines(ls.out);
  std::string header, entry, extra;
  std::getline(lines, header);
  std::getline(lines, entry);
  EXPECT_FALSE(std::getline(lines, extra)) << "one line per entry:\n" << ls.out;
  EXPECT_NE(header.find("(1 entries)"), std::string::npos) << ls.out;
  size_t at = entry.find(dir + "/objects/");
  ASSERT_NE(at, std::string::npos) << ls.out;
  std::string object = entry.substr(at);
  EXPECT_EQ(object.size(), dir.size() + 9 + 64 + 3) << "the path and nothing after it: " << entry;
  struct stat st {};
  EXPECT_EQ(stat(object.c_str(), &st), 0) << object;
  EXPECT_EQ(entry.find(" 0 KiB"), std::string::npos) << entry;
  if (before) {
    setenv("MOAT_CACHE_DIR", saved.c_str(), 1);
  } else {
    unsetenv("MOAT_CACHE_DIR");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moat
