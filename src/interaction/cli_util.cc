#include "interaction/cli_util.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "base/terminal_text.h"
#include "execution/net/secret_store.h"

namespace moat {

void OneValuePerFlag(CLI::App* app) {
  for (CLI::Option* o : app->get_options()) {
    if (!o->nonpositional() || o->get_expected_max() <= 1) continue;
    o->expected(1);
    o->allow_extra_args(false);
    o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
  for (CLI::App* sub : app->get_subcommands({})) OneValuePerFlag(sub);
}

int Usage(const std::string& msg) {
  // A message may quote a file, a manifest or a model: never raw on the terminal.
  fprintf(stderr, "moat: %s\n", TerminalSafe(msg, TextKind::kProse).c_str());
  return kUsageError;
}

// HOST[::GUEST][:ro], as the wasmtime CLI spells it.
Result<Mount> ParseDir(std::string spec) {
  Mount m;
  if (spec.size() > 3 && spec.compare(spec.size() - 3, 3, ":ro") == 0) {
    m.read_only = true;
    spec.resize(spec.size() - 3);
  }
  size_t sep = spec.find("::");
  if (sep == std::string::npos) {
    m.host_path = m.guest_path = spec;
  } else {
    m.host_path = spec.substr(0, sep);
    m.guest_path = spec.substr(sep + 2);
  }
  if (m.host_path.empty() || m.guest_path.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--dir needs HOST[::GUEST][:ro], got '" + spec + "'");
  }
  struct stat st {};
  if (stat(m.host_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--dir: '" + m.host_path + "' is not a directory");
  }
  return m;
}

Status ParseEnv(const std::vector<std::string>& specs,
                std::vector<std::pair<std::string, std::string>>* out) {
  for (const std::string& e : specs) {
    size_t eq = e.find('=');
    std::string key = e.substr(0, eq);
    if (key.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--env needs KEY=VALUE or KEY, got '" + e + "'");
    }
    if (eq == std::string::npos) {
      const char* v = getenv(key.c_str());
      if (v) out->emplace_back(key, v);
    } else {
      out->emplace_back(key, e.substr(eq + 1));
    }
  }
  return OkStatus();
}

void AddNetFlags(CLI::App* app, NetFlags* f) {
  app->add_option("--allow-net", f->allow_net,
                  "Allow requests matching scheme://host[:port][/path] (host may be * or "
                  "*.example.com, port *), optionally after methods: 'GET,POST https://...'");
  app->add_option("--allow-private", f->allow_private,
                  "Allow connections into this non-public network (CIDR, e.g. 127.0.0.1/32)");
  app->add_option("--secret", f->secrets,
                  "Let the guest use this stored secret as {{secret:NAME}} (moat secrets set)");
  app->add_option("--secrets-file", f->secrets_file, "The secret store (default: moat secrets')");
  app->add_option("--ca-file", f->ca_file, "Also trust the CA certificates in this PEM file");
}

bool LimitFlags::Given(std::string_view name) const {
  auto fields = LimitFields();
  for (size_t i = 0; i < fields.size() && i < text.size(); ++i) {
    if (fields[i].name == name) return !text[i].empty();
  }
  return false;
}

void AddLimitFlags(CLI::App* app, LimitUse use, LimitFlags* f) {
  auto fields = LimitFields();
  f->text.assign(fields.size(), std::string());  // never resized again: options bind to it
  for (size_t i = 0; i < fields.size(); ++i) {
    const LimitField& field = fields[i];
    if (!(field.uses & use)) continue;
    std::string_view help =
        use == kLimitCallFlag && !field.call_help.empty() ? field.call_help : field.help;
    app->add_option(std::string(field.flag), f->text[i], std::string(help));
  }
}

Result<std::vector<GivenLimit>> ParseLimitFlags(const LimitFlags& f) {
  std::vector<GivenLimit> out;
  auto fields = LimitFields();
  for (size_t i = 0; i < fields.size() && i < f.text.size(); ++i) {
    if (f.text[i].empty()) continue;
    auto v = ParseLimit(fields[i], f.text[i], std::string(fields[i].flag));
    if (!v) return v.error();
    out.push_back({&fields[i], *v});
  }
  return out;
}

Status ApplyLimitFlags(const LimitFlags& f, Limits* l) {
  auto given = ParseLimitFlags(f);
  if (!given) return given.error();
  for (const GivenLimit& g : *given) {
    if (g.field->run != nullptr) l->*(g.field->run) = g.value;
  }
  return l->Validate();
}

Result<std::vector<net::Secret>> LoadSecrets(const NetFlags& f) {
  std::vector<net::Secret> out;
  if (f.secrets.empty()) return out;
  auto store = net::SecretStore::Load(f.secrets_file.empty() ? net::SecretStore::DefaultPath()
                                                             : f.secrets_file);
  if (!store) return store.error();
  for (const std::string& name : f.secrets) {
    const net::Secret* s = store->Find(name);
    if (s == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--secret " + name + ": no such secret (add it with moat secrets set)");
    }
    out.push_back(*s);
  }
  return out;
}

}  // namespace moat
