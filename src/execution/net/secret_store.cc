#include "execution/net/secret_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "base/fs.h"

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

std::string Base64(std::string_view in, bool url) {
  const char* table = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += table[(v >> s) & 63];
  }
  if (i < in.size()) {  // the partial group, without padding (callers cut it anyway)
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    size_t chars = in.size() - i + 1;
    for (size_t k = 0; k < chars; ++k) out += table[(v >> (18 - 6 * k)) & 63];
  }
  return out;
}

std::string Hex(std::string_view in, bool upper) {
  const char* d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string Percent(std::string_view in, bool upper) {
  const char* d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += d[c >> 4];
      out += d[c & 15];
    }
  }
  return out;
}

// Every form of the value an exfiltration could take. Base64 of a value inside longer
// data depends on its offset modulo 3: for each offset, the characters that come from the
// value's bytes alone.
std::vector<std::string> Forms(std::string_view v) {
  std::vector<std::string> forms = {std::string(v), Hex(v, false), Hex(v, true), Percent(v, false),
                                    Percent(v, true)};
  for (bool url : {false, true}) {
    for (size_t k = 0; k < 3; ++k) {
      std::string padded = std::string(k, '\0') + std::string(v);
      std::string b = Base64(padded, url);
      size_t start = k == 0 ? 0 : k + 1;     // first character free of the padding's bits
      size_t end = (padded.size() * 8) / 6;  // last character made of the value's bits only
      if (end > start + 4) forms.push_back(b.substr(start, end - start));
    }
  }
  std::sort(forms.begin(), forms.end());
  forms.erase(std::unique(forms.begin(), forms.end()), forms.end());
  return forms;
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
  if (s.hosts.empty()) return Bad("secret " + s.name + " is bound to no host");
  for (const std::string& h : s.hosts) {
    if (h == "*" || h.find('*', h.rfind("*.") == 0 ? 1 : 0) != std::string::npos) {
      return Bad("secret " + s.name + ": host \"" + h +
                 "\" must be a name, an address or *.suffix");
    }
  }
  for (const std::string& h : s.headers) {
    if (h.empty() || h != Lower(h) || h.find_first_of(" :\r\n") != std::string::npos) {
      return Bad("secret " + s.name + ": bad header name \"" + h + "\"");
    }
  }
  return OkStatus();
}

std::string SecretStore::DefaultPath() {
  if (const char* f = getenv("MOAT_SECRETS_FILE"); f && *f) return f;
  std::string dir = UserConfigDir();
  return (dir.empty() ? std::string("./.config/moat") : dir) + "/secrets.json";
}

Result<SecretStore> SecretStore::Load(const std::string& path) {
  SecretStore store;
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
  auto bytes = ReadFile(path, kMaxStoreBytes);
  if (!bytes) return bytes.error();
  json j = json::parse(bytes->begin(), bytes->end(), nullptr, false);
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
  std::string text = json({{"version", 1}, {"secrets", list}}).dump(2) + "\n";
  return WriteFileAtomic(dir, name, text.data(), text.size(), 0600);
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

std::optional<std::string> FindLeak(std::string_view data, const std::vector<Secret>& secrets) {
  for (const Secret& s : secrets) {
    for (const std::string& f : Forms(s.value)) {
      if (data.find(f) != std::string_view::npos) return s.name;
    }
  }
  return std::nullopt;
}

std::string Redact(std::string data, const std::vector<Secret>& secrets,
                   std::vector<std::string>* found) {
  for (const Secret& s : secrets) {
    std::string mark = "[redacted secret " + s.name + "]";
    bool hit = false;
    // Longest forms first, so a form inside another is not cut out of it first.
    std::vector<std::string> forms = Forms(s.value);
    std::sort(forms.begin(), forms.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& f : forms) {
      for (size_t at = data.find(f); at != std::string::npos; at = data.find(f, at + mark.size())) {
        data.replace(at, f.size(), mark);
        hit = true;
      }
    }
    if (hit && found) found->push_back(s.name);
  }
  return data;
}

}  // namespace moat::net
