// The front door (ToolGate, AgentSession) under load, against baselines measured in the
// same run.
//   gate:      audited tool calls through ToolGate::Call (policy, schema, limits, the
//              sandbox, two audit records, group commit) from 8 threads, next to the same
//              calls made with Registry::Call directly (no gate, no log)
//   sessions:  8 AgentSessions at once in one process (one Services), each running
//              scripted turns of one call to a tool that waits (sleeps 20-39 ms, like a
//              tool waiting on I/O), next to one session alone: aggregate steps per second
//   build/bench/bench_front_door [--quick]
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "bench_util.h"
#include "orchestration/agent/tool_gate.h"
#include "orchestration/session/agent_session.h"
#include "orchestration/tools/manifest.h"

namespace {

using namespace moat::bench;  // NOLINT(google-build-using-namespace)
using nlohmann::json;
namespace fs = std::filesystem;

// Calls per second from `threads` threads making `total` calls in all with `call(i)`.
template <class F>
double Rate(int threads, int total, const F& call) {
  std::atomic<bool> failed{false};
  auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = t; i < total; i += threads) {
        if (!call(i)) failed = true;
      }
    });
  }
  for (auto& th : pool) th.join();
  if (failed) Die("a call failed");
  return total / (Us(Clock::now() - t0) / 1e6);
}

// Wall seconds for `n` sessions, each on its own thread running `steps` steps.
double SessionsSeconds(moat::session::Services& services, const std::string& tmp, int n, int steps,
                       int round) {
  std::vector<std::unique_ptr<moat::session::AgentSession>> sessions;
  for (int s = 0; s < n; ++s) {
    std::string ws = tmp + "/sessions/r" + std::to_string(round) + "-" + std::to_string(s);
    fs::create_directories(ws);
    json turns = json::array();
    for (int i = 0; i < steps; ++i) {
      json args = {{"mode", "sleep"}, {"n", 20 + i % 20}, {"i", i}};
      turns.push_back({{"tool_calls", {{{"name", "probe"}, {"arguments", args}}}}});
    }
    turns.push_back({{"text", "done"}});
    std::string script = ws + ".script.json";
    std::ofstream(script) << json({{"turns", turns}}).dump();
    moat::session::SessionOptions o;
    o.workspace = ws;
    o.provider.script = script;
    o.approval = moat::session::ApprovalMode::kAllowAll;
    auto opened = moat::session::AgentSession::Open(services, o);
    if (!opened) Die(opened.error().message);
    sessions.push_back(std::move(*opened));
  }
  std::atomic<bool> failed{false};
  auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (auto& session : sessions) {
    pool.emplace_back([&session, &failed] {
      auto r = session->Send("go", nullptr);
      if (r.stop != moat::agent::StopKind::kCompleted) {
        fprintf(stderr, "session stopped: %s\n", r.message.c_str());
        failed = true;
      }
    });
  }
  for (auto& th : pool) th.join();
  if (failed) Die("a session did not complete");
  return Us(Clock::now() - t0) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::string tmp = "/tmp/moat-bench-front-door-" + std::to_string(getpid());
  fs::create_directories(tmp + "/ws");
  fs::create_directories(tmp + "/ext");
  auto probe = moat::ReadFile(std::string(MOAT_GUEST_DIR) + "/contract_probe.wasm", 64 << 20);
  if (!probe) Die(probe.error().message);
  std::string manifest = R"({"name":"probe","version":"1","description":"echoes or sleeps",
    "arguments":{"type":"object"},"capabilities":{"filesystem":"read"}})";
  auto packed = moat::tools::SetCustomSection(*probe, moat::tools::kManifestSection, manifest);
  if (!packed) Die(packed.error().message);
  std::ofstream(tmp + "/ext/probe.wasm", std::ios::binary)
      .write(reinterpret_cast<const char*>(packed->data()), static_cast<long>(packed->size()));

  moat::session::ServicesOptions so;
  so.tool_dirs = {tmp + "/ext"};
  so.tools_builtin_dir = MOAT_TOOLS_DIR;
  auto services = moat::session::Services::Create(so);
  if (!services) Die(services.error().message);
  moat::tools::Registry& reg = (*services)->registry();
  if (!reg.Find("probe")) Die("the probe tool did not load: " + reg.LoadError("probe"));
  printf("moat front door benchmarks%s\n\n", quick ? " (quick)" : "");

  // Gate throughput.
  {
    int total = quick ? 4000 : 40000;
    moat::agent::Policy policy;
    moat::agent::FixedApprover allow(true);
    auto log = moat::agent::AuditLog::Open(tmp + "/gate-audit.jsonl");
    if (!log) Die(log.error().message);
    moat::agent::GateConfig gc;
    gc.workspace = tmp + "/ws";
    moat::agent::ToolGate gate(reg, policy, allow, log->get(), gc);
    moat::agent::ToolGate unaudited(reg, policy, allow, nullptr, gc);
    moat::tools::CallOptions co;
    co.workspace = tmp + "/ws";
    auto direct = [&](int i) { return reg.Call("probe", json({{"i", i}}), co).ok; };
    auto gated = [&](int i) {
      moat::agent::GateCall c{"c" + std::to_string(i), "probe", "{\"i\":" + std::to_string(i) + "}",
                              1};
      return gate.Call(c, nullptr, nullptr).status == "ok";
    };
    Rate(8, total / 10, direct);  // warm-up: threads' wasm stacks, the module mapped
    auto gated_only = [&](int i) {
      moat::agent::GateCall c{"c" + std::to_string(i), "probe", "{\"i\":" + std::to_string(i) + "}",
                              1};
      return unaudited.Call(c, nullptr, nullptr).status == "ok";
    };
    double base1 = Rate(1, total / 4, direct);
    double through1 = Rate(1, total / 4, gated);
    double base = Rate(8, total, direct);
    double through = Rate(8, total, gated);
    double no_log = Rate(8, total, gated_only);
    if (auto f = (*log)->Flush(); !f) Die(f.error().message);
    printf("tool calls from 8 threads (probe, echo), %d calls\n", total);
    printf("  %-52s %9.0f /s  (%.1f us a call more than the call alone)\n",
           "1 thread: ToolGate::Call, audited", through1, 1e6 / through1 - 1e6 / base1);
    printf("  %-52s %9.0f /s  (baseline)\n", "Registry::Call directly, no audit log", base);
    printf("  %-52s %9.0f /s  (%.2fx the baseline, %llu syncs for %d records)\n",
           "ToolGate::Call, audited (group commit)", through, through / base,
           static_cast<unsigned long long>((*log)->syncs()), 2 * total);
    printf("  %-52s %9.0f /s  (%.2fx the baseline)\n", "ToolGate::Call, no audit log", no_log,
           no_log / base);
    Check("audited calls through ToolGate, 8 threads: >= 20,000/s", through >= 20000,
          std::to_string(static_cast<int>(through)) + "/s");
  }

  // Sessions at once.
  {
    int steps = quick ? 8 : 20;
    int rounds = quick ? 1 : 3;
    SessionsSeconds(**services, tmp, 1, 2, 100);  // warm-up
    std::vector<double> one, eight;
    for (int r = 0; r < rounds; ++r) {
      one.push_back(steps / SessionsSeconds(**services, tmp, 1, steps, 2 * r));
      eight.push_back(8.0 * steps / SessionsSeconds(**services, tmp, 8, steps, 2 * r + 1));
    }
    double a = Percentile(one, 0.5), b = Percentile(eight, 0.5);
    printf("\nscripted sessions, %d steps of one call waiting 20-39 ms, median of %d\n", steps,
           rounds);
    printf("  %-52s %9.1f steps/s  (baseline)\n", "1 session", a);
    printf("  %-52s %9.1f steps/s  (%.2fx the baseline)\n", "8 sessions at once, aggregate", b,
           b / a);
    Check("8 sessions at once: >= 6x one session's steps/s", b >= 6 * a,
          std::to_string(b / a).substr(0, 4) + "x");
  }
  fs::remove_all(tmp);
  printf("\n%s\n", g_misses == 0 ? "all targets met" : "some targets missed");
  return 0;
}
