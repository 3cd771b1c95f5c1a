// The one outcome taxonomy of a run, used the same way by every front end.
#pragma once

#include <cstdint>
#include <string_view>

namespace moat {

enum class RunStatus : uint8_t {
  kOk,             // the guest returned from _start or called proc_exit
  kTrap,           // wasm trap: out of bounds, unreachable, divide by zero, stack exhausted...
  kFuelExhausted,  // the fuel budget ran out
  kTimeout,        // the wall-clock deadline passed
  kMemoryLimit,    // the module needs more linear memory than granted
  kOutputLimit,    // stdout+stderr exceeded the output cap
  kCancelled,      // cancelled from another thread
  kDenied,         // a capability was refused and the run could not continue
  kInvalidModule,  // the pipeline refused the module
  kCrashed,        // the executor process died (worker mode)
  kInternal,       // a bug in moat
};

std::string_view RunStatusName(RunStatus s);

// Exit status of `moat run` for outcomes other than a guest exit (documented in README).
int RunStatusExitCode(RunStatus s);

enum class TrapKind : uint8_t {
  kNone,
  kOutOfBounds,
  kIntegerOverflow,
  kDivideByZero,
  kInvalidConversion,
  kUnreachable,
  kIndirectCall,
  kStackExhausted,
  kUncaughtException,
};

std::string_view TrapKindName(TrapKind k);
std::string_view TrapKindMessage(TrapKind k);

}  // namespace moat
