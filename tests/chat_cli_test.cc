// `moat chat` and `moat audit verify` through the real binary: the built-in demo on a copy
// of examples/workspace, offline; approvals from the command line; the audit log it leaves,
// then edited; a hostile script and policy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace moat {
namespace {

using test::Cli;
using test::CliResult;

class ChatCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = test::TempDir("chat-ws");
    ASSERT_EQ(
        system(
            ("rm -rf " + ws_ + " && cp -r " MOAT_SOURCE_DIR "/examples/workspace " + ws_).c_str()),
        0);
  }
  void TearDown() override { EXPECT_EQ(system(("rm -rf " + ws_).c_str()), 0); }
  std::string ws_;
};

TEST_F(ChatCli, TheDemoRunsOfflineAndLeavesAVerifiableAuditLog) {
  CliResult r = Cli("chat --workspace " + ws_ + " --approve all 'Summarise the open work'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
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
  EXPECT_EQ(r.out, "ok: 18 records, chain and head intact\n");
  // A second session continues the same chain.
  ASSERT_EQ(system(("rm " + ws_ + "/report.md").c_str()), 0);
  EXPECT_EQ(Cli("chat --workspace " + ws_ + " --approve all 'again'").status, 0);
  EXPECT_EQ(Cli("audit verify " + log).out, "ok: 36 records, chain and head intact\n");
  // An edit names its record.
  ASSERT_EQ(system(("sed -i '5s/\"status\":\"ok\"/\"status\":\"fine\"/' " + log).c_str()), 0);
  r = Cli("audit verify " + log);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.substr(0, 17), "broken: record 5:") << r.out;
  // Chat refuses to extend a broken log.
  r = Cli("chat --workspace " + ws_ + " --approve all 'x'");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("broken at record 5"), std::string::npos) << r.err;
}

TEST_F(ChatCli, WithoutApprovalsAskToolsAreRefusedAndTheRunGoesOn) {
  CliResult r = Cli("chat --workspace " + ws_ + " --approve none --audit none 'Summarise'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("-> not_approved [ask]"), std::string::npos) << r.out;
  EXPECT_NE(access((ws_ + "/report.md").c_str(), F_OK), 0);
  EXPECT_NE(access((ws_ + "/.moat/audit.jsonl").c_str(), F_OK), 0);
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
  ASSERT_EQ(system(("rm " + ws_ + "/report.md").c_str()), 0);
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
  ASSERT_EQ(system(("rm -f " + ws_ + "/report.md").c_str()), 0);
  r = Cli("sessions --workspace " + ws_ + " resume " + id + " --approve all 'once more'");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_steps: the budget of 20 steps is used up | 4 steps"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(Cli("sessions --workspace " + ws_ + " show nosuchid").status, 2);
}

TEST_F(ChatCli, StandingApprovalsAreListedAndRevoked) {
  std::ofstream(ws_ + "/.moat/approvals.json")
      << R"({"approvals":[{"tool":"write_file","module_sha256":")" + std::string(64, 'b') +
             R"(","granted_at":"2026-01-01T00:00:00Z"}]})";
  CliResult r = Cli("approvals --workspace " + ws_ + " ls");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.substr(0, 10), "write_file") << r.out;
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " rm write_file").out, "revoked write_file\n");
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").out, "");
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " rm write_file").status, 1);
  std::ofstream(ws_ + "/.moat/approvals.json", std::ios::trunc) << "[";
  EXPECT_EQ(Cli("approvals --workspace " + ws_ + " ls").status, 2);
}

// Ctrl-C while a tool runs: the tool is stopped, the turn is answered, the run ends as
// cancelled (exit 130) within a moment, and the audit chain and the session stay valid.
TEST_F(ChatCli, CtrlCStopsARunningToolPromptly) {
  std::string tools = ws_ + "-tools";
  ASSERT_EQ(system(("mkdir -p " + tools).c_str()), 0);
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
  EXPECT_EQ(system(("rm -rf " + tools).c_str()), 0);
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

}  // namespace
}  // namespace moat
