#include "execution/outcome.h"

namespace moat {

std::string_view RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kOk: return "ok";
    case RunStatus::kTrap: return "trap";
    case RunStatus::kFuelExhausted: return "fuel_exhausted";
    case RunStatus::kTimeout: return "timeout";
    case RunStatus::kMemoryLimit: return "memory_limit";
    case RunStatus::kOutputLimit: return "output_limit";
    case RunStatus::kCancelled: return "cancelled";
    case RunStatus::kDenied: return "denied";
    case RunStatus::kInvalidModule: return "invalid_module";
    case RunStatus::kCrashed: return "crashed";
    case RunStatus::kInternal: return "internal";
  }
  return "internal";
}

int RunStatusExitCode(RunStatus s) {
  switch (s) {
    case RunStatus::kOk: return 0;
    case RunStatus::kInvalidModule: return 120;
    case RunStatus::kDenied: return 121;
    case RunStatus::kFuelExhausted: return 122;
    case RunStatus::kTimeout: return 123;
    case RunStatus::kMemoryLimit: return 124;
    case RunStatus::kOutputLimit: return 125;
    case RunStatus::kCancelled: return 130;
    case RunStatus::kTrap: return 134;
    case RunStatus::kCrashed: return 139;
    case RunStatus::kInternal: return 70;
  }
  return 70;
}

std::string_view TrapKindName(TrapKind k) {
  switch (k) {
    case TrapKind::kNone: return "none";
    case TrapKind::kOutOfBounds: return "out_of_bounds";
    case TrapKind::kIntegerOverflow: return "integer_overflow";
    case TrapKind::kDivideByZero: return "integer_divide_by_zero";
    case TrapKind::kInvalidConversion: return "invalid_conversion";
    case TrapKind::kUnreachable: return "unreachable";
    case TrapKind::kIndirectCall: return "indirect_call";
    case TrapKind::kStackExhausted: return "stack_exhausted";
    case TrapKind::kUncaughtException: return "uncaught_exception";
  }
  return "none";
}

std::string_view TrapKindMessage(TrapKind k) {
  switch (k) {
    case TrapKind::kNone: return "";
    case TrapKind::kOutOfBounds: return "out of bounds memory or table access";
    case TrapKind::kIntegerOverflow: return "integer overflow";
    case TrapKind::kDivideByZero: return "integer divide by zero";
    case TrapKind::kInvalidConversion: return "invalid conversion to integer";
    case TrapKind::kUnreachable: return "unreachable instruction executed";
    case TrapKind::kIndirectCall: return "indirect call to a null or mistyped function";
    case TrapKind::kStackExhausted: return "call stack exhausted";
    case TrapKind::kUncaughtException: return "uncaught exception";
  }
  return "";
}

}  // namespace moat
