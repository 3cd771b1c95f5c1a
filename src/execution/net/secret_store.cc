#include "execution/net/secret_store.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/utf8.h"

namespace moat::net {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxStoreBytes = 1u << 20;

Error Denied(std::string m) { return MakeError(ErrorCode::kDenied, std::move(m)); }
Error Bad(std::string m) { return MakeError(ErrorCode::kInvalidArgument, std::move(m)); }

bool NameOk(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

Status CheckSecret(const Secret& s) {
  if (!NameOk(s.name)) {
    return Bad("secret name must be 1 to 64 letters, digits, '_', '-' or '.'");
  }
  if (s.value.size() < Secret::kMinSecretBytes) {
    return Bad("secret " + s.name + " is shorter than " + std::to_string(Secret::kMinSecretBytes) +
               " bytes (too short to detect leaks)");
  }
  for (unsigned char c : s.value) {
    if (c < 0x20 || c == 0x7F) return Bad("secret " + s.name + " has a control character");
  }
  // The store is JSON text: a value it cannot hold as it is would be changed on saving.
  if (!IsUtf8(s.value)) return Bad("secret " + s.name + ": the value is not valid UTF-8");
  if (s.hosts.empty()) return Bad("secret " + s.name + " is bound to no host");
  for (const std::string& h : s.hosts) {
    if (h.empty() || !IsUtf8(h) ||
        std::any_of(h.begin(), h.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7F; })) {
      return Bad("secret " + s.name +
                 ": a host must be a non-empty UTF-8 name without spaces or control characters");
    }
    if (h == "*" || h.find('*', h.rfind("*.") == 0 ? 1 : 0) != std::string::npos) {
      return Bad("secret " + s.name + ": host \"" + h +
                 "\" must be a name, an address or *.suffix");
    }
  }
  for (const std::string& h : s.headers) {
    bool token = std::all_of(h.begin(), h.end(),
                             [](unsigned char c) { return c > 0x20 && c < 0x7F && c != ':'; });
    if (h.empty() || h != Lower(h) || !token) {
      return Bad("secret " + s.name + ": a header name must be lower-case printable ASCII, not \"" +
                 h + "\"");
    }
  }
  return OkStatus();
}

std::string SecretStore::DefaultPath() {
  if (const char* f = getenv("MOAT_SECRETS_FILE"); f && *f) return f;
  std::string dir = UserConfigDir();
  return dir.empty() ? "" : dir + "/secrets.json";
}

Result<SecretStore> SecretStore::Load(const std::string& path) {
  SecretStore store;
  if (path.empty()) return store;  // no folder for a store: no secrets
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return store;
    return MakeError(ErrorCode::kIo, "cannot stat " + path);
  }
  if (!S_ISREG(st.st_mode)) return Denied(path + " is not a regular file");
  if (st.st_uid != geteuid()) return Denied(path + " belongs to another user");
  if ((st.st_mode & 077) != 0) {
    return Denied(path + " can be read or written by others: chmod 600 it");
  }
  KeepSecretsOutOfCoreDumps();
  auto bytes = ReadFile(path, kMaxStoreBytes);
  if (!bytes) return bytes.error();
  auto parsed = ParseJson(std::string(bytes->begin(), bytes->end()));
  json j = parsed ? std::move(*parsed) : json();
  if (j.is_discarded() || !j.is_object() || !j.contains("secrets") || !j["secrets"].is_array()) {
    return Bad(path + " is not a moat secrets file");
  }
  for (const json& e : j["secrets"]) {
    Secret s;
    if (!e.is_object() || !e.value("name", json()).is_string() ||
        !e.value("value", json()).is_string() || !e.value("hosts", json()).is_array()) {
      return Bad(path + ": malformed secret entry");
    }
    s.name = e["name"];
    s.value = e["value"];
    for (const json& h : e["hosts"]) {
      if (!h.is_string()) return Bad(path + ": malformed secret entry");
      s.hosts.push_back(h);
    }
    if (e.contains("headers")) {
      if (!e["headers"].is_array()) return Bad(path + ": malformed secret entry");
      for (const json& h : e["headers"]) {
        if (!h.is_string()) return Bad(path + ": malformed secret entry");
        s.headers.push_back(h);
      }
    }
    if (auto ok = CheckSecret(s); !ok) return Bad(path + ": " + ok.error().message);
    store.secrets_.push_back(std::move(s));
  }
  return store;
}

Status SecretStore::Save(const std::string& path) const {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (auto s = EnsurePrivateDir(dir); !s) return s;
  json list = json::array();
  for (const Secret& s : secrets_) {
    list.push_back(
        {{"name", s.name}, {"value", s.value}, {"hosts", s.hosts}, {"headers", s.headers}});
  }
  std::string text = DumpJson(json({{"version", 1}, {"secrets", list}}), 2) + "\n";
  return WriteFileAtomic(dir, name, text.data(), text.size(), 0600);
}

Status SecretStore::Update(const std::string& path,
                           const std::function<Status(SecretStore&)>& change) {
  if (path.empty()) return Bad("no secret store path");
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  if (auto s = EnsurePrivateDir(dir); !s) return s;
  auto lock = FileLock::Acquire(path + ".lock");
  if (!lock) return lock.error();
  auto store = Load(path);
  if (!store) return store.error();
  if (auto s = change(*store); !s) return s;
  return store->Save(path);
}

void KeepSecretsOutOfCoreDumps() {
  // Not dumpable: no core file, and no other process of the user can ptrace this one or read
  // its memory through /proc. A zero core limit too, for a core_pattern that pipes.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct rlimit none {};
  setrlimit(RLIMIT_CORE, &none);
}

Status SecretStore::Set(Secret s) {
  for (std::string& h : s.headers) h = Lower(h);
  for (std::string& h : s.hosts) h = Lower(h);
  if (auto ok = CheckSecret(s); !ok) return ok;
  for (Secret& e : secrets_) {
    if (e.name == s.name) {
      e = std::move(s);
      return OkStatus();
    }
  }
  secrets_.push_back(std::move(s));
  return OkStatus();
}

bool SecretStore::Remove(const std::string& name) {
  return std::erase_if(secrets_, [&](const Secret& s) { return s.name == name; }) > 0;
}

const Secret* SecretStore::Find(const std::string& name) const {
  for (const Secret& s : secrets_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace moat::net
