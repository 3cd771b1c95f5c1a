// The orchestration tier's door to execution: load a module file and run a request,
// with every failure folded into an ExecResult status (one outcome taxonomy).
#pragma once

#include <memory>
#include <string>

#include "execution/engine.h"

namespace moat {

class ExecService {
 public:
  static Result<std::unique_ptr<ExecService>> Create(EngineOptions options);

  // Loads (compiling or from the cache) and runs. A refused module is status
  // invalid_module with the pipeline's one-line reason in `message`.
  ExecResult RunFile(const std::string& module_path, ExecRequest request);

  Engine& engine() { return *engine_; }

 private:
  explicit ExecService(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
  std::unique_ptr<Engine> engine_;
};

}  // namespace moat
