#include "orchestration/agent/approvals.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/units.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxStoreBytes = 16 << 20;

Error Bad(const std::string& path, const std::string& m) {
  return MakeError(ErrorCode::kInvalidArgument, path + ": " + m);
}

// The whole store, checked: {"workspaces": {PATH: [approval, ...]}}.
Result<json> Parse(const std::string& path, const std::optional<std::string>& text) {
  if (!text) return json{{"workspaces", json::object()}};
  auto parsed = ParseJson(*text);
  json j = parsed ? std::move(*parsed) : json();
  if (j.is_discarded() || !j.is_object() || !j.contains("workspaces") ||
      !j["workspaces"].is_object()) {
    return Bad(path, "expected {\"workspaces\": {...}}");
  }
  for (const auto& [ws, list] : j["workspaces"].items()) {
    if (!list.is_array()) return Bad(path, "the approvals of " + ws + " are not a list");
    for (const json& e : list) {
      if (!e.is_object() || !e.contains("tool") || !e["tool"].is_string() ||
          !e.contains("tool_digest") || !e["tool_digest"].is_string() ||
          (e.contains("granted_at") && !e["granted_at"].is_string())) {
        return Bad(path, "each approval needs \"tool\" and \"tool_digest\"");
      }
    }
  }
  return j;
}

// Drops the approvals of `tool` from a list; returns how many there were.
size_t DropTool(json& list, const std::string& tool) {
  json kept = json::array();
  for (const json& e : list) {
    if (e["tool"] != tool) kept.push_back(e);
  }
  size_t dropped = list.size() - kept.size();
  list = std::move(kept);
  return dropped;
}

// Changes the workspace's list under the store's lock.
Status Update(const std::string& path, const std::string& workspace,
              const std::function<void(json& list)>& change) {
  if (path.empty()) return MakeError(ErrorCode::kInvalidArgument, "no approval store (no HOME)");
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (auto s = EnsurePrivateDir(path.substr(0, slash)); !s) return s.error();
  }
  return UpdateFileLocked(path, kMaxStoreBytes,
                          [&](const std::optional<std::string>& text) -> Result<std::string> {
                            auto j = Parse(path, text);
                            if (!j) return j.error();
                            json& all = (*j)["workspaces"];
                            json list = all.contains(workspace) ? all[workspace] : json::array();
                            change(list);
                            if (list.empty()) {
                              all.erase(workspace);
                            } else {
                              all[workspace] = list;
                            }
                            return DumpJson(*j, 2) + "\n";
                          });
}

}  // namespace

std::string ApprovalStore::DefaultPath() {
  std::string dir = UserStateDir();
  return dir.empty() ? "" : dir + "/approvals.json";
}

Result<ApprovalStore> ApprovalStore::Load(const std::string& path, const std::string& workspace) {
  ApprovalStore s;
  if (path.empty()) return s;
  std::optional<std::string> text;
  auto bytes = ReadFile(path, kMaxStoreBytes);
  if (bytes) {
    text.emplace(bytes->begin(), bytes->end());
  } else if (access(path.c_str(), F_OK) == 0 || errno != ENOENT) {
    return bytes.error();
  }
  auto j = Parse(path, text);
  if (!j) return j.error();
  const json& all = (*j)["workspaces"];
  if (!all.contains(workspace)) return s;
  for (const json& e : all[workspace]) {
    s.entries_.push_back({e["tool"], e["tool_digest"], e.value("granted_at", "")});
  }
  return s;
}

Status ApprovalStore::Grant(const std::string& path, const std::string& workspace,
                            const std::string& tool, const std::string& digest) {
  return Update(path, workspace, [&](json& list) {
    DropTool(list, tool);
    list.push_back({{"tool", tool}, {"tool_digest", digest}, {"granted_at", UtcNowIso()}});
  });
}

Result<bool> ApprovalStore::Revoke(const std::string& path, const std::string& workspace,
                                   const std::string& tool) {
  bool found = false;
  auto s = Update(path, workspace, [&](json& list) { found = DropTool(list, tool) > 0; });
  if (!s) return s.error();
  return found;
}

bool ApprovalStore::Allows(const std::string& tool, const std::string& digest) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const StandingApproval& e) {
    return e.tool == tool && e.tool_digest == digest;
  });
}

}  // namespace moat::agent
