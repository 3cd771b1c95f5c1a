// Tool call latency, against baselines measured in the same run.
//   whole process: `moat call read_file` on a small file, next to `moat run hello.wasm`
//   in process:    Registry::Call of a tool that does nothing (contract_probe echoing its
//                  arguments) — the cost of a call itself: schema check, request, fresh
//                  instance, output parsing — and of read_file, with the host's share
//   build/bench/bench_tools [--quick]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "bench_util.h"
#include "orchestration/tools/manifest.h"
#include "orchestration/tools/registry.h"

extern char** environ;

namespace {

using namespace moat::bench;  // NOLINT(google-build-using-namespace)
using nlohmann::json;
namespace fs = std::filesystem;

// fork+exec with stdout to /dev/null; microseconds until it exited with status 0.
double SpawnUs(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) Die("posix_spawn");
  int st;
  waitpid(pid, &st, 0);
  double us = Us(Clock::now() - t0);
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) Die(args[1] + " " + args[2] + " failed");
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::string tmp = "/tmp/moat-bench-tools-" + std::to_string(getpid());
  fs::create_directories(tmp + "/ws");
  fs::create_directories(tmp + "/ext");
  std::ofstream(tmp + "/ws/notes.txt") << "line one\nline two\nline three\n";
  std::string read_args = R"({"path":"notes.txt"})";
  std::string moat = MOAT_BINARY;

  printf("moat tool benchmarks%s\n\n", quick ? " (quick)" : "");
  // Whole process. Both commands use the user's cache; the first runs warm it.
  std::vector<std::string> call = {moat,      "call",        "read_file", "--args",
                                   read_args, "--workspace", tmp + "/ws"};
  std::vector<std::string> hello = {moat, "run", std::string(MOAT_GUEST_DIR) + "/hello.wasm"};
  SpawnUs(call);
  SpawnUs(hello);
  int n = quick ? 10 : 60;
  std::vector<double> t_call, t_hello;
  for (int i = 0; i < n; ++i) {
    t_call.push_back(SpawnUs(call) / 1000);
    t_hello.push_back(SpawnUs(hello) / 1000);
  }
  printf("whole process, %d runs each, interleaved\n", n);
  printf("  %-40s p50 %6.2f ms  p90 %6.2f ms\n", "moat call read_file (small file)",
         Percentile(t_call, 0.5), Percentile(t_call, 0.9));
  printf("  %-40s p50 %6.2f ms  p90 %6.2f ms\n", "moat run hello.wasm, baseline",
         Percentile(t_hello, 0.5), Percentile(t_hello, 0.9));
  Check("moat call read_file, whole process, p50 <= 5 ms", Percentile(t_call, 0.5) <= 5.0,
        std::to_string(Percentile(t_call, 0.5)).substr(0, 4) + " ms");

  // In process.
  auto engine = moat::Engine::Create({});
  if (!engine) Die(engine.error().message);
  auto probe = moat::ReadFile(std::string(MOAT_GUEST_DIR) + "/contract_probe.wasm", 64 << 20);
  if (!probe) Die(probe.error().message);
  std::string manifest = R"({"name":"probe","version":"1","description":"echo",
    "arguments":{"type":"object","properties":{"mode":{"type":"string"}},"required":["mode"]},
    "capabilities":{"filesystem":"read"}})";
  auto packed = moat::tools::SetCustomSection(*probe, moat::tools::kManifestSection, manifest);
  if (!packed) Die(packed.error().message);
  std::ofstream(tmp + "/ext/probe.wasm", std::ios::binary)
      .write(reinterpret_cast<const char*>(packed->data()), static_cast<long>(packed->size()));
  moat::tools::RegistryOptions ro;
  ro.builtin_dirs = {MOAT_TOOLS_DIR};
  ro.extension_dirs = {tmp + "/ext"};
  ro.preload_builtins = false;
  auto reg = moat::tools::Registry::Create(engine->get(), ro);
  if (!reg) Die(reg.error().message);
  moat::tools::CallOptions co;
  co.workspace = tmp + "/ws";
  json echo_args = {{"mode", "echo"}};
  json read = json::parse(read_args);
  int m = quick ? 200 : 3000;
  std::vector<double> t_echo, t_read, t_read_host;
  for (int i = 0; i < m + 20; ++i) {
    auto t0 = Clock::now();
    auto r1 = (*reg)->Call("probe", echo_args, co);
    double e_us = Us(Clock::now() - t0);
    auto r2 = (*reg)->Call("read_file", read, co);
    double r_us = Us(Clock::now() - t0) - e_us;
    if (!r1.ok || !r2.ok) Die("call failed: " + r1.result.dump() + " " + r2.result.dump());
    if (i < 20) continue;  // warm-up
    t_echo.push_back(e_us);
    t_read.push_back(r_us);
    t_read_host.push_back(static_cast<double>(r2.host_us));
  }
  printf("\nin process, Registry::Call, %d calls each, interleaved\n", m);
  printf("  %-40s p50 %7.1f us  p90 %7.1f us\n", "probe (echoes its arguments)",
         Percentile(t_echo, 0.5), Percentile(t_echo, 0.9));
  printf("  %-40s p50 %7.1f us  p90 %7.1f us\n", "read_file (small file), whole call",
         Percentile(t_read, 0.5), Percentile(t_read, 0.9));
  printf("  %-40s p50 %7.1f us\n", "  of which in the host, outside the run",
         Percentile(t_read_host, 0.5));
  Check("in-process call of a cached tool, tool's own work ~0, p50 <= 100 us",
        Percentile(t_echo, 0.5) <= 100,
        std::to_string(Percentile(t_echo, 0.5)).substr(0, 5) + " us");

  fs::remove_all(tmp);
  printf("\n%s\n", g_misses ? "SOME TARGETS MISSED" : "all targets met");
  return 0;
}
