// The execution tier's public face: load a module through the pipeline and run it.
// Thread-safe: one Engine serves many threads, each running many instances.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "execution/compile_cache.h"
#include "execution/exec.h"
#include "execution/module_pipeline.h"

namespace moat {
namespace net {
class HttpBackend;
}

struct EngineOptions {
  std::string cache_dir;       // empty: CompileCache::DefaultDir()
  bool meter_fuel = true;      // off only for overhead benchmarks
  bool show_progress = false;  // print compile progress to a terminal on stderr
  // Told of each compile a load waits for, on the loading thread: phase "translating" when
  // it starts, "compiling" when the C compiler starts, "done" or "failed" at the end (with
  // the seconds so far), so a front end can show it (an API emits an event).
  std::function<void(const std::string& label, std::string_view phase, double seconds)> on_compile;
  // Limits of each compile step (CompileLimits). Unset: $MOAT_COMPILE_TIMEOUT and
  // $MOAT_COMPILE_MEMORY when set, else the defaults.
  std::optional<uint64_t> compile_timeout_us;
  std::optional<uint64_t> compile_memory_bytes;
  // Files and folders of moat's own that no guest may see or change, beside the ones every
  // engine seals (Engine::own_paths_): a secrets file or provider config named by a flag.
  std::vector<std::string> own_paths;
  // What moat.http_request goes through. Null: the libcurl backend, loaded from the plugin
  // beside the executable on a run's first request (net/http_backend.h).
  std::shared_ptr<net::HttpBackend> http_backend;
};

class CompiledModule;
class Instance;

// What a load that compiles may also be stopped by: the run waiting for it.
struct LoadControl {
  uint64_t timeout_us = 0;  // the run's timeout; 0: only the compile limits
  std::shared_ptr<CancelToken> cancel;
};

// A module loaded into this process: shared, immutable, runnable from any thread.
struct ModuleHandle {
  std::shared_ptr<const CompiledModule> module;
  std::string sha256;
  ModuleShape shape;
  double compile_ms = 0;  // 0 when it came from the cache
  bool cache_hit = false;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(EngineOptions options);
  ~Engine();

  // Validates, meters, translates and compiles (or finds in the cache) and loads. A compile
  // runs under the compile limits and stops at the first of their deadline, the control's
  // timeout or its cancel: kLimit for the control's (the run ends as timeout or
  // cancelled), kInvalidModule naming the limit for the compile limits'.
  Result<ModuleHandle> Load(std::span<const uint8_t> wasm, const std::string& label,
                            const LoadControl& control = {});
  Result<ModuleHandle> LoadFile(const std::string& path, const LoadControl& control = {});

  // Runs one fresh instance of a loaded module. Never throws; every outcome is a status.
  ExecResult Run(const ModuleHandle& module, const ExecRequest& request) const;
  // The contract form: finds the module by request.module_sha256 among loaded ones.
  ExecResult Run(const ExecRequest& request) const;

  // A live instance: instantiated now (fresh memory, data segments, start function),
  // started later, on any thread. Failures surface as the result of Start().
  std::unique_ptr<Instance> Instantiate(const ModuleHandle& module, ExecRequest request) const;

  const CompileCache& cache() const { return cache_; }
  const CompileLimits& compile_limits() const { return compile_limits_; }
  std::string CacheKey(const std::string& wasm_sha256) const;

 private:
  Engine(EngineOptions options, CompileLimits compile_limits, CompileCache cache, CCompiler cc);

  EngineOptions options_;
  CompileLimits compile_limits_;
  CompileCache cache_;
  CCompiler cc_;
  std::string config_tag_;
  // moat's own paths (real), hidden and protected in every mount of every run, and never a
  // mount themselves: its config folder (secrets, provider config, tools, trust), its state
  // folder (approvals), this engine's compile cache, $MOAT_SECRETS_FILE, $MOAT_CONFIG and
  // the options' own_paths.
  std::vector<std::string> own_paths_;
  mutable std::mutex mu_;
  std::map<std::string, ModuleHandle> loaded_;  // by wasm sha256
};

// One instance of a module, with its own linear memory and host state.
class Instance {
 public:
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Runs _start with a fresh deadline. An instance runs once; later calls return the
  // first result again.
  ExecResult Start();
  // Linear memory currently committed, and its base (for measurements).
  uint64_t memory_bytes() const;
  const uint8_t* memory_base() const;

 private:
  friend class Engine;

 public:
  struct State;  // defined in engine.cc

 private:
  explicit Instance(std::unique_ptr<State> state);
  ExecResult Finish();
  static void RedactSecrets(State& st);
  std::unique_ptr<State> s_;
};

}  // namespace moat
