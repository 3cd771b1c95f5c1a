#include "orchestration/tools/registry.h"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <set>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/sha256.h"

namespace moat::tools {

namespace {

using nlohmann::json;

std::string Hex(std::span<const uint8_t> bytes) { return ToHex(Sha256(bytes)); }

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Text from a guest or a file, made safe to quote in a message: at most `max` bytes,
// control characters escaped.
std::string Quote(std::string_view s, size_t max = 200) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (out.size() >= max) out += "...";
  return out;
}

// Regular *.wasm files directly in `dir`, sorted; dotfiles (editors' temporaries) skipped.
std::vector<std::string> ModulesIn(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.' || name.size() <= 5 ||
        name.compare(name.size() - 5, 5, ".wasm") != 0) {
      continue;
    }
    std::string path = dir + "/" + name;
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) out.push_back(path);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Checks a tool's stdout against the contract: one JSON object, {"ok":true,"content":..}
// or {"ok":false,"error":{"code":"..","message":".."}}.
// Returns why not, as a predicate: "not valid JSON", "nested deeper than ...", "not a
// result object".
Result<json> ParseToolOutput(const std::string& out) {
  auto parsed = ParseJson(out);  // bounded in depth (base/json_text.h)
  if (!parsed) return parsed.error();
  json j = std::move(*parsed);
  const Error not_result = MakeError(ErrorCode::kInvalidArgument, "not a result object");
  if (!j.is_object()) return not_result;
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) return not_result;
  if (ok->get<bool>()) {
    if (!j.contains("content")) return not_result;
  } else {
    auto e = j.find("error");
    if (e == j.end() || !e->is_object() || !e->contains("code") || !(*e)["code"].is_string() ||
        !e->contains("message") || !(*e)["message"].is_string()) {
      return not_result;
    }
  }
  return j;
}

}  // namespace

std::string SidecarPath(const std::string& module_path) {
  std::string base = module_path;
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".wasm") == 0)
    base.resize(base.size() - 5);
  return base + ".manifest.json";
}

json ErrorResult(std::string_view code, std::string_view message) {
  return {{"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

std::string ToolDigest(const std::string& module_sha256, std::string_view sidecar) {
  std::string material = "moat tool digest 1\n" + module_sha256 + "\n";
  material.append(sidecar);
  return Hex({reinterpret_cast<const uint8_t*>(material.data()), material.size()});
}

std::string DefaultBuiltinToolsDir() {
  if (const char* env = getenv("MOAT_TOOLS_DIR"); env && *env) return env;
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "tools";
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/')) + "/tools";
}

std::vector<std::string> DefaultExtensionDirs() {
  std::vector<std::string> dirs;
  if (const char* env = getenv("MOAT_TOOL_PATH"); env && *env) {
    std::string s = env;
    size_t i = 0;
    while (i <= s.size()) {
      size_t j = s.find(':', i);
      if (j == std::string::npos) j = s.size();
      if (j > i) dirs.push_back(s.substr(i, j - i));
      i = j + 1;
    }
    return dirs;
  }
  if (std::string dir = UserConfigDir(); !dir.empty()) dirs.push_back(dir + "/tools");
  return dirs;
}

Registry::Registry(Engine* engine, RegistryOptions options)
    : engine_(engine), options_(std::move(options)) {}

Registry::~Registry() { StopWatching(); }

Result<std::unique_ptr<Registry>> Registry::Create(Engine* engine, RegistryOptions options) {
  for (auto& [name, digest] : options.pins) {
    digest = Lower(digest);
    if (digest.size() != 64 || digest.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "pin for " + name + ": expected a sha256 as 64 hex digits");
    }
  }
  std::unique_ptr<Registry> r(new Registry(engine, std::move(options)));
  for (const std::string& dir : r->options_.builtin_dirs) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0) continue;
    if (auto ok = CheckNotWritableByOthers(st, dir); !ok) {
      r->Emit({{"event", "tool_rejected"},
               {"path", dir},
               {"reason", ok.error().message + "; no tools are loaded from it"}});
      continue;
    }
    for (const std::string& path : ModulesIn(dir)) {
      std::string stem = path.substr(path.rfind('/') + 1);
      stem.resize(stem.size() - 5);
      if (!r->builtin_names_.count(stem)) {
        r->builtin_index_[stem] = path;
        r->builtin_names_[stem] = path;
      }
    }
  }
  if (r->options_.preload_builtins) r->List();
  r->Rescan();
  return r;
}

void Registry::Emit(json event) const {
  if (options_.on_event) options_.on_event(event);
}

std::shared_ptr<const Tool> Registry::Find(const std::string& name) const {
  std::string path;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Another caller is loading this built-in: its outcome is this caller's too.
    loaded_cv_.wait(lock, [&] { return loading_.count(name) == 0; });
    auto it = tools_.find(name);
    if (it != tools_.end()) return it->second;
    auto b = builtin_index_.find(name);
    if (b == builtin_index_.end()) return nullptr;
    path = b->second;
    builtin_index_.erase(b);
    loading_.insert(name);
  }
  // A built-in's first use: load it outside the lock (compiling can take seconds).
  auto tool = LoadModule(path, true);
  std::lock_guard<std::mutex> lock(mu_);
  loading_.erase(name);
  loaded_cv_.notify_all();
  if (!tool) {
    load_errors_[name] = tool.error().message;
    Emit({{"event", "tool_rejected"}, {"path", path}, {"reason", tool.error().message}});
    return nullptr;
  }
  if ((*tool)->manifest.name != name) {
    std::string why = path + ": its manifest names it \"" + (*tool)->manifest.name +
                      "\"; a built-in tool's file must be NAME.wasm";
    load_errors_[name] = why;
    Emit({{"event", "tool_rejected"}, {"path", path}, {"reason", why}});
    return nullptr;
  }
  auto [it, inserted] = tools_.emplace(name, *tool);
  return it->second;
}

std::vector<std::shared_ptr<const Tool>> Registry::List() const {
  std::vector<std::string> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, path] : builtin_index_) pending.push_back(name);
  }
  for (const std::string& name : pending) Find(name);
  // Built-ins another caller took off the index are in its hands: wait for them too, so a
  // listing never misses a tool only because someone else is loading it.
  std::unique_lock<std::mutex> lock(mu_);
  loaded_cv_.wait(lock, [&] { return loading_.empty(); });
  std::vector<std::shared_ptr<const Tool>> out;
  for (const auto& [name, tool] : tools_) out.push_back(tool);
  return out;
}

std::string Registry::LoadError(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto a = ambiguous_.find(name); a != ambiguous_.end()) return a->second;
  auto it = load_errors_.find(name);
  return it == load_errors_.end() ? "" : it->second;
}

Result<std::shared_ptr<const Tool>> Registry::LoadModule(const std::string& path,
                                                         bool builtin) const {
  // Modules and manifests are read only if no other user could have changed them, and never
  // block (a FIFO or a device is refused before it is opened).
  auto bytes = ReadTrustedFile(path, kMaxToolModuleBytes);
  if (!bytes) return bytes.error();
  auto tool = std::make_shared<Tool>();
  tool->path = path;
  tool->builtin = builtin;
  tool->sha256 = Hex(*bytes);
  auto section = FindCustomSection(*bytes, kManifestSection);
  if (!section) return MakeError(ErrorCode::kInvalidModule, path + ": " + section.error().message);
  std::string text;
  tool->digest = tool->sha256;  // an embedded manifest is part of the module's bytes
  if (*section) {
    text = std::move(**section);
  } else {
    auto side = ReadTrustedFile(SidecarPath(path), kMaxManifestBytes + 1);
    struct stat st {};
    if (!side && lstat(SidecarPath(path).c_str(), &st) == 0) {
      return MakeError(side.error().code, path + ": its manifest: " + side.error().message);
    }
    if (!side) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + ": no manifest: the module has no " + std::string(kManifestSection) +
                           " section (moat tools pack adds one) and there is no " +
                           SidecarPath(path));
    }
    text.assign(side->begin(), side->end());
    tool->digest = ToolDigest(tool->sha256, text);
  }
  auto manifest = ParseManifest(text);
  if (!manifest)
    return MakeError(ErrorCode::kInvalidArgument, path + ": " + manifest.error().message);
  tool->manifest = std::move(*manifest);
  if (auto pin = options_.pins.find(tool->manifest.name); pin != options_.pins.end()) {
    if (pin->second != tool->digest) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + ": tool " + tool->manifest.name + " is pinned to " + pin->second +
                           " but its module and manifest are " + tool->digest);
    }
  }
  auto handle = engine_->Load(*bytes, path);
  if (!handle) return MakeError(handle.error().code, path + ": " + handle.error().message);
  tool->module = std::move(*handle);
  return std::shared_ptr<const Tool>(std::move(tool));
}

void Registry::Rescan() {
  std::lock_guard<std::mutex> scan(scan_mu_);
  // Every module in the folders, loaded again only when its bytes or its sidecar changed.
  std::set<std::string> present;
  for (const std::string& dir : options_.extension_dirs) {
    // A folder someone else can write to could be handed any tool: none is loaded from it.
    if (auto ok = CheckNotWritableByOthers(dir); !ok) {
      struct stat st {};
      if (stat(dir.c_str(), &st) != 0) continue;  // a missing folder simply has no tools
      std::string why = ok.error().message + "; no tools are loaded from it";
      if (seen_[dir].key != why) {
        seen_[dir] = {why, nullptr};
        Emit({{"event", "tool_rejected"}, {"path", dir}, {"reason", why}});
      }
      present.insert(dir);
      continue;
    }
    for (const std::string& path : ModulesIn(dir)) {
      present.insert(path);
      // What was tried for this path: the module's and its sidecar's bytes, owners and modes.
      std::string key;
      for (const std::string& file : {path, SidecarPath(path)}) {
        struct stat st {};
        if (lstat(file.c_str(), &st) != 0) {
          key += "missing;";
          continue;
        }
        key += std::to_string(st.st_uid) + ":" + std::to_string(st.st_mode) + ":";
        auto bytes = ReadFile(file, kMaxToolModuleBytes);
        key += (bytes ? Hex(*bytes) : "unreadable") + ";";
      }
      if (seen_.count(path) && seen_[path].key == key) continue;
      auto tool = LoadModule(path, false);
      if (!tool) {
        Emit({{"event", "tool_rejected"}, {"path", path}, {"reason", tool.error().message}});
        // A module that fails to load never replaces a working one at the same path.
        auto old = seen_.find(path);
        seen_[path] = {key, old == seen_.end() ? nullptr : old->second.tool};
        continue;
      }
      seen_[path] = {key, *tool};
    }
  }
  for (auto it = seen_.begin(); it != seen_.end();) {
    it = present.count(it->first) ? std::next(it) : seen_.erase(it);
  }

  // One file per name: a name two files declare is served by neither until one goes.
  std::map<std::string, std::vector<std::shared_ptr<const Tool>>> by_name;
  for (const auto& [path, entry] : seen_) {
    if (!entry.tool) continue;
    const std::string& name = entry.tool->manifest.name;
    if (builtin_names_.count(name)) {
      std::string why = "a built-in tool named " + name + " is already provided by " +
                        builtin_names_.at(name) + "; " + path + " is not loaded";
      if (reported_[path] != why) {
        reported_[path] = why;
        Emit({{"event", "tool_rejected"}, {"path", path}, {"name", name}, {"reason", why}});
      }
      continue;
    }
    by_name[name].push_back(entry.tool);
  }
  std::lock_guard<std::mutex> lock(mu_);
  declared_.clear();
  for (const auto& [name, list] : by_name) {
    std::string paths;
    for (const auto& t : list) {
      paths += (paths.empty() ? "" : ", ") + t->path;
      declared_[name].push_back(t->path);
    }
    if (list.size() > 1) {
      std::string why = "tool " + name + " is declared by more than one file (" + paths +
                        "); none is loaded until one is removed";
      if (ambiguous_[name] != why) {
        ambiguous_[name] = why;
        Emit({{"event", "tool_rejected"}, {"name", name}, {"path", paths}, {"reason", why}});
      }
      if (auto it = tools_.find(name); it != tools_.end()) {
        Emit({{"event", "tool_removed"}, {"name", name}, {"path", it->second->path}});
        tools_.erase(it);
      }
      continue;
    }
    ambiguous_.erase(name);
    const std::shared_ptr<const Tool>& tool = list.front();
    auto it = tools_.find(name);
    if (it != tools_.end() && it->second == tool) continue;
    bool update = it != tools_.end();
    tools_[name] = tool;
    Emit({{"event", update ? "tool_updated" : "tool_added"},
          {"name", name},
          {"version", tool->manifest.version},
          {"path", tool->path},
          {"sha256", tool->sha256},
          {"digest", tool->digest}});
  }
  for (auto it = ambiguous_.begin(); it != ambiguous_.end();) {
    it = by_name.count(it->first) ? std::next(it) : ambiguous_.erase(it);
  }
  for (auto it = reported_.begin(); it != reported_.end();) {
    it = seen_.count(it->first) ? std::next(it) : reported_.erase(it);
  }
  for (auto it = tools_.begin(); it != tools_.end();) {
    if (!it->second->builtin && !by_name.count(it->first)) {
      Emit({{"event", "tool_removed"}, {"name", it->first}, {"path", it->second->path}});
      it = tools_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<std::string> Registry::Declarations(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = declared_.find(name);
  return it == declared_.end() ? std::vector<std::string>{} : it->second;
}

Status Registry::StartWatching() {
  if (watcher_.joinable()) return OkStatus();
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (inotify_fd_ < 0 || wake_fd_ < 0) {
    StopWatching();
    return MakeError(ErrorCode::kIo, std::string("inotify: ") + strerror(errno));
  }
  for (const std::string& dir : options_.extension_dirs) {
    inotify_add_watch(
        inotify_fd_, dir.c_str(),
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_ONLYDIR);
  }
  watcher_ = std::thread([this] { WatchLoop(); });
  return OkStatus();
}

void Registry::StopWatching() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof one) < 0) {
    }
    watcher_.join();
  }
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

void Registry::WatchLoop() {
  char buf[16 * 1024];
  for (;;) {
    pollfd p[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    // Let a burst of changes (a copy, then a rename) settle, then look once.
    do {
      while (read(inotify_fd_, buf, sizeof buf) > 0) {
      }
      p[0].revents = 0;
    } while (poll(p, 1, 50) > 0);
    Rescan();
  }
}

CallResult Registry::Call(const std::string& name, const json& args,
                          const CallOptions& options) const {
  std::shared_ptr<const Tool> tool = Find(name);
  if (tool) return Call(tool, args, options);
  CallResult out;
  if (!LoadError(name).empty()) {
    out.result = ErrorResult("tool_unavailable", LoadError(name));
    return out;
  }
  std::string known;
  for (const auto& t : List()) known += (known.empty() ? "" : ", ") + t->manifest.name;
  out.result =
      ErrorResult("unknown_tool", "no tool named \"" + Quote(name, 64) +
                                      "\"; available: " + (known.empty() ? "none" : known));
  return out;
}

CallResult Registry::Call(const std::shared_ptr<const Tool>& tool, const json& args,
                          const CallOptions& options) const {
  auto t0 = std::chrono::steady_clock::now();
  CallResult out;
  auto finish = [&](json result) {
    out.result = std::move(result);
    out.ok = out.result.value("ok", false);
    uint64_t total = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    out.host_us = out.ran && total > out.exec.wall_us ? total - out.exec.wall_us : total;
    return out;
  };
  if (!args.is_object()) {
    return finish(ErrorResult("invalid_arguments", "arguments must be a JSON object"));
  }
  if (auto s = options.arguments_checked
                   ? OkStatus()
                   : tool->manifest.schema.Validate(
                         args, options.cancel ? options.cancel->flag() : nullptr);
      !s) {
    return finish(ErrorResult("invalid_arguments", s.error().message));
  }

  ExecRequest req;
  req.argv = {tool->manifest.name};
  auto text = CompactJson(args);
  if (!text) return finish(ErrorResult("invalid_arguments", text.error().message));
  req.stdin_bytes = std::move(*text);
  for (const auto& [k, v] : options.env) {
    const auto& allowed = tool->manifest.capabilities.env;
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) req.env.emplace_back(k, v);
  }
  FsAccess fs = tool->manifest.capabilities.filesystem;
  if (fs != FsAccess::kNone) {
    if (!options.workspace.empty()) {
      req.mounts.push_back({options.workspace, "/workspace", fs == FsAccess::kRead});
    }
    for (Mount m : options.extra_mounts) {
      if (fs == FsAccess::kRead) m.read_only = true;
      req.mounts.push_back(std::move(m));
    }
  }
  req.protect = options.protect;
  req.untrusted = options.untrusted;
  Limits limits = options.base_limits.value_or(Limits{});
  const ToolLimits& ml = tool->manifest.limits;
  if (ml.fuel) limits.fuel = *ml.fuel;
  if (ml.memory_bytes) limits.memory_bytes = *ml.memory_bytes;
  if (ml.timeout_us) limits.timeout_us = *ml.timeout_us;
  if (ml.max_output_bytes) limits.max_output_bytes = *ml.max_output_bytes;
  if (options.fuel) limits.fuel = *options.fuel;
  if (options.memory_bytes) limits.memory_bytes = *options.memory_bytes;
  if (options.timeout_us) limits.timeout_us = *options.timeout_us;
  if (options.max_output_bytes) limits.max_output_bytes = *options.max_output_bytes;
  if (auto s = limits.Validate(); !s) {
    return finish(ErrorResult("invalid_limits", s.error().message));
  }
  req.limits = limits;
  req.cancel = options.cancel;
  if (fs == FsAccess::kWrite) req.preimages = options.preimages;
  const ToolCapabilities& caps = tool->manifest.capabilities;
  if (!caps.network.empty() && !options.network.empty()) {
    req.network.rule_sets = {caps.network, options.network};
    req.network.networks = options.private_networks;
    req.network.ca_file = options.ca_file;
    bool any_secret =
        std::find(caps.secrets.begin(), caps.secrets.end(), "*") != caps.secrets.end();
    for (const net::Secret& s : options.secrets) {
      if (any_secret ||
          std::find(caps.secrets.begin(), caps.secrets.end(), s.name) != caps.secrets.end()) {
        req.network.secrets.push_back(s);
      }
    }
    if (options.requests_per_minute > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      auto& rate = rates_[tool->manifest.name];
      if (!rate || rate->per_minute() != options.requests_per_minute) {
        rate = std::make_shared<RateLimiter>(options.requests_per_minute);
      }
      req.network.rate = rate;
    }
  }

  out.exec = engine_->Run(tool->module, req);
  out.ran = true;
  const ExecResult& r = out.exec;
  if (r.status != RunStatus::kOk) {
    std::string msg = "the tool was stopped: " + std::string(RunStatusName(r.status));
    if (!r.message.empty()) msg += ": " + Quote(r.message);
    return finish(ErrorResult(RunStatusName(r.status), msg));
  }
  auto parsed = ParseToolOutput(r.stdout_bytes);
  if (parsed) return finish(std::move(*parsed));
  if (r.exit_code != 0) {
    return finish(ErrorResult("tool_failed", "the tool exited with status " +
                                                 std::to_string(r.exit_code) + ": " +
                                                 Quote(r.stderr_bytes)));
  }
  return finish(ErrorResult("bad_tool_output", "the tool's output is " + parsed.error().message +
                                                   ": " + Quote(r.stdout_bytes)));
}

}  // namespace moat::tools
