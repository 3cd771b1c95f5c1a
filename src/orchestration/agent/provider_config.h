// Which model provider `moat chat` talks to, and how: a configuration file of named
// providers, the environment, and the command line, in that order of precedence (a flag
// beats the environment, which beats the file, which beats the built-in default).
//
// The file is JSON ($MOAT_CONFIG, else CONFIG_DIR/config.json with CONFIG_DIR as in
// UserConfigDir(); a missing file is an empty one):
//   {
//     "default_provider": "local",
//     "providers": {
//       "local":  {"type": "openai", "base_url": "http://127.0.0.1:8080/v1",
//                  "model": "qwen2.5-coder", "api_key_env": "LOCAL_LLM_KEY"},
//       "claude": {"type": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 8192,
//                  "max_attempts": 5, "timeout": "10m", "idle_timeout": "90s",
//                  "price": {"input_per_mtok": 3, "output_per_mtok": 15}}
//     }
//   }
// Keys are never kept in the file: "api_key_env" names the environment variable that
// holds one (default OPENAI_API_KEY or ANTHROPIC_API_KEY by type). A provider named
// "openai" or "anthropic" needs no entry; OPENAI_BASE_URL / ANTHROPIC_BASE_URL set its
// base URL. "scripted" is the offline provider and cannot be redefined. Every problem in
// the file is kInvalidArgument naming the field.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "orchestration/agent/http_provider.h"
#include "orchestration/agent/policy.h"

namespace moat::agent {

struct ProviderEntry {
  HttpProviderConfig::Kind kind = HttpProviderConfig::Kind::kOpenAi;
  std::string base_url, model, api_key_env;
  std::optional<uint32_t> max_tokens;
  std::optional<int> max_attempts;
  std::optional<uint64_t> timeout_us, idle_timeout_us;
  std::optional<Price> price;
};

struct ProviderFile {
  std::string path;  // where it was read from ("" when parsed from text)
  std::string default_provider;
  std::map<std::string, ProviderEntry> providers;

  static Result<ProviderFile> Parse(std::string_view json_text);
  static Result<ProviderFile> Load(const std::string& path);  // missing: empty
  static std::string DefaultPath();
};

// What the command line asked for; empty fields were not given.
struct ProviderRequest {
  std::string name;  // "" = the file's default_provider, else "scripted"
  std::string model, base_url, ca_file;
};

struct ResolvedProvider {
  std::string name;
  bool scripted = false;
  HttpProviderConfig http;  // when not scripted
  std::string model;        // "" = the scripted provider's own
  std::optional<Price> price;
};

using EnvLookup = std::function<std::string(const std::string&)>;
std::string ProcessEnv(const std::string& name);

Result<ResolvedProvider> ResolveProvider(const ProviderFile& file, const ProviderRequest& request,
                                         const EnvLookup& env = ProcessEnv);

}  // namespace moat::agent
