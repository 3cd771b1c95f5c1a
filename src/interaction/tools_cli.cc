#include "interaction/tools_cli.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/sha256.h"
#include "base/terminal_text.h"
#include "execution/runtime.h"
#include "interaction/cli_util.h"
#include "interaction/exit_status.h"
#include "orchestration/tools/registry.h"

namespace moat {

namespace {

using nlohmann::json;
using tools::Registry;
using tools::RegistryOptions;
using tools::Tool;

std::atomic<bool> g_stop{false};
void OnStopSignal(int) { g_stop = true; }

// Messages quote manifests, tool output and file names: escaped (base/terminal_text.h).
int Fail(const std::string& msg, int status = 1) {
  fprintf(stderr, "moat: %s\n", TerminalSafe(msg, TextKind::kProse).c_str());
  return status;
}

std::string FirstLine(const std::string& s, size_t max = 72) {
  return TerminalCut(s.substr(0, s.find('\n')), max);
}

bool IsFile(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

struct ToolCommands::State {
  // Shared by the tools commands.
  std::vector<std::string> tool_dirs;  // extension folders (default: DefaultExtensionDirs)
  std::vector<std::string> pins;       // NAME=SHA256
  bool json_out = false;

  CLI::App* tools = nullptr;
  CLI::App* list = nullptr;
  CLI::App* inspect = nullptr;
  CLI::App* add = nullptr;
  CLI::App* remove = nullptr;
  CLI::App* pack = nullptr;
  CLI::App* watch = nullptr;
  CLI::App* call = nullptr;

  std::string target;  // inspect: MODULE or NAME; add: MODULE; remove: NAME; pack: MODULE
  std::string manifest_file, out_file;

  // call
  std::string tool, args_text, args_file, workspace;
  std::vector<std::string> dirs, envs, protect;
  bool no_default_protect = false;
  LimitFlags limits;  // the tool's own (over the manifest's), quotas and network
  NetFlags net;
  bool stats = false;

  std::unique_ptr<Engine> engine;
  std::unique_ptr<Registry> registry;

  Status Open(bool preload, std::function<void(const json&)> on_event = nullptr) {
    EngineOptions eo;
    eo.show_progress = true;
    if (!net.secrets_file.empty()) eo.own_paths.push_back(net.secrets_file);
    auto e = Engine::Create(eo);
    if (!e) return e.error();
    engine = std::move(*e);
    RegistryOptions ro;
    ro.builtin_dirs = {tools::DefaultBuiltinToolsDir()};
    ro.extension_dirs = tool_dirs.empty() ? tools::DefaultExtensionDirs() : tool_dirs;
    ro.preload_builtins = preload;
    for (const std::string& p : pins) {
      size_t eq = p.find('=');
      if (eq == std::string::npos || eq == 0) {
        return MakeError(ErrorCode::kInvalidArgument, "--pin needs NAME=SHA256, got '" + p + "'");
      }
      ro.pins[p.substr(0, eq)] = p.substr(eq + 1);
    }
    ro.on_event = on_event ? on_event : [](const json& ev) {
      if (ev.value("event", "") == "tool_rejected") {
        fprintf(stderr, "moat: tool skipped: %s\n",
                TerminalSafe(ev.value("reason", ""), TextKind::kProse).c_str());
      }
    };
    auto r = Registry::Create(engine.get(), std::move(ro));
    if (!r) return r.error();
    registry = std::move(*r);
    return OkStatus();
  }

  std::string ExtensionDir() const {
    auto dirs = tool_dirs.empty() ? tools::DefaultExtensionDirs() : tool_dirs;
    return dirs.empty() ? "" : dirs[0];
  }

  int List() {
    if (auto s = Open(true); !s) return Fail(s.error().message);
    auto all = registry->List();
    if (json_out) {
      json arr = json::array();
      for (const auto& t : all) {
        arr.push_back({{"name", t->manifest.name},
                       {"version", t->manifest.version},
                       {"builtin", t->builtin},
                       {"path", t->path},
                       {"sha256", t->sha256},
                       {"digest", t->digest},
                       {"filesystem", tools::FsAccessName(t->manifest.capabilities.filesystem)},
                       {"description", t->manifest.description}});
      }
      printf("%s\n", TerminalJson(arr, 2).c_str());
      return 0;
    }
    printf("%-14s %-8s %-9s %-5s %-12s %s\n", "NAME", "VERSION", "SOURCE", "FS", "DIGEST",
           "DESCRIPTION");
    for (const auto& t : all) {
      printf("%-14s %-8s %-9s %-5s %-12s %s\n", TerminalSafe(t->manifest.name).c_str(),
             TerminalSafe(t->manifest.version).c_str(), t->builtin ? "built-in" : "extension",
             std::string(tools::FsAccessName(t->manifest.capabilities.filesystem)).c_str(),
             t->digest.substr(0, 12).c_str(), FirstLine(t->manifest.description).c_str());
    }
    return 0;
  }

  // A module file: its manifest only (nothing is compiled). A name: the registry's tool.
  int Inspect() {
    if (IsFile(target)) {
      auto bytes = ReadFile(target, tools::kMaxToolModuleBytes);
      if (!bytes) return Fail(bytes.error().message);
      auto section = tools::FindCustomSection(*bytes, tools::kManifestSection);
      if (!section) return Fail(target + ": " + section.error().message);
      std::string text;
      std::string source = "section " + std::string(tools::kManifestSection);
      if (*section) {
        text = **section;
      } else {
        std::string side = tools::SidecarPath(target);
        auto b = ReadFile(side, tools::kMaxManifestBytes + 1);
        struct stat st {};
        if (!b && lstat(side.c_str(), &st) == 0) return Fail(target + ": " + b.error().message);
        if (!b) {
          return Fail(target + ": no " + std::string(tools::kManifestSection) + " section and no " +
                      side);
        }
        text.assign(b->begin(), b->end());
        source = side;
      }
      auto m = tools::ParseManifest(text);
      if (!m) return Fail(target + ": " + m.error().message);
      json out = tools::ManifestJson(*m);
      out["module"] = {
          {"path", target}, {"sha256", ToHex(Sha256(*bytes))}, {"manifest_from", source}};
      printf("%s\n", TerminalJson(out, 2).c_str());
      return 0;
    }
    if (auto s = Open(false); !s) return Fail(s.error().message);
    auto t = registry->Find(target);
    if (!t) {
      std::string why = registry->LoadError(target);
      return Fail(why.empty() ? "no tool or module file named '" + target + "'" : why);
    }
    json out = tools::ManifestJson(t->manifest);
    out["module"] = {{"path", t->path}, {"sha256", t->sha256}, {"builtin", t->builtin}};
    out["digest"] = t->digest;
    printf("%s\n", TerminalJson(out, 2).c_str());
    return 0;
  }

  // Reads MODULE, embeds --manifest when given, and checks it loads as a tool.
  Result<std::vector<uint8_t>> PackedBytes() {
    auto bytes = ReadFile(target, tools::kMaxToolModuleBytes);
    if (!bytes) return bytes.error();
    if (manifest_file.empty()) return *bytes;
    auto mbytes = ReadFile(manifest_file, tools::kMaxManifestBytes + 1);
    if (!mbytes) return mbytes.error();
    std::string text(mbytes->begin(), mbytes->end());
    auto m = tools::ParseManifest(text);
    if (!m) return MakeError(ErrorCode::kInvalidArgument, manifest_file + ": " + m.error().message);
    // Stored compact, so the section does not carry the file's indentation.
    auto parsed = ParseJson(text);
    if (!parsed) {
      return MakeError(ErrorCode::kInvalidArgument,
                       manifest_file + ": manifest is " + parsed.error().message);
    }
    std::string compact = DumpJson(*parsed);
    return tools::SetCustomSection(*bytes, tools::kManifestSection, compact);
  }

  int Pack() {
    if (manifest_file.empty()) return Usage("tools pack: --manifest FILE is required");
    auto bytes = PackedBytes();
    if (!bytes) return Fail(bytes.error().message);
    std::string dir =
        out_file.find('/') == std::string::npos ? "." : out_file.substr(0, out_file.rfind('/'));
    std::string name = out_file.substr(out_file.rfind('/') + 1);
    if (auto s = WriteFileAtomic(dir, name, bytes->data(), bytes->size(), 0644); !s) {
      return Fail(s.error().message);
    }
    return 0;
  }

  int Add() {
    std::string dest_dir = ExtensionDir();
    if (dest_dir.empty()) return Fail("no extension folder: set --tools-dir or HOME");
    // A plain module with NAME.manifest.json beside it lands with that manifest embedded.
    if (manifest_file.empty() && IsFile(tools::SidecarPath(target))) {
      manifest_file = tools::SidecarPath(target);
    }
    auto bytes = PackedBytes();
    if (!bytes) return Fail(bytes.error().message);
    if (auto s = EnsurePrivateDir(dest_dir); !s) return Fail(s.error().message);
    // Load it from a private temporary copy first: a module that does not load as a tool
    // never lands in the folder.
    std::string tmp_name = ".add-" + TempSuffix() + ".wasm";
    if (auto s = WriteFileAtomic(dest_dir, tmp_name, bytes->data(), bytes->size(), 0644); !s) {
      return Fail(s.error().message);
    }
    std::string tmp_path = dest_dir + "/" + tmp_name;
    if (auto s = Open(false, [](const json&) {}); !s) {
      unlink(tmp_path.c_str());
      return Fail(s.error().message);
    }
    auto tool = registry->LoadModule(tmp_path, false);
    unlink(tmp_path.c_str());
    if (!tool) return Fail(target + ": " + tool.error().message);
    const std::string& name = (*tool)->manifest.name;
    if (auto existing = registry->Find(name); existing && existing->builtin) {
      return Fail("a built-in tool is already called " + name);
    }
    // One file per name: a name another file declares is refused (replacing NAME.wasm with
    // a new version of the same tool is fine), and so is overwriting a file of another tool.
    const std::string dest = dest_dir + "/" + name + ".wasm";
    for (const std::string& other : registry->Declarations(name)) {
      if (other != dest) {
        return Fail("tool " + name + " is already declared by " + other + "; not adding " + target +
                    " (remove that one first)");
      }
    }
    if (IsFile(dest)) {
      auto there = registry->LoadModule(dest, false);
      if (there && (*there)->manifest.name != name) {
        return Fail(dest + " holds tool " + (*there)->manifest.name + "; not replacing it with " +
                    name);
      }
    }
    if (auto s = WriteFileAtomic(dest_dir, name + ".wasm", bytes->data(), bytes->size(), 0644);
        !s) {
      return Fail(s.error().message);
    }
    printf("added %s %s (sha256 %s) to %s\n", TerminalSafe(name).c_str(),
           TerminalSafe((*tool)->manifest.version).c_str(), (*tool)->sha256.c_str(),
           TerminalSafe(dest_dir).c_str());
    return 0;
  }

  int Remove() {
    if (auto s = Open(false, [](const json&) {}); !s) return Fail(s.error().message);
    auto t = registry->Find(target);
    if (t && t->builtin) return Fail(target + " is a built-in tool; it cannot be removed");
    // A name two files declare is served by neither: removing one by name would be a guess.
    auto files = registry->Declarations(target);
    if (files.size() > 1) {
      std::string list;
      for (const std::string& f : files) list += (list.empty() ? "" : ", ") + f;
      return Fail("tool " + target + " is declared by more than one file (" + list +
                  "); delete the one you do not want");
    }
    if (!t) return Fail("no tool named '" + target + "'");
    if (unlink(t->path.c_str()) != 0) {
      return Fail("cannot remove " + t->path + ": " + strerror(errno));
    }
    unlink(tools::SidecarPath(t->path).c_str());
    printf("removed %s (%s)\n", TerminalSafe(target).c_str(), TerminalSafe(t->path).c_str());
    return 0;
  }

  // Prints every registry change as one JSON line until SIGINT or SIGTERM.
  int Watch() {
    auto print = [](const json& ev) {
      printf("%s\n", TerminalJson(ev).c_str());
      fflush(stdout);
    };
    if (auto s = Open(true, print); !s) return Fail(s.error().message);
    if (auto s = registry->StartWatching(); !s) return Fail(s.error().message);
    printf("%s\n", TerminalJson(json({{"event", "watching"},
                                      {"dirs", tool_dirs.empty() ? tools::DefaultExtensionDirs()
                                                                 : tool_dirs}}))
                       .c_str());
    fflush(stdout);
    signal(SIGINT, OnStopSignal);
    signal(SIGTERM, OnStopSignal);
    while (!g_stop) usleep(50'000);
    registry->StopWatching();
    return 0;
  }

  int Call() {
    if (!args_text.empty() && !args_file.empty()) {
      return Usage("call: give --args or --args-file, not both");
    }
    std::string text = args_text.empty() ? "{}" : args_text;
    if (!args_file.empty()) {
      std::ifstream f(args_file == "-" ? "/dev/stdin" : args_file, std::ios::binary);
      if (!f) return Usage("call: cannot read " + args_file);
      std::stringstream ss;
      ss << f.rdbuf();
      text = ss.str();
    }
    auto args = ParseJson(text);
    tools::CallOptions co;
    co.workspace = workspace.empty() ? "." : workspace;
    for (const std::string& d : dirs) {
      auto m = ParseDir(d);
      if (!m) return Usage(m.error().message);
      co.extra_mounts.push_back(*m);
    }
    if (auto s = ParseEnv(envs, &co.env); !s) return Usage(s.error().message);
    if (no_default_protect) co.protect.clear();
    for (const std::string& p : protect) {
      if (p.empty()) return Usage("call: --protect needs a pattern");
      co.protect.push_back(p);
    }
    // A tool's own limits override its manifest's; the others replace the defaults.
    auto given = ParseLimitFlags(limits);
    if (!given) return Usage(given.error().message);
    tools::ToolLimits own;
    Limits base;
    for (const GivenLimit& g : *given) {
      if (std::optional<uint64_t>* slot = tools::ToolLimitSlot(&own, *g.field)) {
        *slot = g.value;
      } else if (g.field->run != nullptr) {
        base.*(g.field->run) = g.value;
      }
    }
    if (auto s = base.Validate(); !s) return Usage(s.error().message);
    co.fuel = own.fuel;
    co.memory_bytes = own.memory_bytes;
    co.timeout_us = own.timeout_us;
    co.max_output_bytes = own.max_output_bytes;
    co.base_limits = base;
    co.network = net.allow_net;
    co.private_networks = net.allow_private;
    co.ca_file = net.ca_file;
    auto secrets = LoadSecrets(net);
    if (!secrets) return Usage(secrets.error().message);
    co.secrets = std::move(*secrets);
    if (auto s = Open(false); !s) return Fail(s.error().message, 70);
    rt::SetMemoryRecycling(false);  // one call, then exit
    json result;
    tools::CallResult r;
    if (!args) {
      result = tools::ErrorResult("invalid_arguments", "the arguments are " + args.error().message);
    } else {
      r = registry->Call(tool, *args, co);
      result = r.result;
    }
    printf("%s\n", TerminalJson(result).c_str());
    if (stats && r.ran) {
      fprintf(
          stderr,
          "moat: %s: %s, fuel %llu, memory %llu KiB, %llu us in the tool, %llu us in the host\n",
          tool.c_str(), std::string(RunStatusName(r.exec.status)).c_str(),
          static_cast<unsigned long long>(r.exec.fuel_used),
          static_cast<unsigned long long>(r.exec.peak_memory_bytes >> 10),
          static_cast<unsigned long long>(r.exec.wall_us),
          static_cast<unsigned long long>(r.host_us));
    }
    return result.value("ok", false) ? kExitOk : kExitFailed;
  }
};

ToolCommands::ToolCommands(CLI::App* app) : s_(std::make_unique<State>()) {
  State& s = *s_;
  auto common = [&s](CLI::App* c) {
    c->add_option("--tools-dir", s.tool_dirs,
                  "Extension folder of tools (repeatable; default ~/.config/moat/tools)");
    c->add_option("--pin", s.pins,
                  "Refuse tool NAME unless its module and manifest have this digest (NAME=DIGEST, "
                  "as tools list --json and tools inspect show it)");
  };
  s.tools = app->add_subcommand("tools", "List, inspect, add and remove tools");
  s.tools->require_subcommand(1);
  s.list = s.tools->add_subcommand("list", "List the built-in and extension tools");
  s.list->add_flag("--json", s.json_out, "Print JSON");
  common(s.list);
  s.inspect = s.tools->add_subcommand("inspect", "Print a module's or a tool's manifest");
  s.inspect->add_option("target", s.target, "MODULE.wasm or a tool name")->required();
  common(s.inspect);
  s.add = s.tools->add_subcommand("add", "Check a module and copy it into the extension folder");
  s.add->add_option("module", s.target, "MODULE.wasm")->required();
  s.add->add_option("--manifest", s.manifest_file, "Embed this manifest first");
  common(s.add);
  s.remove = s.tools->add_subcommand("remove", "Remove an extension tool");
  s.remove->add_option("name", s.target, "Tool name")->required();
  common(s.remove);
  s.pack = s.tools->add_subcommand("pack", "Embed a manifest as the moat.manifest section");
  s.pack->add_option("module", s.target, "MODULE.wasm")->required();
  s.pack->add_option("--manifest", s.manifest_file, "Manifest JSON file")->required();
  s.pack->add_option("-o,--output", s.out_file, "Output module")->required();
  s.watch = s.tools->add_subcommand("watch", "Print registry changes as JSON lines (hot reload)");
  common(s.watch);

  s.call = app->add_subcommand("call", "Run one tool through the registry and print its result");
  s.call->add_option("tool", s.tool, "Tool name")->required();
  s.call->add_option("--args", s.args_text, "Arguments as a JSON object (default {})");
  s.call->add_option("--args-file", s.args_file, "Read the arguments from a file ('-': stdin)");
  s.call->add_option("--workspace", s.workspace,
                     "Folder mounted at /workspace (default: the current folder)");
  s.call->add_option("--dir", s.dirs, "Also mount HOST[::GUEST][:ro]");
  s.call->add_option("--env", s.envs, "Offer KEY=VALUE (only variables the manifest lists pass)");
  AddLimitFlags(s.call, kLimitCallFlag, &s.limits);
  s.call->add_option("--protect", s.protect,
                     "Keep paths matching PATTERN read-only inside writable mounts (adds to the "
                     "default, .git)");
  s.call->add_flag("--no-default-protect", s.no_default_protect,
                   "Do not protect .git (at any depth) by default");
  AddNetFlags(s.call, &s.net);
  s.call->add_flag("--stats", s.stats, "Print status, fuel, memory and time on stderr");
  common(s.call);
}

ToolCommands::~ToolCommands() = default;

int ToolCommands::Dispatch() {
  State& s = *s_;
  if (s.call->parsed()) return s.Call();
  if (!s.tools->parsed()) return -1;
  if (s.list->parsed()) return s.List();
  if (s.inspect->parsed()) return s.Inspect();
  if (s.add->parsed()) return s.Add();
  if (s.remove->parsed()) return s.Remove();
  if (s.pack->parsed()) return s.Pack();
  if (s.watch->parsed()) return s.Watch();
  return kUsageError;
}

}  // namespace moat
