#include "interaction/trust_cli.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>

#include "base/terminal_text.h"
#include "execution/engine.h"
#include "interaction/cli_util.h"
#include "orchestration/agent/provider_config.h"
#include "orchestration/agent/trust.h"
#include "orchestration/session/services.h"
#include "orchestration/session/workspace.h"

namespace moat {
namespace {

using namespace agent;

// The grants, one per line, escaped for the terminal.
void PrintWidening(FILE* out, const std::vector<std::string>& widening) {
  for (const std::string& w : widening) fprintf(out, "  - %s\n", TerminalSafe(w).c_str());
}

}  // namespace

bool AskToTrust(const ResolvedPolicy& r, const std::string& path, const std::string& workspace) {
  FILE* tty = fopen("/dev/tty", "r+");
  if (tty == nullptr) return false;
  fprintf(tty, "\033[0m\n  The policy %s %s. Beyond moat's defaults it:\n",
          TerminalSafe(path).c_str(),
          r.trust == PolicyTrust::kChanged ? "changed since you trusted it" : "is not trusted");
  PrintWidening(tty, r.widening);
  fprintf(tty,
          "  Trust it for %s (until it changes)?\n"
          "    [y] yes, apply all of it  [n] no, run with moat's defaults > ",
          TerminalSafe(workspace).c_str());
  fflush(tty);
  char line[64] = {0};
  bool yes = fgets(line, sizeof line, tty) != nullptr && (line[0] == 'y' || line[0] == 'Y');
  fclose(tty);
  return yes;
}

struct TrustCommands::State {
  CLI::App* trust = nullptr;
  std::string workspace = ".";
  std::vector<std::string> tool_dirs;
  bool revoke = false, show = false;

  int Run();
};

TrustCommands::TrustCommands(CLI::App* app) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.trust = app->add_subcommand(
      "trust",
      "Trust a workspace's own policy (.moat/policy.json): show what it grants beyond moat's "
      "defaults and let it apply until the file changes");
  s.trust->add_option("--workspace", s.workspace, "The workspace (default .)");
  s.trust->add_flag("--show", s.show, "Only show what the policy widens and whether it is trusted");
  s.trust->add_flag("--revoke", s.revoke, "Forget the workspace's trust record");
  s.trust->add_option("--tools-dir", s.tool_dirs,
                      "Extension tool folder (default ~/.config/moat/tools)");
}

TrustCommands::~TrustCommands() = default;

int TrustCommands::Dispatch() { return s_->trust->parsed() ? s_->Run() : -1; }

int TrustCommands::State::Run() {
  if (show && revoke) return moat::Usage("trust: --show and --revoke do not go together");
  auto opened = session::Workspace::Open(workspace);
  if (!opened) return moat::Usage("trust: --workspace " + workspace + " is not a directory");
  const std::string& ws = opened->root();
  std::string store = session::Workspace::TrustFile();
  if (revoke) {
    auto found = TrustStore::Revoke(store, ws);
    if (!found) return moat::Usage(found.error().message);
    printf(*found ? "revoked: the policy of %s is no longer trusted\n" : "%s had no trust record\n",
           TerminalSafe(ws).c_str());
    return 0;
  }
  session::ServicesOptions so;
  so.show_progress = true;
  so.tool_dirs = tool_dirs;
  auto services = session::Services::Create(so);
  if (!services) return moat::Usage(services.error().message);
  // The prices of the user's configured providers are the floor a policy's price must keep
  // (the higher one where two name the same model), as `moat chat` checks for its model.
  std::string config_path = ProviderFile::DefaultPath();
  auto config =
      config_path.empty() ? Result<ProviderFile>(ProviderFile{}) : ProviderFile::Load(config_path);
  if (!config) return moat::Usage(config.error().message);
  std::map<std::string, Price> user_prices;
  for (const auto& [name, entry] : config->providers) {
    if (!entry.price || entry.model.empty()) continue;
    Price& floor = user_prices[entry.model];
    floor.input_per_mtok = std::max(floor.input_per_mtok, entry.price->input_per_mtok);
    floor.output_per_mtok = std::max(floor.output_per_mtok, entry.price->output_per_mtok);
  }
  PolicyFile file;
  auto r = opened->ResolvePolicy("", (*services)->registry(), user_prices, &file);
  if (!r) return moat::Usage(r.error().message);
  const std::string& path = file.path;
  if (!file.exists) {
    printf("%s has no policy file (%s): moat's defaults apply\n", TerminalSafe(ws).c_str(),
           TerminalSafe(path).c_str());
    return 0;
  }
  if (r->widening.empty()) {
    printf("%s grants nothing beyond moat's defaults: it applies as it is\n",
           TerminalSafe(path).c_str());
    return 0;
  }
  printf("%s, beyond moat's defaults:\n", TerminalSafe(path).c_str());
  PrintWidening(stdout, r->widening);
  if (show) {
    printf(r->trust == PolicyTrust::kTrusted   ? "trusted: all of it applies\n"
           : r->trust == PolicyTrust::kChanged ? "not trusted: it changed since it was trusted\n"
                                               : "not trusted\n");
    return 0;
  }
  if (auto s = TrustStore::Trust(store, ws, file.sha256); !s) return moat::Usage(s.error().message);
  printf("trusted: all of it applies in %s until the file changes (moat trust --revoke undoes)\n",
         TerminalSafe(ws).c_str());
  return 0;
}

}  // namespace moat
