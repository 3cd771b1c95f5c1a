// The agent loop (src/orchestration/agent/): scripted model turns driving the built-in
// tools in a temporary workspace. Budgets, the loop governor, policy decisions and
// approvals, bad tool calls from the model, result bounding, cancellation, the audit
// chain (edits, deletions, reordering, truncation, a kill -9 mid-append), and the hostile
// inputs of scripts and policy files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "execution/net/http_backend.h"
#include "orchestration/agent/agent.h"
#include "orchestration/agent/approvals.h"
#include "orchestration/agent/scripted.h"
#include "test_util.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

Engine& NetEngine() {
  static std::unique_ptr<Engine> e = [] {
    EngineOptions o;
    o.http_backend = net::MakeHttpBackend();
    auto r = Engine::Create(o);
    if (!r) abort();
    return std::move(*r);
  }();
  return *e;
}

tools::Registry& Tools() {
  static std::unique_ptr<tools::Registry> reg = [] {
    tools::RegistryOptions o;
    o.builtin_dirs = {MOAT_TOOLS_DIR};
    o.preload_builtins = false;
    auto r = tools::Registry::Create(&NetEngine(), std::move(o));
    if (!r) abort();
    return std::move(*r);
  }();
  return *reg;
}

std::unique_ptr<ScriptedProvider> Script(const json& turns, const std::string& model = "") {
  json j = {{"turns", turns}};
  if (!model.empty()) j["model"] = model;
  auto p = ScriptedProvider::Parse(j.dump());
  EXPECT_TRUE(p.ok()) << p.error().message;
  return std::move(*p);
}

json Call(const std::string& name, const json& args) {
  return {{"name", name}, {"arguments", args}};
}

// Answers "always" and counts how often it was asked.
struct AlwaysApprover : Approver {
  int asked = 0;
  Approval Ask(const ApprovalRequest&) override {
    ++asked;
    return Approval::kAlways;
  }
  std::string name() const override { return "test"; }
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = test::TempDir("agent-ws");
    test::PutFile(ws_ + "/a.txt", "alpha\nbeta\n");
    test::PutFile(ws_ + "/.env", "KEY=sk-not-real-12345678");
  }
  void TearDown() override { std::filesystem::remove_all(ws_); }

  RunSummary Run(Provider& p, const Policy& policy, Approver* approver = nullptr,
                 AuditLog* audit = nullptr, size_t max_result = 16384,
                 std::shared_ptr<CancelToken> cancel = nullptr) {
    FixedApprover allow(true);
    AgentConfig c;
    c.model = "scripted";
    c.workspace = ws_;
    c.max_result_bytes = max_result;
    Agent agent(p, Tools(), policy, approver ? *approver : allow, audit, c);
    events_.clear();
    history_.clear();
    return agent.Run(
        history_, "do the task", [this](const AgentEvent& e) { events_.push_back(e); }, cancel);
  }
  // The tool results the model saw, in order.
  std::vector<json> Results() const {
    std::vector<json> out;
    for (const Message& m : history_) {
      if (m.role == Message::Role::kTool) out.push_back(json::parse(m.content, nullptr, false));
    }
    return out;
  }
  std::vector<std::string> Statuses() const {
    std::vector<std::string> out;
    for (const AgentEvent& e : events_) {
      if (e.kind == AgentEvent::Kind::kToolEnd) out.push_back(e.tool + ":" + e.status);
    }
    return out;
  }
  int Warnings() const {
    int n = 0;
    for (const AgentEvent& e : events_) n += e.kind == AgentEvent::Kind::kWarning;
    return n;
  }

  std::string ws_;
  std::vector<AgentEvent> events_;
  std::vector<Message> history_;
};

TEST_F(AgentTest, TheDemoScriptRunsAndEveryForbiddenThingIsStopped) {
  if (!Tools().Find("js")) GTEST_SKIP() << "the js tool is not built in this configuration";
  // The demo's own workspace and policy.
  std::string demo = test::TempDir("agent-demo");
  std::filesystem::remove_all(demo);
  std::filesystem::copy(MOAT_SOURCE_DIR "/examples/workspace", demo,
                        std::filesystem::copy_options::recursive);
  auto policy = Policy::Load(demo + "/.moat/policy.json");
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  auto p = ScriptedProvider::Demo();
  FixedApprover allow(true);
  AgentConfig c;
  c.model = "scripted";
  c.workspace = demo;
  Agent agent(*p, Tools(), *policy, allow, nullptr, c);
  std::vector<Message> history;
  std::vector<std::string> statuses;
  RunSummary s = agent.Run(
      history, "summarise",
      [&](const AgentEvent& e) {
        if (e.kind == AgentEvent::Kind::kToolEnd) statuses.push_back(e.tool + ":" + e.status);
      },
      nullptr);
  EXPECT_EQ(s.stop, StopKind::kCompleted) << s.message;
  EXPECT_EQ(statuses,
            (std::vector<std::string>{"list_dir:ok", "read_file:ok", "grep:ok",
                                      "read_file:not_found", "http_fetch:network_denied",
                                      "js:fuel_exhausted", "js:fuel_exhausted", "write_file:ok"}));
  EXPECT_NE(test::Slurp(demo + "/report.md").find("retry failed writes"), std::string::npos);
  // Nothing the model saw holds the .env values.
  for (const Message& m : history) EXPECT_EQ(m.content.find("sk-demo-0000"), std::string::npos);
  std::filesystem::remove_all(demo);
}

TEST_F(AgentTest, ToolFailuresAreResultsAndBadCallsDoNotStopTheRun) {
  auto p = Script({{{"tool_calls",
                     {Call("read_file", {{"path", "a.txt"}}),
                      Call("no_such_tool", json::object()),
                      {{"name", "read_file"}, {"arguments", "{\"path\": \"a.txt\""}},  // cut JSON
                      Call("read_file", {{"path", 42}}),
                      Call("read_file", {{"path", "missing"}})}}},
                   {{"text", "done"}}});
  RunSummary s = Run(*p, Policy{});
  EXPECT_EQ(s.stop, StopKind::kCompleted) << s.message;
  // What the model sees comes in the turn's order (refusals end before the calls that run).
  std::vector<std::string> seen;
  for (const json& r : Results()) {
    seen.push_back(r["ok"] == true ? std::string("ok") : r["error"]["code"].get<std::string>());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"ok", "unknown_tool", "invalid_arguments",
                                            "invalid_arguments", "not_found"}));
  std::vector<std::string> st = Statuses();
  std::sort(st.begin(), st.end());
  EXPECT_EQ(st, (std::vector<std::string>{
                    "no_such_tool:unknown_tool", "read_file:invalid_arguments",
                    "read_file:invalid_arguments", "read_file:not_found", "read_file:ok"}));
  auto r = Results();
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0]["content"]["content"], "alpha\nbeta\n");
  EXPECT_NE(r[3]["error"]["message"].get<std::string>().find("/path"), std::string::npos);
  EXPECT_EQ(s.tool_calls, 2u);  // only calls that reached the sandbox count
}

TEST_F(AgentTest, PolicyDecisionsAndApprovals) {
  Policy policy;
  policy.tools["delete"].decision = Decision::kDeny;
  AgentConfig c;
  FixedApprover deny(false);
  auto probe_script = Script({{{"text", "x"}}});
  Agent probe(*probe_script, Tools(), policy, deny, nullptr, c);
  for (const ToolSpec& t : probe.OfferedTools()) EXPECT_NE(t.name, "delete");  // never offered
  auto p = Script({{{"tool_calls",
                     {Call("delete", {{"path", "a.txt"}}),
                      Call("write_file", {{"path", "b.txt"}, {"content", "x"}}),
                      Call("read_file", {{"path", "a.txt"}})}}},
                   {{"text", "done"}}});
  RunSummary s = Run(*p, policy, &deny);
  EXPECT_EQ(Statuses(),
            (std::vector<std::string>{"delete:denied", "write_file:not_approved", "read_file:ok"}));
  EXPECT_EQ(access((ws_ + "/b.txt").c_str(), F_OK), -1);
  EXPECT_EQ(access((ws_ + "/a.txt").c_str(), F_OK), 0);

  // "Always" is asked once per tool in a session.
  AlwaysApprover counting;
  p = Script({{{"tool_calls", {Call("write_file", {{"path", "b.txt"}, {"content", "1"}})}}},
              {{"tool_calls", {Call("write_file", {{"path", "c.txt"}, {"content", "2"}})}}},
              {{"text", "done"}}});
  s = Run(*p, Policy{}, &counting);
  EXPECT_EQ(s.stop, StopKind::kCompleted);
  EXPECT_EQ(counting.asked, 1);
  EXPECT_EQ(test::Slurp(ws_ + "/c.txt"), "2");
}

TEST_F(AgentTest, AlwaysIsRememberedPerModuleAndWorkspaceAndRevocable) {
  AlwaysApprover counting;
  std::string file = ws_ + "-state/approvals.json";
  auto run = [&](const std::string& workspace) {
    auto p = Script({{{"tool_calls", {Call("write_file", {{"path", "b.txt"}, {"content", "1"}})}}},
                     {{"text", "done"}}});
    AgentConfig c;
    c.model = "scripted";
    c.workspace = workspace;
    c.approvals_file = file;
    Policy policy;  // the agent keeps a reference: it must outlive the run
    Agent agent(*p, Tools(), policy, counting, nullptr, c);
    std::vector<Message> h;
    return agent.Run(h, "go", nullptr, nullptr);
  };
  EXPECT_EQ(run(ws_).stop, StopKind::kCompleted);
  EXPECT_EQ(counting.asked, 1);
  EXPECT_EQ(run(ws_).stop, StopKind::kCompleted);  // a new session: remembered
  EXPECT_EQ(counting.asked, 1);
  auto store = ApprovalStore::Load(file, ws_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_EQ(store->all().size(), 1u);
  EXPECT_EQ(store->all()[0].tool, "write_file");
  EXPECT_EQ(store->all()[0].tool_digest, Tools().Find("write_file")->digest);
  // Kept in the given store, keyed by workspace: nothing in the workspace itself, and
  // another workspace is asked about.
  EXPECT_NE(access((ws_ + "/.moat/approvals.json").c_str(), F_OK), 0);
  std::string other_ws = ws_ + "-other";
  std::filesystem::create_directories(other_ws);
  EXPECT_EQ(ApprovalStore::Load(file, other_ws)->all().size(), 0u);
  run(other_ws);
  EXPECT_EQ(counting.asked, 2);
  EXPECT_EQ(ApprovalStore::Load(file, ws_)->all().size(), 1u);
  // Bound to the module: another digest is asked about again.
  ASSERT_TRUE(ApprovalStore::Grant(file, ws_, "write_file", std::string(64, 'a')).ok());
  run(ws_);
  EXPECT_EQ(counting.asked, 3);
  // Revoked: asked again.
  auto revoked = ApprovalStore::Revoke(file, ws_, "write_file");
  ASSERT_TRUE(revoked.ok());
  EXPECT_TRUE(*revoked);
  EXPECT_FALSE(*ApprovalStore::Revoke(file, ws_, "write_file"));
  run(ws_);
  EXPECT_EQ(counting.asked, 4);
  // A malformed file grants nothing.
  std::ofstream(file, std::ios::trunc) << "{\"workspaces\": 7}";
  EXPECT_FALSE(ApprovalStore::Load(file, ws_).ok());
  run(ws_);
  EXPECT_EQ(counting.asked, 5);
  std::filesystem::remove_all(other_ws);
  std::filesystem::remove_all(ws_ + "-state");
}

// Processes that answer "always" at the same moment keep every answer (each change is
// read-modify-write under the store's lock).
TEST(ApprovalStoreTest, ConcurrentGrantsAreAllKept) {
  std::string dir = test::TempDir("approvals-race");
  std::string file = dir + "/approvals.json";
  constexpr int kWriters = 8, kEach = 10;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kEach; ++i) {
        std::string tool = "t" + std::to_string(w) + "_" + std::to_string(i);
        if (!ApprovalStore::Grant(file, "/ws", tool, std::string(64, 'c')).ok()) _exit(3);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto store = ApprovalStore::Load(file, "/ws");
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(store->all().size(), static_cast<size_t>(kWriters * kEach));
  std::filesystem::remove_all(dir);
}

TEST_F(AgentTest, EachBudgetEndsTheRunWithItsReason) {
  json loop = json::array();
  for (int i = 0; i < 8; ++i) {
    loop.push_back(
        {{"tool_calls", {Call("read_file", {{"path", "a.txt"}, {"limit_lines", i + 1}})}},
         {"usage", {{"input_tokens", 1000}, {"output_tokens", 100}}}});
  }
  Policy p;
  p.budgets.steps = 3;
  RunSummary s = Run(*Script(loop), p);
  EXPECT_EQ(s.stop, StopKind::kSteps);
  EXPECT_EQ(s.steps, 3u);

  p = Policy{};
  p.budgets.tool_calls = 2;
  s = Run(*Script(loop), p);
  EXPECT_EQ(s.stop, StopKind::kToolCalls);
  EXPECT_EQ(s.tool_calls, 2u);

  p = Policy{};
  p.budgets.input_tokens = 2500;
  s = Run(*Script(loop), p);
  EXPECT_EQ(s.stop, StopKind::kInputTokens);
  EXPECT_EQ(s.input_tokens, 3000u);

  p = Policy{};
  p.prices["priced"] = {1000.0, 0.0};  // $1 per 1000 input tokens
  p.budgets.cost_usd = 2.5;
  auto priced = Script(loop, "priced");
  AgentConfig c;
  c.model = "priced";
  c.workspace = ws_;
  FixedApprover allow(true);
  Agent agent(*priced, Tools(), p, allow, nullptr, c);
  std::vector<Message> h;
  s = agent.Run(h, "go", nullptr, nullptr);
  EXPECT_EQ(s.stop, StopKind::kCost) << s.message;
  EXPECT_NEAR(s.cost_usd, 3.0, 1e-9);

  // Fuel: the session's budget also caps each call, so a spinning script stops early.
  if (!Tools().Find("js")) GTEST_SKIP() << "the js tool is not built in this configuration";
  p = Policy{};
  p.budgets.fuel = 50'000'000;
  auto spin = Script({{{"tool_calls", {Call("js", {{"code", "while (true) {}"}})}}},
                      {{"tool_calls", {Call("js", {{"code", "while (true) {}"}})}}},
                      {{"text", "done"}}});
  s = Run(*spin, p);
  EXPECT_EQ(s.stop, StopKind::kFuel) << s.message;
  EXPECT_EQ(Statuses(), std::vector<std::string>{"js:fuel_exhausted"});
  EXPECT_LE(s.fuel, 50'000'000u + 1'000'000u);

  // Wall time: a call is cut at what is left of the session's time.
  p = Policy{};
  p.budgets.wall_time_us = 300'000;
  p.tools["js"].limits.fuel = Limits::kMaxFuel;
  auto t0 = std::chrono::steady_clock::now();
  s = Run(
      *Script({{{"tool_calls", {Call("js", {{"code", "while (true) {}"}})}}}, {{"text", "done"}}}),
      p);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s.stop, StopKind::kWallTime) << s.message;
  EXPECT_EQ(Statuses(), std::vector<std::string>{"js:timeout"});
  EXPECT_LT(secs, 3.0);
}

// A provider that counts its calls and what it was asked, around a script.
struct CountingProvider : Provider {
  explicit CountingProvider(std::unique_ptr<ScriptedProvider> s) : script(std::move(s)) {}
  std::string name() const override { return "counting"; }
  Result<ModelTurn> Complete(const ModelRequest& r,
                             const std::function<void(std::string_view)>& on_text,
                             const CancelToken* cancel) override {
    ++calls;
    last = r;
    return script->Complete(r, on_text, cancel);
  }
  std::unique_ptr<ScriptedProvider> script;
  int calls = 0;
  ModelRequest last;
};

// Every budget is checked before each model call and after each turn, tool calls or not;
// the call is told what is left; the use is reported after every step; sums saturate.
TEST_F(AgentTest, BudgetsHoldBeforeAndAfterEveryModelCall) {
  json turns = {{{"text", "costly"}, {"usage", {{"input_tokens", 3000}, {"output_tokens", 7}}}},
                {{"text", "again"}}};
  CountingProvider counting(Script(turns));
  Policy p;
  p.budgets.input_tokens = 2500;
  p.budgets.output_tokens = 1000;
  p.budgets.wall_time_us = 60'000'000;
  FixedApprover allow(true);
  AgentConfig c;
  c.model = "scripted";
  c.workspace = ws_;
  std::vector<RunSummary> reported;
  c.on_usage = [&](const RunSummary& r) { reported.push_back(r); };
  Agent agent(counting, Tools(), p, allow, nullptr, c);
  std::vector<Message> h;
  RunSummary s = agent.Run(h, "go", nullptr, nullptr);
  EXPECT_EQ(s.stop, StopKind::kInputTokens) << s.message;  // a text-only turn, not "completed"
  EXPECT_EQ(counting.calls, 1);
  EXPECT_EQ(counting.last.max_output_tokens, 1000u);
  EXPECT_GT(counting.last.timeout_us, 0u);
  EXPECT_LE(counting.last.timeout_us, 60'000'000u);
  ASSERT_FALSE(reported.empty());
  EXPECT_EQ(reported.back().input_tokens, 3000u);
  EXPECT_EQ(reported.back().steps, 1u);
  // The next prompt is refused before the model is called.
  s = agent.Run(h, "more", nullptr, nullptr);
  EXPECT_EQ(s.stop, StopKind::kInputTokens) << s.message;
  EXPECT_EQ(s.steps, 0u);
  EXPECT_EQ(counting.calls, 1);
  // Earlier use near the largest count saturates instead of wrapping to a fresh budget.
  CountingProvider fresh(Script(turns));
  Policy defaults;  // the agent keeps a reference: it must outlive the agent
  Agent resumed(fresh, Tools(), defaults, allow, nullptr, c);
  RunSummary huge;
  huge.output_tokens = UINT64_MAX - 1;
  resumed.CountEarlierUse(huge);
  resumed.CountEarlierUse(huge);
  EXPECT_EQ(resumed.SessionUse().output_tokens, UINT64_MAX);
  std::vector<Message> h2;
  s = resumed.Run(h2, "go", nullptr, nullptr);
  EXPECT_EQ(s.stop, StopKind::kOutputTokens) << s.message;
  EXPECT_EQ(fresh.calls, 0);
}

// A model the policy and the built-in table do not price counts at the default, with a
// warning; the offline scripted model is free.
TEST(AgentInputs, AnUnknownModelIsPricedAtTheConservativeDefault) {
  Policy p;
  EXPECT_FALSE(p.KnownPrice("some-new-model").has_value());
  ASSERT_TRUE(p.KnownPrice("scripted").has_value());
  EXPECT_EQ(p.KnownPrice("scripted")->input_per_mtok, 0.0);
  EXPECT_GT(kUnknownModelPrice.input_per_mtok, 0.0);
  EXPECT_GT(kUnknownModelPrice.output_per_mtok, 0.0);
  p.prices["some-new-model"] = {1, 2};
  EXPECT_EQ(p.KnownPrice("some-new-model")->output_per_mtok, 2.0);
}

TEST_F(AgentTest, TheGovernorWarnsThenStopsRepeatsAndStalls) {
  json same = json::array();
  for (int i = 0; i < 6; ++i)
    same.push_back({{"tool_calls", {Call("read_file", {{"path", "a.txt"}})}}});
  Policy p;
  p.governor.repeat_warn = 2;
  p.governor.repeat_stop = 4;
  RunSummary s = Run(*Script(same), p);
  EXPECT_EQ(s.stop, StopKind::kGovernor);
  EXPECT_EQ(s.tool_calls, 3u);
  EXPECT_EQ(Warnings(), 1);
  // The last call of the stopped turn still has a result.
  EXPECT_EQ(Results().back()["error"]["code"], "not_run");

  json stalled = json::array();
  for (int i = 0; i < 10; ++i) {
    stalled.push_back(
        {{"tool_calls", {Call("read_file", {{"path", "missing" + std::to_string(i)}})}}});
  }
  p = Policy{};
  p.governor.no_progress_warn = 3;
  p.governor.no_progress_stop = 5;
  s = Run(*Script(stalled), p);
  EXPECT_EQ(s.stop, StopKind::kGovernor);
  EXPECT_EQ(s.steps, 5u);
  EXPECT_EQ(Warnings(), 1);
}

TEST_F(AgentTest, ProviderFailureCancellationAndBoundedResults) {
  // The script runs out while the model still calls tools: a provider error, not a crash.
  RunSummary s =
      Run(*Script({{{"tool_calls", {Call("read_file", {{"path", "a.txt"}})}}}}), Policy{});
  EXPECT_EQ(s.stop, StopKind::kProviderError);
  EXPECT_NE(s.message.find("no turn 2"), std::string::npos) << s.message;

  auto cancel = std::make_shared<CancelToken>();
  cancel->Cancel();
  s = Run(*Script({{{"text", "hello"}}}), Policy{}, nullptr, nullptr, 16384, cancel);
  EXPECT_EQ(s.stop, StopKind::kCancelled);

  std::ofstream(ws_ + "/big.txt") << std::string(50000, 'z');
  s = Run(*Script({{{"tool_calls", {Call("read_file", {{"path", "big.txt"}})}}}, {{"text", "ok"}}}),
          Policy{}, nullptr, nullptr, 1000);
  ASSERT_EQ(s.stop, StopKind::kCompleted);
  std::string seen;
  for (const Message& m : history_) {
    if (m.role == Message::Role::kTool) seen = m.content;
  }
  EXPECT_LT(seen.size(), 1100u);
  EXPECT_NE(seen.find("[moat: result truncated: 1000 of "), std::string::npos) << seen;
}

// Budgets hold for the session: a second prompt goes on from what the first used, and a
// resumed session from what its recorded runs used.
TEST_F(AgentTest, BudgetsHoldForTheWholeSession) {
  Policy policy;
  policy.budgets.steps = 3;
  auto p = Script({{{"tool_calls", {Call("read_file", {{"path", "a.txt"}})}}},
                   {{"text", "first answer"}},
                   {{"tool_calls", {Call("list_dir", {{"path", "."}})}}},
                   {{"text", "never reached"}}});
  FixedApprover allow(true);
  AgentConfig c;
  c.model = "scripted";
  c.workspace = ws_;
  Agent agent(*p, Tools(), policy, allow, nullptr, c);
  std::vector<Message> h;
  RunSummary first = agent.Run(h, "one", nullptr, nullptr);
  EXPECT_EQ(first.stop, StopKind::kCompleted) << first.message;
  EXPECT_EQ(first.steps, 2u);
  RunSummary second = agent.Run(h, "two", nullptr, nullptr);
  EXPECT_EQ(second.stop, StopKind::kSteps) << second.message;
  EXPECT_EQ(second.steps, 1u);  // this run's own numbers
  EXPECT_EQ(second.tool_calls, 1u);
  EXPECT_EQ(agent.SessionUse().steps, 3u);
  EXPECT_EQ(agent.SessionUse().tool_calls, 2u);
  EXPECT_EQ(agent.SessionUse().input_tokens, first.input_tokens + second.input_tokens);

  // A resumed session: its earlier use counts from the start.
  Policy costly;
  costly.budgets.cost_usd = 1.0;
  costly.prices["scripted"] = {1000, 1000};
  auto q = Script({{{"tool_calls", {Call("read_file", {{"path", "a.txt"}})}}}, {{"text", "hi"}}});
  Agent resumed(*q, Tools(), costly, allow, nullptr, c);
  RunSummary earlier;
  earlier.steps = 1;
  earlier.cost_usd = 0.5;
  resumed.CountEarlierUse(earlier);
  resumed.CountEarlierUse(earlier);  // two earlier runs: $1.00 spent
  std::vector<Message> h2;
  RunSummary s = resumed.Run(h2, "go on", nullptr, nullptr);
  // The budget, already used up, stops the run before the model is called at all.
  EXPECT_EQ(s.stop, StopKind::kCost) << s.message;
  EXPECT_EQ(s.steps, 0u);
  EXPECT_EQ(s.tool_calls, 0u);
  EXPECT_EQ(resumed.SessionUse().steps, 2u);
  EXPECT_DOUBLE_EQ(resumed.SessionUse().cost_usd, 1.0);
  Policy few;
  few.budgets.steps = 2;
  auto r = Script({{{"text", "hello"}}});
  Agent over(*r, Tools(), few, allow, nullptr, c);
  over.CountEarlierUse(earlier);
  over.CountEarlierUse(earlier);
  s = over.Run(h2, "more", nullptr, nullptr);
  EXPECT_EQ(s.stop, StopKind::kSteps);
  EXPECT_EQ(s.steps, 0u);
}

TEST_F(AgentTest, EveryDecisionIsAnAuditRecordOnAValidChain) {
  std::string log = ws_ + "-audit.jsonl";
  auto audit = AuditLog::Open(log);
  ASSERT_TRUE(audit.ok()) << audit.error().message;
  RunSummary s =
      Run(*Script({{{"tool_calls", {Call("read_file", {{"path", "a.txt"}})}}}, {{"text", "done"}}}),
          Policy{}, nullptr, audit->get());
  EXPECT_EQ(s.stop, StopKind::kCompleted);
  std::vector<std::string> types;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    types.push_back(j["type"]);
    if (j["type"] == "tool_call") {
      EXPECT_EQ(j["decision"], "allow");
      EXPECT_EQ(j["status"], "ok");
      EXPECT_GT(j["fuel"].get<uint64_t>(), 0u);
      EXPECT_EQ(j["arguments_sha256"].get<std::string>().size(), 64u);
    }
  }
  // A call's "tool_start" record is written before it runs, its "tool_call" after.
  EXPECT_EQ(types, (std::vector<std::string>{"run_start", "model_call", "tool_start", "tool_call",
                                             "model_call", "run_end"}));
  EXPECT_TRUE(VerifyAudit(log).ok) << VerifyAudit(log).why;
  unlink(log.c_str());
  unlink((log + ".head").c_str());
}

// --- Calls of one turn at once -------------------------------------------------------

// The registry's test tool (guests/tools_test/contract_probe.c) packed twice: "probe" reads
// the workspace, "probe_w" may write it.
class ParallelTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    ext_ = ws_ + "-tools";
    std::filesystem::create_directories(ext_);
    for (const char* fs : {"read", "write"}) {
      json m = {{"name", std::string(fs) == "read" ? "probe" : "probe_w"},
                {"version", "1.0.0"},
                {"description", "test tool"},
                {"arguments",
                 {{"type", "object"},
                  {"properties", {{"mode", {{"type", "string"}}}, {"n", {{"type", "integer"}}}}}}},
                {"capabilities", {{"filesystem", fs}}},
                {"limits", {{"fuel", "1e8"}, {"timeout", "20s"}}}};
      auto packed = tools::SetCustomSection(test::GuestBytes("contract_probe"),
                                            tools::kManifestSection, m.dump());
      ASSERT_TRUE(packed.ok()) << packed.error().message;
      std::ofstream(ext_ + "/" + m["name"].get<std::string>() + ".wasm", std::ios::binary)
          .write(reinterpret_cast<const char*>(packed->data()),
                 static_cast<std::streamsize>(packed->size()));
    }
    tools::RegistryOptions o;
    o.extension_dirs = {ext_};
    auto r = tools::Registry::Create(&NetEngine(), std::move(o));
    ASSERT_TRUE(r.ok()) << r.error().message;
    reg_ = std::move(*r);
  }
  void TearDown() override {
    reg_.reset();
    std::filesystem::remove_all(ext_);
    AgentTest::TearDown();
  }
  RunSummary RunProbe(Provider& p, const Policy& policy,
                      std::shared_ptr<CancelToken> cancel = nullptr) {
    FixedApprover allow(true);
    AgentConfig c;
    c.model = "scripted";
    c.workspace = ws_;
    Agent agent(p, *reg_, policy, allow, nullptr, c);
    events_.clear();
    history_.clear();
    return agent.Run(
        history_, "go", [this](const AgentEvent& e) { events_.push_back(e); }, cancel);
  }
  static json Sleep(int ms) { return Call("probe", {{"mode", "sleep"}, {"n", ms}}); }
  static uint64_t NowMs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
  }
  std::string ext_;
  std::unique_ptr<tools::Registry> reg_;
};

TEST_F(ParallelTest, ATurnsCallsRunAtOnceAndAnswerInTheTurnsOrder) {
  // 600 + 200 + 300 + 400 ms of sleeping: 1.5 s one after another, 0.6 s at once.
  json turns = {{{"tool_calls", {Sleep(600), Sleep(200), Sleep(300), Sleep(400)}}},
                {{"text", "done"}}};
  uint64_t t0 = NowMs();
  RunSummary s = RunProbe(*Script(turns), Policy{});
  uint64_t took = NowMs() - t0;
  ASSERT_EQ(s.stop, StopKind::kCompleted) << s.message;
  EXPECT_EQ(s.tool_calls, 4u);
  EXPECT_GE(took, 600u);
  EXPECT_LT(took, 1300u) << "the calls did not overlap";
  std::vector<std::string> seen;
  for (const json& r : Results()) seen.push_back(r["content"].get<std::string>());
  EXPECT_EQ(seen, (std::vector<std::string>{"slept 600 ms", "slept 200 ms", "slept 300 ms",
                                            "slept 400 ms"}));
  // Every start is paired with its end by the call id.
  std::set<std::string> started, ended;
  for (const AgentEvent& e : events_) {
    if (e.kind == AgentEvent::Kind::kToolStart) started.insert(e.call_id);
    if (e.kind == AgentEvent::Kind::kToolEnd) ended.insert(e.call_id);
  }
  EXPECT_EQ(started.size(), 4u);
  EXPECT_EQ(started, ended);

  // parallel_tools: 1 runs them one after another; 2 in two rounds.
  Policy one;
  one.parallel_tools = 1;
  t0 = NowMs();
  s = RunProbe(*Script(turns), one);
  took = NowMs() - t0;
  ASSERT_EQ(s.stop, StopKind::kCompleted) << s.message;
  EXPECT_GE(took, 1500u);
  Policy two;
  two.parallel_tools = 2;
  t0 = NowMs();
  s = RunProbe(*Script(turns), two);
  took = NowMs() - t0;
  EXPECT_GE(took, 1000u);  // 600 (with 200), then 400 (with 300)
  EXPECT_LT(took, 1450u);
}

TEST_F(ParallelTest, AToolThatMayWriteRunsAloneInItsPlace) {
  // The reads before the write run first, the write alone, and the read after it sees
  // what it made.
  json turns = {
      {{"tool_calls",
        {Sleep(300), Call("probe", {{"mode", "ls"}}), Call("probe_w", {{"mode", "write"}}),
         Call("probe", {{"mode", "ls"}, {"n", 1}})}}},
      {{"text", "done"}}};
  RunSummary s = RunProbe(*Script(turns), Policy{});
  ASSERT_EQ(s.stop, StopKind::kCompleted) << s.message;
  std::vector<json> r = Results();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[2]["content"], "written");
  auto has_made = [](const json& ls) {
    for (const json& n : ls["content"])
      if (n == "made.txt") return true;
    return false;
  };
  EXPECT_FALSE(has_made(r[1])) << r[1];
  EXPECT_TRUE(has_made(r[3])) << r[3];
  // The write did not start before the reads ahead of it had ended.
  std::vector<std::string> order;
  for (const AgentEvent& e : events_) {
    if (e.kind == AgentEvent::Kind::kToolStart || e.kind == AgentEvent::Kind::kToolEnd) {
      order.push_back(std::string(e.kind == AgentEvent::Kind::kToolStart ? "start " : "end ") +
                      e.tool);
    }
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{"start probe", "start probe", "end probe", "end probe",
                                      "start probe_w", "end probe_w", "start probe", "end probe"}));
}

TEST_F(ParallelTest, CallsAtOnceShareTheFuelLeftAndStopOnCancel) {
  // Two endless loops at once with 1.5e8 fuel left: each gets half, so together they stay
  // within the budget.
  Policy p;
  p.budgets.fuel = 150'000'000;
  json loops = {
      {{"tool_calls",
        {Call("probe", {{"mode", "loop"}}), Call("probe", {{"mode", "loop"}, {"n", 2}})}}},
      {{"text", "done"}}};
  RunSummary s = RunProbe(*Script(loops), p);
  // (A run that exhausts its fuel may overshoot by the few units of its last charge.)
  EXPECT_LE(s.fuel, p.budgets.fuel + 64);
  EXPECT_GE(s.fuel, p.budgets.fuel - 2);
  for (const json& r : Results()) EXPECT_EQ(r["error"]["code"], "fuel_exhausted") << r;

  // A cancel stops calls that are sleeping at once, promptly.
  auto cancel = std::make_shared<CancelToken>();
  std::thread canceller([cancel] {
    usleep(300'000);
    cancel->Cancel();
  });
  uint64_t t0 = NowMs();
  s = RunProbe(
      *Script({{{"tool_calls", {Sleep(10000), Sleep(10001), Sleep(10002)}}}, {{"text", "never"}}}),
      Policy{}, cancel);
  uint64_t took = NowMs() - t0;
  canceller.join();
  EXPECT_EQ(s.stop, StopKind::kCancelled);
  EXPECT_LT(took, 2000u);
  ASSERT_EQ(Results().size(), 3u);
  for (const json& r : Results()) EXPECT_EQ(r["error"]["code"], "cancelled") << r;
}

// --- The audit log on its own -------------------------------------------------------

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::TempDir("audit");
    std::filesystem::create_directories(dir_);
    path_ = dir_ + "/audit.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(int n) {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    for (int i = 0; i < n; ++i) ASSERT_TRUE((*log)->Append({{"type", "t"}, {"i", i}}).ok());
  }
  std::vector<std::string> Lines() {
    std::vector<std::string> out;
    std::ifstream in(path_);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void Put(const std::vector<std::string>& lines) {
    std::ofstream out(path_, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
  }
  std::string dir_, path_;
};

// Any string over 4 KiB, at any depth, is cut and named in "cut" with its size and hash, so
// the record fits; one that still would not fit is refused whole, and nothing is written.
TEST_F(AuditTest, LongFieldsAreCutAndARecordThatCannotFitIsRefused) {
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok()) << log.error().message;
  std::string subject = "\xC3\xA9" + std::string(2 << 20, 's');  // a character at the cut
  ASSERT_TRUE((*log)
                  ->Append({{"type", "t"},
                            {"call_id", std::string(kMaxAuditFieldBytes - 1, 'x') + "\xC3\xA9"},
                            {"denials", {{{"subject", subject}}}}})
                  .ok());
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_LE(lines[0].size() + 1, kMaxAuditRecordBytes);
  json rec = json::parse(lines[0]);
  EXPECT_EQ(rec["call_id"].get<std::string>().size(), kMaxAuditFieldBytes - 1);  // no half é
  EXPECT_EQ(rec["denials"][0]["subject"].get<std::string>().size(), kMaxAuditFieldBytes);
  EXPECT_EQ(rec["cut"]["denials/0/subject"]["bytes"], subject.size());
  EXPECT_EQ(rec["cut"]["call_id"]["bytes"], kMaxAuditFieldBytes + 1);
  EXPECT_EQ(rec["cut"]["denials/0/subject"]["sha256"].get<std::string>().size(), 64u);
  json many = {{"type", "t"}};
  for (int i = 0; i < 300; ++i) many["f" + std::to_string(i)] = std::string(5000, 'm');
  auto refused = (*log)->Append(many);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLimit);
  EXPECT_EQ(Lines().size(), 1u);
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.records, 1u);
}

// A line nested deeper than any record is refused before it is parsed and hashed.
TEST_F(AuditTest, ADeeplyNestedLineIsNamedNotFollowed) {
  Write(1);
  auto lines = Lines();
  lines.push_back("{\"seq\":2,\"x\":" + std::string(200000, '[') + std::string(200000, ']') + "}");
  Put(lines);
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad, 2u);
  EXPECT_NE(v.why.find("nested deeper"), std::string::npos) << v.why;
  auto log = AuditLog::Open(path_);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.error().message.find("broken at record 2"), std::string::npos);
}

TEST_F(AuditTest, EditsDeletionsReorderingAndTruncationAreNamed) {
  Write(5);
  AuditVerdict v = VerifyAudit(path_);
  ASSERT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.records, 5u);
  auto lines = Lines();

  auto edited = lines;
  edited[2].replace(edited[2].find("\"i\":2"), 5, "\"i\":9");
  Put(edited);
  v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad, 3u);
  EXPECT_NE(v.why.find("edited"), std::string::npos) << v.why;

  auto deleted = lines;
  deleted.erase(deleted.begin() + 1);
  Put(deleted);
  v = VerifyAudit(path_);
  EXPECT_EQ(v.first_bad, 2u) << v.why;

  auto swapped = lines;
  std::swap(swapped[3], swapped[4]);
  Put(swapped);
  EXPECT_EQ(VerifyAudit(path_).first_bad, 4u);

  auto cut = lines;
  cut.pop_back();
  cut.pop_back();
  Put(cut);
  v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.why.find("removed from the end"), std::string::npos) << v.why;

  // Opening a broken log is refused rather than extended.
  Put(edited);
  EXPECT_FALSE(AuditLog::Open(path_).ok());
  Put({"garbage"});
  EXPECT_FALSE(VerifyAudit(path_).ok);
}

TEST_F(AuditTest, ATornLastWriteIsDroppedAndTheChainGoesOn) {
  Write(3);
  { std::ofstream(path_, std::ios::app) << "{\"type\":\"t\",\"seq\":4,\"pre"; }
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_FALSE(v.note.empty());
  Write(2);
  v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.records, 5u);
  EXPECT_TRUE(v.note.empty());
}

TEST_F(AuditTest, AKillMidAppendLeavesAValidChain) {
  for (int round = 0; round < 5; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::Open(path_);
      if (!log) _exit(3);
      for (int i = 0;; ++i) {
        if (!(*log)->Append({{"type", "t"}, {"payload", std::string(200 + i % 3000, 'p')}}))
          _exit(4);
      }
    }
    // Once the writer has appended something (a loaded machine may take a while to get
    // there), let it run a little longer and kill it mid-stride.
    for (int waited = 0; waited < 500 && test::Slurp(path_).size() < 2; ++waited) usleep(10'000);
    usleep(5'000 + round * 7'000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer failed on its own: " << status;
    AuditVerdict v = VerifyAudit(path_);
    ASSERT_TRUE(v.ok) << "round " << round << ": " << v.why;
    EXPECT_GT(v.records, 0u);
  }
}

// Several processes append to one log at once (two `moat chat` in one workspace): every
// record lands in one chain, and the head names its end.
TEST_F(AuditTest, ConcurrentWritersKeepOneChain) {
  Write(1);
  constexpr int kWriters = 5, kEach = 60;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::Open(path_);
      if (!log) _exit(3);
      for (int i = 0; i < kEach; ++i) {
        if (!(*log)->Append({{"type", "t"}, {"writer", w}, {"i", i}})) _exit(4);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.records, 1u + kWriters * kEach);
  // And a log that another process extended goes on from its real end.
  Write(1);
  EXPECT_EQ(VerifyAudit(path_).records, 2u + kWriters * kEach);
}

// --- Group commit ---------------------------------------------------------------------

// Line `n` (0: the end, 1: the synced line) of a log's head file, as JSON.
json HeadLine(const std::string& path, size_t n) {
  std::istringstream in(test::Slurp(path + ".head"));
  std::string line;
  for (size_t i = 0; i <= n; ++i) std::getline(in, line);
  return json::parse(line);
}

// Rewrites the head's end line as if written before the machine last restarted.
void HeadFromAnotherBoot(const std::string& path) {
  json end = HeadLine(path, 0);
  end["boot"] = "00000000-0000-0000-0000-000000000000";
  std::string text = end.dump();
  text.resize(255, ' ');
  std::fstream f(path + ".head", std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(0);
  f << text << "\n";
}

std::vector<json> Records(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
  return out;
}

// Hostile first: a process killed the moment its last Append returned, long before its
// sync was due, has lost nothing (the records are written, only not yet synced), and the
// head's end line still names the last one, so a cut is detected on this boot.
TEST_F(AuditTest, AKillRightAfterAppendReturnedLosesNothing) {
  constexpr int kRecords = 300;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    AuditOptions o;
    o.group_window_us = 60'000'000;  // no sync falls due before the kill
    auto log = AuditLog::Open(path_, o);
    if (!log) _exit(3);
    for (int i = 0; i < kRecords; ++i) {
      if (!(*log)->Append({{"type", "t"}, {"i", i}})) _exit(4);
    }
    raise(SIGKILL);
    _exit(5);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  auto records = Records(path_);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(records[i]["i"], i);
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.records, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(HeadLine(path_, 1)["synced"], 0u);  // nothing was synced: the head is behind
  EXPECT_EQ(HeadLine(path_, 0)["seq"], static_cast<uint64_t>(kRecords));
  EXPECT_EQ(HeadLine(path_, 0)["boot"].get<std::string>().size(), 36u);  // the kernel's boot id

  // Unsynced records cut on the same boot: detected by the end line, and Open refuses.
  auto lines = Lines();
  Put(std::vector<std::string>(lines.begin(), lines.end() - 2));
  v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.why.find("removed from the end"), std::string::npos) << v.why;
  auto refused = AuditLog::Open(path_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("does not match its head"), std::string::npos);

  // What group mode cannot detect: after the machine stopped (a head line from another
  // boot), records past the synced line may have been lost with the page cache, so their
  // absence is accepted, with a note. This is the window a crash may take.
  HeadFromAnotherBoot(path_);
  v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_NE(v.note.find("not yet synced"), std::string::npos) << v.note;
  // Open then syncs and brings the head to the end: from there on every cut is detected.
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.error().message;
  }
  EXPECT_EQ(HeadLine(path_, 1)["synced"], static_cast<uint64_t>(kRecords - 2));
  lines = Lines();
  Put(std::vector<std::string>(lines.begin(), lines.end() - 1));
  HeadFromAnotherBoot(path_);
  v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.why.find("were synced"), std::string::npos) << v.why;
}

// A truncation below the synced line is detected whatever happened to the machine; one
// that leaves the log ahead of its head's end line (records added) is named too.
TEST_F(AuditTest, ATruncationBelowTheHeadIsDetected) {
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*log)->Append({{"type", "t"}, {"i", i}}).ok());
    ASSERT_TRUE((*log)->Flush().ok());
    EXPECT_EQ(HeadLine(path_, 1)["synced"], 10u);
    EXPECT_EQ(HeadLine(path_, 1)["synced_hash"], HeadLine(path_, 0)["hash"]);
  }
  auto lines = Lines();
  Put(std::vector<std::string>(lines.begin(), lines.begin() + 7));
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.why.find("removed from the end"), std::string::npos) << v.why;
  HeadFromAnotherBoot(path_);
  v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok) << "a cut below the synced line passed after a restart";
  // Cut, then new records in their place: the chain is valid, the head's hashes are not.
  Put(std::vector<std::string>(lines.begin(), lines.begin() + 9));
  {
    std::ofstream(path_ + ".head", std::ios::trunc)
        << json({{"hash", json::parse(lines[8])["hash"]}, {"seq", 9}}).dump() << "\n";
    auto log = AuditLog::Open(path_);  // a one-line head from before group commit
    ASSERT_TRUE(log.ok()) << log.error().message;
    ASSERT_TRUE((*log)->Append({{"type", "other"}}).ok());
  }
  Put(std::vector<std::string>(lines.begin(), lines.begin() + 10));  // the old record 10
  v = VerifyAudit(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.why.find("not the one its head"), std::string::npos) << v.why;
}

// Without Flush, the sync thread makes a record durable within its window.
TEST_F(AuditTest, TheSyncThreadSyncsWithinTheWindow) {
  AuditOptions o;
  o.group_window_us = kMaxAuditGroupWindowUs + 1;
  auto refused = AuditLog::Open(path_, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("group window"), std::string::npos);
  o.group_window_us = 20'000;
  auto log = AuditLog::Open(path_, o);
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ((*log)->syncs(), 0u);
  ASSERT_TRUE((*log)->Append({{"type", "t"}}).ok());
  // A loaded machine may be slow to run the thread; it is the waiting that is tested.
  for (int i = 0; i < 500 && (*log)->syncs() == 0; ++i) usleep(10'000);
  EXPECT_EQ((*log)->syncs(), 1u);
  EXPECT_EQ(HeadLine(path_, 1)["synced"], 1u);
  // Nothing new: no sync, and Flush has nothing to do.
  usleep(60'000);
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->syncs(), 1u);
}

// Many threads at once: one chain, and far fewer syncs than records in group mode; one
// sync per record in kAlways mode, the head synced with each.
TEST_F(AuditTest, GroupCommitSyncsManyRecordsAtOnce) {
  constexpr int kThreads = 8, kEach = 2000;
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    std::vector<std::thread> threads;
    std::atomic<int> failed{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          if (!(*log)->Append({{"type", "t"}, {"thread", t}, {"i", i}}).ok()) ++failed;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failed.load(), 0);
    ASSERT_TRUE((*log)->Flush().ok());
    EXPECT_GE((*log)->syncs(), 1u);
    EXPECT_LT((*log)->syncs(), static_cast<uint64_t>(kThreads * kEach / 10));
    EXPECT_EQ((*log)->last_seq(), static_cast<uint64_t>(kThreads * kEach));
  }
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.records, static_cast<uint64_t>(kThreads * kEach));

  std::string always_path = dir_ + "/always.jsonl";
  constexpr int kAlwaysThreads = 4, kAlwaysEach = 25;
  AuditOptions o;
  o.sync = AuditSync::kAlways;
  auto log = AuditLog::Open(always_path, o);
  ASSERT_TRUE(log.ok()) << log.error().message;
  std::vector<std::thread> threads;
  for (int t = 0; t < kAlwaysThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAlwaysEach; ++i) EXPECT_TRUE((*log)->Append({{"type", "t"}}).ok());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ((*log)->syncs(), static_cast<uint64_t>(kAlwaysThreads * kAlwaysEach));
  EXPECT_EQ(HeadLine(always_path, 1)["synced"],
            static_cast<uint64_t>(kAlwaysThreads * kAlwaysEach));
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->syncs(), static_cast<uint64_t>(kAlwaysThreads * kAlwaysEach));
  EXPECT_TRUE(VerifyAudit(always_path).ok);
}

// Two processes in group mode at once: one chain, seq 1..N without a gap, each writer's
// records all there in its order, and the synced line at the end once both have closed.
TEST_F(AuditTest, TwoProcessesInGroupModeKeepOneChain) {
  constexpr int kWriters = 2, kEach = 500;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::Open(path_);
      if (!log) _exit(3);
      for (int i = 0; i < kEach; ++i) {
        if (!(*log)->Append({{"type", "t"}, {"writer", w}, {"i", i}})) _exit(4);
      }
      if (!(*log)->Flush()) _exit(5);
      log->reset();
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  auto records = Records(path_);
  ASSERT_EQ(records.size(), static_cast<size_t>(kWriters * kEach));
  std::vector<int> next(kWriters, 0);
  for (size_t k = 0; k < records.size(); ++k) {
    EXPECT_EQ(records[k]["seq"], k + 1);
    int w = records[k]["writer"];
    EXPECT_EQ(records[k]["i"], next[w]++);
  }
  EXPECT_EQ(HeadLine(path_, 1)["synced"], static_cast<uint64_t>(kWriters * kEach));
  EXPECT_EQ(HeadLine(path_, 0)["seq"], static_cast<uint64_t>(kWriters * kEach));
}

// A write that fails (here: past the process's file size limit, EFBIG) is Append's error,
// and so is every append after it; the log keeps its valid records (the torn one is
// dropped). A failed fdatasync cannot be caused from a test without an injection hook;
// it takes the same path into sync_error_, which Append and Flush return.
TEST_F(AuditTest, AFailedWriteIsAnError) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    auto log = AuditLog::Open(path_);
    if (!log) _exit(3);
    for (int i = 0; i < 5; ++i) {
      if (!(*log)->Append({{"type", "t"}, {"pad", std::string(200, 'p')}})) _exit(4);
    }
    if (!(*log)->Flush()) _exit(5);
    struct stat st {};
    if (stat(path_.c_str(), &st) != 0) _exit(6);
    rlimit lim{};
    getrlimit(RLIMIT_FSIZE, &lim);
    lim.rlim_cur = static_cast<rlim_t>(st.st_size) + 100;
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(7);
    for (int i = 0; i < 2; ++i) {
      auto r = (*log)->Append({{"type", "t"}, {"pad", std::string(500, 'q')}});
      if (r.ok()) _exit(8);
      if (r.error().message.find("cannot append") == std::string::npos) _exit(9);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  AuditVerdict v = VerifyAudit(path_);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.records, 5u);
}

// --- Hostile scripts and policies ---------------------------------------------------

TEST(AgentInputs, MalformedScriptsAreRefusedWithTheField) {
  auto err = [](const std::string& text) {
    auto p = ScriptedProvider::Parse(text);
    return p.ok() ? std::string() : p.error().message;
  };
  EXPECT_NE(err("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(err("[]").find("object"), std::string::npos);
  EXPECT_NE(err(R"({"turns":[]})").find("non-empty"), std::string::npos);
  EXPECT_NE(err(R"({"turns":[{"txt":"x"}]})").find("turns[0]: unknown field \"txt\""),
            std::string::npos);
  EXPECT_NE(err(R"({"turns":[{"tool_calls":[{"arguments":{}}]}]})").find("turns[0].tool_calls[0]"),
            std::string::npos);
  EXPECT_NE(err(R"({"turns":[{"usage":{"input_tokens":-1}}]})").find("usage.input_tokens"),
            std::string::npos);
  EXPECT_NE(err(R"({"turns":[{"text":"x"}],"extra":1})").find("\"extra\""), std::string::npos);
  EXPECT_EQ(err(std::string(DemoScript())), "");
}

TEST(AgentInputs, MalformedPoliciesAreRefusedWithTheField) {
  auto err = [](const std::string& text) {
    auto p = Policy::Parse(text);
    return p.ok() ? std::string() : p.error().message;
  };
  EXPECT_NE(err("nope").find("not valid JSON"), std::string::npos);
  EXPECT_NE(err(R"({"tool":{}})").find("unknown field \"tool\""), std::string::npos);
  EXPECT_NE(err(R"({"tools":{"js":"maybe"}})").find("tools/js"), std::string::npos);
  EXPECT_NE(err(R"({"tools":{"js":{"fuel":"lots"}}})").find("tools/js/fuel"), std::string::npos);
  EXPECT_NE(err(R"({"tools":{"js":{"cpu":1}}})").find("tools/js/cpu"), std::string::npos);
  EXPECT_NE(err(R"({"budgets":{"steps":0}})").find("budgets/steps"), std::string::npos);
  EXPECT_NE(err(R"({"budgets":{"cost_usd":-1}})").find("budgets/cost_usd"), std::string::npos);
  EXPECT_NE(err(R"({"governor":{"repeat_warn":5,"repeat_stop":2}})").find("governor"),
            std::string::npos);
  EXPECT_NE(err(R"({"mounts":["relative/path"]})").find("mounts/0"), std::string::npos);
  EXPECT_NE(err(R"({"network":[1]})").find("network/0"), std::string::npos);
  EXPECT_NE(err(R"({"prices":{"m":{"input_per_mtok":1}}})").find("prices/m"), std::string::npos);
  for (const char* n : {"0", "17", "-1", "2.5", "\"4\"", "1e9"}) {
    EXPECT_NE(err(std::string(R"({"parallel_tools":)") + n + "}").find("parallel_tools"),
              std::string::npos)
        << n;
  }
  EXPECT_EQ(Policy::Parse(R"({"parallel_tools":16})")->parallel_tools, 16u);
  EXPECT_NE(err(R"({"audit":{"sync":"never"}})").find("audit/sync"), std::string::npos);
  EXPECT_NE(err(R"({"audit":{"fsync":"always"}})").find("audit/fsync"), std::string::npos);
  EXPECT_NE(err(R"({"audit":"always"})").find("audit"), std::string::npos);
  EXPECT_EQ(Policy::Parse(R"({"audit":{"sync":"always"}})")->audit_sync, AuditSync::kAlways);
  EXPECT_EQ(Policy::Parse("{}")->audit_sync, AuditSync::kGroup);
  auto ok = Policy::Parse(R"({"tools":{"js":{"decision":"deny","timeout":"2s"}},
      "budgets":{"wall_time":"1m","fuel":"1e9"},"mounts":["/tmp::/scratch:ro"]})");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok->tools["js"].limits.timeout_us, 2'000'000u);
  EXPECT_EQ(ok->budgets.wall_time_us, 60'000'000u);
  EXPECT_TRUE(ok->mounts[0].read_only);
  EXPECT_EQ(ok->mounts[0].guest_path, "/scratch");
}

TEST(AgentInputs, DefaultDecisionsFollowWhatAToolAsksFor) {
  Policy p;
  tools::ToolManifest reader, writer, fetcher;
  reader.name = "r";
  reader.capabilities.filesystem = tools::FsAccess::kRead;
  writer.name = "w";
  writer.capabilities.filesystem = tools::FsAccess::kWrite;
  fetcher.name = "f";
  fetcher.capabilities.network = {"https://*"};
  EXPECT_EQ(p.DecisionFor(reader), Decision::kAllow);
  EXPECT_EQ(p.DecisionFor(writer), Decision::kAsk);
  EXPECT_EQ(p.DecisionFor(fetcher), Decision::kAsk);
  p.tools["w"].decision = Decision::kAllow;
  p.tools["r"].decision = Decision::kDeny;
  EXPECT_EQ(p.DecisionFor(writer), Decision::kAllow);
  EXPECT_EQ(p.DecisionFor(reader), Decision::kDeny);
}

}  // namespace
}  // namespace moat::agent
