// A session's checkpoints as the front ends reach them (the CLI's `moat sessions diff`,
// `undo`, `prune`, `rm`, and the HTTP API): a workspace and a session id in, the undo
// tier's reports out (orchestration/undo/undo.h). An undo that changes files is recorded
// in the workspace's audit log: {"type":"undo", session, to_step, calls, files, forced}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "orchestration/agent/audit.h"
#include "orchestration/session/workspace.h"
#include "orchestration/undo/undo.h"

namespace moat::session {

// What the session's calls changed (all of them, or those of one step when `step` > 0).
Result<undo::DiffReport> SessionDiff(const Workspace& workspace, const std::string& id,
                                     uint64_t step);

// Undoes the session's calls from `options.to_step` on (undo::Undo; `workspace` is set
// here, and `roots`: the workspace, the writable mounts of its policy when the user trusts
// it, and the folders the caller put in `roots`, e.g. a policy the user named). `audit` is the
// workspace's log, opened here when null; a log that cannot be opened stops the undo before
// anything changes (kAudit), and one that cannot take the record after it is the error (the files
// are restored by then; the message says so).
Result<undo::UndoReport> SessionUndo(const Workspace& workspace, const std::string& id,
                                     undo::UndoOptions options,
                                     std::shared_ptr<agent::AuditLog> audit = nullptr);

// Removes the checkpoints of the workspace's sessions last written more than
// `older_than_seconds` ago; returns the session ids removed.
Result<std::vector<std::string>> PruneCheckpoints(const Workspace& workspace,
                                                  uint64_t older_than_seconds);

// Removes one session's checkpoints (none there is not an error).
Status DeleteSessionCheckpoints(const Workspace& workspace, const std::string& id);

}  // namespace moat::session
