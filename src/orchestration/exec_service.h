// The orchestration tier's door to execution: load a module file and run a request,
// with every failure folded into an ExecResult status (one outcome taxonomy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "execution/engine.h"

namespace moat {

class ExecService {
 public:
  static Result<std::unique_ptr<ExecService>> Create(EngineOptions options);

  // Loads (compiling or from the cache) and runs. A refused module is status
  // invalid_module with the pipeline's one-line reason in `message`; a compile cut by the
  // request's timeout or cancel ends the run as timeout or cancelled.
  // The compile counts against the request's timeout: the guest gets what is left of it.
  ExecResult RunFile(const std::string& module_path, ExecRequest request);

  // RunFile's two halves, for a caller that acts between them (`moat run` handles Ctrl-C
  // differently while compiling). Load stops a compile at `control`'s timeout or cancel;
  // LoadFailed is the run's result for a load that failed (status as in RunFile).
  Result<ModuleHandle> Load(const std::string& module_path, const LoadControl& control);
  static ExecResult LoadFailed(const Error& error, const ExecRequest& request);
  // Runs a module whose load took `load_us` of the request's timeout: the guest gets what
  // is left (at least 1 ms), and a timeout's message says what the compile took.
  // load_us = 0: the whole timeout.
  ExecResult RunLoaded(const ModuleHandle& module, ExecRequest request, uint64_t load_us);

  Engine& engine() { return *engine_; }

 private:
  explicit ExecService(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
  std::unique_ptr<Engine> engine_;
};

}  // namespace moat
