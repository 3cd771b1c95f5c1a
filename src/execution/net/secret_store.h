// The secret store and leak detection (no network code: the CLI links this alone).
//
// The store is one JSON file readable only by its owner (~/.config/moat/secrets.json, or
// $MOAT_SECRETS_FILE): each secret has a name, a value, the hosts it may be sent to (names
// or "*.suffix", as in egress rules) and optionally the header names it may appear in.
//
// Leak detection looks for the values of a run's secrets, raw and in the encodings an
// exfiltration would use (base64 at each alignment, base64url, hex in either case,
// percent-encoding): in what a guest sends before substitution (the request is refused,
// see secrets.h) and in responses and tool output (the match is redacted).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace moat::net {

struct Secret {
  std::string name;                  // [A-Za-z0-9_.-]{1,64}
  std::string value;                 // at least kMinSecretBytes, no control characters
  std::vector<std::string> hosts;    // exact names, "*.suffix" or IP literals; never "*"
  std::vector<std::string> headers;  // lower case; empty: header values, path, query, body
  static constexpr size_t kMinSecretBytes = 8;
};

Status CheckSecret(const Secret& s);

class SecretStore {
 public:
  // $MOAT_SECRETS_FILE, else $XDG_CONFIG_HOME/moat/secrets.json, else
  // ~/.config/moat/secrets.json.
  static std::string DefaultPath();
  // A missing file is an empty store. A file that others can read or write, a symlink, or
  // a file of another user is refused.
  static Result<SecretStore> Load(const std::string& path);
  // Writes the whole store atomically, mode 0600, in a folder made 0700.
  Status Save(const std::string& path) const;

  Status Set(Secret s);                  // adds or replaces by name
  bool Remove(const std::string& name);  // false when there was none
  const Secret* Find(const std::string& name) const;
  const std::vector<Secret>& all() const { return secrets_; }

 private:
  std::vector<Secret> secrets_;
};

// The name of a secret whose value, raw or encoded, appears in `data`.
std::optional<std::string> FindLeak(std::string_view data, const std::vector<Secret>& secrets);
// `data` with every appearance replaced by "[redacted secret NAME]"; the names found are
// appended to `found` (if given).
std::string Redact(std::string data, const std::vector<Secret>& secrets,
                   std::vector<std::string>* found = nullptr);

}  // namespace moat::net
