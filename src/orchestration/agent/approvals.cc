#include "orchestration/agent/approvals.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

Error Bad(const std::string& path, const std::string& m) {
  return MakeError(ErrorCode::kInvalidArgument, path + ": " + m);
}

}  // namespace

Result<ApprovalStore> ApprovalStore::Load(const std::string& path) {
  ApprovalStore s;
  auto bytes = ReadFile(path, 1 << 20);
  if (!bytes) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return s;
    return bytes.error();
  }
  json j = json::parse(bytes->begin(), bytes->end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("approvals") ||
      !j["approvals"].is_array()) {
    return Bad(path, "expected {\"approvals\": [...]}");
  }
  for (const json& e : j["approvals"]) {
    if (!e.is_object() || !e.contains("tool") || !e["tool"].is_string() ||
        !e.contains("module_sha256") || !e["module_sha256"].is_string()) {
      return Bad(path, "each approval needs \"tool\" and \"module_sha256\"");
    }
    s.entries_.push_back({e["tool"], e["module_sha256"], e.value("granted_at", "")});
  }
  return s;
}

Status ApprovalStore::Save(const std::string& path) const {
  json list = json::array();
  for (const auto& e : entries_) {
    list.push_back(
        {{"tool", e.tool}, {"module_sha256", e.module_sha256}, {"granted_at", e.granted_at}});
  }
  std::string text = json({{"approvals", list}}).dump(2) + "\n";
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return WriteFileAtomic(dir, name, text.data(), text.size(), 0600);
}

bool ApprovalStore::Allows(const std::string& tool, const std::string& sha256) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const StandingApproval& e) {
    return e.tool == tool && e.module_sha256 == sha256;
  });
}

void ApprovalStore::Add(const std::string& tool, const std::string& sha256) {
  Remove(tool);
  time_t t = time(nullptr);
  tm g{};
  gmtime_r(&t, &g);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  entries_.push_back({tool, sha256, buf});
}

bool ApprovalStore::Remove(const std::string& tool) {
  size_t before = entries_.size();
  std::erase_if(entries_, [&](const StandingApproval& e) { return e.tool == tool; });
  return entries_.size() != before;
}

}  // namespace moat::agent
