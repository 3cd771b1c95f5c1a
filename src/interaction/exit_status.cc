#include "interaction/exit_status.h"

namespace moat {

int ExitStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kDenied:
    case ErrorCode::kLimit: return kExitUsage;
    case ErrorCode::kAudit: return kExitAudit;
    case ErrorCode::kIo: return kExitIo;
    case ErrorCode::kInvalidModule:
    case ErrorCode::kCompile:
    case ErrorCode::kInternal: return kExitInternal;
  }
  return kExitInternal;
}

int ExitStatusFor(agent::StopKind stop) {
  using agent::StopKind;
  switch (stop) {
    case StopKind::kCompleted: return kExitOk;
    case StopKind::kProviderError: return kExitFailed;
    case StopKind::kCancelled: return kExitCancelled;
    case StopKind::kAuditFailed: return kExitAudit;
    case StopKind::kSteps:
    case StopKind::kToolCalls:
    case StopKind::kInputTokens:
    case StopKind::kOutputTokens:
    case StopKind::kCost:
    case StopKind::kFuel:
    case StopKind::kWallTime:
    case StopKind::kGovernor: return kExitStopped;
  }
  return kExitInternal;
}

}  // namespace moat
