// `moat chat` and `moat audit verify` through the real binary: the built-in demo on a copy
// of examples/workspace, offline; approvals from the command line; the audit log it leaves,
// then edited; a hostile script and policy.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

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

}  // namespace
}  // namespace moat
