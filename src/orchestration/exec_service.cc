#include "orchestration/exec_service.h"

#include <chrono>

namespace moat {

Result<std::unique_ptr<ExecService>> ExecService::Create(EngineOptions options) {
  auto engine = Engine::Create(std::move(options));
  if (!engine) return engine.error();
  return std::unique_ptr<ExecService>(new ExecService(std::move(*engine)));
}

Result<ModuleHandle> ExecService::Load(const std::string& module_path, const LoadControl& control) {
  return engine_->LoadFile(module_path, control);
}

ExecResult ExecService::LoadFailed(const Error& e, const ExecRequest& request) {
  ExecResult r;
  r.status = e.code == ErrorCode::kInvalidModule ? RunStatus::kInvalidModule : RunStatus::kInternal;
  if (e.code == ErrorCode::kIo) r.status = RunStatus::kInvalidModule;  // unreadable file
  if (e.code == ErrorCode::kLimit) {  // the run's timeout or cancel stopped its compile
    bool cancelled = request.cancel && request.cancel->cancelled();
    r.status = cancelled ? RunStatus::kCancelled : RunStatus::kTimeout;
  }
  r.message = e.message;
  return r;
}

ExecResult ExecService::RunLoaded(const ModuleHandle& module, ExecRequest request,
                                  uint64_t load_us) {
  uint64_t timeout_us = request.limits.timeout_us;
  if (load_us > 0 && timeout_us > 0) {
    request.limits.timeout_us = load_us + 1000 >= timeout_us ? 1000 : timeout_us - load_us;
  }
  request.module_sha256 = module.sha256;
  ExecResult r = engine_->Run(module, request);
  if (r.status == RunStatus::kTimeout && load_us >= 1000 && !module.cache_hit) {
    r.message = "deadline of " + std::to_string(timeout_us / 1000) +
                " ms passed; compiling the module took " + std::to_string(load_us / 1000) +
                " ms of it (moat compile precompiles it)";
  }
  return r;
}

ExecResult ExecService::RunFile(const std::string& module_path, ExecRequest request) {
  // A compile the run waits for ends with the run's timeout or cancel too.
  auto start = std::chrono::steady_clock::now();
  auto module = Load(module_path, {request.limits.timeout_us, request.cancel});
  if (!module) return LoadFailed(module.error(), request);
  auto spent = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count();
  return RunLoaded(*module, std::move(request), static_cast<uint64_t>(spent));
}

}  // namespace moat
