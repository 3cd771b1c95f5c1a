// Whether a workspace's own policy may widen what tools do, and what it would widen.
//
// A workspace is often someone else's (a cloned repository), and so is its
// .moat/policy.json. What the file narrows applies as found, since it can only take power
// away: a tool denied or asked about, lower tool limits and budgets, a stricter loop
// governor, fewer calls at once, a request rate, more protected paths, higher prices,
// more untrusted paths, a stricter decision after untrusted input.
// What it widens beyond moat's defaults applies only once the user has trusted the file:
// mounts beside the workspace, network and private-network grants, stored secrets, a
// tool allowed that would be asked about, tool limits above the tool's own, higher
// budgets or governor thresholds, no cost limit, more calls at once, a price below the
// model's known one (which loosens the cost budget), a decision after untrusted input
// below the default (after_untrusted network "allow").
//
// Trust is a record in the user's config folder (UserConfigDir()/trust.json, never in
// the workspace) binding the workspace's real path to the sha256 of the policy file's
// bytes, so any edit of the file makes it untrusted again. A policy file the user names
// (moat chat --policy) is the user's own and applies in full. Front ends (the CLI, the
// web UI, the MCP server) call ResolvePolicy, show `widening` in plain words, ask, and
// record a yes with TrustStore::Trust.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "orchestration/agent/policy.h"
#include "orchestration/tools/manifest.h"

namespace moat::agent {

// A policy file as read: parsed from exactly the bytes its digest is of.
struct PolicyFile {
  std::string path;
  bool exists = false;
  std::string sha256;  // hex; "" when the file is missing
  Policy policy;       // the defaults when the file is missing
};
// A missing file is the default policy; a malformed one is an error naming the field.
Result<PolicyFile> ReadPolicyFile(const std::string& path);

// The manifest of an installed tool, or nullopt when there is no such tool: what the tool
// asks for by default (its decision follows from its capabilities; its limits).
using ManifestLookup = std::function<std::optional<tools::ToolManifest>(const std::string& name)>;

struct PolicyReview {
  // Each grant beyond moat's defaults, as one plain sentence ("mounts \"/home/u\" at
  // \"/home\", read-write"); values from the file are quoted and JSON-escaped, and a front
  // end still prints them through its own escaping. Empty: the policy widens nothing.
  std::vector<std::string> widening;
  // The defaults with only what the policy narrows.
  Policy narrowed;
};
// `user_prices`: prices from the user's own configuration; with the built-in table, the
// floor below which a policy's price is a widening. A rule for a tool `tools` does not
// know (not installed) counts as widening when it allows the tool or sets its limits.
PolicyReview ReviewPolicy(const Policy& policy, const ManifestLookup& tools,
                          const std::map<std::string, Price>& user_prices = {});

struct TrustRecord {
  std::string workspace;  // real path
  std::string policy_sha256;
  std::string trusted_at;
};

// The user's trust records: {"workspaces": {PATH: {"policy_sha256": ..., "trusted_at": ...}}}.
// Changes are read-modify-write under an flock on FILE.lock with an atomic replace.
class TrustStore {
 public:
  // UserConfigDir()/trust.json; "" when the user has no home folder.
  static std::string DefaultPath();
  static Result<std::optional<TrustRecord>> Find(const std::string& path,
                                                 const std::string& workspace);
  // Trusts this digest of the workspace's policy (replacing an earlier record).
  static Status Trust(const std::string& path, const std::string& workspace,
                      const std::string& policy_sha256);
  // false when the workspace had no record.
  static Result<bool> Revoke(const std::string& path, const std::string& workspace);
};

enum class PolicyTrust {
  kNothingToTrust,  // no file, or one that widens nothing: it applies as found
  kUserNamed,       // the user named the file: it applies in full
  kTrusted,         // a trust record matches the file's digest: it applies in full
  kUntrusted,       // it widens, and was never trusted: only what it narrows applies
  kChanged,         // it widens, and changed since it was trusted: as kUntrusted
};

struct PolicySource {
  std::string workspace;  // real path
  PolicyFile file;
  bool user_named = false;
  std::string trust_file;  // TrustStore::DefaultPath(); "" trusts nothing
  ManifestLookup tools;
  std::map<std::string, Price> user_prices;
};

struct ResolvedPolicy {
  PolicyTrust trust = PolicyTrust::kNothingToTrust;
  Policy effective;                   // what applies now
  std::vector<std::string> widening;  // what the file widens, applied or not
  bool applied_in_full() const {
    return trust != PolicyTrust::kUntrusted && trust != PolicyTrust::kChanged;
  }
};

// Decides which policy applies. An unreadable trust store is an error (never a silent
// "trusted").
Result<ResolvedPolicy> ResolvePolicy(const PolicySource& source);

}  // namespace moat::agent
