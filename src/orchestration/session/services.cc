#include "orchestration/session/services.h"

#include "orchestration/agent/http_provider.h"
#include "orchestration/agent/scripted.h"

namespace moat::session {
namespace {
thread_local CompileWatch* t_watch = nullptr;
}  // namespace

CompileWatch::CompileWatch(Fn fn) : fn_(std::move(fn)), outer_(t_watch) { t_watch = this; }
CompileWatch::~CompileWatch() { t_watch = outer_; }

Services::~Services() {
  if (registry_) registry_->StopWatching();
}

Result<std::unique_ptr<Services>> Services::Create(ServicesOptions options) {
  std::unique_ptr<Services> s(new Services(std::move(options)));
  if (s->options_.provider_config.empty()) {
    s->options_.provider_config = agent::ProviderFile::DefaultPath();
  }
  EngineOptions eo;
  eo.show_progress = s->options_.show_progress;
  eo.on_compile = [](const std::string& label, std::string_view phase, double seconds) {
    if (t_watch != nullptr && t_watch->fn_) t_watch->fn_(label, phase, seconds);
  };
  // Files the user named are moat's own too: no tool may see or change them.
  for (const std::string& p : {s->options_.secrets_file, s->options_.provider_config}) {
    if (!p.empty()) eo.own_paths.push_back(p);
  }
  auto engine = Engine::Create(eo);
  if (!engine) return engine.error();
  s->engine_ = std::move(*engine);
  tools::RegistryOptions ro;
  ro.builtin_dirs = {s->options_.tools_builtin_dir.empty() ? tools::DefaultBuiltinToolsDir()
                                                           : s->options_.tools_builtin_dir};
  ro.extension_dirs =
      s->options_.tool_dirs.empty() ? tools::DefaultExtensionDirs() : s->options_.tool_dirs;
  ro.preload_builtins = false;
  auto registry = tools::Registry::Create(s->engine_.get(), std::move(ro));
  if (!registry) return registry.error();
  s->registry_ = std::move(*registry);
  if (s->options_.watch_tools) {
    if (auto w = s->registry_->StartWatching(); !w) return w.error();
  }
  return s;
}

Result<ChosenProvider> Services::MakeProvider(const ProviderChoice& choice) {
  std::shared_ptr<net::StreamingHttp> http;
  agent::ProviderFile file;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!provider_file_) {
      if (options_.provider_config.empty()) {
        provider_file_ = agent::ProviderFile{};  // no config folder: nothing configured
      } else {
        auto loaded = agent::ProviderFile::Load(options_.provider_config);
        if (!loaded) return loaded.error();
        provider_file_ = std::move(*loaded);
      }
    }
    file = *provider_file_;
  }
  auto chosen =
      agent::ResolveProvider(file, {choice.name, choice.model, choice.base_url, choice.ca_file});
  if (!chosen) return chosen.error();
  ChosenProvider out;
  out.model = chosen->model;
  out.price = chosen->price;
  if (chosen->scripted) {
    std::unique_ptr<agent::ScriptedProvider> scripted;
    if (choice.script.empty()) {
      scripted = agent::ScriptedProvider::Demo();
    } else {
      auto p = agent::ScriptedProvider::Load(choice.script);
      if (!p) return p.error();
      scripted = std::move(*p);
    }
    if (out.model.empty()) out.model = scripted->model();
    out.provider = std::move(scripted);
    return out;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!http_) {
      auto loaded = net::LoadStreamingHttpPlugin();
      if (!loaded) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "network support is not available: " + loaded.error().message);
      }
      http_ = *loaded;
    }
    http = http_;
  }
  out.provider = std::make_unique<agent::HttpProvider>(chosen->http, http);
  return out;
}

Result<std::vector<net::Secret>> Services::Secrets(const std::vector<std::string>& names) {
  std::vector<net::Secret> out;
  if (names.empty()) return out;
  auto store = net::SecretStore::Load(
      options_.secrets_file.empty() ? net::SecretStore::DefaultPath() : options_.secrets_file);
  if (!store) return store.error();
  for (const std::string& name : names) {
    const net::Secret* sec = store->Find(name);
    if (sec == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "policy: secret " + name + " is not in the store");
    }
    out.push_back(*sec);
  }
  return out;
}

Result<std::shared_ptr<agent::AuditLog>> Services::AuditLogAt(const std::string& path,
                                                              const agent::AuditOptions& options) {
  // One log object per file and sync mode: a session that asks for a sync per record gets
  // one that does so (the file lock keeps the two writers' chain whole).
  std::string key = path + (options.sync == agent::AuditSync::kAlways ? "\nalways" : "\ngroup");
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = audit_logs_.find(key); it != audit_logs_.end()) return it->second;
  auto opened = agent::AuditLog::Open(path, options);
  if (!opened) return opened.error();
  std::shared_ptr<agent::AuditLog> log = std::move(*opened);
  audit_logs_[key] = log;
  return log;
}

}  // namespace moat::session
