#include "orchestration/exec_service.h"

namespace moat {

Result<std::unique_ptr<ExecService>> ExecService::Create(EngineOptions options) {
  auto engine = Engine::Create(std::move(options));
  if (!engine) return engine.error();
  return std::unique_ptr<ExecService>(new ExecService(std::move(*engine)));
}

ExecResult ExecService::RunFile(const std::string& module_path, ExecRequest request) {
  auto module = engine_->LoadFile(module_path);
  if (!module) {
    ExecResult r;
    const Error& e = module.error();
    r.status =
        e.code == ErrorCode::kInvalidModule ? RunStatus::kInvalidModule : RunStatus::kInternal;
    if (e.code == ErrorCode::kIo) r.status = RunStatus::kInvalidModule;  // unreadable file
    r.message = e.message;
    return r;
  }
  request.module_sha256 = module->sha256;
  return engine_->Run(*module, request);
}

}  // namespace moat
