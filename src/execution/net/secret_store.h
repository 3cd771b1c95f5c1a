// The secret store and leak detection (no network code: the CLI links this alone).
//
// The store is one JSON file readable only by its owner (~/.config/moat/secrets.json, or
// $MOAT_SECRETS_FILE): each secret has a name, a value, the hosts it may be sent to (names
// or "*.suffix", as in egress rules) and optionally the header names it may appear in.
//
// Leak detection (leak_scan.cc) looks for the values of a run's secrets, in any letter
// case, raw and in the encodings an exfiltration would use (base64 at each alignment,
// base64url, hex, percent-encoding, UTF-16), also after undoing up to four layers of the
// escapes a server applies to text it reflects (JSON and JavaScript string escapes, HTML
// character references, URL percent-encoding, mixed within one value): in what a guest
// sends before substitution (the request is refused, see secrets.h) and in responses and
// tool output (the bytes that make the match are redacted).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace moat::net {

struct Secret {
  std::string name;                  // [A-Za-z0-9_.-]{1,64}
  std::string value;                 // at least kMinSecretBytes, UTF-8, no control characters
  std::vector<std::string> hosts;    // exact names, "*.suffix" or IP literals; never "*"
  std::vector<std::string> headers;  // lower case; empty: header values, path, query, body
  static constexpr size_t kMinSecretBytes = 8;
};

Status CheckSecret(const Secret& s);

class SecretStore {
 public:
  // $MOAT_SECRETS_FILE, else $XDG_CONFIG_HOME/moat/secrets.json, else
  // ~/.config/moat/secrets.json; "" when there is no such folder (never a store relative to
  // where moat runs, which a workspace could supply or tools could read).
  static std::string DefaultPath();
  // A missing file is an empty store. A file that others can read or write, a symlink, or
  // a file of another user is refused.
  static Result<SecretStore> Load(const std::string& path);
  // Writes the whole store atomically, mode 0600, in a folder made 0700.
  Status Save(const std::string& path) const;

  // Read-modify-write under an exclusive lock (path + ".lock", beside the store): loads the
  // store as it is now, applies `change` and saves it, so concurrent changes are serialised
  // and none undoes another. An error from `change` leaves the file as it was.
  static Status Update(const std::string& path, const std::function<Status(SecretStore&)>& change);

  Status Set(Secret s);                  // adds or replaces by name
  bool Remove(const std::string& name);  // false when there was none
  const Secret* Find(const std::string& name) const;
  const std::vector<Secret>& all() const { return secrets_; }

 private:
  std::vector<Secret> secrets_;
};

// Makes this process hold secret values safely: no core dump (PR_SET_DUMPABLE 0 and a zero
// RLIMIT_CORE) and no ptrace or /proc memory access by the user's other processes. Load
// calls it when a store exists.
void KeepSecretsOutOfCoreDumps();

// `value` percent-encoded for a URL: unreserved characters kept, every other byte %XX.
std::string PercentEncode(std::string_view value);

// The name of a secret whose value, raw, encoded or escaped, appears in `data`.
std::optional<std::string> FindLeak(std::string_view data, const std::vector<Secret>& secrets);
// `data` with every appearance replaced by "[redacted secret NAME]" (overlapping ones
// become one; escapes that made one are replaced whole); the names found are appended to
// `found` (if given). Never leaves a form FindLeak would find: after a few rounds the
// whole text is replaced.
std::string Redact(std::string data, const std::vector<Secret>& secrets,
                   std::vector<std::string>* found = nullptr);

}  // namespace moat::net
