#include "interaction/cli.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "base/terminal_text.h"
#include "base/units.h"
#include "execution/runtime.h"
#include "interaction/chat_cli.h"
#include "interaction/cli_util.h"
#include "interaction/report.h"
#include "interaction/secrets_cli.h"
#include "interaction/tools_cli.h"
#include "interaction/trust_cli.h"
#include "orchestration/exec_service.h"

namespace moat {

namespace {

// The limits of the compile step (`moat run`, `moat compile`) given as flags into `eo`;
// unset ones come from the environment or the defaults (EngineOptions).
Status ApplyCompileFlags(const LimitFlags& f, EngineOptions* eo) {
  auto given = ParseLimitFlags(f);
  if (!given) return given.error();
  for (const GivenLimit& g : *given) {
    if (g.field->compile == &CompileLimits::timeout_us) eo->compile_timeout_us = g.value;
    if (g.field->compile == &CompileLimits::memory_bytes) eo->compile_memory_bytes = g.value;
  }
  CompileLimits l;
  l.timeout_us = eo->compile_timeout_us.value_or(l.timeout_us);
  l.memory_bytes = eo->compile_memory_bytes.value_or(l.memory_bytes);
  return l.Validate();
}

struct RunOptions {
  std::vector<std::string> dirs;
  std::vector<std::string> envs;
  LimitFlags limits;  // the run's and the compile step's
  std::vector<std::string> hide;
  bool no_default_hide = false;
  std::vector<std::string> protect;
  bool no_default_protect = false;
  bool deterministic = false;
  std::string seed;
  std::string report = "none";
  std::string report_file;
  NetFlags net;
};

// While a module compiles, the first SIGINT or SIGTERM cancels the compile (its processes
// are killed and its work folder removed) instead of killing moat; a second one, or one
// after the compile, acts as usual.
CancelToken* g_compile_cancel = nullptr;

void CancelCompile(int) {
  if (g_compile_cancel) g_compile_cancel->Cancel();
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

class InterruptCancels {
 public:
  explicit InterruptCancels(CancelToken* cancel) {
    g_compile_cancel = cancel;
    signal(SIGINT, CancelCompile);
    signal(SIGTERM, CancelCompile);
  }
  ~InterruptCancels() {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    g_compile_cancel = nullptr;
  }
  InterruptCancels(const InterruptCancels&) = delete;
  InterruptCancels& operator=(const InterruptCancels&) = delete;
};

int GuestExitStatus(const ExecResult& r) {
  if (r.status != RunStatus::kOk) return RunStatusExitCode(r.status);
  if (r.exit_code < 0 || r.exit_code > 255) return 255;
  return r.exit_code;
}

int RunCommand(const RunOptions& o, const std::vector<std::string>& rest) {
  if (rest.empty()) return Usage("run: missing MODULE.wasm");
  if (o.report != "json" && o.report != "text" && o.report != "none") {
    return Usage("--report must be json, text or none");
  }
  ExecRequest req;
  req.inherit_stdio = true;
  if (auto s = ApplyLimitFlags(o.limits, &req.limits); !s) return Usage(s.error().message);
  for (const std::string& d : o.dirs) {
    auto m = ParseDir(d);
    if (!m) return Usage(m.error().message);
    req.mounts.push_back(*m);
  }
  if (auto s = ParseEnv(o.envs, &req.env); !s) return Usage(s.error().message);
  if (o.no_default_hide) req.hidden.clear();
  for (const std::string& p : o.hide) {
    if (p.empty()) return Usage("--hide needs a pattern");
    req.hidden.push_back(p);
  }
  if (o.no_default_protect) req.protect.clear();
  for (const std::string& p : o.protect) {
    if (p.empty()) return Usage("--protect needs a pattern");
    req.protect.push_back(p);
  }
  req.deterministic = o.deterministic || !o.seed.empty();
  if (!o.seed.empty()) {
    auto v = ParseCount(o.seed);
    if (!v) return Usage("--seed: " + v.error().message);
    req.seed = *v;
  }
  if (!o.net.allow_net.empty()) req.network.rule_sets = {o.net.allow_net};
  req.network.networks = o.net.allow_private;
  req.network.ca_file = o.net.ca_file;
  auto secrets = LoadSecrets(o.net);
  if (!secrets) return Usage(secrets.error().message);
  req.network.secrets = std::move(*secrets);
  req.argv = rest;                // argv[0] is the module path, as wasmtime passes it
  rt::SetMemoryRecycling(false);  // one run, then exit

  EngineOptions eo;
  eo.show_progress = true;
  if (!o.net.secrets_file.empty()) eo.own_paths.push_back(o.net.secrets_file);
  if (auto s = ApplyCompileFlags(o.limits, &eo); !s) return Usage(s.error().message);
  auto svc = ExecService::Create(eo);
  if (!svc) {
    fprintf(stderr, "moat: %s\n", svc.error().message.c_str());
    return RunStatusExitCode(RunStatus::kInternal);
  }
  // An explicit --timeout bounds the whole run, its compile included: the guest gets what
  // the compile left. (The default timeout is the guest's alone; the compile has limits of
  // its own.) Ctrl-C or SIGTERM while compiling cancels the compile.
  auto cancel = std::make_shared<CancelToken>();
  req.cancel = cancel;
  uint64_t compile_bound_us = o.limits.Given("timeout") ? req.limits.timeout_us : 0;
  auto start = std::chrono::steady_clock::now();
  Result<ModuleHandle> module = [&] {
    InterruptCancels interrupts(cancel.get());
    return (*svc)->Load(rest[0], {compile_bound_us, cancel});
  }();
  ExecResult r;
  if (!module) {
    r = ExecService::LoadFailed(module.error(), req);
  } else {
    auto spent = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
    r = (*svc)->RunLoaded(*module, std::move(req),
                          compile_bound_us > 0 ? static_cast<uint64_t>(spent) : 0);
  }

  if (r.status != RunStatus::kOk) {
    fprintf(stderr, "moat: %s: %s\n", std::string(RunStatusName(r.status)).c_str(),
            TerminalSafe(r.message, TextKind::kProse).c_str());
  }
  std::string report;
  if (o.report == "json") report = ReportJson(r);
  if (o.report == "text") report = ReportText(r);
  if (!report.empty()) {
    if (!o.report_file.empty()) {
      std::ofstream f(o.report_file, std::ios::trunc);
      f << report << "\n";
      if (!f) fprintf(stderr, "moat: cannot write report to %s\n", o.report_file.c_str());
    } else {
      fprintf(stderr, "%s\n", report.c_str());
    }
  }
  return GuestExitStatus(r);
}

int CompileCommand(const std::vector<std::string>& modules, const LimitFlags& flags) {
  EngineOptions eo;
  eo.show_progress = true;
  if (auto s = ApplyCompileFlags(flags, &eo); !s) return Usage(s.error().message);
  auto engine = Engine::Create(eo);
  if (!engine) {
    fprintf(stderr, "moat: %s\n", engine.error().message.c_str());
    return RunStatusExitCode(RunStatus::kInternal);
  }
  int rc = 0;
  auto cancel = std::make_shared<CancelToken>();
  for (const std::string& path : modules) {
    Result<ModuleHandle> h = [&] {
      InterruptCancels interrupts(cancel.get());
      return (*engine)->LoadFile(path, {0, cancel});
    }();
    if (!h) {
      fprintf(stderr, "moat: %s: %s\n", path.c_str(), h.error().message.c_str());
      if (cancel->cancelled()) return RunStatusExitCode(RunStatus::kCancelled);
      rc = h.error().code == ErrorCode::kInvalidModule || h.error().code == ErrorCode::kIo
               ? RunStatusExitCode(RunStatus::kInvalidModule)
               : RunStatusExitCode(RunStatus::kInternal);
      continue;
    }
    if (h->cache_hit) {
      printf("%s  %s  cached\n", h->sha256.c_str(), path.c_str());
    } else {
      printf("%s  %s  compiled in %.0f ms\n", h->sha256.c_str(), path.c_str(), h->compile_ms);
    }
  }
  return rc;
}

int CacheCommand(bool list, bool clear) {
  auto cache = CompileCache::Open(CompileCache::DefaultDir());
  if (!cache) {
    fprintf(stderr, "moat: %s\n", cache.error().message.c_str());
    return RunStatusExitCode(RunStatus::kInternal);
  }
  if (clear) {
    auto n = cache->Clear();
    if (!n) {
      fprintf(stderr, "moat: %s\n", n.error().message.c_str());
      return RunStatusExitCode(RunStatus::kInternal);
    }
    printf("removed %zu entries from %s\n", *n, cache->dir().c_str());
    return 0;
  }
  if (list) {
    auto entries = cache->List();
    if (!entries) {
      fprintf(stderr, "moat: %s\n", entries.error().message.c_str());
      return RunStatusExitCode(RunStatus::kInternal);
    }
    // Entries built by another compiler or pipeline version are never loaded; mark them.
    std::string current_tag;
    EngineOptions eo;
    eo.cache_dir = cache->dir();
    if (auto engine = Engine::Create(eo)) current_tag = (*engine)->CacheKey("");
    printf("# cache: %s (%zu entries)\n", cache->dir().c_str(), entries->size());
    for (const CacheEntry& e : *entries) {
      size_t dash = e.key.find('-');
      std::string module = e.key.substr(0, dash);
      bool current = dash != std::string::npos && e.key.substr(dash) == current_tag;
      printf("%s  %8llu KiB  %s%s\n", TerminalSafe(module).c_str(),
             static_cast<unsigned long long>(e.size_bytes >> 10),
             TerminalSafe(e.object_path).c_str(),
             current ? "" : "  (stale: other compiler or pipeline version)");
    }
  }
  return 0;
}

}  // namespace

int CliMain(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a closed stdout is an error to report, not a death
  CLI::App app{"moat: a secure runtime for AI agent tools (WebAssembly sandbox)", "moat"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moat 0.1.0");

  RunOptions ro;
  CLI::App* run = app.add_subcommand("run", "Run a wasm32-wasi command module in the sandbox");
  run->prefix_command();  // everything from MODULE on belongs to the guest
  run->add_option("--dir", ro.dirs, "Mount HOST[::GUEST][:ro] into the guest");
  run->add_option("--env", ro.envs, "Set KEY=VALUE (or pass KEY from the host)");
  AddLimitFlags(run, kLimitRunFlag, &ro.limits);
  run->add_option("--hide", ro.hide,
                  "Hide paths matching PATTERN inside mounts (adds to the defaults)");
  run->add_flag("--no-default-hide", ro.no_default_hide,
                "Do not hide .env, *.pem, *.key, id_rsa*, .git/config, ... by default");
  run->add_option("--protect", ro.protect,
                  "Keep paths matching PATTERN read-only inside writable mounts (adds to the "
                  "default, .git)");
  run->add_flag("--no-default-protect", ro.no_default_protect,
                "Do not protect .git (at any depth) by default");
  run->add_flag("--deterministic", ro.deterministic,
                "Fixed clock origin, clocks advance with fuel, seeded random");
  run->add_option("--seed", ro.seed, "Seed for random_get (implies --deterministic)");
  AddNetFlags(run, &ro.net);
  run->add_option("--report", ro.report, "Write a run report: json, text or none");
  run->add_option("--report-file", ro.report_file, "Write the report here instead of stderr");
  run->footer("Usage: moat run [OPTIONS] MODULE.wasm [ARGS...]");

  std::vector<std::string> compile_modules;
  CLI::App* compile =
      app.add_subcommand("compile", "Validate and precompile modules into the cache");
  compile->add_option("modules", compile_modules, "Modules to compile")->required();
  LimitFlags compile_flags;
  AddLimitFlags(compile, kLimitCompileFlag, &compile_flags);

  CLI::App* cache = app.add_subcommand("cache", "Inspect or clear the compile cache");
  cache->require_subcommand(1);
  CLI::App* cache_ls = cache->add_subcommand("ls", "List cached modules");
  CLI::App* cache_clear = cache->add_subcommand("clear", "Remove every cached module");

  ToolCommands tool_commands(&app);
  SecretCommands secret_commands(&app);
  ChatCommands chat_commands(&app);
  TrustCommands trust_commands(&app);
  OneValuePerFlag(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kUsageError;
  }
  if (run->parsed()) return RunCommand(ro, run->remaining());
  if (compile->parsed()) return CompileCommand(compile_modules, compile_flags);
  if (cache->parsed()) return CacheCommand(cache_ls->parsed(), cache_clear->parsed());
  if (int rc = tool_commands.Dispatch(); rc >= 0) return rc;
  if (int rc = secret_commands.Dispatch(); rc >= 0) return rc;
  if (int rc = chat_commands.Dispatch(); rc >= 0) return rc;
  if (int rc = trust_commands.Dispatch(); rc >= 0) return rc;
  return kUsageError;
}

}  // namespace moat
