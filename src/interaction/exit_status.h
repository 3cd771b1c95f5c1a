// The exit statuses of moat's commands, in one table. A sandboxed run's own statuses
// (trap 134, fuel 122, ...) are RunStatusExitCode (execution/outcome.h).
#pragma once

#include "base/result.h"
#include "orchestration/agent/events.h"

namespace moat {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;     // the model's provider failed; a check found a break
inline constexpr int kExitUsage = 2;      // the user's input is wrong (flags, files, ids)
inline constexpr int kExitStopped = 4;    // a budget or the loop governor ended an agent run
inline constexpr int kExitAudit = 5;      // the audit log cannot be opened or take a record
inline constexpr int kExitInternal = 70;  // a bug, or the machine cannot do it (EX_SOFTWARE)
inline constexpr int kExitIo = 74;        // the file system failed (EX_IOERR)
inline constexpr int kExitCancelled = 130;

// For an error that ends a command before it does its work.
int ExitStatusFor(ErrorCode code);
// For an agent run's end.
int ExitStatusFor(agent::StopKind stop);

}  // namespace moat
