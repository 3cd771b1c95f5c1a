#include "interaction/secrets_cli.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "execution/net/secret_store.h"
#include "interaction/cli_util.h"

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
  auto store = net::SecretStore::Load(path);
  if (!store) {
    fprintf(stderr, "moat: %s\n", store.error().message.c_str());
    return 1;
  }
  if (s.set->parsed()) {
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
    if (auto ok = store->Set(std::move(secret)); !ok) {
      fprintf(stderr, "moat: %s\n", ok.error().message.c_str());
      return kUsageError;
    }
    if (auto ok = store->Save(path); !ok) {
      fprintf(stderr, "moat: %s\n", ok.error().message.c_str());
      return 1;
    }
    fprintf(stderr, "secret %s saved in %s\n", s.name.c_str(), path.c_str());
    return 0;
  }
  if (s.rm->parsed()) {
    if (!store->Remove(s.name)) {
      fprintf(stderr, "moat: no secret named %s\n", s.name.c_str());
      return 1;
    }
    if (auto ok = store->Save(path); !ok) {
      fprintf(stderr, "moat: %s\n", ok.error().message.c_str());
      return 1;
    }
    return 0;
  }
  // ls
  nlohmann::json list = nlohmann::json::array();
  for (const net::Secret& e : store->all()) {
    list.push_back({{"name", e.name}, {"hosts", e.hosts}, {"headers", e.headers}});
  }
  if (s.json_out) {
    printf("%s\n", nlohmann::json({{"secrets", list}}).dump().c_str());
    return 0;
  }
  for (const net::Secret& e : store->all()) {
    std::string hosts, headers;
    for (const auto& h : e.hosts) hosts += (hosts.empty() ? "" : ",") + h;
    for (const auto& h : e.headers) headers += (headers.empty() ? "" : ",") + h;
    printf("%-24s hosts=%s%s\n", e.name.c_str(), hosts.c_str(),
           headers.empty() ? "" : (" headers=" + headers).c_str());
  }
  return 0;
}

}  // namespace moat
