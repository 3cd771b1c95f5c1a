#include "orchestration/session/workspace.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/fs.h"
#include "base/utf8.h"
#include "orchestration/agent/approvals.h"
#include "orchestration/agent/session_store.h"

namespace moat::session {

Result<Workspace> Workspace::Open(const std::string& folder) {
  struct stat st {};
  if (folder.empty() || stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument, "workspace " + folder + " is not a directory");
  }
  char real[PATH_MAX];
  if (realpath(folder.c_str(), real) == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "cannot resolve workspace " + folder);
  }
  Workspace w;
  w.root_ = real;
  return w;
}

Status Workspace::EnsureStateDir() const { return EnsurePrivateDir(state_dir()); }

Result<std::string> Workspace::checkpoints_dir(const std::string& session_id) const {
  if (!agent::SessionStore::IsSessionId(session_id)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "\"" + session_id.substr(0, 64) + "\" is not a session id");
  }
  return checkpoints_root() + "/" + session_id;
}

std::string Workspace::TrustFile() { return agent::TrustStore::DefaultPath(); }
std::string Workspace::ApprovalsFile() { return agent::ApprovalStore::DefaultPath(); }

Result<agent::ResolvedPolicy> Workspace::ResolvePolicy(
    const std::string& policy_flag, const tools::Registry& registry,
    const std::map<std::string, agent::Price>& prices, agent::PolicyFile* file) const {
  std::string path = policy_flag.empty() ? policy_path() : policy_flag;
  auto read = agent::ReadPolicyFile(path);
  if (!read) return read.error();
  agent::PolicySource src;
  src.workspace = root_;
  src.file = *read;
  src.user_named = !policy_flag.empty();
  src.trust_file = TrustFile();
  src.tools = [&registry](const std::string& name) -> std::optional<tools::ToolManifest> {
    auto t = registry.Find(name);
    if (!t) return std::nullopt;
    return t->manifest;
  };
  src.user_prices = prices;
  auto r = agent::ResolvePolicy(src);
  if (!r) return r.error();
  if (file != nullptr) *file = std::move(*read);
  return r;
}

Result<std::string> Workspace::SystemPrompt() const {
  std::string path = system_prompt_path();
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::string(kDefaultSystemPrompt);
    return MakeError(ErrorCode::kIo, "cannot read " + path);
  }
  auto bytes = ReadFile(path, kMaxSystemPromptBytes);
  if (!bytes) {
    return MakeError(bytes.error().code, "system prompt " + path + ": " + bytes.error().message);
  }
  std::string text(bytes->begin(), bytes->end());
  if (text.find('\0') != std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "system prompt " + path + ": holds a NUL byte");
  }
  if (size_t bad = 0; !IsUtf8(text, &bad)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "system prompt " + path + ": not UTF-8 at byte " + std::to_string(bad));
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "system prompt " + path + ": is empty");
  }
  return text;
}

}  // namespace moat::session
