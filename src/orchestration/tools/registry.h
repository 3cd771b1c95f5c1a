// The live set of tools: the built-in ones plus those in extension folders, each a
// validated, compiled module with its manifest. Lookups are lock-free for callers in the
// sense that matters: a call holds a shared_ptr to an immutable Tool, so a reload swaps
// the entry atomically and never changes a tool under a running call. A module that
// fails to load never replaces a working one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "execution/engine.h"
#include "orchestration/tools/manifest.h"

namespace moat::tools {

inline constexpr uint64_t kMaxToolModuleBytes = 64ull << 20;

struct Tool {
  ToolManifest manifest;
  std::string path;    // the module file it was loaded from
  std::string sha256;  // of the module bytes
  // What a pin and a standing approval bind: the module and the manifest in force. With
  // the manifest embedded (a section of the module) it is `sha256`; with a sidecar
  // manifest, the SHA-256 of both (ToolDigest), so editing the sidecar (a wider
  // capability, a secret, a limit) changes it.
  std::string digest;
  bool builtin = false;
  ModuleHandle module;
};

struct RegistryOptions {
  std::vector<std::string> builtin_dirs;    // read once
  std::vector<std::string> extension_dirs;  // rescanned, watched
  std::map<std::string, std::string> pins;  // tool name -> required Tool::digest (hex)
  // Load every built-in tool up front. Off: a built-in is read and loaded the first time
  // it is looked up (by its file name, NAME.wasm), which keeps one-shot commands fast.
  bool preload_builtins = true;
  // Each change (added, updated, removed, rejected) as one JSON object.
  std::function<void(const nlohmann::json&)> on_event;
};

// How one call runs: where the workspace is and what the caller lowers or adds.
struct CallOptions {
  std::string workspace;            // host folder mounted at /workspace; empty: none
  std::vector<Mount> extra_mounts;  // more grants from the caller
  // Paths in writable mounts the tool may read but never change (ExecRequest::protect).
  std::vector<std::string> protect = DefaultProtectedPatterns();
  // Paths whose content is untrusted (ExecRequest::untrusted): the run reports those it read.
  std::vector<std::string> untrusted;
  std::vector<std::pair<std::string, std::string>> env;  // offered; only manifest-listed pass
  std::optional<uint64_t> fuel, memory_bytes, timeout_us, max_output_bytes;
  std::optional<Limits> base_limits;  // quotas etc.; defaults when unset
  std::shared_ptr<CancelToken> cancel;
  // The caller already checked the arguments against this tool's schema (ToolGate does,
  // before asking for approval): they are not checked twice.
  bool arguments_checked = false;
  // Network: what the caller's policy grants. A tool reaches a URL only when its manifest
  // asks for it and one of these egress rules allows it too; `private_networks` (CIDR)
  // may be reached although not public; of `secrets`, the tool gets those its manifest
  // names; `requests_per_minute` (0: none) limits each tool across all its calls.
  std::vector<std::string> network;
  std::vector<std::string> private_networks;
  std::vector<net::Secret> secrets;
  uint32_t requests_per_minute = 0;
  std::string ca_file;  // an extra CA bundle for https (tests)
  // Told before each change the tool makes to a mount (checkpoints for undo); only tools
  // that may write get it.
  std::shared_ptr<PreImageSink> preimages;
};

struct CallResult {
  nlohmann::json result;  // the contract's {"ok":...} object, always present
  bool ok = false;        // result["ok"]
  ExecResult exec;        // what the sandbox saw (status none-run when refused early)
  bool ran = false;       // false when refused before running (unknown tool, bad arguments)
  uint64_t host_us = 0;   // time in the host outside the guest run
  // The result came from outside the workspace and the user by a way `exec` does not show
  // (a tool served by an external server): the caller counts it as untrusted input, named
  // by `untrusted_source` when not empty. Network responses (exec.http_requests) and
  // untrusted files (exec.untrusted_reads) count without it.
  bool untrusted = false;
  std::string untrusted_source;
};

class Registry {
 public:
  static Result<std::unique_ptr<Registry>> Create(Engine* engine, RegistryOptions options);
  ~Registry();

  std::shared_ptr<const Tool> Find(const std::string& name) const;
  std::vector<std::shared_ptr<const Tool>> List() const;  // sorted by name
  // Why a tool could not be loaded, when Find() came back empty for a known name.
  std::string LoadError(const std::string& name) const;

  // The extension files that declare `name`, as of the last rescan (more than one: the
  // name is ambiguous and none of them is loaded).
  std::vector<std::string> Declarations(const std::string& name) const;

  // Reads a module's manifest (custom section, else NAME.manifest.json beside it), checks
  // its pin, validates and compiles it. Does not register it.
  Result<std::shared_ptr<const Tool>> LoadModule(const std::string& path, bool builtin) const;

  // Brings the extension folders' tools up to date; emits one event per change.
  void Rescan();
  // Rescans in a background thread whenever an extension folder changes (inotify).
  Status StartWatching();
  void StopWatching();

  // Validates `args` against the tool's schema and runs it through the sandbox with its
  // manifest's limits and capabilities. Every failure is a contract error result.
  CallResult Call(const std::string& name, const nlohmann::json& args,
                  const CallOptions& options) const;
  // The same for a tool resolved earlier (Find): that module runs, whatever a reload has
  // put under its name since (so what was approved is what runs).
  CallResult Call(const std::shared_ptr<const Tool>& tool, const nlohmann::json& args,
                  const CallOptions& options) const;

 private:
  Registry(Engine* engine, RegistryOptions options);
  void Emit(nlohmann::json event) const;
  void WatchLoop();

  Engine* engine_;
  RegistryOptions options_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const Tool>> tools_;  // by name
  mutable std::map<std::string, std::string> builtin_index_;  // name -> path, not loaded yet
  mutable std::set<std::string> loading_;                     // built-ins being loaded now
  mutable std::condition_variable loaded_cv_;                 // a load ended
  mutable std::map<std::string, std::string> load_errors_;    // name -> why it failed
  mutable std::map<std::string, std::shared_ptr<RateLimiter>> rates_;  // by tool name
  mutable std::map<std::string, std::string> builtin_names_;  // every built-in: name -> path
  mutable std::map<std::string, std::string> ambiguous_;      // name -> why (two files)
  std::map<std::string, std::vector<std::string>> declared_;  // name -> extension files
  std::mutex scan_mu_;                                        // one rescan at a time
  struct Seen {
    std::string key;                   // what was tried: bytes, owners, modes
    std::shared_ptr<const Tool> tool;  // what loaded from it (null: nothing yet)
  };
  std::map<std::string, Seen> seen_;             // extension path (or refused folder)
  std::map<std::string, std::string> reported_;  // path -> rejection already reported
  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  std::thread watcher_;
};

// Where a plain module's manifest lives: MODULE.wasm -> MODULE.manifest.json.
std::string SidecarPath(const std::string& module_path);
// The contract's error object.
nlohmann::json ErrorResult(std::string_view code, std::string_view message);
// The folder of built-in tools: $MOAT_TOOLS_DIR, else `tools/` beside the executable.
std::string DefaultBuiltinToolsDir();

// Tool::digest of a module whose manifest is a sidecar file: SHA-256 over a domain tag, the
// module's SHA-256 (hex) and the sidecar's bytes.
std::string ToolDigest(const std::string& module_sha256, std::string_view sidecar);
// The user's extension folder: $MOAT_TOOL_PATH's first entry, else
// $XDG_CONFIG_HOME/moat/tools or ~/.config/moat/tools.
std::vector<std::string> DefaultExtensionDirs();

}  // namespace moat::tools
