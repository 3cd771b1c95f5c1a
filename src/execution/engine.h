// The execution tier's public face: load a module through the pipeline and run it.
// Thread-safe: one Engine serves many threads, each running many instances.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

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
  // What moat.http_request goes through. Null: the libcurl backend, loaded from the plugin
  // beside the executable on a run's first request (net/http_backend.h).
  std::shared_ptr<net::HttpBackend> http_backend;
};

class CompiledModule;
class Instance;

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

  // Validates, meters, translates and compiles (or finds in the cache) and loads.
  Result<ModuleHandle> Load(std::span<const uint8_t> wasm, const std::string& label);
  Result<ModuleHandle> LoadFile(const std::string& path);

  // Runs one fresh instance of a loaded module. Never throws; every outcome is a status.
  ExecResult Run(const ModuleHandle& module, const ExecRequest& request) const;
  // The contract form: finds the module by request.module_sha256 among loaded ones.
  ExecResult Run(const ExecRequest& request) const;

  // A live instance: instantiated now (fresh memory, data segments, start function),
  // started later, on any thread. Failures surface as the result of Start().
  std::unique_ptr<Instance> Instantiate(const ModuleHandle& module, ExecRequest request) const;

  const CompileCache& cache() const { return cache_; }
  std::string CacheKey(const std::string& wasm_sha256) const;

 private:
  Engine(EngineOptions options, CompileCache cache, CCompiler cc);

  EngineOptions options_;
  CompileCache cache_;
  CCompiler cc_;
  std::string config_tag_;
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
