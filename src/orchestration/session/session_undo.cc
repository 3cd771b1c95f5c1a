#include "orchestration/session/session_undo.h"

#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "orchestration/agent/trust.h"

namespace moat::session {

namespace {

// Where an undo may change things: the workspace, and the writable folders its policy
// mounts when the user trusts that policy (a journal came with the workspace's files and
// could name any folder), plus what the caller adds (mounts of a policy the user named).
std::vector<std::string> UndoRoots(const Workspace& workspace, std::vector<std::string> extra) {
  std::vector<std::string> roots = {workspace.root()};
  auto file = agent::ReadPolicyFile(workspace.policy_path());
  if (file && file->exists) {
    auto record = agent::TrustStore::Find(Workspace::TrustFile(), workspace.root());
    if (record && *record && (*record)->policy_sha256 == file->sha256) {
      for (const Mount& m : file->policy.mounts) {
        if (!m.read_only) extra.push_back(m.host_path);
      }
    }
  }
  for (const std::string& p : extra) {
    if (char* real = realpath(p.c_str(), nullptr)) {
      roots.emplace_back(real);
      free(real);
    }
  }
  return roots;
}

}  // namespace

Result<undo::DiffReport> SessionDiff(const Workspace& workspace, const std::string& id,
                                     uint64_t step) {
  auto dir = workspace.checkpoints_dir(id);
  if (!dir) return dir.error();
  undo::DiffOptions options;
  options.step = step;
  options.workspace = workspace.root();
  options.roots = UndoRoots(workspace, {});
  return undo::Diff(*dir, options);
}

Result<undo::UndoReport> SessionUndo(const Workspace& workspace, const std::string& id,
                                     undo::UndoOptions options,
                                     std::shared_ptr<agent::AuditLog> audit) {
  auto dir = workspace.checkpoints_dir(id);
  if (!dir) return dir.error();
  options.workspace = workspace.root();
  options.roots = UndoRoots(workspace, std::move(options.roots));
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
