// `moat chat` and `moat audit verify` through the real binary: the built-in demo on a copy
// of examples/workspace, offline; approvals from the command line; the audit log it leaves,
// then edited; a hostile script and policy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace moat {
namespace {

namespace fs = std::filesystem;
using test::Cli;
using test::CliResult;

class ChatCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = test::TempDir("chat-ws");
    fs::remove_all(ws_);
    fs::copy(MOAT_SOURCE_DIR "/examples/workspace", ws_, fs::copy_options::recursive);
    // The user's folders (trust records, standing approvals) are the test's own.
    user_ = ws_ + "-user";
    setenv("XDG_CONFIG_HOME", (user_ + "/config").c_str(), 1);
    setenv("XDG_STATE_HOME", (user_ + "/state").c_str(), 1);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(ws_, ec);
    EXPECT_FALSE(ec) << ec.message();
    fs::remove_all(user_, ec);
    EXPECT_FALSE(ec) << ec.message();
  }
  std::string ws_, user_;
};

TEST_F(ChatCli, TheDemoRunsOfflineAndLeavesAVerifiableAuditLog) {
  // As scripts/demo.sh runs it: the policy named, so it applies without a question.
  CliResult r = Cli("chat --workspace " + ws_ + " --policy " + ws_ +
                    "/.moat/policy.json --approve all 'Summarise the open work'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("moat trust"), std::string::npos) << r.err;
  for (const char* want :
       {"* read_file {\"path\":\".env\"}", "-> not_found [allow]", "-> network_denied [ask]",
        "-> fuel_exhausted [allow]", "! moat: You called js with the same arguments 2 times",
        "-> ok [ask]", "-- completed: the model finished | 8 steps, 8 tool calls"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  EXPECT_EQ(r.out.find("sk-demo-0000"), std::string::npos);
  EXPECT_NE(test::Slurp(ws_ + "/report.md").find("# Billing service: open work"),
            std::string::npos);

  std::string log = ws_ + "/.moat/audit.jsonl";
  r = Cli("audit verify " + log);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "ok: 27 records, chain and head intact\n");
  // A second session continues the same chain.
  ASSERT_TRUE(fs::remove(ws_ + "/report.md"));
  EXPECT_EQ(Cli("chat --workspace " + ws_ + " --approve all 'again'").status, 0);
  EXPECT_EQ(Cli("audit verify " + log).out, "ok: 54 records, chain and head intact\n");
  // An edit names its record (4: the first call's record after it ran).
  {
    std::vector<std::string> lines;
    std::istringstream in(test::Slurp(log));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    ASSERT_GE(lines.size(), 4u);
    size_t at = lines[3].find("\"status\":\"ok\"");
    ASSERT_NE(at, std::string::npos) << lines[3];
    lines[3].replace(at, 13, "\"status\":\"fine\"");
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    test::PutFile(log, text);
  }
  r = Cli("audit verify " + log);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.substr(0, 17), "broken: record 4:") << r.out;
  // Chat refuses to extend a broken log: the audit log's own exit status, not a usage error.
  r = Cli("chat --workspace " + ws_ + " --approve all 'x'");
  EXPECT_EQ(r.status, 5);
  EXPECT_NE(r.err.find("broken at record 4"), std::string::npos) << r.err;
}

TEST_F(ChatCli, WithoutApprovalsAskToolsAreRefusedAndTheRunGoesOn) {
  CliResult r = Cli("chat --workspace " + ws_ + " --approve none --audit none 'Summarise'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;
  EXPECT_NE(access((ws_ + "/report.md").c_str(), F_OK), 0);
  EXPECT_NE(access((ws_ + "/.moat/audit.jsonl").c_str(), F_OK), 0);
}

// A repeatable flag takes one value per occurrence: it never swallows the prompt after it
// (which then was read from stdin instead).
TEST_F(ChatCli, ARepeatableFlagDoesNotSwallowThePrompt) {
  CliResult r = Cli("chat --workspace " + ws_ + " --approve none --audit none --tools-dir " + ws_ +
                    "/no-tools 'Summarise'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out << r.err;
  r = Cli("chat --workspace " + ws_ + " --tools-dir A B 'Summarise'");
  EXPECT_EQ(r.status, 2) << r.out;
}

TEST_F(ChatCli, HostileScriptsPoliciesAndFlagsAreUsageErrors) {
  std::ofstream(ws_ + "/script.json") << R"({"turns":[{"tool_calls":[{"arguments":{}}]}]})";
  CliResult r = Cli("chat --workspace " + ws_ + " --script " + ws_ + "/script.json x");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("turns[0].tool_calls[0]"), std::string::npos) << r.err;
  std::ofstream(ws_ + "/.moat/policy.json") << R"({"budgets":{"steps":"many"}})";
  r = Cli("chat --workspace " + ws_ + " x");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("budgets/steps"), std::string::npos) << r.err;
  EXPECT_EQ(Cli("chat --workspace /nonexistent x").status, 2);
  EXPECT_EQ(Cli("chat --provider openai --workspace " + ws_ + " x").status, 2);
  EXPECT_EQ(Cli("chat --approve maybe --workspace " + ws_ + " x").status, 2);
  // A budget stop is its own exit status.
  std::ofstream(ws_ + "/.moat/policy.json") << R"({"budgets":{"steps":2}})";
  r = Cli("chat --workspace " + ws_ + " --approve all --audit none x");
  EXPECT_EQ(r.status, 4) << r.out;
  EXPECT_NE(r.out.find("-- budget_steps"), std::string::npos) << r.out;
}

TEST_F(ChatCli, SessionsAreKeptListedExportedAndResumed) {
  CliResult r =
      Cli("chat --workspace " + ws_ + " --approve all --audit none 'Summarise the open work'");
  ASSERT_EQ(r.status, 0) << r.err;
  size_t at = r.out.find("-- session ");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::string id = r.out.substr(at + 11, 12);
  r = Cli("sessions --workspace " + ws_ + " ls");
  EXPECT_EQ(r.out.substr(0, 12), id) << r.out;
  // system, prompt, 8 turns, 8 results, one governor warning
  EXPECT_NE(r.out.find("19 messages  Summarise the open work"), std::string::npos) << r.out;
  r = Cli("sessions --workspace " + ws_ + " export " + id);
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["messages"].size(), 19u);
  EXPECT_EQ(j["messages"][2]["tool_calls"][0]["name"], "list_dir");
  EXPECT_EQ(j["messages"][3]["role"], "tool");
  r = Cli("sessions --workspace " + ws_ + " export " + id + " --format markdown");
  EXPECT_NE(r.out.find("# Session " + id), std::string::npos);
  r = Cli("sessions --workspace " + ws_ + " show " + id);
  EXPECT_NE(r.out.find("[tool read_file]"), std::string::npos);
  // Resumed: the same session grows. (Its budgets hold for the whole session: room for
  // a second round of the demo's 8 steps.)
  nlohmann::json pj = nlohmann::json::parse(test::Slurp(ws_ + "/.moat/policy.json"));
  pj["budgets"] = {{"steps", 40}, {"tool_calls", 40}};
  std::ofstream(ws_ + "/.moat/policy.json", std::ios::trunc) << pj.dump();
  ASSERT_TRUE(fs::remove(ws_ + "/report.md"));
  r = Cli("sessions --workspace " + ws_ + " resume " + id + " --approve all 'again'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("-- session " + id), std::string::npos);
  j = nlohmann::json::parse(Cli("sessions --workspace " + ws_ + " export " + id).out);
  EXPECT_GT(j["messages"].size(), 30u);
  EXPECT_EQ(j["messages"][19]["content"], "again");
  EXPECT_NE(r.out.find("-- session so far: 16 steps, 16 tool calls"), std::string::npos) << r.out;
  // Budgets hold for the session: with 20 steps, a third round stops after 4.
  pj["budgets"]["steps"] = 20;
  std::ofstream(ws_ + "/.moat/policy.json", std::ios::trunc) << pj.dump();
  fs::remove(ws_ + "/report.md");
  r = Cli("sessions --workspace " + ws_ + " resume " + id + " --approve all 'once more'");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_steps: the budget of 20 steps is used up | 4 steps"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(Cli("sessions --workspace " + ws_ + " show nosuchid").status, 2);
}

TEST_F(ChatCli, StandingApprovalsAreListedAndRevoked) {
  // The user's store, keyed by the workspace's real path.
  char real[PATH_MAX];
  ASSERT_NE(realpath(ws_.c_str(), real), nullptr);
  std::string store = user_ + "/state/moat/approvals.json";
  fs::create_directories(user_ + "/state/moat");
  std::ofstream(store) << R"({"workspaces":{")" + std::string(real) +
                              R"(":[{"tool":"write_file","tool_digest":")" + std::string(64, 'b') +
                              R"(","granted_at":"2026-01-01T00:00:00Z"}]}})";
  CliResult r = Cli("approvals --workspace " + ws_ + " ls");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.substr(0, 10), "write_file") << r.out;
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " rm write_file").out, "revoked write_file\n");
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").out, "");
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " rm write_file").status, 1);
  std::ofstream(store, std::ios::trunc) << "[";
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").status, 2);
}

// Ctrl-C while a tool runs: the tool is stopped, the turn is answered, the run ends as
// cancelled (exit 130) within a moment, and the audit chain and the session stay valid.
TEST_F(ChatCli, CtrlCStopsARunningToolPromptly) {
  std::string tools = ws_ + "-tools";
  fs::create_directories(tools);
  std::ofstream(tools + "/probe.json") << R"({"name": "probe", "version": "1.0.0",
    "description": "test tool", "arguments": {"type": "object"},
    "capabilities": {"filesystem": "read"}, "limits": {"timeout": "60s"}})";
  CliResult pack = Cli("tools pack " + test::Guest("contract_probe") + " --manifest " + tools +
                       "/probe.json -o " + tools + "/probe.wasm");
  ASSERT_EQ(pack.status, 0) << pack.err;
  std::ofstream(ws_ + "/sleepy.json") << R"({"turns": [
    {"text": "Waiting.", "tool_calls": [
      {"name": "probe", "arguments": {"mode": "sleep", "n": 30000}},
      {"name": "probe", "arguments": {"mode": "sleep", "n": 30001}}]},
    {"text": "never reached"}]})";
  CliResult r = test::InterruptCli({"chat", "--workspace", ws_, "--tools-dir", tools, "--script",
                                    ws_ + "/sleepy.json", "--approve", "all", "wait"},
                                   "* probe {\"mode\":\"sleep\",\"n\":30001}");
  EXPECT_EQ(r.status, 130) << r.out;
  EXPECT_LT(r.ms, 2000) << r.out;
  EXPECT_NE(r.out.find("probe: cancelled"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-- cancelled"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("never reached"), std::string::npos) << r.out;
  EXPECT_EQ(Cli("audit verify " + ws_ + "/.moat/audit.jsonl").status, 0);
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  CliResult ex = Cli("sessions --workspace " + ws_ + " export " + id);
  ASSERT_EQ(ex.status, 0) << ex.err;
  const nlohmann::json m = nlohmann::json::parse(ex.out)["messages"];
  int cancelled = 0;
  for (const auto& msg : m) {
    if (msg["role"] == "tool")
      cancelled += msg["content"].get<std::string>().find("cancelled") != std::string::npos;
  }
  EXPECT_EQ(cancelled, 2) << ex.out;
  fs::remove_all(tools);
}

// kill -9 in the middle of a run: the session store and the audit chain stay valid, at
// most the step in flight is lost, and the session can be resumed.
TEST_F(ChatCli, AKillMidRunLosesAtMostTheStepInFlight) {
  nlohmann::json turns = nlohmann::json::array();
  for (int i = 0; i < 40; ++i) {
    std::string code =
        "let i = 0; while (i < " + std::to_string(2000000 + i) + ") i++; console.log(i);";
    turns.push_back({{"text", "step " + std::to_string(i)},
                     {"tool_calls", {{{"name", "js"}, {"arguments", {{"code", code}}}}}}});
  }
  std::ofstream(ws_ + "/slow.json") << nlohmann::json({{"turns", turns}}).dump();
  std::ofstream(ws_ + "/.moat/policy.json", std::ios::trunc) << R"({"budgets":{"steps":100}})";
  for (int round = 0; round < 3; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::string script = ws_ + "/slow.json";
      execl(MOAT_BINARY, "moat", "chat", "--workspace", ws_.c_str(), "--script", script.c_str(),
            "--approve", "all", "count", static_cast<char*>(nullptr));
      _exit(127);
    }
    usleep(400'000 + round * 250'000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "chat ended before the kill; status " << status;
    CliResult v = Cli("audit verify " + ws_ + "/.moat/audit.jsonl");
    EXPECT_EQ(v.status, 0) << "round " << round << ": " << v.out;
    CliResult ls = Cli("sessions --workspace " + ws_ + " ls");
    ASSERT_EQ(ls.status, 0) << ls.err;
    std::string id = ls.out.substr(0, 12);
    CliResult ex = Cli("sessions --workspace " + ws_ + " export " + id);
    ASSERT_EQ(ex.status, 0) << ex.err;
    nlohmann::json j = nlohmann::json::parse(ex.out);
    // Well formed: every call of an assistant turn is answered right after it (a call the
    // kill cut short is answered as interrupted).
    const auto& m = j["messages"];
    ASSERT_GE(m.size(), 3u) << ex.out;
    for (size_t k = 0; k < m.size(); ++k) {
      if (m[k]["role"] != "assistant" || !m[k].contains("tool_calls")) continue;
      ASSERT_LT(k + 1, m.size());
      EXPECT_EQ(m[k + 1]["role"], "tool");
      EXPECT_EQ(m[k + 1]["tool_call_id"], m[k]["tool_calls"][0]["id"]);
    }
  }
  // A killed session can go on.
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  std::ofstream(ws_ + "/end.json") << R"({"turns":[{"text":"finished"}]})";
  CliResult r = Cli("chat --workspace " + ws_ + " --script " + ws_ + "/end.json --session " + id +
                    " 'go on'");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Cli("audit verify " + ws_ + "/.moat/audit.jsonl").status, 0);
}

// The probe tool (guests/tools_test/contract_probe.c) packed into `dir` as an extension.
void PackProbe(const std::string& dir) {
  fs::create_directories(dir);
  std::ofstream(dir + "/probe.json") << R"({"name": "probe", "version": "1.0.0",
    "description": "test tool", "arguments": {"type": "object"},
    "capabilities": {"filesystem": "read"}, "limits": {"timeout": "60s"}})";
  CliResult pack = Cli("tools pack " + test::Guest("contract_probe") + " --manifest " + dir +
                       "/probe.json -o " + dir + "/probe.wasm");
  ASSERT_EQ(pack.status, 0) << pack.err;
}

// A model's text, tool names and arguments and a tool's result code hold escape sequences
// (ESC[8m, OSC 52, OSC 8, CSI), C1 controls (raw and as UTF-8) and bidi overrides; none
// reaches the terminal, in `moat chat` or later in `moat sessions`: each is shown
// escaped. Characters the stream cuts in two come out whole.
TEST_F(ChatCli, EscapesFromTheModelAndToolsNeverReachTheTerminal) {
  std::string tools = ws_ + "-tools";
  PackProbe(tools);
  // Text streams in pieces of 24 bytes: "€" and "😀" straddle the first two cuts.
  std::string text = std::string(22, 'x') + "\xE2\x82\xAC" + std::string(21, 'y') +
                     "\xF0\x9F\x98\x80" +
                     " \x1b[8mhidden\x1b[0m \x1b]52;c;ZXZpbA==\x07 "
                     "\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ csi\xC2\x9B"
                     "2J nel\xC2\x85 "
                     "\xE2\x80\xAElive\xE2\x81\xA6 caf\xC3\xA9 end\r\n";
  nlohmann::json script = {
      {"turns",
       {{{"text", text},
         {"tool_calls",
          {{{"name", "read_file"}, {"arguments", {{"path", "\x1b[8mnotes.md\xE2\x80\xAE"}}}},
           {{"name", "no\x1b[2Jsuch"}, {"arguments", "{\"x\":\"\xC2\x9B\"}"}},
           {{"name", "probe"}, {"arguments", {{"mode", "escapes"}}}}}}},
        {{"text", "done"}}}}};
  std::ofstream(ws_ + "/esc.json") << script.dump();
  CliResult r = Cli("chat --workspace " + ws_ + " --tools-dir " + tools + " --script " + ws_ +
                    "/esc.json --approve all \"$(printf 'look\\033[8m')\"");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "") << r.out;
  for (const char* want :
       {"xx\xE2\x82\xAC"
        "yy",
        "y\xF0\x9F\x98\x80 ", " \\x1b[8mhidden\\x1b[0m ", "\\x1b]52;c;ZXZpbA==\\x07",
        "\\x1b]8;;http://evil/\\x1b\\link", "csi\\u009b2J", "nel\\u0085", "\\u202elive\\u2066",
        "caf\xC3\xA9 end\\x0d\n", "* read_file {\"path\":\"\\u001b[8mnotes.md\\u202e\"}",
        "* no\\x1b[2Jsuch {\"x\":\"\\u009b\"}", "\\x1b[8mhidden\\u009b2J [allow]"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  size_t at = r.out.find("-- session ");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::string id = r.out.substr(at + 11, 12);
  for (std::string cmd : {std::string("ls"), "show " + id, "export " + id + " --format markdown"}) {
    CliResult s = Cli("sessions --workspace " + ws_ + " " + cmd);
    EXPECT_EQ(s.status, 0) << cmd << ": " << s.err;
    EXPECT_EQ(test::RawControlAt(s.out + s.err), "") << cmd << ":\n" << s.out;
    EXPECT_NE(s.out.find(cmd == "ls" ? "look\\x1b[8m" : "\\x1b[8mhidden"), std::string::npos)
        << cmd << ":\n"
        << s.out;
  }
  CliResult ex = Cli("sessions --workspace " + ws_ + " export " + id);
  EXPECT_EQ(test::RawControlAt(ex.out + ex.err), "") << ex.out;
  nlohmann::json j = nlohmann::json::parse(ex.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ex.out;
  EXPECT_EQ(j["messages"][2]["content"], text) << "the JSON escapes stand for the same text";
  fs::remove_all(tools);
}

// Tool output that is not UTF-8 (on stderr, or inside a result), and a tool name that moat
// itself cuts inside a character, go into the audit log and the session store repaired
// (U+FFFD), and every front end that shows them stays up.
TEST_F(ChatCli, TextThatIsNotUtf8IsKeptAndShownSafely) {
  std::string tools = ws_ + "-tools";
  PackProbe(tools);
  nlohmann::json script = {{"turns",
                            {{{"text", "Probing."},
                              {"tool_calls",
                               {{{"name", "probe"}, {"arguments", {{"mode", "badutf8"}}}},
                                {{"name", "probe"}, {"arguments", {{"mode", "badout"}}}},
                                {{"name", std::string(99, 'a') + "\xC3\xA9"},
                                 {"arguments", nlohmann::json::object()}}}}},
                             {{"text", "done"}}}}};
  std::ofstream(ws_ + "/bytes.json") << script.dump();
  CliResult r = Cli("chat --workspace " + ws_ + " --tools-dir " + tools + " --script " + ws_ +
                    "/bytes.json --approve all probe");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("tool_failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bad_tool_output"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unknown_tool"), std::string::npos) << r.out;
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "") << r.out;
  EXPECT_EQ(Cli("audit verify " + ws_ + "/.moat/audit.jsonl").status, 0);
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  CliResult ex = Cli("sessions --workspace " + ws_ + " export " + id);
  ASSERT_EQ(ex.status, 0) << ex.err;
  nlohmann::json j = nlohmann::json::parse(ex.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ex.out;
  EXPECT_NE(j["messages"][3]["content"].get<std::string>().find("bad \xEF\xBF\xBD"),
            std::string::npos)
      << ex.out;
  for (std::string cmd : {"show " + id, "export " + id + " --format markdown"}) {
    CliResult s = Cli("sessions --workspace " + ws_ + " " + cmd);
    EXPECT_EQ(s.status, 0) << cmd << ": " << s.err;
    EXPECT_EQ(test::RawControlAt(s.out + s.err), "") << cmd << ":\n" << s.out;
  }
  fs::remove_all(tools);
}

// The approval prompt on a terminal: attributes reset by moat itself, the path of a
// write_file whose 10 KB content starts with ESC[8m shown whole, the content cut with the
// size of what is cut, nothing of the model's raw; "n" refuses.
TEST_F(ChatCli, TheApprovalPromptShowsTheTargetAndWhatIsCut) {
  nlohmann::json script = {
      {"turns",
       {{{"text", "Writing."},
         {"tool_calls",
          {{{"name", "write_file"},
            {"arguments",
             {{"content", "\x1b[8m" + std::string(10240, 'A')}, {"path", "out/report.md"}}}}}}},
        {{"text", "done"}}}}};
  std::ofstream(ws_ + "/write.json") << script.dump();
  // The policy named, so the only question on the terminal is the approval.
  CliResult r =
      test::OnTerminal({"chat", "--workspace", ws_, "--policy", ws_ + "/.moat/policy.json",
                        "--script", ws_ + "/write.json", "--audit", "none", "write it"},
                       {{"[n] no > ", "n\n"}});
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(test::RawControlAt(r.out, "\x1b[0m"), "") << r.out;
  size_t prompt = r.out.find("\x1b[0m\n  ? allow write_file (write files)");
  ASSERT_NE(prompt, std::string::npos) << r.out;
  std::string shown = r.out.substr(prompt);
  EXPECT_NE(shown.find("\n      path: \"out/report.md\"\n"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\n      content: \"\\u001b[8mAAAA"), std::string::npos) << shown;
  EXPECT_NE(shown.find("A\xE2\x80\xA6 (10,051 more bytes)\n"), std::string::npos) << shown;
  EXPECT_NE(shown.find("-> not_approved [ask]"), std::string::npos) << shown;
  EXPECT_NE(access((ws_ + "/out/report.md").c_str(), F_OK), 0);
}

// JSON nested deeper than moat reads (kMaxJsonDepth, 512) is refused where it comes in:
// a call's arguments as invalid_arguments, a tool's result as bad_tool_output; the run
// goes on and ends, and every front end that shows the session stays up. (Arguments
// 60,000 levels deep, and a result 300,000 deep, once took the host down by recursion.)
TEST_F(ChatCli, JsonNestedTooDeeplyIsRefusedNotFollowed) {
  std::string tools = ws_ + "-tools";
  PackProbe(tools);
  // (Half a million levels: a recursive dump of them overflows any usual stack.)
  std::string deep_args = "{\"a\":" + std::string(500000, '[') + std::string(500000, ']') + "}";
  nlohmann::json script = {{"turns",
                            {{{"text", "Deep."},
                              {"tool_calls",
                               {{{"name", "probe"}, {"arguments", deep_args}},
                                {{"name", "probe"}, {"arguments", {{"mode", "deep"}}}}}}},
                             {{"text", "done"}}}}};
  std::ofstream(ws_ + "/deep.json") << script.dump();
  CliResult r = Cli("chat --workspace " + ws_ + " --tools-dir " + tools + " --script " + ws_ +
                    "/deep.json --approve all deep");
  EXPECT_EQ(r.status, 0) << r.out.substr(0, 2000) << r.err.substr(0, 2000);
  EXPECT_NE(r.out.find("-> invalid_arguments"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("-> bad_tool_output"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("-- completed"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_EQ(Cli("audit verify " + ws_ + "/.moat/audit.jsonl").status, 0);
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  CliResult ex = Cli("sessions --workspace " + ws_ + " export " + id);
  ASSERT_EQ(ex.status, 0) << ex.err.substr(0, 2000);
  nlohmann::json j = nlohmann::json::parse(ex.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ex.out.substr(0, 2000);
  EXPECT_EQ(j["messages"][2]["tool_calls"][0]["arguments"], deep_args)
      << "kept as the text the model wrote";
  EXPECT_NE(j["messages"][3]["content"].get<std::string>().find("nested deeper than 512"),
            std::string::npos)
      << j["messages"][3];
  for (std::string cmd : {"show " + id, "export " + id + " --format markdown"}) {
    CliResult s = Cli("sessions --workspace " + ws_ + " " + cmd);
    EXPECT_EQ(s.status, 0) << cmd << ": " << s.err.substr(0, 2000);
  }
  // The session goes on from there.
  std::ofstream(ws_ + "/end.json") << R"({"turns":[{"text":"finished"}]})";
  r = Cli("chat --workspace " + ws_ + " --script " + ws_ + "/end.json --session " + id +
          " 'go on'");
  EXPECT_EQ(r.status, 0) << r.out.substr(0, 2000) << r.err.substr(0, 2000);
  fs::remove_all(tools);
}

// A session goes on with the provider and model it was recorded with. Without the
// configuration that names its provider it is refused: it never falls back to the
// built-in demo, whose turns would write into the real workspace.
TEST_F(ChatCli, AResumedSessionKeepsItsProviderOrIsRefused) {
  unsetenv("MOAT_CONFIG");
  std::string cfg = user_ + "/local.json";
  fs::create_directories(user_);
  // Nothing listens on port 9 of this host: the provider fails at once.
  std::ofstream(cfg) << R"({"providers": {"local": {"type": "openai",
      "base_url": "http://127.0.0.1:9/v1", "model": "m-local", "max_attempts": 1}}})";
  CliResult r = Cli("chat --config " + cfg + " --provider local --workspace " + ws_ +
                    " --approve all --audit none 'Summarise the open work'");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  ASSERT_EQ(id.size(), 12u);
  auto listing = [&] {  // every file of the workspace outside .moat, with its digest
    std::string out;
    FILE* p = popen(
        ("cd " + ws_ + " && find . -path ./.moat -prune -o -type f -print | sort | xargs sha256sum")
            .c_str(),
        "r");
    if (p == nullptr) return out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
    return out;
  };
  std::string before = listing();
  ASSERT_NE(before.find("./notes"), std::string::npos) << before;

  for (std::string cmd : {"sessions --workspace " + ws_ + " resume " + id + " --approve all 'go'",
                          "chat --workspace " + ws_ + " --session " + id + " --approve all go"}) {
    r = Cli(cmd);
    EXPECT_EQ(r.status, 2) << cmd << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("recorded with provider local"), std::string::npos) << cmd << r.err;
    EXPECT_EQ(r.out.find("report.md"), std::string::npos) << cmd << r.out;
  }
  EXPECT_NE(access((ws_ + "/report.md").c_str(), F_OK), 0);
  EXPECT_EQ(listing(), before);
  // Another provider or model named for it is refused too.
  r = Cli("chat --workspace " + ws_ + " --session " + id + " --provider scripted --approve all go");
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  r = Cli("chat --config " + cfg + " --workspace " + ws_ + " --session " + id +
          " --model m-other --approve all go");
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("m-local"), std::string::npos) << r.err;
  // With its configuration it goes on with that provider (which is down: a provider error).
  r = Cli("chat --config " + cfg + " --workspace " + ws_ + " --session " + id +
          " --approve all --audit none go");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(listing(), before);
}

// A tool whose argument schema applies its subschemas over and over ($ref/allOf chains 40
// levels deep, two references a level) cannot hang `moat chat`: a schema that costly on
// any value is refused when the tool loads, and one that gets there through a nested
// value stops at the validation budget; the call is refused as invalid_arguments naming
// the limit and the run goes on.
TEST_F(ChatCli, ExponentialToolSchemasAreRefusedFast) {
  std::string tools = ws_ + "-tools";
  fs::create_directories(tools);
  nlohmann::json chain = nlohmann::json::object(), via_property = nlohmann::json::object();
  for (int i = 0; i < 40; ++i) {
    std::string n = std::to_string(i), next = std::to_string(i + 1);
    chain["l" + n] = {{"allOf", {{{"$ref", "#/$defs/l" + next}}, {{"$ref", "#/$defs/l" + next}}}}};
    via_property["l" + n] = {{"allOf", {{{"$ref", "#/$defs/p" + n}}, {{"$ref", "#/$defs/p" + n}}}}};
    via_property["p" + n] = {{"properties", {{"x", {{"$ref", "#/$defs/l" + next}}}}}};
  }
  chain["l40"] = {{"type", "object"}};
  via_property["l40"] = {{"type", "integer"}};
  for (const auto& [name, defs] : {std::pair{"bomb", chain}, std::pair{"deep", via_property}}) {
    nlohmann::json m = {
        {"name", name},
        {"version", "1.0.0"},
        {"description", "test tool"},
        {"arguments", {{"type", "object"}, {"$defs", defs}, {"$ref", "#/$defs/l0"}}},
        {"capabilities", {{"filesystem", "read"}}}};
    std::ofstream(tools + "/" + name + ".json") << m.dump();
    CliResult pack = Cli("tools pack " + test::Guest("contract_probe") + " --manifest " + tools +
                         "/" + name + ".json -o " + tools + "/" + name + ".wasm");
    if (std::string(name) == "bomb") {
      // `tools pack` refuses it; beside a plain module it reaches the loader.
      EXPECT_EQ(pack.status, 1) << pack.err;
      EXPECT_NE(pack.err.find("would take more than 10000 subschema steps"), std::string::npos)
          << pack.err;
      fs::copy_file(test::Guest("contract_probe"), tools + "/bomb.wasm");
      std::ofstream(tools + "/bomb.manifest.json") << m.dump();
    } else {
      ASSERT_EQ(pack.status, 0) << pack.err;
    }
    ASSERT_EQ(unlink((tools + "/" + name + ".json").c_str()), 0);
  }
  nlohmann::json value = 1;
  for (int i = 0; i < 40; ++i) value = {{"x", value}};
  nlohmann::json script = {{"turns",
                            {{{"text", "Calling."},
                              {"tool_calls",
                               {{{"name", "deep"}, {"arguments", value}},
                                {{"name", "bomb"}, {"arguments", nlohmann::json::object()}}}}},
                             {{"text", "done"}}}}};
  std::ofstream(ws_ + "/bomb.json") << script.dump();
  CliResult run = test::CliWithin(60, "chat --workspace " + ws_ + " --tools-dir " + tools +
                                          " --script " + ws_ + "/bomb.json --approve all go");
  const std::string& out = run.out;
  EXPECT_EQ(run.status, 0) << out << run.err;
  EXPECT_LT(run.ms, 20000);
  EXPECT_NE(out.find("-> invalid_arguments"), std::string::npos) << out;
  EXPECT_NE(out.find("-- completed"), std::string::npos) << out;
  // The refused tool is not offered (`moat tools list` names why; see tools_test).
  EXPECT_NE(out.find("* bomb {}\n    -> unknown_tool"), std::string::npos) << out;
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  CliResult ex = Cli("sessions --workspace " + ws_ + " export " + id);
  ASSERT_EQ(ex.status, 0) << ex.err;
  EXPECT_NE(ex.out.find("steps (the limit)"), std::string::npos) << ex.out.substr(0, 3000);
  fs::remove_all(tools);
}

}  // namespace
}  // namespace moat
