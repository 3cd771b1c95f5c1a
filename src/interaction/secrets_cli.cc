#include "interaction/secrets_cli.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/terminal_text.h"
#include "execution/net/secret_store.h"
#include "interaction/cli_util.h"
#include "interaction/exit_status.h"

namespace moat {

struct SecretCommands::State {
  CLI::App* secrets = nullptr;
  CLI::App* set = nullptr;
  CLI::App* ls = nullptr;
  CLI::App* rm = nullptr;
  std::string name;
  std::vector<std::string> hosts, headers;
  std::string file;
  bool json_out = false;
};

SecretCommands::SecretCommands(CLI::App* app) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.secrets = app->add_subcommand("secrets", "Manage secrets that tools can use but never read");
  s.secrets->require_subcommand(1);
  s.secrets->add_option("--file", s.file,
                        "The store (default: $MOAT_SECRETS_FILE or "
                        "~/.config/moat/secrets.json)");
  s.set = s.secrets->add_subcommand(
      "set",
      "Add or replace a secret; its value is read from stdin (one trailing newline dropped)");
  s.set->add_option("NAME", s.name, "Secret name: letters, digits, _ - .")->required();
  s.set->add_option("--host", s.hosts, "Host it may be sent to (name, address or *.domain)")
      ->required();
  s.set->add_option("--header", s.headers, "Header it may be sent in (default: any place)");
  s.ls = s.secrets->add_subcommand("ls", "List secrets: names, hosts and headers, never values");
  s.ls->add_flag("--json", s.json_out, "One JSON object");
  s.rm = s.secrets->add_subcommand("rm", "Remove a secret");
  s.rm->add_option("NAME", s.name, "Secret name")->required();
}

SecretCommands::~SecretCommands() = default;

int SecretCommands::Dispatch() {
  State& s = *s_;
  if (!s.secrets->parsed()) return -1;
  const std::string path = s.file.empty() ? net::SecretStore::DefaultPath() : s.file;
  if (path.empty()) {
    fprintf(stderr,
            "moat: no folder for the secret store: set HOME (or XDG_CONFIG_HOME) to an absolute "
            "path, or name the store with --file or MOAT_SECRETS_FILE\n");
    return kUsageError;
  }
  auto fail = [](const Error& e, int status) {
    fprintf(stderr, "moat: %s\n", TerminalSafe(e.message, TextKind::kProse).c_str());
    return status;
  };
  if (s.set->parsed()) {
    // The value is read and checked before the store is touched; the store is then loaded,
    // changed and saved under its lock, so a concurrent set or rm is never undone.
    net::KeepSecretsOutOfCoreDumps();
    std::string value;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0 && value.size() <= 65536)
      value.append(buf, n);
    if (value.size() > 65536) {
      fprintf(stderr, "moat: secret value longer than 64 KiB\n");
      return kUsageError;
    }
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
    net::Secret secret{s.name, std::move(value), s.hosts, s.headers};
    if (auto ok = net::SecretStore().Set(secret); !ok) return fail(ok.error(), kUsageError);
    int status = 0;
    auto ok = net::SecretStore::Update(path, [&](net::SecretStore& store) {
      auto set = store.Set(std::move(secret));
      if (!set) status = kUsageError;
      return set;
    });
    if (!ok) return fail(ok.error(), status == 0 ? kExitFailed : status);
    fprintf(stderr, "secret %s saved in %s\n", s.name.c_str(), TerminalSafe(path).c_str());
    return 0;
  }
  if (s.rm->parsed()) {
    auto ok = net::SecretStore::Update(path, [&](net::SecretStore& store) -> Status {
      if (!store.Remove(s.name)) {
        return MakeError(ErrorCode::kInvalidArgument, "no secret named " + s.name);
      }
      return OkStatus();
    });
    if (!ok) return fail(ok.error(), 1);
    return 0;
  }
  auto store = net::SecretStore::Load(path);
  if (!store) return fail(store.error(), 1);
  // ls
  nlohmann::json list = nlohmann::json::array();
  for (const net::Secret& e : store->all()) {
    list.push_back({{"name", e.name}, {"hosts", e.hosts}, {"headers", e.headers}});
  }
  if (s.json_out) {
    printf("%s\n", TerminalJson(nlohmann::json({{"secrets", list}})).c_str());
    return 0;
  }
  for (const net::Secret& e : store->all()) {
    std::string hosts, headers;
    for (const auto& h : e.hosts) hosts += (hosts.empty() ? "" : ",") + h;
    for (const auto& h : e.headers) headers += (headers.empty() ? "" : ",") + h;
    printf("%-24s hosts=%s%s\n", TerminalSafe(e.name).c_str(), TerminalSafe(hosts).c_str(),
           headers.empty() ? "" : (" headers=" + TerminalSafe(headers)).c_str());
  }
  return 0;
}

}  // namespace moat
