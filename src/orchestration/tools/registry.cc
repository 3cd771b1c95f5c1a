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
std::optional<json> ParseToolOutput(const std::string& out) {
  json j = json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) return std::nullopt;
  if (ok->get<bool>()) {
    if (!j.contains("content")) return std::nullopt;
  } else {
    auto e = j.find("error");
    if (e == j.end() || !e->is_object() || !e->contains("code") || !(*e)["code"].is_string() ||
        !e->contains("message") || !(*e)["message"].is_string()) {
      return std::nullopt;
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
    for (const std::string& path : ModulesIn(dir)) {
      std::string stem = path.substr(path.rfind('/') + 1);
      stem.resize(stem.size() - 5);
      if (!r->builtin_index_.count(stem)) r->builtin_index_[stem] = path;
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
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tools_.find(name);
    if (it != tools_.end()) return it->second;
    auto b = builtin_index_.find(name);
    if (b == builtin_index_.end()) return nullptr;
    path = b->second;
    builtin_index_.erase(b);
  }
  // A built-in's first use: load it outside the lock (compiling can take seconds).
  auto tool = LoadModule(path, true);
  std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const Tool>> out;
  for (const auto& [name, tool] : tools_) out.push_back(tool);
  return out;
}

std::string Registry::LoadError(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = load_errors_.find(name);
  return it == load_errors_.end() ? "" : it->second;
}

Result<std::shared_ptr<const Tool>> Registry::LoadModule(const std::string& path,
                                                         bool builtin) const {
  auto bytes = ReadFile(path, kMaxToolModuleBytes);
  if (!bytes) return bytes.error();
  auto tool = std::make_shared<Tool>();
  tool->path = path;
  tool->builtin = builtin;
  tool->sha256 = Hex(*bytes);
  auto section = FindCustomSection(*bytes, kManifestSection);
  if (!section) return MakeError(ErrorCode::kInvalidModule, path + ": " + section.error().message);
  std::string text;
  if (*section) {
    text = std::move(**section);
  } else {
    auto side = ReadFile(SidecarPath(path), kMaxManifestBytes + 1);
    if (!side) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + ": no manifest: the module has no " + std::string(kManifestSection) +
                           " section (moat tools pack adds one) and there is no " +
                           SidecarPath(path));
    }
    text.assign(side->begin(), side->end());
  }
  auto manifest = ParseManifest(text);
  if (!manifest)
    return MakeError(ErrorCode::kInvalidArgument, path + ": " + manifest.error().message);
  tool->manifest = std::move(*manifest);
  if (auto pin = options_.pins.find(tool->manifest.name); pin != options_.pins.end()) {
    if (pin->second != tool->sha256) {
      return MakeError(ErrorCode::kInvalidArgument, path + ": tool " + tool->manifest.name +
                                                        " is pinned to sha256 " + pin->second +
                                                        " but this module is " + tool->sha256);
    }
  }
  auto handle = engine_->Load(*bytes, path);
  if (!handle) return MakeError(handle.error().code, path + ": " + handle.error().message);
  tool->module = std::move(*handle);
  return std::shared_ptr<const Tool>(std::move(tool));
}

void Registry::Rescan() {
  std::lock_guard<std::mutex> scan(scan_mu_);
  std::set<std::string> present;
  for (const std::string& dir : options_.extension_dirs) {
    for (const std::string& path : ModulesIn(dir)) {
      present.insert(path);
      // What was tried for this path: the module's digest and its sidecar manifest.
      auto bytes = ReadFile(path, kMaxToolModuleBytes);
      std::string key = bytes ? Hex(*bytes) : "unreadable";
      if (auto side = ReadFile(SidecarPath(path), kMaxManifestBytes + 1)) key += ":" + Hex(*side);
      if (seen_[path] == key) continue;
      seen_[path] = key;

      auto tool = LoadModule(path, false);
      if (!tool) {
        Emit({{"event", "tool_rejected"}, {"path", path}, {"reason", tool.error().message}});
        continue;
      }
      const std::string& name = (*tool)->manifest.name;
      std::lock_guard<std::mutex> lock(mu_);
      if (auto b = builtin_index_.find(name); b != builtin_index_.end()) {
        Emit(
            {{"event", "tool_rejected"},
             {"path", path},
             {"name", name},
             {"reason", "a built-in tool named " + name + " is already provided by " + b->second}});
        continue;
      }
      auto it = tools_.find(name);
      if (it != tools_.end() && it->second->path != path) {
        Emit({{"event", "tool_rejected"},
              {"path", path},
              {"name", name},
              {"reason", std::string(it->second->builtin ? "a built-in tool" : "a tool") +
                             " named " + name + " is already provided by " + it->second->path}});
        continue;
      }
      // A file that now declares another name replaces its old entry.
      for (auto old = tools_.begin(); old != tools_.end();) {
        if (old->second->path == path && old->first != name) {
          Emit({{"event", "tool_removed"}, {"name", old->first}, {"path", path}});
          old = tools_.erase(old);
        } else {
          ++old;
        }
      }
      bool update = it != tools_.end();
      tools_[name] = *tool;
      Emit({{"event", update ? "tool_updated" : "tool_added"},
            {"name", name},
            {"version", (*tool)->manifest.version},
            {"path", path},
            {"sha256", (*tool)->sha256}});
    }
  }
  for (auto it = seen_.begin(); it != seen_.end();) {
    it = present.count(it->first) ? std::next(it) : seen_.erase(it);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = tools_.begin(); it != tools_.end();) {
    if (!it->second->builtin && !present.count(it->second->path)) {
      Emit({{"event", "tool_removed"}, {"name", it->first}, {"path", it->second->path}});
      it = tools_.erase(it);
    } else {
      ++it;
    }
  }
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
  std::shared_ptr<const Tool> tool = Find(name);
  if (!tool && !LoadError(name).empty()) {
    return finish(ErrorResult("tool_unavailable", LoadError(name)));
  }
  if (!tool) {
    std::string known;
    for (const auto& t : List()) known += (known.empty() ? "" : ", ") + t->manifest.name;
    return finish(
        ErrorResult("unknown_tool", "no tool named \"" + Quote(name, 64) +
                                        "\"; available: " + (known.empty() ? "none" : known)));
  }
  if (!args.is_object()) {
    return finish(ErrorResult("invalid_arguments", "arguments must be a JSON object"));
  }
  if (auto s = tool->manifest.schema.Validate(args); !s) {
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
  if (auto parsed = ParseToolOutput(r.stdout_bytes)) {
    return finish(std::move(*parsed));
  }
  if (r.exit_code != 0) {
    return finish(ErrorResult("tool_failed", "the tool exited with status " +
                                                 std::to_string(r.exit_code) + ": " +
                                                 Quote(r.stderr_bytes)));
  }
  return finish(ErrorResult("bad_tool_output",
                            "the tool's output is not a result object: " + Quote(r.stdout_bytes)));
}

}  // namespace moat::tools
