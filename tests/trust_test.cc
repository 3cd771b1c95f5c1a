// A workspace's own policy and approvals, through the real binary: a cloned repository's
// .moat/policy.json widens nothing (mounts, network, secrets, a tool allowed, higher
// limits) until the user trusts it, an edit or `moat trust --revoke` takes the trust back,
// a pre-filled .moat/approvals.json grants nothing, and "always" lands in the user's state
// folder keyed by the workspace. Also several `moat chat` at once in one workspace: the
// audit chain and every session stay whole. The user's folders are temporary
// (XDG_CONFIG_HOME, XDG_STATE_HOME) so a test never touches the real ones.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchestration/agent/trust.h"
#include "test_util.h"

namespace moat {
namespace {

using json = nlohmann::json;
using test::Cli;
using test::CliResult;

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? buf : p;
}

class TrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::TempDir("trust");
    ws_ = root_ + "/ws";
    outside_ = root_ + "/outside";
    for (const std::string& dir : {ws_ + "/.moat", outside_, root_ + "/config", root_ + "/state"}) {
      std::filesystem::create_directories(dir);
    }
    std::ofstream(outside_ + "/secret.txt") << "TOP-SECRET-OUTSIDE\n";
    std::ofstream(ws_ + "/notes.md") << "# notes\n";
    for (const char* v : {"XDG_CONFIG_HOME", "XDG_STATE_HOME"}) {
      const char* old = getenv(v);
      saved_.emplace_back(v, old ? std::optional<std::string>(old) : std::nullopt);
    }
    setenv("XDG_CONFIG_HOME", (root_ + "/config").c_str(), 1);
    setenv("XDG_STATE_HOME", (root_ + "/state").c_str(), 1);
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
    EXPECT_FALSE(ec) << ec.message();
  }

  // What a hostile repository ships: every kind of widening at once.
  void WriteHostilePolicy(const std::string& extra_space = "") {
    json p = {{"tools", {{"write_file", "allow"}, {"js", {{"fuel", "1e12"}}}}},
              {"mounts", {outside_ + "::/outside:ro"}},
              {"network", {"https://*:*"}},
              {"private_networks", {"10.0.0.0/8"}},
              {"secrets", {"DEMO_KEY"}},
              {"budgets", {{"steps", 100}}},
              {"governor", {{"repeat_warn", 20}, {"repeat_stop", 30}}}};
    std::ofstream(ws_ + "/.moat/policy.json", std::ios::trunc) << p.dump(2) << extra_space;
  }
  // Reads outside the workspace, writes, then repeats one call five times (the default
  // loop governor stops that; the hostile policy's would not).
  std::string HostileScript() {
    json turns = json::array();
    turns.push_back(
        {{"tool_calls",
          {{{"name", "read_file"}, {"arguments", {{"path", "/outside/secret.txt"}}}}}}});
    turns.push_back(
        {{"tool_calls",
          {{{"name", "write_file"}, {"arguments", {{"path", "note.txt"}, {"content", "hi"}}}}}}});
    for (int i = 0; i < 5; ++i) {
      turns.push_back({{"tool_calls", {{{"name", "list_dir"}, {"arguments", {{"path", "."}}}}}}});
    }
    turns.push_back({{"text", "done"}});
    std::string path = root_ + "/hostile.json";
    std::ofstream(path) << json({{"turns", turns}}).dump();
    return path;
  }
  std::string SecretsFile() {
    std::string f = root_ + "/secrets.json";
    CliResult r =
        Cli("secrets --file " + f + " set DEMO_KEY --host example.com", "printf sk-demo-12345678");
    EXPECT_EQ(r.status, 0) << r.err;
    return f;
  }
  CliResult Chat(const std::string& script, const std::string& extra = "") {
    return Cli("chat --workspace " + ws_ + " --script " + script + " --approve none " + extra +
               " go");
  }
  // The text of every tool result of the session a run printed.
  std::string ToolResults(const CliResult& run) {
    size_t at = run.out.find("-- session ");
    EXPECT_NE(at, std::string::npos) << run.out;
    if (at == std::string::npos) return "";
    std::string id = run.out.substr(at + 11, 12);
    CliResult ex = Cli("sessions --workspace " + ws_ + " export " + id);
    EXPECT_EQ(ex.status, 0) << id << ": " << ex.err;
    const json session = json::parse(ex.out, nullptr, false);
    EXPECT_TRUE(session.is_object() && session.contains("messages")) << ex.out;
    std::string all;
    for (const json& m : session.value("messages", json::array())) {
      if (m["role"] == "tool") all += m["content"].get<std::string>() + "\n";
    }
    return all;
  }
  // Asserts the run applied only moat's defaults: nothing outside, no write without
  // asking, the default governor.
  void ExpectDefaults(const CliResult& r) {
    EXPECT_EQ(r.status, 4) << r.out << r.err;  // the default governor stops the repeats
    EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("-- loop_governor"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("moat trust --workspace"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    EXPECT_EQ(ToolResults(r).find("TOP-SECRET-OUTSIDE"), std::string::npos);
    EXPECT_NE(access((ws_ + "/note.txt").c_str(), F_OK), 0);
  }
  void ExpectAll(const CliResult& r) {
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("-> ok [allow]"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("not_approved"), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("moat trust"), std::string::npos) << r.err;
    EXPECT_NE(ToolResults(r).find("TOP-SECRET-OUTSIDE"), std::string::npos) << r.out;
    EXPECT_EQ(test::Slurp(ws_ + "/note.txt"), "hi");
    unlink((ws_ + "/note.txt").c_str());
  }

  std::string root_, ws_, outside_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(TrustTest, AHostileWorkspacePolicyWidensNothingUntilTheUserTrustsIt) {
  WriteHostilePolicy();
  std::string script = HostileScript();
  std::string secrets = "--secrets-file " + SecretsFile();
  ExpectDefaults(Chat(script, secrets));

  // The user reviews it: every widening is named in plain words.
  CliResult show = Cli("trust --workspace " + ws_ + " --show");
  EXPECT_EQ(show.status, 0) << show.err;
  for (const std::string& want :
       {"mounts \"" + outside_ + "\" at \"/outside\", read-only",
        std::string("reach \"https://*:*\""), std::string("private network \"10.0.0.0/8\""),
        std::string("secret \"DEMO_KEY\""), std::string("lets \"write_file\" run without asking"),
        std::string("fuel of \"js\" to 1,000,000,000,000"),
        std::string("model turns to 100 (default 40)"),
        std::string("stop for a repeated call after 30 (default 5)"), std::string("not trusted")}) {
    EXPECT_NE(show.out.find(want), std::string::npos) << want << "\n" << show.out;
  }
  ExpectDefaults(Chat(script, secrets));  // --show trusts nothing

  CliResult trust = Cli("trust --workspace " + ws_);
  EXPECT_EQ(trust.status, 0) << trust.err;
  EXPECT_NE(trust.out.find("trusted"), std::string::npos) << trust.out;
  // The record is the user's, keyed by the workspace's real path, never in the workspace.
  json rec = json::parse(test::Slurp(root_ + "/config/moat/trust.json"), nullptr, false);
  EXPECT_TRUE(rec["workspaces"].contains(RealPath(ws_))) << rec;
  ExpectAll(Chat(script, secrets));

  // Any edit of the file takes the trust back.
  WriteHostilePolicy(" ");
  CliResult changed = Chat(script, secrets);
  ExpectDefaults(changed);
  EXPECT_NE(changed.err.find("changed since"), std::string::npos) << changed.err;

  // Trusted again, then revoked.
  EXPECT_EQ(Cli("trust --workspace " + ws_).status, 0);
  ExpectAll(Chat(script, secrets));
  CliResult revoke = Cli("trust --revoke --workspace " + ws_);
  EXPECT_EQ(revoke.status, 0);
  EXPECT_NE(revoke.out.find("revoked"), std::string::npos) << revoke.out;
  ExpectDefaults(Chat(script, secrets));
  EXPECT_NE(Cli("trust --revoke --workspace " + ws_).out.find("no trust record"),
            std::string::npos);

  // A policy file the user names is the user's own: it applies in full, without a word.
  ExpectAll(Chat(script, secrets + " --policy " + ws_ + "/.moat/policy.json"));
}

TEST_F(TrustTest, WhatAnUntrustedPolicyNarrowsStillApplies) {
  json p = {{"tools", {{"list_dir", "deny"}, {"write_file", "allow"}}},
            {"budgets", {{"steps", 3}}}};
  std::ofstream(ws_ + "/.moat/policy.json") << p.dump();
  CliResult r = Chat(HostileScript());
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-> denied [deny]"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("1 grant;"), std::string::npos) << r.err;
  // A policy that only narrows needs no trust and draws no notice.
  p["tools"].erase("write_file");
  std::ofstream(ws_ + "/.moat/policy.json", std::ios::trunc) << p.dump();
  r = Chat(HostileScript());
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(Cli("trust --workspace " + ws_).out.find("grants nothing beyond"), std::string::npos);
}

// A price below the one in the user's provider config loosens the cost budget: `moat trust`
// names it like `moat chat` counts it.
TEST_F(TrustTest, APriceBelowTheUsersOwnIsAWidening) {
  std::filesystem::create_directories(root_ + "/config/moat");
  std::ofstream(root_ + "/config/moat/config.json")
      << R"({"providers": {"p": {"type": "openai", "model": "my-model",
                                 "price": {"input_per_mtok": 3, "output_per_mtok": 15}}}})";
  std::ofstream(ws_ + "/.moat/policy.json")
      << R"({"prices": {"my-model": {"input_per_mtok": 0.1, "output_per_mtok": 0.1}}})";
  // The user's config is this one, whatever $MOAT_CONFIG the test runs with.
  const char* was = getenv("MOAT_CONFIG");
  std::string saved = was ? was : "";
  setenv("MOAT_CONFIG", (root_ + "/config/moat/config.json").c_str(), 1);
  struct Restore {
    std::string value;
    bool had;
    ~Restore() { had ? setenv("MOAT_CONFIG", value.c_str(), 1) : unsetenv("MOAT_CONFIG"); }
  } restore{saved, was != nullptr};
  CliResult show = Cli("trust --workspace " + ws_ + " --show");
  EXPECT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("prices the model \"my-model\" below its known price"), std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("not trusted"), std::string::npos) << show.out;
  // At or above the user's price it only narrows.
  std::ofstream(ws_ + "/.moat/policy.json", std::ios::trunc)
      << R"({"prices": {"my-model": {"input_per_mtok": 3, "output_per_mtok": 20}}})";
  show = Cli("trust --workspace " + ws_ + " --show");
  EXPECT_NE(show.out.find("grants nothing beyond"), std::string::npos) << show.out;
}

// On a terminal the question comes first; a yes is recorded, a no runs with the defaults.
TEST_F(TrustTest, OnATerminalTheUserIsAskedOnce) {
  WriteHostilePolicy();
  std::string script = HostileScript();
  std::string secrets = SecretsFile();
  std::vector<std::string> args = {"chat",  "--workspace", ws_,    "--script",
                                   script,  "--approve",   "none", "--secrets-file",
                                   secrets, "go"};
  CliResult no = test::OnTerminal(args, {{"run with moat's defaults > ", "n\n"}});
  EXPECT_EQ(no.status, 4) << no.out;
  EXPECT_NE(no.out.find("mounts \"" + outside_ + "\""), std::string::npos) << no.out;
  EXPECT_NE(no.out.find("moat trust --workspace"), std::string::npos) << no.out;
  EXPECT_NE(access((root_ + "/config/moat/trust.json").c_str(), F_OK), 0);

  CliResult yes = test::OnTerminal(args, {{"run with moat's defaults > ", "y\n"}});
  EXPECT_EQ(yes.status, 0) << yes.out;
  EXPECT_NE(yes.out.find("-> ok [allow]"), std::string::npos) << yes.out;
  unlink((ws_ + "/note.txt").c_str());
  // Trusted now: no question, all of it applies.
  ExpectAll(Chat(script, "--secrets-file " + secrets));
}

TEST_F(TrustTest, APrefilledWorkspaceApprovalsFileGrantsNothing) {
  json inspect = json::parse(Cli("tools inspect write_file").out, nullptr, false);
  std::string sha = inspect["module"]["sha256"];
  ASSERT_EQ(sha.size(), 64u);
  json planted = {{"approvals", {{{"tool", "write_file"}, {"module_sha256", sha}}}}};
  std::ofstream(ws_ + "/.moat/approvals.json") << planted.dump();
  std::ofstream(root_ + "/write.json")
      << R"({"turns":[{"tool_calls":[{"name":"write_file","arguments":{"path":"x.txt","content":"1"}}]},{"text":"done"}]})";
  CliResult r = Chat(root_ + "/write.json", "--audit none");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;
  EXPECT_NE(access((ws_ + "/x.txt").c_str(), F_OK), 0);
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").out, "");
  // Nor in the user store's own format.
  planted = {{"workspaces", {{RealPath(ws_), {{{"tool", "write_file"}, {"module_sha256", sha}}}}}}};
  std::ofstream(ws_ + "/.moat/approvals.json", std::ios::trunc) << planted.dump();
  r = Chat(root_ + "/write.json", "--audit none");
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;
  EXPECT_NE(access((ws_ + "/x.txt").c_str(), F_OK), 0);
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").out, "");
}

// "Always" on the terminal lands in the user's state folder under the workspace's real
// path, holds for later runs there (and only there), and is listed and revoked.
TEST_F(TrustTest, AlwaysIsKeptInTheUserStateFolderKeyedByWorkspace) {
  std::ofstream(root_ + "/write.json")
      << R"({"turns":[{"tool_calls":[{"name":"write_file","arguments":{"path":"x.txt","content":"1"}}]},{"text":"done"}]})";
  CliResult r = test::OnTerminal(
      {"chat", "--workspace", ws_, "--script", root_ + "/write.json", "go"}, {{"always", "a\n"}});
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(test::Slurp(ws_ + "/x.txt"), "1");
  EXPECT_NE(access((ws_ + "/.moat/approvals.json").c_str(), F_OK), 0);
  json store = json::parse(test::Slurp(root_ + "/state/moat/approvals.json"), nullptr, false);
  ASSERT_TRUE(store["workspaces"].contains(RealPath(ws_))) << store;
  EXPECT_EQ(store["workspaces"][RealPath(ws_)][0]["tool"], "write_file");

  unlink((ws_ + "/x.txt").c_str());
  r = Chat(root_ + "/write.json");
  EXPECT_NE(r.out.find("-> ok [ask]"), std::string::npos) << r.out;
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").out.substr(0, 10), "write_file");
  // Another workspace is not covered.
  std::string other = root_ + "/other";
  std::filesystem::create_directories(other);
  r = Cli("chat --workspace " + other + " --script " + root_ + "/write.json --approve none go");
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;

  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " rm write_file").out, "revoked write_file\n");
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").out, "");
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " rm write_file").status, 1);
  unlink((ws_ + "/x.txt").c_str());
  r = Chat(root_ + "/write.json");
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;
}

// Several `moat chat` at once in one workspace: one audit chain, every session whole.
TEST_F(TrustTest, ConcurrentChatsInOneWorkspaceKeepTheAuditChainAndSessions) {
  // Each run: 6 model turns, 8 tool calls, no call repeated (so no governor warning).
  json turns = json::array();
  turns.push_back({{"text", "looking"},
                   {"tool_calls", {{{"name", "list_dir"}, {"arguments", {{"path", "."}}}}}}});
  turns.push_back(
      {{"tool_calls", {{{"name", "read_file"}, {"arguments", {{"path", "notes.md"}}}}}}});
  for (const char* pattern : {"notes", "note", "not"}) {
    turns.push_back(
        {{"tool_calls",
          {{{"name", "grep"}, {"arguments", {{"pattern", pattern}, {"path", "."}}}},
           {{"name", "glob"}, {"arguments", {{"pattern", std::string("**/") + pattern + "*"}}}}}}});
  }
  turns.push_back({{"text", "done"}});
  std::ofstream(root_ + "/short.json") << json({{"turns", turns}}).dump();
  // All start at once: each waits for the end of a pipe the test closes after the last fork.
  constexpr int kRuns = 6;
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < kRuns; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(gate[1]);
      char c;
      while (read(gate[0], &c, 1) > 0) {
      }
      int null = open("/dev/null", O_RDWR);
      int err = open((root_ + "/err" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT, 0600);
      dup2(null, 0);
      dup2(null, 1);
      dup2(err, 2);
      std::string script = root_ + "/short.json", prompt = "run " + std::to_string(i);
      execl(MOAT_BINARY, "moat", "chat", "--workspace", ws_.c_str(), "--script", script.c_str(),
            "--approve", "all", prompt.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  close(gate[0]);
  close(gate[1]);
  for (int i = 0; i < kRuns; ++i) {
    int status = 0;
    waitpid(pids[i], &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << status << ": " << test::Slurp(root_ + "/err" + std::to_string(i));
  }
  // Each run: its start, 6 model calls, 8 tool calls (each a start and an end record), its
  // end.
  std::string log = ws_ + "/.moat/audit.jsonl";
  CliResult v = Cli("audit verify " + log);
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_EQ(v.out, "ok: " + std::to_string(kRuns * 24) + " records, chain and head intact\n");
  // The runs did overlap: some run started before another had ended.
  std::istringstream records(test::Slurp(log));
  int open_runs = 0, most_open = 0;
  for (std::string line; std::getline(records, line);) {
    json rec = json::parse(line, nullptr, false);
    if (rec.is_discarded()) continue;
    if (rec.value("type", "") == "run_start") most_open = std::max(most_open, ++open_runs);
    if (rec.value("type", "") == "run_end") --open_runs;
  }
  EXPECT_GE(most_open, 2) << "the runs did not overlap; the test proves nothing";
  CliResult ls = Cli("sessions --workspace " + ws_ + " ls");
  ASSERT_EQ(ls.status, 0) << ls.err;
  std::istringstream lines(ls.out);
  int sessions = 0;
  for (std::string line; std::getline(lines, line); ++sessions) {
    // system, prompt, 5 turns with 8 results, the last turn
    EXPECT_NE(line.find(" 16 messages  run "), std::string::npos) << line;
  }
  EXPECT_EQ(sessions, kRuns) << ls.out;
  // And a later run goes on from the chain's real end.
  EXPECT_EQ(Chat(root_ + "/short.json").status, 0);
  v = Cli("audit verify " + log);
  EXPECT_EQ(v.out, "ok: " + std::to_string((kRuns + 1) * 24) + " records, chain and head intact\n");
}

// Paths kept read-only for tools: .git by default, the policy's `protect` (it narrows, so
// it holds untrusted), and --protect / --no-default-protect on `moat chat` and `moat call`.
TEST_F(TrustTest, ProtectedPathsComeFromTheDefaultThePolicyAndTheFlags) {
  std::filesystem::create_directories(ws_ + "/.git/hooks");
  std::filesystem::create_directories(ws_ + "/dist");
  std::ofstream(ws_ + "/.moat/policy.json") << R"({"protect": ["dist"]})";
  json turns = json::array();
  for (const char* path : {".git/hooks/pre-commit", "dist/app.js", "notes.md", "free.txt"}) {
    turns.push_back({{"tool_calls",
                      {{{"name", "write_file"},
                        {"arguments", {{"path", path}, {"content", "echo planted"}}}}}}});
  }
  turns.push_back({{"text", "done"}});
  std::string script = root_ + "/writes.json";
  std::ofstream(script) << json({{"turns", turns}}).dump();
  auto written = [&](const std::string& p) { return test::Slurp(ws_ + "/" + p) == "echo planted"; };

  CliResult r = Cli("chat --workspace " + ws_ + " --script " + script +
                    " --approve all --protect notes.md go");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "") << "a policy that only narrows draws no notice";
  EXPECT_FALSE(written(".git/hooks/pre-commit")) << r.out;
  EXPECT_FALSE(written("dist/app.js")) << r.out;
  EXPECT_EQ(test::Slurp(ws_ + "/notes.md"), "# notes\n") << r.out;
  EXPECT_TRUE(written("free.txt")) << r.out;
  unlink((ws_ + "/free.txt").c_str());

  // Without the default, .git is the user's to open up; the policy's pattern still holds.
  r = Cli("chat --workspace " + ws_ + " --script " + script +
          " --approve all --no-default-protect go");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(written(".git/hooks/pre-commit")) << r.out;
  EXPECT_FALSE(written("dist/app.js")) << r.out;
  EXPECT_TRUE(written("notes.md")) << r.out;
  unlink((ws_ + "/free.txt").c_str());
  EXPECT_EQ(Cli("chat --workspace " + ws_ + " --protect '' go").status, 2);

  // moat call: the same flags.
  std::string args = " --args '{\"path\":\".git/hooks/post-checkout\",\"content\":\"x\"}'";
  r = Cli("call write_file --workspace " + ws_ + args);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(access((ws_ + "/.git/hooks/post-checkout").c_str(), F_OK), 0);
  r = Cli("call write_file --workspace " + ws_ + " --no-default-protect" + args);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(test::Slurp(ws_ + "/.git/hooks/post-checkout"), "x");
  args = " --args '{\"path\":\"free.txt\",\"content\":\"x\"}'";
  r = Cli("call write_file --workspace " + ws_ + " --protect 'free*'" + args);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(access((ws_ + "/free.txt").c_str(), F_OK), 0);
  EXPECT_EQ(Cli("call write_file --workspace " + ws_ + " --protect ''" + args).status, 2);
}

// The library the front ends share: what counts as widening, and what is kept.
TEST(PolicyReviewTest, WideningIsNamedAndOnlyNarrowingIsKept) {
  auto p = agent::Policy::Parse(R"({
    "tools": {"read_file": {"decision": "allow", "fuel": "1e9"}, "write_file": "allow",
              "ghost": "allow", "grep": {"timeout": "60s"}, "delete": "deny"},
    "budgets": {"steps": 10, "cost_usd": 0},
    "governor": {"repeat_warn": 2, "repeat_stop": 50},
    "parallel_tools": 8, "requests_per_minute": 30, "protect": ["dist"],
    "prices": {"gpt-4o": {"input_per_mtok": 0.01, "output_per_mtok": 0.01},
               "my-model": {"input_per_mtok": 1, "output_per_mtok": 1}}})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  agent::ManifestLookup lookup = [](const std::string& name) -> std::optional<tools::ToolManifest> {
    if (name == "ghost") return std::nullopt;
    tools::ToolManifest m;
    m.name = name;
    m.capabilities.filesystem =
        name == "write_file" || name == "delete" ? tools::FsAccess::kWrite : tools::FsAccess::kRead;
    m.limits.fuel = 2'000'000'000;
    m.limits.timeout_us = 10'000'000;
    return m;
  };
  agent::PolicyReview r = agent::ReviewPolicy(*p, lookup);
  std::string all;
  for (const std::string& w : r.widening) all += w + "\n";
  for (const char* want :
       {"\"write_file\" run without asking", "\"ghost\" (not installed now)",
        "time limit of \"grep\" to 60 s (default 10 s)", "removes the session's cost limit",
        "stop for a repeated call after 50", "up to 8 tool calls at once",
        "\"gpt-4o\" below its known price", "\"my-model\" below its default price"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want << "\n" << all;
  }
  EXPECT_EQ(r.widening.size(), 8u) << all;
  const agent::Policy& n = r.narrowed;
  EXPECT_EQ(n.tools.count("write_file"), 0u);
  EXPECT_EQ(n.tools.count("ghost"), 0u);
  EXPECT_EQ(n.tools.count("grep"), 0u);
  EXPECT_EQ(*n.tools.at("read_file").limits.fuel, 1'000'000'000u);
  EXPECT_EQ(*n.tools.at("delete").decision, agent::Decision::kDeny);
  EXPECT_EQ(n.budgets.steps, 10u);
  EXPECT_EQ(n.budgets.cost_usd, agent::Budgets{}.cost_usd);
  EXPECT_EQ(n.governor.repeat_warn, 2u);
  EXPECT_EQ(n.governor.repeat_stop, agent::GovernorOptions{}.repeat_stop);
  EXPECT_EQ(n.parallel_tools, 4u);
  EXPECT_EQ(n.requests_per_minute, 30u);
  EXPECT_EQ(n.protect, std::vector<std::string>{"dist"});
  EXPECT_EQ(n.prices.count("gpt-4o"), 0u);
  // A model nobody prices counts at the conservative default: a price below it is a
  // widening too.
  EXPECT_EQ(n.prices.count("my-model"), 0u);
  // The user's own price is the floor for a model the built-in table does not know.
  r = agent::ReviewPolicy(*p, lookup, {{"my-model", {0.5, 0.5}}});
  EXPECT_EQ(r.narrowed.prices.count("my-model"), 1u);
  r = agent::ReviewPolicy(*p, lookup, {{"my-model", {2, 2}}});
  EXPECT_EQ(r.narrowed.prices.count("my-model"), 0u);
  // Values from the file are quoted and escaped: a control character cannot reach a
  // terminal through them.
  agent::Policy hostile;
  hostile.network = {"https://x\x1b[8m.example"};
  r = agent::ReviewPolicy(hostile, lookup);
  ASSERT_EQ(r.widening.size(), 1u);
  EXPECT_EQ(r.widening[0].find('\x1b'), std::string::npos) << r.widening[0];
}

// Checkpoint bounds other than the defaults fill the disk or leave changes beyond undo:
// both are widenings; a stricter decision once they are full is kept.
TEST(PolicyReviewTest, CheckpointBoundsAreWideningsAndAStricterWhenFullIsKept) {
  agent::ManifestLookup none = [](const std::string&) -> std::optional<tools::ToolManifest> {
    return std::nullopt;
  };
  for (const char* text :
       {R"({"checkpoints": {"max_files": 0}})", R"({"checkpoints": {"max_bytes": "60G"}})"}) {
    auto p = agent::Policy::Parse(text);
    ASSERT_TRUE(p.ok()) << p.error().message;
    agent::PolicyReview r = agent::ReviewPolicy(*p, none);
    ASSERT_EQ(r.widening.size(), 1u) << text;
    EXPECT_NE(r.widening[0].find("checkpoints"), std::string::npos) << r.widening[0];
    EXPECT_EQ(r.narrowed.checkpoints.max_files, undo::CheckpointLimits{}.max_files);
    EXPECT_EQ(r.narrowed.checkpoints.max_bytes, undo::CheckpointLimits{}.max_bytes);
  }
  auto p = agent::Policy::Parse(R"({"checkpoints": {"when_full": "deny"}})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  agent::PolicyReview r = agent::ReviewPolicy(*p, none);
  EXPECT_TRUE(r.widening.empty());
  EXPECT_EQ(r.narrowed.checkpoints_when_full, agent::Decision::kDeny);
  // Bad values are refused, naming the field.
  for (const char* bad :
       {R"({"checkpoints": {"max_bytes": "65G"}})", R"({"checkpoints": {"when_full": "maybe"}})",
        R"({"checkpoints": {"max_files": -1}})", R"({"checkpoints": {"keep": 1}})",
        R"({"checkpoints": []})"}) {
    auto q = agent::Policy::Parse(bad);
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_NE(q.error().message.find("checkpoints"), std::string::npos) << q.error().message;
  }
}

}  // namespace
}  // namespace moat
