#include "interaction/chat_cli.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <iostream>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/terminal_text.h"
#include "base/units.h"
#include "execution/net/secret_store.h"
#include "execution/runtime.h"
#include "interaction/approval_prompt.h"
#include "interaction/cli_util.h"
#include "interaction/exit_status.h"
#include "interaction/trust_cli.h"
#include "orchestration/agent/agent.h"
#include "orchestration/agent/approvals.h"
#include "orchestration/agent/http_provider.h"
#include "orchestration/agent/provider_config.h"
#include "orchestration/agent/scripted.h"
#include "orchestration/agent/session_store.h"
#include "orchestration/agent/trust.h"
#include "orchestration/session/agent_session.h"
#include "orchestration/session/session_undo.h"

namespace moat {
namespace {

using json = nlohmann::json;
using namespace agent;

session::AgentSession* g_cancel_session = nullptr;
void OnInterrupt(int) {
  // Cancel only sets flags and wakes a waiting approver (no allocation).
  if (g_cancel_session != nullptr) g_cancel_session->Cancel();
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
  bool json_events = false;
  std::string verify_file;
  std::string sessions_db, session;  // chat: the store and a session to continue
  CLI::App* sessions = nullptr;
  CLI::App* s_ls = nullptr;
  CLI::App* s_show = nullptr;
  CLI::App* s_export = nullptr;
  CLI::App* s_resume = nullptr;
  std::string s_workspace = ".", s_db, s_id, s_format = "json";
  CLI::App* s_diff = nullptr;
  CLI::App* s_undo = nullptr;
  CLI::App* s_prune = nullptr;
  CLI::App* s_rm = nullptr;
  uint64_t s_step = 0, s_to = 0;
  bool s_json = false, s_force = false, s_dry_run = false;
  std::string s_policy;
  std::string s_older;

  CLI::App* approvals = nullptr;
  CLI::App* a_ls = nullptr;
  CLI::App* a_rm = nullptr;
  std::string a_workspace = ".", a_tool;

  int Chat();
  int Verify();
  int Sessions();
  int Checkpoints();
  int RemoveSession();
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
  s.chat->add_flag("--json", s.json_events,
                   "Print the session and its events as JSON Lines (versioned, see README) "
                   "instead of text");
  s.sessions = app->add_subcommand(
      "sessions", "List, show, export, resume, diff, undo or remove agent sessions");
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
  s.s_diff = s.sessions->add_subcommand("diff", "What a session's tool calls changed in files");
  s.s_diff->add_option("id", s.s_id, "Session id")->required();
  s.s_diff->add_option("--step", s.s_step, "Only the calls of this agent step");
  s.s_diff->add_flag("--json", s.s_json, "As JSON: one entry per path");
  s.s_undo = s.sessions->add_subcommand(
      "undo", "Put back what a session's tool calls changed (refused when a file changed since)");
  s.s_undo->add_option("id", s.s_id, "Session id")->required();
  s.s_undo->add_option("--to", s.s_to, "Undo the calls of this step and later (default: all)");
  s.s_undo->add_flag("--force", s.s_force,
                     "Undo even over files changed since and calls that could not keep "
                     "everything (what was kept is restored)");
  s.s_undo->add_flag("--dry-run", s.s_dry_run, "Say what would be done; change nothing");
  s.s_undo->add_option("--policy", s.s_policy,
                       "The policy the session ran with, when it was not the workspace's own: "
                       "its writable mounts may be changed back too (the workspace always may)");
  s.s_undo->add_flag("--json", s.s_json, "Print the report as JSON");
  s.s_prune = s.sessions->add_subcommand(
      "prune", "Remove the checkpoints of sessions not written to for a while");
  s.s_prune->add_option("--older-than", s.s_older, "Age: 7d, 12h, 30m")->required();
  s.s_rm = s.sessions->add_subcommand("rm", "Delete a session and its checkpoints");
  s.s_rm->add_option("id", s.s_id, "Session id")->required();
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
  return kExitFailed;
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
    return kExitFailed;
  }
  printf("revoked %s\n", Shown(a_tool).c_str());
  return 0;
}

namespace {

// An error that ends a `moat sessions` command: the message (escaped) and its status.
int Failed(const Error& e) {
  if (e.code == ErrorCode::kInvalidArgument) return moat::Usage(e.message);
  fprintf(stderr, "moat: %s\n", TerminalSafe(e.message, TextKind::kProse).c_str());
  return ExitStatusFor(e.code);
}

// "7d", "12h", "30m", "90s" -> seconds. Days are taken here; the rest by ParseDurationUs.
Result<uint64_t> ParseAge(const std::string& text) {
  if (!text.empty() && (text.back() == 'd' || text.back() == 'D')) {
    auto hours = ParseDurationUs(text.substr(0, text.size() - 1) + "h");
    if (!hours) return MakeError(ErrorCode::kInvalidArgument, "not an age: '" + text + "'");
    if (*hours > UINT64_MAX / 24) {
      return MakeError(ErrorCode::kInvalidArgument, "age out of range: '" + text + "'");
    }
    return *hours * 24 / 1'000'000;
  }
  auto us = ParseDurationUs(text);
  if (!us) {
    return MakeError(ErrorCode::kInvalidArgument, "not an age: '" + text + "' (use 7d, 12h)");
  }
  return *us / 1'000'000;
}

void PrintList(const char* what, const std::vector<std::string>& items) {
  for (const std::string& i : items) printf("  %s %s\n", what, Shown(i, 4096).c_str());
}

}  // namespace

int ChatCommands::State::Checkpoints() {
  auto ws = session::Workspace::Open(s_workspace);
  if (!ws) return Failed(ws.error());
  if (s_prune->parsed()) {
    auto age = ParseAge(s_older);
    if (!age) return moat::Usage("sessions prune: --older-than: " + age.error().message);
    auto removed = session::PruneCheckpoints(*ws, *age);
    if (!removed) return Failed(removed.error());
    printf("removed the checkpoints of %zu session%s\n", removed->size(),
           removed->size() == 1 ? "" : "s");
    PrintList("", *removed);
    return kExitOk;
  }
  auto dir = ws->checkpoints_dir(s_id);
  if (!dir) return Failed(dir.error());
  if (access(dir->c_str(), F_OK) != 0) {
    return moat::Usage("sessions: no checkpoints of session " + s_id + " in " + ws->root());
  }
  if (s_diff->parsed()) {
    auto diff = session::SessionDiff(*ws, s_id, s_step);
    if (!diff) return Failed(diff.error());
    if (s_json) {
      printf("%s\n", TerminalJson(undo::DiffToJson(*diff), 2).c_str());
      return kExitOk;
    }
    // Paths and contents come from tools: each line escaped (base/terminal_text.h).
    std::string text = undo::DiffText(*diff);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      printf("%s\n", TerminalSafe(std::string_view(text).substr(pos, end - pos)).c_str());
      pos = end + 1;
    }
    if (diff->entries.empty()) printf("no changes\n");
    return kExitOk;
  }
  undo::UndoOptions o;
  o.to_step = s_to;
  o.force = s_force;
  o.dry_run = s_dry_run;
  if (!s_policy.empty()) {  // named by the user: its mounts are theirs
    auto named = agent::ReadPolicyFile(s_policy);
    if (!named) return Failed(named.error());
    if (!named->exists) {
      return Failed(MakeError(ErrorCode::kInvalidArgument, "--policy: no file " + s_policy));
    }
    for (const Mount& m : named->policy.mounts) {
      if (!m.read_only) o.roots.push_back(m.host_path);
    }
  }
  auto report = session::SessionUndo(*ws, s_id, o);
  if (!report) return Failed(report.error());
  const undo::UndoReport& r = *report;
  if (s_json) {
    printf("%s\n", TerminalJson(undo::UndoToJson(r), 2).c_str());
    return r.refused ? kExitFailed : kExitOk;
  }
  if (r.refused) {
    printf("refused: nothing was changed\n");
    PrintList("conflict:", r.conflicts);
    PrintList("not undoable:", r.not_undoable);
    printf("(--force undoes it anyway; --dry-run shows what it would do)\n");
    return kExitFailed;
  }
  if (r.calls.empty()) {
    printf("nothing to undo\n");
    return kExitOk;
  }
  printf("%s %zu call%s: %zu restored, %zu created, %zu deleted\n",
         r.dry_run ? "would undo" : "undid", r.calls.size(), r.calls.size() == 1 ? "" : "s",
         r.restored.size(), r.created.size(), r.deleted.size());
  PrintList("restored", r.restored);
  PrintList("created ", r.created);
  PrintList("deleted ", r.deleted);
  PrintList("forced past:", r.conflicts);
  PrintList("forced past:", r.not_undoable);
  PrintList("note:", r.notes);
  return kExitOk;
}

int ChatCommands::State::RemoveSession() {
  auto ws = session::Workspace::Open(s_workspace);
  if (!ws) return Failed(ws.error());
  auto dir = ws->checkpoints_dir(s_id);
  if (!dir) return Failed(dir.error());
  bool has_checkpoints = access(dir->c_str(), F_OK) == 0;
  std::string db = s_db.empty() ? ws->sessions_path() : s_db;
  bool in_store = false;
  if (access(db.c_str(), F_OK) == 0) {
    auto store = SessionStore::Open(db);
    if (!store) return Failed(store.error());
    in_store = (*store)->Info(s_id).ok();
    if (in_store) {
      if (auto st = (*store)->Delete(s_id); !st) return Failed(st.error());
    }
  }
  if (!in_store && !has_checkpoints) return moat::Usage("sessions rm: no session " + s_id);
  if (auto st = session::DeleteSessionCheckpoints(*ws, s_id); !st) return Failed(st.error());
  printf("removed session %s%s\n", Shown(s_id).c_str(),
         in_store ? (has_checkpoints ? " and its checkpoints" : "") : " (its checkpoints)");
  return kExitOk;
}

int ChatCommands::State::Sessions() {
  if (s_diff->parsed() || s_undo->parsed() || s_prune->parsed()) return Checkpoints();
  if (s_rm->parsed()) return RemoveSession();
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
    for (const Message& m : *messages) list.push_back(MessageToJson(m));
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
  // Only what is the terminal's: the flags, the question whether to trust a workspace's
  // policy, the approval prompt, and how events are shown. The session is put together by
  // the orchestration tier (session/agent_session.h), the same way for every front end.
  bool tty = isatty(0) != 0;
  if (approve.empty()) approve = tty ? "ask" : "none";
  session::SessionOptions so;
  TerminalApprover terminal;
  if (approve == "ask") {
    so.approval = session::ApprovalMode::kApprover;
    so.approver = &terminal;
  } else if (approve == "all" || approve == "none") {
    so.approval =
        approve == "all" ? session::ApprovalMode::kAllowAll : session::ApprovalMode::kDenyAll;
  } else {
    return moat::Usage("chat: --approve must be ask, all or none");
  }
  so.workspace = workspace;
  so.policy_file = policy_file;
  so.provider = {provider, model, base_url, ca_file, script};
  so.resume = session;
  so.sessions_db = sessions_db;
  so.audit_file = audit_file;
  so.protect = protect;
  so.no_default_protect = no_default_protect;
  so.title = prompt;
  if (tty) {
    so.ask_trust = AskToTrust;
  }
  so.on_notice = [](const std::string& text) {
    fprintf(stderr, "moat: %s\n", TerminalSafe(text, TextKind::kProse).c_str());
  };
  session::ServicesOptions svc;
  svc.show_progress = true;
  svc.tool_dirs = tool_dirs;
  svc.secrets_file = secrets_file;
  svc.provider_config = config_path;
  auto services = session::Services::Create(svc);
  if (!services) {
    fprintf(stderr, "moat: %s\n", TerminalSafe(services.error().message, TextKind::kProse).c_str());
    return ExitStatusFor(services.error().code);
  }
  auto opened = session::AgentSession::Open(**services, std::move(so));
  if (!opened) {
    fprintf(stderr, "moat: chat: %s\n",
            TerminalSafe(opened.error().message, TextKind::kProse).c_str());
    return ExitStatusFor(opened.error().code);
  }
  session::AgentSession& chat = **opened;

  g_cancel_session = &chat;
  signal(SIGINT, OnInterrupt);
  bool at_line_start = true;
  std::string last_started;  // the call id of the latest tool start shown
  // The model's text arrives in pieces, which may cut a character in two.
  TerminalStream text_out(TextKind::kProse);
  auto show = [&](const AgentEvent& e) {
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
        if (!e.reason.empty()) {
          printf("       (%s: %s)\n", Shown(e.decision).c_str(), Shown(e.reason, 600).c_str());
        }
        if (!e.undoable) {
          printf("       ! not undoable: %s\n", Shown(e.undo_note, 600).c_str());
        }
        last_started.clear();
        break;
      case AgentEvent::Kind::kWarning:
        printf("%s  ! moat: %s\n", at_line_start ? "" : "\n", Shown(e.text, 4096).c_str());
        at_line_start = true;
        break;
      case AgentEvent::Kind::kApprovalRequested:  // the terminal approver asks on /dev/tty
      case AgentEvent::Kind::kApprovalAnswered:
      case AgentEvent::Kind::kUsage:
      case AgentEvent::Kind::kCompile:  // the engine shows progress on the terminal
      case AgentEvent::Kind::kStop: break;
    }
    fflush(stdout);
  };
  // --json: the event stream as JSON Lines, the session first.
  auto emit = [&](const nlohmann::json& j) {
    fputs((DumpJson(j) + "\n").c_str(), stdout);
    fflush(stdout);
  };
  std::function<void(const AgentEvent&)> on_event = show;
  if (json_events) {
    emit(session::SessionToJson(chat));
    on_event = [&](const AgentEvent& e) { emit(EventToJson(e)); };
  }

  RunSummary last;
  auto run = [&](const std::string& prompt_text) {
    last = chat.Send(prompt_text, on_event);
    if (json_events) return;
    fputs(text_out.Flush().c_str(), stdout);
    printf(
        "%s\n-- %s: %s | %llu steps, %llu tool calls, %s in / %s out tokens, $%.4f, fuel %s, "
        "%.1f s\n",
        at_line_start ? "" : "\n", std::string(StopKindName(last.stop)).c_str(),
        Shown(last.message, 4096).c_str(), static_cast<unsigned long long>(last.steps),
        static_cast<unsigned long long>(last.tool_calls), Human(last.input_tokens).c_str(),
        Human(last.output_tokens).c_str(), last.cost_usd, Human(last.fuel).c_str(),
        last.wall_us / 1e6);
    const RunSummary& total = chat.SessionUse();
    if (total.steps != last.steps) {
      printf("-- session so far: %llu steps, %llu tool calls, $%.4f, %.1f s\n",
             static_cast<unsigned long long>(total.steps),
             static_cast<unsigned long long>(total.tool_calls), total.cost_usd,
             total.wall_us / 1e6);
    }
    if (!chat.id().empty()) printf("-- session %s\n", chat.id().c_str());
    at_line_start = true;
    fflush(stdout);
  };
  rt::SetMemoryRecycling(true);
  if (!prompt.empty()) {
    run(prompt);
  } else {
    std::string line;
    while (true) {
      if (tty && !json_events) {
        fputs("> ", stdout);
        fflush(stdout);
      }
      if (!std::getline(std::cin, line)) break;
      if (line.empty()) continue;
      run(line);
      if (last.stop == StopKind::kCancelled || last.stop == StopKind::kAuditFailed) break;
    }
  }
  g_cancel_session = nullptr;
  return ExitStatusFor(last.stop);
}

}  // namespace moat
