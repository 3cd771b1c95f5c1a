#include "interaction/chat_cli.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <iostream>

#include "base/fs.h"
#include "base/terminal_text.h"
#include "execution/net/secret_store.h"
#include "execution/runtime.h"
#include "interaction/approval_prompt.h"
#include "interaction/cli_util.h"
#include "interaction/trust_cli.h"
#include "orchestration/agent/agent.h"
#include "orchestration/agent/approvals.h"
#include "orchestration/agent/http_provider.h"
#include "orchestration/agent/provider_config.h"
#include "orchestration/agent/scripted.h"
#include "orchestration/agent/session_store.h"

namespace moat {
namespace {

using json = nlohmann::json;
using namespace agent;

// Exit statuses of `moat chat`.
constexpr int kChatCompleted = 0;
constexpr int kChatProviderError = 1;
constexpr int kChatStopped = 4;  // a budget or the loop governor ended the run
constexpr int kChatCancelled = 130;

std::shared_ptr<CancelToken> g_cancel;
void OnInterrupt(int) {
  if (g_cancel) g_cancel->Cancel();
  signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process
}

std::string Human(uint64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) {
    snprintf(buf, sizeof buf, "%.1fG", n / 1e9);
  } else if (n >= 1'000'000) {
    snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  } else if (n >= 1000) {
    snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  } else {
    snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  }
  return buf;
}

// Text from a model, a tool or a stored session: escaped (base/terminal_text.h), one line.
std::string Shown(const std::string& s, size_t max = 200) { return TerminalCut(s, max); }

// A call's arguments (JSON text a model wrote), escaped, one line.
std::string ShownArguments(const std::string& s, size_t max) {
  return TerminalCut(TerminalJsonText(s), max);
}

// Markdown exports. Stored text is a record, never markup: it goes in fenced blocks or code
// spans whose fence is longer than any backtick run in it (so nothing in it closes them),
// and &, < and > are written as entities everywhere (no raw HTML reaches a renderer).
std::string HtmlEscaped(std::string_view s, bool inline_text = false) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else {
      // Outside code, Markdown's inline punctuation is taken literally too.
      if (inline_text && std::string_view("\\`*_[]~|").find(c) != std::string_view::npos) {
        out += '\\';
      }
      out += c;
    }
  }
  return out;
}

// Text outside code (the header, a role line): one escaped line.
std::string MdText(const std::string& s, size_t max = 200) {
  return HtmlEscaped(Shown(s, max), true);
}

// A fence of backticks longer than any run of them in `text`, and at least `min` long.
std::string FenceFor(std::string_view text, size_t min) {
  size_t longest = 0, run = 0;
  for (char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return std::string(std::max(min, longest + 1), '`');
}

std::string MdBlock(const std::string& text) {
  std::string body = HtmlEscaped(TerminalSafe(text, TextKind::kProse));
  std::string fence = FenceFor(body, 3);
  return fence + "\n" + body + "\n" + fence;
}

std::string MdCode(const std::string& one_line) {
  std::string body = HtmlEscaped(one_line);
  std::string fence = FenceFor(body, 1);
  return fence + " " + body + " " + fence;
}

std::string MarkdownExport(const SessionInfo& info, const std::vector<Message>& messages) {
  std::string out = "# Session " + MdText(info.id) + "\n\n" + MdText(info.created_at) + ", " +
                    MdText(info.provider) + " " + MdText(info.model) + ", " +
                    MdText(info.workspace, 4096) + "\n\n";
  for (const Message& m : messages) {
    std::string role(RoleName(m.role));
    if (m.role == Message::Role::kTool) role += " " + MdText(m.tool_name);
    out += "**" + role + "**\n\n";
    if (!m.content.empty()) out += MdBlock(m.content) + "\n";
    for (const ToolCall& c : m.tool_calls) {
      out +=
          "- call " + MdCode(Shown(c.name)) + " " + MdCode(ShownArguments(c.arguments, 200)) + "\n";
    }
    out += "\n";
  }
  return out;
}

// Asks on the terminal: once, always (this tool, this session) or no.
class TerminalApprover : public Approver {
 public:
  Approval Ask(const ApprovalRequest& r) override {
    FILE* tty = fopen("/dev/tty", "r+");
    if (tty == nullptr) return Approval::kDeny;
    fputs(ApprovalPrompt(r).c_str(), tty);
    fflush(tty);
    char line[64] = {0};
    Approval a = Approval::kDeny;
    if (fgets(line, sizeof line, tty) != nullptr) {
      if (line[0] == 'y' || line[0] == 'Y') a = Approval::kOnce;
      if (line[0] == 'a' || line[0] == 'A') a = Approval::kAlways;
    }
    fclose(tty);
    return a;
  }
  std::string name() const override { return "terminal"; }
};

}  // namespace

struct ChatCommands::State {
  CLI::App* chat = nullptr;
  CLI::App* audit = nullptr;
  CLI::App* verify = nullptr;
  std::string provider, config_path, script, model, workspace = ".", policy_file, audit_file;
  std::string approve, secrets_file, prompt, base_url, ca_file;
  std::vector<std::string> tool_dirs;
  std::vector<std::string> protect;
  bool no_default_protect = false;
  std::string verify_file;
  std::string sessions_db, session;  // chat: the store and a session to continue
  CLI::App* sessions = nullptr;
  CLI::App* s_ls = nullptr;
  CLI::App* s_show = nullptr;
  CLI::App* s_export = nullptr;
  CLI::App* s_resume = nullptr;
  std::string s_workspace = ".", s_db, s_id, s_format = "json";

  CLI::App* approvals = nullptr;
  CLI::App* a_ls = nullptr;
  CLI::App* a_rm = nullptr;
  std::string a_workspace = ".", a_tool;

  int Chat();
  int Verify();
  int Sessions();
  int Approvals();
};

ChatCommands::ChatCommands(CLI::App* app) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.chat = app->add_subcommand(
      "chat", "Run the agent: a model's turns with moat's tools, under the workspace's policy");
  s.chat->add_option("prompt", s.prompt,
                     "One prompt, then exit (default: read prompts from stdin)");
  s.chat->add_option("--provider", s.provider,
                     "Model provider: scripted (offline; the default unless the config file "
                     "names one), openai (any OpenAI-compatible server; key in OPENAI_API_KEY), "
                     "anthropic (ANTHROPIC_API_KEY), or a name from the config file");
  s.chat->add_option("--config", s.config_path,
                     "Provider config file (default $MOAT_CONFIG or ~/.config/moat/config.json)");
  s.chat->add_option(
      "--base-url", s.base_url,
      "API root (default: the config file's, else $OPENAI_BASE_URL or "
      "https://api.openai.com/v1; $ANTHROPIC_BASE_URL or https://api.anthropic.com)");
  s.chat->add_option("--ca-file", s.ca_file, "Also trust the CA certificates in this PEM file");
  s.chat->add_option("--script", s.script,
                     "Turns for the scripted provider (default: the built-in demo)");
  s.chat->add_option("--model", s.model, "Model name (default: the provider's)");
  s.chat->add_option("--workspace", s.workspace, "Folder the tools see as /workspace (default .)");
  s.chat->add_option("--policy", s.policy_file,
                     "Policy file (default WORKSPACE/.moat/policy.json)");
  s.chat->add_option("--audit", s.audit_file,
                     "Audit log (default WORKSPACE/.moat/audit.jsonl; 'none' for no log)");
  s.chat->add_option("--approve", s.approve,
                     "Answer for tools the policy marks 'ask': ask (a terminal prompt), all, none "
                     "(default: ask on a terminal, else none)");
  s.chat->add_option("--secrets-file", s.secrets_file, "The secret store (default: moat secrets')");
  s.chat->add_option("--tools-dir", s.tool_dirs,
                     "Extension tool folder (default ~/.config/moat/tools)");
  s.chat->add_option("--sessions", s.sessions_db,
                     "Session store (default WORKSPACE/.moat/sessions.db; 'none' to keep nothing)");
  s.chat->add_option("--session", s.session, "Continue this session (moat sessions ls)");
  s.chat->add_option("--protect", s.protect,
                     "Keep paths matching PATTERN read-only for tools (adds to the default, "
                     ".git, and to the policy's)");
  s.chat->add_flag("--no-default-protect", s.no_default_protect,
                   "Do not protect .git (at any depth) by default");
  s.sessions = app->add_subcommand("sessions", "List, show, export or resume agent sessions");
  s.sessions->require_subcommand(1);
  s.sessions->add_option("--workspace", s.s_workspace, "Workspace of the sessions (default .)");
  s.sessions->add_option("--db", s.s_db, "Session store (default WORKSPACE/.moat/sessions.db)");
  s.s_ls = s.sessions->add_subcommand("ls", "Sessions, newest first");
  s.s_show = s.sessions->add_subcommand("show", "A session's conversation, readable");
  s.s_show->add_option("id", s.s_id, "Session id")->required();
  s.s_export = s.sessions->add_subcommand("export", "A session as JSON or Markdown");
  s.s_export->add_option("id", s.s_id, "Session id")->required();
  s.s_export->add_option("--format", s.s_format, "json (default) or markdown");
  s.s_resume = s.sessions->add_subcommand(
      "resume", "Continue a session with moat chat's defaults (see moat chat --session)");
  s.s_resume->add_option("id", s.s_id, "Session id")->required();
  s.s_resume->add_option("prompt", s.prompt, "One prompt, then exit (default: read from stdin)");
  s.s_resume->add_option("--approve", s.approve, "As for moat chat");
  s.approvals = app->add_subcommand(
      "approvals", "Show or revoke the tools a workspace always allows (answered 'always')");
  s.approvals->require_subcommand(1);
  s.approvals->add_option("--workspace", s.a_workspace, "The workspace (default .)");
  s.a_ls = s.approvals->add_subcommand("ls", "Tools always allowed, with their module digest");
  s.a_rm = s.approvals->add_subcommand("rm", "Revoke: the tool is asked about again");
  s.a_rm->add_option("tool", s.a_tool, "Tool name")->required();
  s.audit = app->add_subcommand("audit", "Check an audit log");
  s.audit->require_subcommand(1);
  s.verify = s.audit->add_subcommand(
      "verify", "Check every record's hash and link; name the first edited, deleted or moved one");
  s.verify->add_option("file", s.verify_file, "The log (.moat/audit.jsonl)")->required();
}

ChatCommands::~ChatCommands() = default;

int ChatCommands::Dispatch() {
  if (s_->chat->parsed()) return s_->Chat();
  if (s_->verify->parsed()) return s_->Verify();
  if (s_->s_resume->parsed()) {
    s_->workspace = s_->s_workspace;
    s_->sessions_db = s_->s_db;
    s_->session = s_->s_id;
    return s_->Chat();
  }
  if (s_->sessions->parsed()) return s_->Sessions();
  if (s_->approvals->parsed()) return s_->Approvals();
  return -1;
}

int ChatCommands::State::Verify() {
  AuditVerdict v = VerifyAudit(verify_file);
  if (v.ok) {
    printf("ok: %llu records, chain and head intact%s%s\n",
           static_cast<unsigned long long>(v.records), v.note.empty() ? "" : "; ",
           Shown(v.note, 4096).c_str());
    return 0;
  }
  printf("broken: %s\n", Shown(v.why, 4096).c_str());
  return 1;
}

int ChatCommands::State::Approvals() {
  char real[PATH_MAX];
  if (realpath(a_workspace.c_str(), real) == nullptr) {
    return moat::Usage("approvals: cannot resolve " + a_workspace);
  }
  std::string path = ApprovalStore::DefaultPath();
  if (a_ls->parsed()) {
    auto store = ApprovalStore::Load(path, real);
    if (!store) return moat::Usage(store.error().message);
    for (const StandingApproval& a : store->all()) {
      printf("%-16s %s  %s\n", Shown(a.tool).c_str(), Shown(a.tool_digest.substr(0, 16)).c_str(),
             Shown(a.granted_at).c_str());
    }
    return 0;
  }
  auto found = ApprovalStore::Revoke(path, real, a_tool);
  if (!found) return moat::Usage(found.error().message);
  if (!*found) {
    fprintf(stderr, "moat: %s is not always allowed here\n", Shown(a_tool).c_str());
    return 1;
  }
  printf("revoked %s\n", Shown(a_tool).c_str());
  return 0;
}

int ChatCommands::State::Sessions() {
  std::string db = s_db.empty() ? s_workspace + "/.moat/sessions.db" : s_db;
  if (access(db.c_str(), F_OK) != 0) {
    if (s_ls->parsed()) return 0;  // no sessions yet
    return moat::Usage("sessions: no session store at " + db);
  }
  auto store = SessionStore::Open(db);
  if (!store) return moat::Usage(store.error().message);
  if (s_ls->parsed()) {
    auto all = (*store)->List();
    if (!all) return moat::Usage(all.error().message);
    for (const SessionInfo& i : *all) {
      printf("%s  %s  %-10s %-24s %4llu messages  %s\n", Shown(i.id).c_str(),
             Shown(i.updated_at).c_str(), Shown(i.provider).c_str(), Shown(i.model).c_str(),
             static_cast<unsigned long long>(i.messages), Shown(i.title, 60).c_str());
    }
    return 0;
  }
  auto info = (*store)->Info(s_id);
  if (!info) return moat::Usage(info.error().message);
  auto messages = (*store)->Load(s_id);
  if (!messages) return moat::Usage(messages.error().message);
  if (s_export->parsed() && s_format == "json") {
    json out = {{"id", info->id},
                {"created_at", info->created_at},
                {"updated_at", info->updated_at},
                {"workspace", info->workspace},
                {"provider", info->provider},
                {"model", info->model},
                {"title", info->title}};
    json list = json::array();
    for (const Message& m : *messages) {
      json j = {{"role", std::string(RoleName(m.role))}, {"content", m.content}};
      if (!m.tool_calls.empty()) {
        j["tool_calls"] = json::array();
        for (const ToolCall& c : m.tool_calls) {
          j["tool_calls"].push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
        }
      }
      if (m.role == Message::Role::kTool) {
        j["tool_call_id"] = m.tool_call_id;
        j["tool_name"] = m.tool_name;
      }
      list.push_back(j);
    }
    out["messages"] = list;
    printf("%s\n", TerminalJson(out, 2).c_str());
    return 0;
  }
  if (s_export->parsed() && s_format != "markdown") {
    return moat::Usage("sessions export: --format must be json or markdown");
  }
  if (s_export->parsed()) {
    fputs(MarkdownExport(*info, *messages).c_str(), stdout);
    return 0;
  }
  printf("session %s (%s, %s %s, %s)\n\n", Shown(info->id).c_str(), Shown(info->created_at).c_str(),
         Shown(info->provider).c_str(), Shown(info->model).c_str(),
         Shown(info->workspace, 4096).c_str());
  for (const Message& m : *messages) {
    std::string role(RoleName(m.role));
    if (m.role == Message::Role::kTool) role += " " + Shown(m.tool_name);
    printf("[%s]\n", role.c_str());
    if (!m.content.empty()) printf("%s\n", TerminalSafe(m.content, TextKind::kProse).c_str());
    for (const ToolCall& c : m.tool_calls) {
      printf("  -> %s %s\n", Shown(c.name).c_str(), ShownArguments(c.arguments, 200).c_str());
    }
    printf("\n");
  }
  return 0;
}

int ChatCommands::State::Chat() {
  struct stat st {};
  if (stat(workspace.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return moat::Usage("chat: --workspace " + workspace + " is not a directory");
  }
  char real[PATH_MAX];
  if (realpath(workspace.c_str(), real) == nullptr)
    return moat::Usage("chat: cannot resolve " + workspace);
  std::string ws = real;
  // A session goes on with the provider and model it was recorded with, or not at all:
  // never with the built-in demo in place of a model that is not configured here (its
  // turns would act on the real workspace).
  std::string recorded;  // "session ID (provider P, model M)" when resuming
  if (!session.empty() && sessions_db != "none") {
    std::string path = sessions_db.empty() ? ws + "/.moat/sessions.db" : sessions_db;
    auto opened = SessionStore::Open(path);
    if (!opened) return moat::Usage(opened.error().message);
    auto info = (*opened)->Info(session);
    if (!info) return moat::Usage(info.error().message);
    recorded = "session " + Shown(session, 64) + " was recorded with provider " +
               Shown(info->provider, 64) + " and model " + Shown(info->model, 64);
    if (info->provider.empty() || (!provider.empty() && provider != info->provider) ||
        (!model.empty() && !info->model.empty() && model != info->model)) {
      return moat::Usage("chat: " + recorded + "; it goes on with those only");
    }
    provider = info->provider;
    if (model.empty()) model = info->model;
  }
  if (config_path.empty()) config_path = ProviderFile::DefaultPath();
  auto config_file =
      config_path.empty() ? Result<ProviderFile>(ProviderFile{}) : ProviderFile::Load(config_path);
  if (!config_file) return moat::Usage("chat: " + config_file.error().message);
  auto chosen = ResolveProvider(*config_file, {provider, model, base_url, ca_file});
  if (!chosen && !recorded.empty()) {
    return moat::Usage("chat: " + recorded +
                       ", which cannot be used here: " + chosen.error().message);
  }
  if (!chosen) return moat::Usage("chat: " + chosen.error().message);
  std::unique_ptr<Provider> model_provider;
  std::string default_model = chosen->model;
  if (chosen->scripted) {
    std::unique_ptr<ScriptedProvider> scripted;
    if (script.empty()) {
      scripted = ScriptedProvider::Demo();
    } else {
      auto p = ScriptedProvider::Load(script);
      if (!p) return moat::Usage(p.error().message);
      scripted = std::move(*p);
    }
    if (default_model.empty()) default_model = scripted->model();
    model_provider = std::move(scripted);
  } else {
    auto http = net::LoadStreamingHttpPlugin();
    if (!http)
      return moat::Usage("chat: network support is not available: " + http.error().message);
    model_provider = std::make_unique<HttpProvider>(chosen->http, *http);
  }
  bool tty = isatty(0) != 0;
  if (approve.empty()) approve = tty ? "ask" : "none";
  std::unique_ptr<Approver> approver;
  if (approve == "ask") {
    approver = std::make_unique<TerminalApprover>();
  } else if (approve == "all" || approve == "none") {
    approver = std::make_unique<FixedApprover>(approve == "all");
  } else {
    return moat::Usage("chat: --approve must be ask, all or none");
  }

  std::unique_ptr<AuditLog> audit;
  if (audit_file != "none") {
    std::string path = audit_file;
    if (path.empty()) {
      if (auto s = EnsurePrivateDir(ws + "/.moat"); !s) return moat::Usage(s.error().message);
      path = ws + "/.moat/audit.jsonl";
    }
    auto a = AuditLog::Open(path);
    if (!a) return moat::Usage(a.error().message);
    audit = std::move(*a);
  }

  EngineOptions eo;
  eo.show_progress = true;
  for (const std::string& p : {secrets_file, config_path}) {
    if (!p.empty()) eo.own_paths.push_back(p);
  }
  auto engine = Engine::Create(eo);
  if (!engine) {
    fprintf(stderr, "moat: %s\n", TerminalSafe(engine.error().message, TextKind::kProse).c_str());
    return 70;
  }
  tools::RegistryOptions ro;
  ro.builtin_dirs = {tools::DefaultBuiltinToolsDir()};
  ro.extension_dirs = tool_dirs.empty() ? tools::DefaultExtensionDirs() : tool_dirs;
  ro.preload_builtins = false;
  auto registry = tools::Registry::Create(engine->get(), std::move(ro));
  if (!registry) {
    fprintf(stderr, "moat: %s\n", TerminalSafe(registry.error().message, TextKind::kProse).c_str());
    return 70;
  }
  // The policy: a workspace's own file widens nothing until the user trusts it.
  std::map<std::string, Price> user_prices;
  if (chosen->price) user_prices[default_model] = *chosen->price;
  auto policy = ChooseAgentPolicy(ws, policy_file, **registry, user_prices);
  if (!policy) return moat::Usage(policy.error().message);
  // The configured price of the model, unless the workspace's policy names one.
  if (chosen->price && policy->prices.count(default_model) == 0) {
    policy->prices[default_model] = *chosen->price;
  }

  std::vector<net::Secret> secrets;
  if (!policy->secrets.empty()) {
    auto store = net::SecretStore::Load(secrets_file.empty() ? net::SecretStore::DefaultPath()
                                                             : secrets_file);
    if (!store) return moat::Usage(store.error().message);
    for (const std::string& name : policy->secrets) {
      const net::Secret* sec = store->Find(name);
      if (sec == nullptr) return moat::Usage("policy: secret " + name + " is not in the store");
      secrets.push_back(*sec);
    }
  }

  AgentConfig config;
  config.model = default_model;
  config.workspace = ws;
  if (no_default_protect) config.protect.clear();
  for (const std::string& p : protect) {
    if (p.empty()) return moat::Usage("chat: --protect needs a pattern");
    config.protect.push_back(p);
  }
  config.secrets = std::move(secrets);
  if (auto s = EnsurePrivateDir(ws + "/.moat"); !s) return moat::Usage(s.error().message);
  config.approvals_file = ApprovalStore::DefaultPath();
  config.system_prompt =
      "You are an agent working in the folder /workspace through moat's tools. Tools run in "
      "a sandbox; a refused action is reported as a tool result.";
  std::unique_ptr<SessionStore> store;
  int64_t run_row = 0;  // the store's record of the run in progress
  std::vector<Message> history;
  RunSummary earlier;  // what a resumed session's runs used: the budgets go on from there
  if (sessions_db != "none") {
    std::string path = sessions_db;
    if (path.empty()) {
      if (auto s = EnsurePrivateDir(ws + "/.moat"); !s) return moat::Usage(s.error().message);
      path = ws + "/.moat/sessions.db";
    }
    auto st2 = SessionStore::Open(path);
    if (!st2) return moat::Usage(st2.error().message);
    store = std::move(*st2);
    if (!session.empty()) {
      auto loaded = store->Load(session);
      if (!loaded) return moat::Usage(loaded.error().message);
      history = std::move(*loaded);
      auto usage = store->Usage(session);
      if (!usage) return moat::Usage(usage.error().message);
      earlier = *usage;
    } else {
      auto id = store->Create(ws, model_provider->name(), config.model, prompt);
      if (!id) return moat::Usage(id.error().message);
      session = *id;
    }
    config.on_message = [&](const Message& m) {
      if (auto s = store->Append(session, m); !s) {
        fprintf(stderr, "moat: session store: %s\n",
                TerminalSafe(s.error().message, TextKind::kProse).c_str());
      }
    };
    // The run's use after every model call: a killed run's spending still counts.
    config.on_usage = [&](const RunSummary& so_far) {
      if (run_row <= 0) return;
      if (auto s = store->UpdateRun(session, run_row, so_far); !s) {
        fprintf(stderr, "moat: session store: %s\n",
                TerminalSafe(s.error().message, TextKind::kProse).c_str());
      }
    };
  } else if (!session.empty()) {
    return moat::Usage("chat: --session needs a session store");
  }
  Agent agent(*model_provider, **registry, *policy, *approver, audit.get(), config);
  agent.CountEarlierUse(earlier);

  g_cancel = std::make_shared<CancelToken>();
  signal(SIGINT, OnInterrupt);
  bool at_line_start = true;
  std::string last_started;  // the call id of the latest tool start shown
  // The model's text arrives in pieces, which may cut a character in two.
  TerminalStream text_out(TextKind::kProse);
  auto on_event = [&](const AgentEvent& e) {
    if (e.kind != AgentEvent::Kind::kText) fputs(text_out.Flush().c_str(), stdout);
    switch (e.kind) {
      case AgentEvent::Kind::kText:
        fputs(text_out.Write(e.text).c_str(), stdout);
        if (!e.text.empty()) at_line_start = e.text.back() == '\n';
        break;
      case AgentEvent::Kind::kToolStart:
        printf("%s  * %s %s\n", at_line_start ? "" : "\n", Shown(e.tool).c_str(),
               ShownArguments(e.arguments, 100).c_str());
        at_line_start = true;
        last_started = e.call_id;
        break;
      case AgentEvent::Kind::kToolEnd:
        // Calls that ran at once end after all their starts: name the tool.
        printf("    -> %s%s [%s] fuel %s, memory %s, %.1f ms\n",
               e.call_id == last_started ? "" : (Shown(e.tool) + ": ").c_str(),
               Shown(e.status).c_str(), e.decision.empty() ? "-" : Shown(e.decision).c_str(),
               Human(e.fuel).c_str(), (Human(e.memory) + "B").c_str(), e.wall_us / 1000.0);
        last_started.clear();
        break;
      case AgentEvent::Kind::kWarning:
        printf("%s  ! moat: %s\n", at_line_start ? "" : "\n", Shown(e.text, 4096).c_str());
        at_line_start = true;
        break;
      case AgentEvent::Kind::kStop: break;
    }
    fflush(stdout);
  };

  RunSummary last;
  auto run = [&](const std::string& prompt_text) {
    run_row = 0;
    if (store) {
      auto row = store->BeginRun(session);
      if (row) {
        run_row = *row;
      } else {
        fprintf(stderr, "moat: session store: %s\n",
                TerminalSafe(row.error().message, TextKind::kProse).c_str());
      }
    }
    last = agent.Run(history, prompt_text, on_event, g_cancel);
    fputs(text_out.Flush().c_str(), stdout);
    if (store) {
      auto s =
          run_row > 0 ? store->UpdateRun(session, run_row, last) : store->RecordRun(session, last);
      if (!s) {
        fprintf(stderr, "moat: session store: %s\n",
                TerminalSafe(s.error().message, TextKind::kProse).c_str());
      }
    }
    printf(
        "%s\n-- %s: %s | %llu steps, %llu tool calls, %s in / %s out tokens, $%.4f, fuel %s, "
        "%.1f s\n",
        at_line_start ? "" : "\n", std::string(StopKindName(last.stop)).c_str(),
        Shown(last.message, 4096).c_str(), static_cast<unsigned long long>(last.steps),
        static_cast<unsigned long long>(last.tool_calls), Human(last.input_tokens).c_str(),
        Human(last.output_tokens).c_str(), last.cost_usd, Human(last.fuel).c_str(),
        last.wall_us / 1e6);
    const RunSummary& total = agent.SessionUse();
    if (total.steps != last.steps) {
      printf("-- session so far: %llu steps, %llu tool calls, $%.4f, %.1f s\n",
             static_cast<unsigned long long>(total.steps),
             static_cast<unsigned long long>(total.tool_calls), total.cost_usd,
             total.wall_us / 1e6);
    }
    if (store) printf("-- session %s\n", session.c_str());
    at_line_start = true;
    fflush(stdout);
  };
  rt::SetMemoryRecycling(true);
  if (!prompt.empty()) {
    run(prompt);
  } else {
    std::string line;
    while (true) {
      if (tty) {
        fputs("> ", stdout);
        fflush(stdout);
      }
      if (!std::getline(std::cin, line)) break;
      if (line.empty()) continue;
      run(line);
      if (last.stop == StopKind::kCancelled) break;
    }
  }
  switch (last.stop) {
    case StopKind::kCompleted: return kChatCompleted;
    case StopKind::kProviderError: return kChatProviderError;
    case StopKind::kCancelled: return kChatCancelled;
    default: return kChatStopped;
  }
}

}  // namespace moat
