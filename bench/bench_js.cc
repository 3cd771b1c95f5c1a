// The `js` tool (QuickJS in wasm, through Registry::Call in process) against the same
// QuickJS sources and the same js.cc compiled natively (native_js), on a CPU-bound script:
// trial-division primes (interpreter arithmetic) and a JSON/string workload. Both get the
// same arguments on stdin and must print the same result. Runs are interleaved; minimums
// are the least disturbed runs on a shared machine, and the target is on them.
//   build/bench/bench_js [--quick]
// For reference, not targets: native_js_wasm_config (QuickJS natively with the wasm
// side's configuration: no Atomics, switch dispatch) and the tool without fuel metering.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "orchestration/tools/registry.h"

extern char** environ;

namespace {

using namespace moat::bench;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

const char* const kScript = R"JS(
function countPrimes(limit) {
  let count = 0;
  for (let n = 2; n < limit; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) { prime = false; break; }
    }
    if (prime) count++;
  }
  return count;
}
function records(k) {
  let total = 0;
  const words = [];
  for (let i = 0; i < k; i++) {
    const rec = { id: i, name: 'item-' + i, tags: ['x', 'y', String(i % 7)], score: i * 0.5 };
    const text = JSON.stringify(rec);
    total += JSON.parse(text).name.length;
    words.push(text.slice(2, 6).toUpperCase());
  }
  words.sort();
  return total + words.length;
}
const primes = countPrimes(input.limit);
const recs = records(input.records);
console.log('primes below', input.limit, '=', primes);
console.log('records checksum', recs);
({primes, recs})
)JS";

// One call of the tool; milliseconds, the result's content in *content.
double ToolMs(const moat::tools::Registry& reg, const json& args, json* content) {
  moat::tools::CallOptions opts;
  opts.fuel = moat::Limits::kMaxFuel;
  opts.timeout_us = 600'000'000;
  auto t0 = Clock::now();
  moat::tools::CallResult r = reg.Call("js", args, opts);
  double ms = Ms(Clock::now() - t0);
  if (!r.ok) Die("the js tool failed: " + r.result.dump());
  *content = r.result["content"];
  return ms;
}

// The native runner with the arguments on stdin (a file); milliseconds until it exited.
double NativeMs(const char* exe, const std::string& args_file, json* content) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) Die("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, args_file.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  char* argv[] = {const_cast<char*>(exe), nullptr};
  auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawn(&pid, exe, &fa, nullptr, argv, environ) != 0) Die("posix_spawn");
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int st;
  waitpid(pid, &st, 0);
  double ms = Ms(Clock::now() - t0);
  close(p[0]);
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) Die(std::string(exe) + " failed");
  json r = json::parse(out, nullptr, false);
  if (!r.is_object() || !r.value("ok", false)) Die(std::string(exe) + " printed " + out);
  *content = r["content"];
  return ms;
}

std::unique_ptr<moat::tools::Registry> MakeRegistry(moat::Engine* engine) {
  moat::tools::RegistryOptions o;
  o.builtin_dirs = {MOAT_TOOLS_DIR};
  o.preload_builtins = false;
  auto r = moat::tools::Registry::Create(engine, std::move(o));
  if (!r) Die(r.error().message);
  if (!(*r)->Find("js")) Die("cannot load js: " + (*r)->LoadError("js"));
  return std::move(*r);
}

void Print(const char* label, const std::vector<double>& v) {
  printf("  %-52s min %8.1f ms   median %8.1f ms\n", label, Percentile(v, 0), Percentile(v, 0.5));
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  int reps = quick ? 3 : 7;
  json args = {{"code", kScript},
               {"input", {{"limit", quick ? 150000 : 500000}, {"records", quick ? 20000 : 60000}}}};
  char path[] = "/tmp/moat-bench-js-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) Die("mkstemp");
  std::string text = args.dump();
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) Die("write");
  close(fd);
  const std::string args_file = path;

  printf("moat js tool benchmark%s: QuickJS %s in wasm vs the same sources native\n",
         quick ? " (quick)" : "", "2021-03-27");
  printf(
      "script: primes below %d by trial division + %d JSON/string records; %d interleaved "
      "repetitions\n",
      args["input"]["limit"].get<int>(), args["input"]["records"].get<int>(), reps);

  auto engine_r = moat::Engine::Create({});
  if (!engine_r) Die(engine_r.error().message);
  moat::EngineOptions unmetered_options;
  unmetered_options.meter_fuel = false;
  auto unmetered_r = moat::Engine::Create(unmetered_options);
  if (!unmetered_r) Die(unmetered_r.error().message);
  auto t0 = Clock::now();
  auto reg = MakeRegistry(engine_r->get());
  double load_ms = Ms(Clock::now() - t0);
  t0 = Clock::now();
  auto reg_unmetered = MakeRegistry(unmetered_r->get());
  double load_unmetered_ms = Ms(Clock::now() - t0);
  printf("loading js.wasm: %.0f ms metered, %.0f ms unmetered (a compile when not cached)\n\n",
         load_ms, load_unmetered_ms);

  // Warm up, and check that all print the same.
  json expect, got;
  ToolMs(*reg, args, &expect);
  NativeMs(MOAT_NATIVE_JS, args_file, &got);
  if (got != expect) Die("native_js printed " + got.dump() + ", the tool " + expect.dump());
  NativeMs(MOAT_NATIVE_JS_WASM_CONFIG, args_file, &got);
  if (got != expect) Die("native_js_wasm_config printed " + got.dump());
  ToolMs(*reg_unmetered, args, &got);
  if (got != expect) Die("the unmetered tool printed " + got.dump());
  printf("all print: %s\n", expect["output"].get<std::string>().c_str());

  std::vector<double> wasm, native, native_cfg, wasm_unmetered;
  for (int i = 0; i < reps; ++i) {
    wasm.push_back(ToolMs(*reg, args, &got));
    if (got != expect) Die("the tool printed " + got.dump());
    native.push_back(NativeMs(MOAT_NATIVE_JS, args_file, &got));
    native_cfg.push_back(NativeMs(MOAT_NATIVE_JS_WASM_CONFIG, args_file, &got));
    wasm_unmetered.push_back(ToolMs(*reg_unmetered, args, &got));
  }
  Print("js tool, Registry::Call in process (wasm, metered)", wasm);
  Print("native_js, fork+exec (QuickJS's Linux configuration)", native);
  Print("native_js_wasm_config, fork+exec (reference)", native_cfg);
  Print("js tool without fuel metering (reference)", wasm_unmetered);
  double ratio = Percentile(wasm, 0) / Percentile(native, 0);
  printf("\n  wasm / native: %.2fx at the minimum, %.2fx at the median\n", ratio,
         Percentile(wasm, 0.5) / Percentile(native, 0.5));
  printf("  wasm / native with the wasm configuration: %.2fx; metering costs %.0f%%\n",
         Percentile(wasm, 0) / Percentile(native_cfg, 0),
         (Percentile(wasm, 0) / Percentile(wasm_unmetered, 0) - 1) * 100);
  bool pass = ratio <= 2.0;
  printf("  %-58s %s  (%.2fx)\n", "within 2x of the same QuickJS sources compiled natively",
         pass ? "PASS" : "MISS", ratio);
  unlink(args_file.c_str());
  printf("\n%s\n", pass ? "all targets met" : "SOME TARGETS MISSED");
  return pass ? 0 : 1;
}
