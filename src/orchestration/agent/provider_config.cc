#include "orchestration/agent/provider_config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/units.h"
#include "orchestration/tools/manifest.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxConfigBytes = 1 << 20;

Error Bad(const std::string& what) {
  return MakeError(ErrorCode::kInvalidArgument, "provider config: " + what);
}

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool ValidEnvName(const std::string& s) {
  if (s.empty() || s.size() > 128 || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Printable ASCII without spaces: what may go into a URL or a request header.
bool Printable(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return false;
  }
  return true;
}

Result<std::string> BaseUrl(std::string url, const std::string& where) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.size() > 2048 || !Printable(url) ||
      (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) ||
      url.size() <= (url[4] == 's' ? 8u : 7u)) {
    return Bad(where + ": expected an http:// or https:// URL");
  }
  return url;
}

bool IsBuiltIn(const std::string& name) { return name == "openai" || name == "anthropic"; }

Result<ProviderEntry> ParseEntry(const std::string& name, const json& v) {
  const std::string w = "providers/" + name;
  if (!v.is_object()) return Bad(w + ": expected an object");
  ProviderEntry e;
  bool typed = false;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    const std::string fw = w + "/" + k;
    auto str = [&](size_t max) -> Result<std::string> {
      if (!it->is_string() || it->get<std::string>().empty() ||
          it->get<std::string>().size() > max || !Printable(it->get<std::string>())) {
        return Bad(fw + ": expected a string of up to " + std::to_string(max) +
                   " printable characters");
      }
      return it->get<std::string>();
    };
    if (k == "type") {
      if (!it->is_string() || (*it != "openai" && *it != "anthropic")) {
        return Bad(fw + ": expected \"openai\" (any OpenAI-compatible server) or \"anthropic\"");
      }
      e.kind = *it == "openai" ? HttpProviderConfig::Kind::kOpenAi
                               : HttpProviderConfig::Kind::kAnthropic;
      typed = true;
    } else if (k == "base_url") {
      auto s = str(2048);
      if (!s) return s.error();
      auto u = BaseUrl(*s, fw);
      if (!u) return u.error();
      e.base_url = *u;
    } else if (k == "model") {
      auto s = str(256);
      if (!s) return s.error();
      e.model = *s;
    } else if (k == "api_key_env") {
      if (!it->is_string() || !ValidEnvName(it->get<std::string>())) {
        return Bad(fw + ": expected the name of an environment variable");
      }
      e.api_key_env = *it;
    } else if (k == "api_key" || k == "key" || k == "apiKey" || k == "token") {
      return Bad(fw +
                 ": keys are not kept in the config file; put the key in an environment "
                 "variable and name it with \"api_key_env\"");
    } else if (k == "max_tokens") {
      if (!it->is_number_unsigned() || *it == 0 || it->get<uint64_t>() > 1'000'000) {
        return Bad(fw + ": expected a count from 1 to 1000000");
      }
      e.max_tokens = it->get<uint32_t>();
    } else if (k == "max_attempts") {
      if (!it->is_number_unsigned() || *it == 0 || it->get<uint64_t>() > 10) {
        return Bad(fw + ": expected a count from 1 to 10");
      }
      e.max_attempts = it->get<int>();
    } else if (k == "timeout" || k == "idle_timeout") {
      auto n = tools::LimitValue(*it, "provider config: " + fw, ParseDurationUs);
      if (!n) return n.error();
      if (*n == 0 || *n > 24ull * 3600 * 1'000'000) {
        return Bad(fw + ": expected a duration from 1us to 24h");
      }
      (k == "timeout" ? e.timeout_us : e.idle_timeout_us) = *n;
    } else if (k == "price") {
      if (!it->is_object() || it->size() != 2 || !it->contains("input_per_mtok") ||
          !it->contains("output_per_mtok") || !(*it)["input_per_mtok"].is_number() ||
          !(*it)["output_per_mtok"].is_number() || (*it)["input_per_mtok"].get<double>() < 0 ||
          (*it)["output_per_mtok"].get<double>() < 0) {
        return Bad(fw + ": expected {\"input_per_mtok\": N, \"output_per_mtok\": N}");
      }
      e.price =
          Price{(*it)["input_per_mtok"].get<double>(), (*it)["output_per_mtok"].get<double>()};
    } else {
      return Bad(fw + ": unknown field");
    }
  }
  if (!typed) {
    if (!IsBuiltIn(name)) return Bad(w + "/type: missing (\"openai\" or \"anthropic\")");
    e.kind =
        name == "openai" ? HttpProviderConfig::Kind::kOpenAi : HttpProviderConfig::Kind::kAnthropic;
  }
  return e;
}

}  // namespace

std::string ProcessEnv(const std::string& name) {
  const char* v = getenv(name.c_str());
  return v != nullptr ? v : "";
}

Result<ProviderFile> ProviderFile::Parse(std::string_view text) {
  auto parsed = ParseJson(text);
  if (!parsed) return Bad(parsed.error().message);
  json j = std::move(*parsed);
  if (!j.is_object()) return Bad("expected an object");
  ProviderFile f;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "default_provider") {
      if (!it->is_string() || !ValidName(it->get<std::string>())) {
        return Bad("default_provider: expected a provider name");
      }
      f.default_provider = *it;
    } else if (k == "providers") {
      if (!it->is_object()) return Bad("providers: expected an object of provider names");
      for (auto p = it->begin(); p != it->end(); ++p) {
        if (!ValidName(p.key())) {
          return Bad("providers: \"" + p.key().substr(0, 64) +
                     "\" is not a name (letters, digits, - _ . up to 64)");
        }
        if (p.key() == "scripted") return Bad("providers/scripted: the name is reserved");
        auto e = ParseEntry(p.key(), *p);
        if (!e) return e.error();
        f.providers[p.key()] = std::move(*e);
      }
    } else {
      return Bad("unknown field \"" + k.substr(0, 64) + "\"");
    }
  }
  const std::string& d = f.default_provider;
  if (!d.empty() && d != "scripted" && !IsBuiltIn(d) && f.providers.count(d) == 0) {
    return Bad("default_provider: \"" + d + "\" is not in providers");
  }
  return f;
}

Result<ProviderFile> ProviderFile::Load(const std::string& path) {
  auto bytes = ReadFile(path, kMaxConfigBytes);
  if (!bytes) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
      ProviderFile empty;
      empty.path = path;
      return empty;
    }
    return MakeError(bytes.error().code, path + ": " + bytes.error().message);
  }
  auto f = Parse(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  if (!f) return MakeError(ErrorCode::kInvalidArgument, path + ": " + f.error().message);
  f->path = path;
  return f;
}

std::string ProviderFile::DefaultPath() {
  if (const char* c = getenv("MOAT_CONFIG"); c != nullptr && *c != '\0') return c;
  std::string dir = UserConfigDir();
  return dir.empty() ? "" : dir + "/config.json";
}

Result<ResolvedProvider> ResolveProvider(const ProviderFile& file, const ProviderRequest& request,
                                         const EnvLookup& env) {
  ResolvedProvider r;
  r.name = !request.name.empty()            ? request.name
           : !file.default_provider.empty() ? file.default_provider
                                            : "scripted";
  if (r.name == "scripted") {
    r.scripted = true;
    r.model = request.model;
    return r;
  }
  ProviderEntry entry;
  if (auto it = file.providers.find(r.name); it != file.providers.end()) {
    entry = it->second;
  } else if (IsBuiltIn(r.name)) {
    entry.kind = r.name == "openai" ? HttpProviderConfig::Kind::kOpenAi
                                    : HttpProviderConfig::Kind::kAnthropic;
  } else {
    std::string known = "scripted, openai, anthropic";
    for (const auto& [name, e] : file.providers) {
      if (!IsBuiltIn(name)) known += ", " + name;
    }
    return MakeError(ErrorCode::kInvalidArgument,
                     "unknown provider \"" + r.name.substr(0, 64) + "\" (known: " + known + ")");
  }
  bool openai = entry.kind == HttpProviderConfig::Kind::kOpenAi;
  const std::string prefix = openai ? "OPENAI" : "ANTHROPIC";
  HttpProviderConfig& c = r.http;
  c.kind = entry.kind;
  c.name = r.name;
  std::string url = request.base_url;
  if (url.empty()) url = entry.base_url;
  if (url.empty()) url = env(prefix + "_BASE_URL");
  if (url.empty()) url = openai ? "https://api.openai.com/v1" : "https://api.anthropic.com";
  auto checked = BaseUrl(url, "the base URL of " + r.name);
  if (!checked) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the base URL of provider " + r.name + " must start with http:// or https://");
  }
  c.base_url = *checked;
  std::string key_env = entry.api_key_env.empty() ? prefix + "_API_KEY" : entry.api_key_env;
  c.api_key = env(key_env);
  if (!Printable(c.api_key)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "$" + key_env + " holds characters a key cannot have");
  }
  if (!openai && c.api_key.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "provider " + r.name + " needs a key: set " + key_env);
  }
  if (entry.max_tokens) c.max_tokens = *entry.max_tokens;
  if (entry.max_attempts) c.max_attempts = *entry.max_attempts;
  if (entry.timeout_us) c.total_timeout_us = *entry.timeout_us;
  if (entry.idle_timeout_us) c.idle_timeout_us = *entry.idle_timeout_us;
  c.ca_file = request.ca_file;
  r.model = !request.model.empty() ? request.model : entry.model;
  if (r.model.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "provider " + r.name + " needs a model: --model or \"model\" in " +
                         (file.path.empty() ? std::string("the config file") : file.path));
  }
  r.price = entry.price;
  return r;
}

}  // namespace moat::agent
