// What one process shares between all its agent sessions: the engine (and its compile
// cache), the tool registry, the provider config and the model-provider factory, the HTTP
// plugin, the secret store, and one audit log per file. Thread-safe: many sessions (the
// HTTP API's, the MCP server's, a test's eight) use one Services at once.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "execution/engine.h"
#include "execution/net/http_stream.h"
#include "execution/net/secret_store.h"
#include "orchestration/agent/audit.h"
#include "orchestration/agent/policy.h"
#include "orchestration/agent/provider.h"
#include "orchestration/agent/provider_config.h"
#include "orchestration/tools/registry.h"

namespace moat::session {

struct ServicesOptions {
  std::vector<std::string> tool_dirs;  // extension folders; empty: the user's default
  bool watch_tools = false;            // rescan extension folders on change (long-lived)
  bool show_progress = false;          // a compile over a second shows progress on stderr
  std::string secrets_file;            // "" = the user's store
  std::string provider_config;         // "" = $MOAT_CONFIG or the user's config file
  std::string tools_builtin_dir;       // "" = the built-in tools beside the executable
};

// What a session asks the factory for; empty fields were not given.
struct ProviderChoice {
  std::string name;  // "" = the config file's default, else scripted
  std::string model, base_url, ca_file;
  std::string script;  // the scripted provider's turns ("" = the built-in demo)
};

struct ChosenProvider {
  std::unique_ptr<agent::Provider> provider;
  std::string model;                  // the model the session uses
  std::optional<agent::Price> price;  // from the provider config
};

// While one lives on a thread, the compiles that thread waits for (a tool loaded for the
// first time) are told to `fn`: how a session turns them into compile events.
class CompileWatch {
 public:
  using Fn = std::function<void(const std::string& module, std::string_view phase, double s)>;
  explicit CompileWatch(Fn fn);
  ~CompileWatch();
  CompileWatch(const CompileWatch&) = delete;
  CompileWatch& operator=(const CompileWatch&) = delete;

 private:
  Fn fn_;
  CompileWatch* outer_;
  friend class Services;
};

class Services {
 public:
  static Result<std::unique_ptr<Services>> Create(ServicesOptions options);
  ~Services();

  Engine& engine() { return *engine_; }
  tools::Registry& registry() { return *registry_; }
  const ServicesOptions& options() const { return options_; }

  // A provider for one session (each session gets its own instance: a scripted provider
  // replays its turns once). kInvalidArgument naming what is wrong.
  Result<ChosenProvider> MakeProvider(const ProviderChoice& choice);
  // The named secrets from the store; an error names the first one missing.
  Result<std::vector<net::Secret>> Secrets(const std::vector<std::string>& names);
  // One open log per file and sync mode, shared by the sessions that write it.
  Result<std::shared_ptr<agent::AuditLog>> AuditLogAt(const std::string& path,
                                                      const agent::AuditOptions& options = {});

 private:
  explicit Services(ServicesOptions options) : options_(std::move(options)) {}
  ServicesOptions options_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<tools::Registry> registry_;
  std::mutex mu_;
  std::optional<agent::ProviderFile> provider_file_;
  std::shared_ptr<net::StreamingHttp> http_;
  std::map<std::string, std::shared_ptr<agent::AuditLog>> audit_logs_;
};

}  // namespace moat::session
