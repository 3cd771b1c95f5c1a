#include "orchestration/session/session_undo.h"

#include <nlohmann/json.hpp>

namespace moat::session {

Result<undo::DiffReport> SessionDiff(const Workspace& workspace, const std::string& id,
                                     uint64_t step) {
  auto dir = workspace.checkpoints_dir(id);
  if (!dir) return dir.error();
  undo::DiffOptions options;
  options.step = step;
  options.workspace = workspace.root();
  return undo::Diff(*dir, options);
}

Result<undo::UndoReport> SessionUndo(const Workspace& workspace, const std::string& id,
                                     undo::UndoOptions options,
                                     std::shared_ptr<agent::AuditLog> audit) {
  auto dir = workspace.checkpoints_dir(id);
  if (!dir) return dir.error();
  options.workspace = workspace.root();
  // The log first: an undo that cannot be recorded does not run (fail closed).
  if (audit == nullptr && !options.dry_run) {
    if (auto st = workspace.EnsureStateDir(); !st) return st.error();
    auto opened = agent::AuditLog::Open(workspace.audit_path());
    if (!opened) return MakeError(ErrorCode::kAudit, opened.error().message);
    audit = std::move(*opened);
  }
  auto report = undo::Undo(*dir, options);
  if (!report) return report.error();
  if (options.dry_run || report->refused || report->calls.empty()) return report;
  nlohmann::json calls = nlohmann::json::array();
  for (uint64_t c : report->calls) calls.push_back(c);
  nlohmann::json record = {{"type", "undo"},
                           {"session", id},
                           {"to_step", options.to_step},
                           {"calls", calls},
                           {"files", report->files()},
                           {"forced", options.force}};
  if (auto appended = audit->Append(std::move(record)); !appended) {
    return MakeError(ErrorCode::kAudit, "the undo of session " + id +
                                            " is done but the audit log did not take its "
                                            "record: " +
                                            appended.error().message);
  }
  if (auto flushed = audit->Flush(); !flushed) {
    return MakeError(ErrorCode::kAudit, "the undo of session " + id +
                                            " is done but its audit record is not on disk: " +
                                            flushed.error().message);
  }
  return report;
}

Result<std::vector<std::string>> PruneCheckpoints(const Workspace& workspace,
                                                  uint64_t older_than_seconds) {
  return undo::Prune(workspace.state_dir(), older_than_seconds);
}

Status DeleteSessionCheckpoints(const Workspace& workspace, const std::string& id) {
  auto dir = workspace.checkpoints_dir(id);
  if (!dir) return dir.error();
  return undo::DeleteCheckpoints(*dir);
}

}  // namespace moat::session
