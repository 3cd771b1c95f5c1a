// Agent sessions (src/orchestration/session/) as every front end uses them: eight at once in
// one process over one Services, a tool module swapped between its approval and its run,
// a client's approvals (unknown ids, no answer in time, a cancel while one waits, "always"),
// an audit log that cannot take a record (the run stops and nothing more runs), and the
// `moat chat --json` event stream through the real binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/json_text.h"
#include "orchestration/agent/audit.h"
#include "orchestration/session/agent_session.h"
#include "orchestration/tools/manifest.h"
#include "test_util.h"

namespace moat::session {
namespace {

using agent::AgentEvent;
using agent::Approval;
using agent::StopKind;
using json = nlohmann::json;
using Kind = AgentEvent::Kind;

// The user-side files (trust, standing approvals, provider config, extension tools) live
// in a folder of the test's own, set before any thread starts: no test reads or changes
// the user's.
const std::string& Home() {
  static const std::string home = [] {
    std::string h = test::TempDir("session-home");
    std::filesystem::create_directories(h + "/config");
    std::filesystem::create_directories(h + "/state");
    setenv("HOME", h.c_str(), 1);
    setenv("XDG_CONFIG_HOME", (h + "/config").c_str(), 1);
    setenv("XDG_STATE_HOME", (h + "/state").c_str(), 1);
    setenv("MOAT_CONFIG", (h + "/no-such-config.json").c_str(), 1);
    unsetenv("MOAT_TOOL_PATH");
    return h;
  }();
  return home;
}
[[maybe_unused]] const std::string& g_home = Home();

void Put(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

void PutBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

json Call(const std::string& name, const json& args, const std::string& id = "") {
  json c = {{"name", name}, {"arguments", args}};
  if (!id.empty()) c["id"] = id;
  return c;
}

std::vector<json> Records(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) {
    json j = json::parse(l, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

std::map<std::string, int> CountTypes(const std::vector<json>& records) {
  std::map<std::string, int> n;
  for (const json& r : records) ++n[r.value("type", "?")];
  return n;
}

std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.insert(n);
    }
    closedir(d);
  }
  return out;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Every tool_start has exactly one tool_end with its call id, after it; approval events
// sit between them; exactly one stop, and it is the last event. Empty when well formed.
std::string StreamProblem(const std::vector<AgentEvent>& events) {
  std::map<std::string, int> open, ended;
  int stops = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const AgentEvent& e = events[i];
    if (stops > 0) return "an event after the stop (#" + std::to_string(i) + ")";
    switch (e.kind) {
      case Kind::kToolStart:
        if (open.count(e.call_id) || ended.count(e.call_id)) {
          return "call id " + e.call_id + " started twice";
        }
        open[e.call_id] = 1;
        break;
      case Kind::kApprovalRequested:
      case Kind::kApprovalAnswered:
        if (!open.count(e.call_id)) return "approval event outside call " + e.call_id;
        break;
      case Kind::kToolEnd:
        if (!open.count(e.call_id)) return "tool_end without a start: " + e.call_id;
        open.erase(e.call_id);
        ended[e.call_id] = 1;
        break;
      case Kind::kStop: ++stops; break;
      default: break;
    }
  }
  if (!open.empty()) return "call " + open.begin()->first + " never ended";
  if (stops != 1) return "stops: " + std::to_string(stops);
  return "";
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = test::TempDir("session");
    std::filesystem::create_directories(base_ + "/tools");
    ServicesOptions o;
    o.tool_dirs = {base_ + "/tools"};
    o.tools_builtin_dir = MOAT_TOOLS_DIR;
    o.provider_config = Home() + "/no-such-config.json";
    auto s = Services::Create(o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    services_ = std::move(*s);
  }
  void TearDown() override {
    services_.reset();
    std::filesystem::remove_all(base_);
  }
  // A fresh workspace folder, a script file and a policy file for one session.
  std::string Workspace(const std::string& name) {
    std::string ws = base_ + "/" + name;
    std::filesystem::create_directories(ws);
    return ws;
  }
  std::string ScriptFile(const std::string& name, const json& turns) {
    std::string path = base_ + "/" + name + ".script.json";
    Put(path, json({{"model", "scripted"}, {"turns", turns}}).dump());
    return path;
  }
  std::string PolicyFile(const std::string& name, const json& policy) {
    std::string path = base_ + "/" + name + ".policy.json";
    Put(path, policy.dump());
    return path;
  }
  SessionOptions Options(const std::string& ws, const std::string& script,
                         const std::string& policy) {
    SessionOptions so;
    so.workspace = ws;
    so.policy_file = policy;
    so.provider.name = "scripted";
    so.provider.script = script;
    so.sessions_db = "none";
    so.on_notice = [](const std::string& text) { ADD_FAILURE() << "notice: " << text; };
    return so;
  }
  std::unique_ptr<AgentSession> Open(SessionOptions so) {
    auto s = AgentSession::Open(*services_, std::move(so));
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string base_;
  std::unique_ptr<Services> services_;
};

// --- The system prompt as data ------------------------------------------------------------

// A workspace's .moat/system_prompt.md is the session's system prompt; one that is not
// UTF-8, holds a NUL, is empty or is too big refuses the session, naming the file.
TEST_F(SessionTest, TheSystemPromptIsTheWorkspacesFileOrTheDefault) {
  std::string ws = Workspace("prompt");
  std::string script = ScriptFile("prompt", json::array({{{"text", "done"}}}));
  std::string policy = PolicyFile("prompt", json::object());
  auto first_message = [&]() -> std::string {
    auto s = Open(Options(ws, script, policy));
    if (!s) return "<not opened>";
    s->Send("go", nullptr);
    return s->history().empty() ? "" : s->history().front().content;
  };
  EXPECT_EQ(first_message(), kDefaultSystemPrompt);
  Put(ws + "/.moat/system_prompt.md", "You review code. Be brief.\n");
  EXPECT_EQ(first_message(), "You review code. Be brief.\n");
  for (const auto& [content, why] : std::vector<std::pair<std::string, std::string>>{
           {"caf\xe9", "not UTF-8 at byte 3"},
           {std::string("a\0b", 3), "NUL"},
           {" \n\t", "is empty"},
           {std::string(kMaxSystemPromptBytes + 1, 'x'), "system_prompt.md"}}) {
    Put(ws + "/.moat/system_prompt.md", content);
    auto s = AgentSession::Open(*services_, Options(ws, script, policy));
    ASSERT_FALSE(s.ok()) << why;
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("system_prompt.md"), std::string::npos);
  }
}

// --- Eight sessions at once ------------------------------------------------------------

struct Lane {
  std::string ws;
  std::string token;
  std::unique_ptr<AgentSession> session;
  std::mutex mu;
  std::vector<AgentEvent> events;
  agent::RunSummary summary;
};

TEST_F(SessionTest, EightSessionsAtOnceShareNothingMutable) {
  constexpr int kSessions = 8;
  std::vector<std::unique_ptr<Lane>> runs;
  std::string policy = PolicyFile("eight", {{"tools", {{"write_file", {{"decision", "allow"}}}}}});
  for (int i = 0; i < kSessions; ++i) {
    auto r = std::make_unique<Lane>();
    std::string tag = "s" + std::to_string(i) + "_";
    r->ws = Workspace("ws" + std::to_string(i));
    r->token = "content of session " + std::to_string(i) + " " + std::string(40 + i * 7, 'a' + i);
    // Write, read back, list, a second write with a read of it in the same turn (the write
    // runs alone, then the read), and an answer.
    json turns = {
        {{"tool_calls", {Call("write_file", {{"path", tag + "mine.txt"}, {"content", r->token}})}}},
        {{"tool_calls", {Call("read_file", {{"path", tag + "mine.txt"}})}}},
        {{"tool_calls", {Call("list_dir", {{"path", "."}})}}},
        {{"tool_calls",
          {Call("write_file", {{"path", tag + "second.txt"}, {"content", r->token + " again"}}),
           Call("read_file", {{"path", tag + "second.txt"}})}}},
        {{"text", "done " + tag}}};
    r->session = Open(Options(r->ws, ScriptFile("eight" + std::to_string(i), turns), policy));
    ASSERT_NE(r->session, nullptr);
    runs.push_back(std::move(r));
  }
  // All start at once: the first uses of the shared registry's tools meet.
  std::latch start(kSessions);
  std::vector<std::thread> threads;
  for (auto& r : runs) {
    Lane* run = r.get();
    threads.emplace_back([run, &start] {
      start.arrive_and_wait();
      run->summary = run->session->Send("do the task", [run](const AgentEvent& e) {
        std::lock_guard<std::mutex> lock(run->mu);
        run->events.push_back(e);
      });
    });
  }
  for (std::thread& t : threads) t.join();

  for (int i = 0; i < kSessions; ++i) {
    SCOPED_TRACE("session " + std::to_string(i));
    Lane& r = *runs[i];
    std::string tag = "s" + std::to_string(i) + "_";
    EXPECT_EQ(r.summary.stop, StopKind::kCompleted) << r.summary.message;
    EXPECT_EQ(r.summary.tool_calls, 5u);
    // Its files, and only its own content in them.
    EXPECT_EQ(Names(r.ws), (std::set<std::string>{".moat", tag + "mine.txt", tag + "second.txt"}));
    EXPECT_EQ(test::Slurp(r.ws + "/" + tag + "mine.txt"), r.token);
    EXPECT_EQ(test::Slurp(r.ws + "/" + tag + "second.txt"), r.token + " again");
    // What its model saw: its own content back, its own folder listed.
    std::vector<json> results;
    for (const agent::Message& m : r.session->history()) {
      if (m.role == agent::Message::Role::kTool) results.push_back(json::parse(m.content));
    }
    ASSERT_EQ(results.size(), 5u);
    for (const json& res : results) EXPECT_EQ(res["ok"], true) << res;
    EXPECT_EQ(results[1]["content"]["content"], r.token);
    EXPECT_EQ(results[4]["content"]["content"], r.token + " again");
    std::string listing = DumpJson(results[2]);
    EXPECT_NE(listing.find(tag + "mine.txt"), std::string::npos) << listing;
    for (int j = 0; j < kSessions; ++j) {
      if (j == i) continue;
      std::string other = "s" + std::to_string(j) + "_";
      EXPECT_EQ(listing.find(other), std::string::npos) << listing;
      for (const agent::Message& m : r.session->history()) {
        EXPECT_EQ(m.content.find(runs[j]->token), std::string::npos) << m.content;
      }
    }
    // Its event stream.
    EXPECT_EQ(StreamProblem(r.events), "");
    ASSERT_FALSE(r.events.empty());
    EXPECT_EQ(r.events.back().kind, Kind::kStop);
    EXPECT_EQ(r.events.back().stop, StopKind::kCompleted);
    std::vector<std::string> ends;
    std::set<std::string> call_ids;
    for (const AgentEvent& e : r.events) {
      if (e.kind == Kind::kToolEnd) {
        ends.push_back(e.tool + ":" + e.status + ":" + e.decision);
        call_ids.insert(e.call_id);
      }
    }
    EXPECT_EQ(ends, (std::vector<std::string>{"write_file:ok:allow", "read_file:ok:allow",
                                              "list_dir:ok:allow", "write_file:ok:allow",
                                              "read_file:ok:allow"}));
    // Its own audit log: a valid chain with exactly the records its calls imply.
    std::string log = r.ws + "/.moat/audit.jsonl";
    agent::AuditVerdict v = agent::VerifyAudit(log);
    EXPECT_TRUE(v.ok) << v.why;
    std::vector<json> records = Records(log);
    EXPECT_EQ(v.records, records.size());
    EXPECT_EQ(CountTypes(records), (std::map<std::string, int>{{"run_start", 1},
                                                               {"model_call", 5},
                                                               {"tool_start", 5},
                                                               {"tool_call", 5},
                                                               {"run_end", 1}}));
    std::set<std::string> recorded_ids;
    for (const json& rec : records) {
      if (rec["type"] == "run_start") EXPECT_EQ(rec["workspace"], r.session->workspace().root());
      if (rec["type"] == "tool_call") {
        EXPECT_EQ(rec["status"], "ok") << rec;
        recorded_ids.insert(rec["call_id"].get<std::string>());
      }
      if (rec["type"] == "run_end") EXPECT_EQ(rec["reason"], "completed");
    }
    EXPECT_EQ(recorded_ids, call_ids);
  }
}

// --- A reload between approval and run -------------------------------------------------

// The registry's test tool (guests/tools_test/contract_probe.c) as the extension "probe";
// the module that replaces it is hello.wasm under the same manifest, whose output is not a
// result (so its run is told apart by its status).
std::vector<uint8_t> Packed(const std::string& guest) {
  json m = {{"name", "probe"},
            {"version", "1.0.0"},
            {"description", "test tool"},
            {"arguments", {{"type", "object"}, {"properties", {{"mode", {{"type", "string"}}}}}}},
            {"capabilities", {{"filesystem", "read"}}},
            {"limits", {{"fuel", "1e8"}, {"timeout", "20s"}}}};
  auto packed = tools::SetCustomSection(test::GuestBytes(guest), tools::kManifestSection, m.dump());
  EXPECT_TRUE(packed.ok()) << packed.error().message;
  return packed.ok() ? *packed : std::vector<uint8_t>{};
}

// Answers approvals from the test's thread: the events are handed over as they come.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<AgentEvent> events;
  void Push(const AgentEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    cv.notify_all();
  }
  // The n-th (0-based) approval request, waited for up to `ms`.
  std::optional<AgentEvent> Request(size_t n, int ms = 20000) {
    std::unique_lock<std::mutex> lock(mu);
    std::optional<AgentEvent> found;
    cv.wait_for(lock, std::chrono::milliseconds(ms), [&] {
      size_t seen = 0;
      for (const AgentEvent& e : events) {
        if (e.kind == Kind::kApprovalRequested && seen++ == n) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::vector<AgentEvent> Of(Kind k) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<AgentEvent> out;
    for (const AgentEvent& e : events) {
      if (e.kind == k) out.push_back(e);
    }
    return out;
  }
  std::vector<AgentEvent> All() {
    std::lock_guard<std::mutex> lock(mu);
    return events;
  }
};

TEST_F(SessionTest, AReloadBetweenApprovalAndRunDoesNotSwapTheModule) {
  std::string module = base_ + "/tools/probe.wasm";
  PutBytes(module, Packed("contract_probe"));
  services_->registry().Rescan();
  auto old_tool = services_->registry().Find("probe");
  ASSERT_NE(old_tool, nullptr) << services_->registry().LoadError("probe");
  std::string ws = Workspace("reload");
  Put(ws + "/present.txt", "x");
  json turns = {{{"tool_calls", {Call("probe", {{"mode", "ls"}}, "first")}}},
                {{"tool_calls", {Call("probe", {{"mode", "ls"}, {"again", 1}}, "second")}}},
                {{"text", "done"}}};
  SessionOptions so =
      Options(ws, ScriptFile("reload", turns),
              PolicyFile("reload", {{"tools", {{"probe", {{"decision", "ask"}}}}}}));
  so.approval = ApprovalMode::kClient;
  so.approval_timeout_us = 60'000'000;
  auto s = Open(std::move(so));
  ASSERT_NE(s, nullptr);
  Waiter w;
  agent::RunSummary summary;
  std::thread sender([&] { summary = s->Send("go", [&](const AgentEvent& e) { w.Push(e); }); });

  auto first = w.Request(0);
  ASSERT_TRUE(first.has_value()) << "no approval was asked for";
  EXPECT_EQ(first->call_id, "first");
  // Asked: now the module under the name changes, and the registry takes the new one.
  PutBytes(module, Packed("hello"));
  services_->registry().Rescan();
  auto new_tool = services_->registry().Find("probe");
  ASSERT_NE(new_tool, nullptr) << services_->registry().LoadError("probe");
  EXPECT_NE(new_tool->digest, old_tool->digest) << "the reload did not happen";
  EXPECT_TRUE(s->Approve("first", Approval::kOnce).ok());
  // The next call resolves the new module, and runs it once approved.
  auto second = w.Request(1);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(s->Approve("second", Approval::kOnce).ok());
  sender.join();
  EXPECT_EQ(summary.stop, StopKind::kCompleted) << summary.message;
  EXPECT_EQ(StreamProblem(w.All()), "");

  std::map<std::string, std::string> status;
  for (const AgentEvent& e : w.Of(Kind::kToolEnd)) status[e.call_id] = e.status;
  EXPECT_EQ(status["first"], "ok") << "the approved module did not run";
  EXPECT_EQ(status["second"], "bad_tool_output");
  std::vector<json> results;
  for (const agent::Message& m : s->history()) {
    if (m.role == agent::Message::Role::kTool) results.push_back(json::parse(m.content));
  }
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]["content"], json::array({"present.txt"})) << results[0];
  // The audit log names the module each call ran.
  std::map<std::string, std::string> digest;
  for (const json& rec : Records(ws + "/.moat/audit.jsonl")) {
    if (rec["type"] == "tool_call") digest[rec["call_id"]] = rec.value("tool_digest", "");
  }
  EXPECT_EQ(digest["first"], old_tool->digest);
  EXPECT_EQ(digest["second"], new_tool->digest);
}

// --- Client approvals ------------------------------------------------------------------

TEST_F(SessionTest, ClientApprovalsUnknownIdsTimeoutsCancelAndAlways) {
  std::string policy = PolicyFile("approvals", json::object());  // write_file: ask
  auto write = [](const std::string& path, const std::string& id) {
    return Call("write_file", {{"path", path}, {"content", "made by " + id}}, id);
  };
  {
    SCOPED_TRACE("unknown ids and answers that are not answers");
    std::string ws = Workspace("unknown");
    SessionOptions so = Options(ws, ScriptFile("unknown", {{{"text", "hi"}}}), policy);
    so.approval = ApprovalMode::kClient;
    auto s = Open(std::move(so));
    ASSERT_NE(s, nullptr);
    Status st = s->Approve("no-such-call", Approval::kOnce);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(s->Approve("no-such-call", Approval::kTimedOut).ok());
    SessionOptions fixed = Options(ws, ScriptFile("fixed", {{{"text", "hi"}}}), policy);
    fixed.approval = ApprovalMode::kAllowAll;
    auto f = Open(std::move(fixed));
    ASSERT_NE(f, nullptr);
    EXPECT_FALSE(f->Approve("any", Approval::kOnce).ok());
  }
  {
    // A client may answer the moment it sees the request: here, from inside the event.
    SCOPED_TRACE("an answer right away");
    std::string ws = Workspace("prompt");
    SessionOptions so = Options(
        ws,
        ScriptFile("prompt", {{{"tool_calls", {write("quick.txt", "quick")}}}, {{"text", "done"}}}),
        policy);
    so.approval = ApprovalMode::kClient;
    so.approval_timeout_us = 5'000'000;
    auto s = Open(std::move(so));
    ASSERT_NE(s, nullptr);
    std::vector<std::string> answers;
    uint64_t t0 = NowMs();
    agent::RunSummary r = s->Send("go", [&](const AgentEvent& e) {
      if (e.kind == Kind::kApprovalRequested) {
        Status st = s->Approve(e.call_id, Approval::kOnce);
        answers.push_back(st.ok() ? "taken" : st.error().message);
      }
    });
    EXPECT_EQ(r.stop, StopKind::kCompleted) << r.message;
    EXPECT_EQ(answers, std::vector<std::string>{"taken"});
    EXPECT_LT(NowMs() - t0, 4000u) << "the answer was not taken; the call waited";
    EXPECT_EQ(test::Slurp(ws + "/quick.txt"), "made by quick");
  }
  {
    SCOPED_TRACE("no answer in time");
    std::string ws = Workspace("timeout");
    SessionOptions so = Options(
        ws,
        ScriptFile("timeout", {{{"tool_calls", {write("late.txt", "late")}}}, {{"text", "done"}}}),
        policy);
    so.approval = ApprovalMode::kClient;
    so.approval_timeout_us = 400'000;
    auto s = Open(std::move(so));
    ASSERT_NE(s, nullptr);
    Waiter w;
    uint64_t t0 = NowMs();
    agent::RunSummary r = s->Send("go", [&](const AgentEvent& e) { w.Push(e); });
    uint64_t took = NowMs() - t0;
    EXPECT_EQ(r.stop, StopKind::kCompleted) << r.message;
    EXPECT_GE(took, 400u);
    EXPECT_LT(took, 5000u);
    auto answered = w.Of(Kind::kApprovalAnswered);
    ASSERT_EQ(answered.size(), 1u);
    EXPECT_EQ(answered[0].approval, "timeout");
    EXPECT_EQ(answered[0].approver, "client");
    auto ends = w.Of(Kind::kToolEnd);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].status, "not_approved");
    EXPECT_FALSE(Exists(ws + "/late.txt"));
    // Too late now: nothing waits under that id.
    EXPECT_FALSE(s->Approve("late", Approval::kOnce).ok());
    EXPECT_EQ(StreamProblem(w.All()), "");
  }
  {
    SCOPED_TRACE("cancel while an approval waits");
    std::string ws = Workspace("cancel");
    SessionOptions so =
        Options(ws,
                ScriptFile("cancel", {{{"tool_calls", {write("never.txt", "pending")}}},
                                      {{"tool_calls", {write("after.txt", "after")}}},
                                      {{"text", "done"}}}),
                policy);
    so.approval = ApprovalMode::kClient;
    so.approval_timeout_us = 120'000'000;
    auto s = Open(std::move(so));
    ASSERT_NE(s, nullptr);
    Waiter w;
    agent::RunSummary r;
    uint64_t ended = 0;
    std::thread sender([&] {
      r = s->Send("go", [&](const AgentEvent& e) { w.Push(e); });
      ended = NowMs();
    });
    ASSERT_TRUE(w.Request(0).has_value());
    uint64_t cancelled = NowMs();
    s->Cancel();
    sender.join();
    EXPECT_EQ(r.stop, StopKind::kCancelled) << r.message;
    EXPECT_LT(ended - cancelled, 1000u) << "the waiting approval held the cancel";
    EXPECT_FALSE(Exists(ws + "/never.txt"));
    EXPECT_FALSE(Exists(ws + "/after.txt"));
    auto ends = w.Of(Kind::kToolEnd);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].status, "not_approved");
    EXPECT_FALSE(s->Approve("pending", Approval::kOnce).ok());
    EXPECT_EQ(StreamProblem(w.All()), "");
  }
  {
    SCOPED_TRACE("always is not asked again");
    std::string ws = Workspace("always");
    SessionOptions so = Options(ws,
                                ScriptFile("always", {{{"tool_calls", {write("one.txt", "w1")}}},
                                                      {{"tool_calls", {write("two.txt", "w2")}}},
                                                      {{"tool_calls", {write("three.txt", "w3")}}},
                                                      {{"text", "done"}}}),
                                policy);
    so.approval = ApprovalMode::kClient;
    so.approval_timeout_us = 60'000'000;
    auto s = Open(std::move(so));
    ASSERT_NE(s, nullptr);
    Waiter w;
    agent::RunSummary r;
    std::thread sender([&] { r = s->Send("go", [&](const AgentEvent& e) { w.Push(e); }); });
    auto asked = w.Request(0);
    ASSERT_TRUE(asked.has_value());
    EXPECT_EQ(asked->call_id, "w1");
    EXPECT_TRUE(s->Approve("w1", Approval::kAlways).ok());
    EXPECT_FALSE(s->Approve("w1", Approval::kOnce).ok()) << "one call answered twice";
    // No second request comes; an unanswered one would hold the run for a minute.
    EXPECT_FALSE(w.Request(1, 3000).has_value());
    sender.join();
    EXPECT_EQ(r.stop, StopKind::kCompleted) << r.message;
    EXPECT_EQ(w.Of(Kind::kApprovalRequested).size(), 1u);
    for (const char* f : {"one.txt", "two.txt", "three.txt"})
      EXPECT_TRUE(Exists(ws + "/" + f)) << f;
    std::vector<std::string> approvers;
    for (const json& rec : Records(ws + "/.moat/audit.jsonl")) {
      if (rec["type"] == "tool_call") approvers.push_back(rec.value("approver", ""));
    }
    EXPECT_EQ(approvers, (std::vector<std::string>{"client", "always (this session)",
                                                   "always (this session)"}));
    EXPECT_EQ(StreamProblem(w.All()), "");
  }
}

// --- Fail closed -----------------------------------------------------------------------

// The audit log's writes really fail: the process's file size limit (RLIMIT_FSIZE, with
// SIGXFSZ ignored, so a write past it is EFBIG) is set to fall inside the fourth call's
// "tool_start" record. Every call that ran is on record, the fourth does not run, and
// nothing runs after it, in that run or the session's next.
TEST_F(SessionTest, AnAuditLogThatCannotTakeARecordStopsTheRun) {
  std::string policy = PolicyFile("closed", {{"tools", {{"write_file", {{"decision", "allow"}}}}}});
  constexpr int kTurns = 12;
  auto script = [&](const std::string& name, const std::string& prefix) {
    json turns = json::array();
    for (int k = 0; k < kTurns; ++k) {
      std::string id = prefix + std::to_string(k);
      turns.push_back(
          {{"tool_calls", {Call("write_file", {{"path", id + ".txt"}, {"content", id}}, id)}}});
    }
    turns.push_back({{"text", "done"}});
    return ScriptFile(name, turns);
  };
  // The same calls once with a working log, so every module is compiled and cached before
  // the limit holds (a compile's files would meet it too), and to find where the fourth
  // call's start record lies: the limit falls in its middle. (The workspaces' names have
  // one length, so the records have the same sizes up to a few digits.)
  std::string warm = Workspace("warm");
  {
    auto s = Open(Options(warm, script("warm", "f"), policy));
    ASSERT_NE(s, nullptr);
    agent::RunSummary r = s->Send("go", nullptr);
    ASSERT_EQ(r.stop, StopKind::kCompleted) << r.message;
  }
  off_t fourth_start = -1, fourth_size = 0;
  {
    std::ifstream in(warm + "/.moat/audit.jsonl");
    off_t at = 0;
    for (std::string l; std::getline(in, l); at += static_cast<off_t>(l.size()) + 1) {
      json j = json::parse(l);
      if (j["type"] == "tool_start" && j["call_id"] == "f3") {
        fourth_start = at;
        fourth_size = static_cast<off_t>(l.size()) + 1;
      }
    }
  }
  ASSERT_GT(fourth_start, 0);

  std::string ws = Workspace("shut");
  auto s = Open(Options(ws, script("shut", "f"), policy));
  ASSERT_NE(s, nullptr);
  std::string log = ws + "/.moat/audit.jsonl";
  struct stat st {};
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  std::vector<AgentEvent> events;
  agent::RunSummary r, again;
  {
    // The limit holds for this block only, whatever happens in it.
    struct Limited {
      rlimit saved{};
      void (*handler)(int) = SIG_DFL;
      ~Limited() {
        setrlimit(RLIMIT_FSIZE, &saved);
        signal(SIGXFSZ, handler);
      }
    } limited;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &limited.saved), 0);
    limited.handler = signal(SIGXFSZ, SIG_IGN);
    rlimit low = limited.saved;
    low.rlim_cur = static_cast<rlim_t>(st.st_size + fourth_start + fourth_size / 2);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &low), 0);
    r = s->Send("go", [&](const AgentEvent& e) { events.push_back(e); });
    // A second prompt to the same session: nothing at all runs.
    again = s->Send("go on", [&](const AgentEvent& e) { events.push_back(e); });
  }

  EXPECT_EQ(r.stop, StopKind::kAuditFailed) << r.message;
  EXPECT_EQ(again.stop, StopKind::kAuditFailed) << again.message;
  EXPECT_EQ(again.tool_calls, 0u);
  EXPECT_EQ(again.steps, 0u) << "a model call after the log failed";
  // The log keeps the records it took, on a valid chain.
  agent::AuditVerdict v = agent::VerifyAudit(log);
  EXPECT_TRUE(v.ok) << v.why;
  std::set<std::string> started;
  for (const json& rec : Records(log)) {
    if (rec["type"] == "tool_start") started.insert(rec["call_id"].get<std::string>());
  }
  // A call ran only when its start is on record; the limit stopped the run part way.
  int written = 0;
  for (int k = 0; k < kTurns; ++k) {
    std::string id = "f" + std::to_string(k);
    bool made = Exists(ws + "/" + id + ".txt");
    written += made;
    EXPECT_EQ(made, started.count(id) == 1) << id;
  }
  EXPECT_EQ(written, 3) << "the fourth call's start record was not the one that failed";
  // The fourth call was refused for want of its record; no call ran after it.
  std::vector<std::string> ends;
  for (const AgentEvent& e : events) {
    if (e.kind == Kind::kToolEnd) ends.push_back(e.call_id + ":" + e.status);
  }
  EXPECT_EQ(ends, (std::vector<std::string>{"f0:ok", "f1:ok", "f2:ok", "f3:audit_failed"}));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, Kind::kStop);
  EXPECT_EQ(events.back().stop, StopKind::kAuditFailed);
}

// --- moat chat --json ------------------------------------------------------------------

std::vector<json> JsonLines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) {
    json j = json::parse(l, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
    if (!j.is_discarded()) lines.push_back(j);
  }
  return lines;
}

TEST_F(SessionTest, ChatJsonIsOneVersionedEventPerLine) {
  std::string ws = Workspace("cli");
  Put(ws + "/in.txt", "input\n");
  json turns = {{{"text", "Reading."},
                 {"tool_calls",
                  {Call("read_file", {{"path", "in.txt"}}), Call("list_dir", {{"path", "."}}),
                   Call("no_such_tool", json::object())}}},
                {{"tool_calls", {Call("write_file", {{"path", "out.txt"}, {"content", "out"}})}}},
                {{"text", "Done."}}};
  std::string script = ScriptFile("cli", turns);
  std::string policy = PolicyFile("cli", {{"tools", {{"write_file", {{"decision", "allow"}}}}}});
  std::string flags = "chat --json --script " + script + " --workspace " + ws + " --policy " +
                      policy + " --sessions none --approve none --tools-dir " + base_ + "/tools";
  test::CliResult r = test::Cli(flags + " 'do it'");
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<json> lines = JsonLines(r.out);
  ASSERT_GE(lines.size(), 3u) << r.out;
  for (const json& j : lines) {
    EXPECT_EQ(j.value("v", 0), 1) << j;
    EXPECT_TRUE(j.contains("type")) << j;
  }
  EXPECT_EQ(lines.front()["type"], "session");
  EXPECT_EQ(lines.front()["provider"], "scripted");
  EXPECT_EQ(lines.front()["workspace"], ws);
  std::map<std::string, int> open;
  std::vector<std::string> ends;
  for (size_t i = 1; i < lines.size(); ++i) {
    const json& j = lines[i];
    EXPECT_NE(j["type"], "session") << "a second session line";
    if (j["type"] == "tool_start") {
      EXPECT_EQ(open.count(j["call_id"]), 0u) << j;
      open[j["call_id"]] = 1;
    } else if (j["type"] == "tool_end") {
      EXPECT_EQ(open.erase(j["call_id"].get<std::string>()), 1u) << "an end without a start " << j;
      ends.push_back(j["tool"].get<std::string>() + ":" + j["status"].get<std::string>());
    } else if (j["type"] == "stop") {
      EXPECT_EQ(i, lines.size() - 1) << "the stop is not the last line";
    }
  }
  EXPECT_TRUE(open.empty());
  std::sort(ends.begin(), ends.end());
  EXPECT_EQ(ends, (std::vector<std::string>{"list_dir:ok", "no_such_tool:unknown_tool",
                                            "read_file:ok", "write_file:ok"}));
  EXPECT_EQ(lines.back()["type"], "stop");
  EXPECT_EQ(lines.back()["stop"], "completed");
  EXPECT_EQ(lines.back()["usage"]["tool_calls"], 3);
  EXPECT_EQ(test::Slurp(ws + "/out.txt"), "out");

  // A broken audit chain: the session does not open, nothing runs, exit status 5.
  std::string log = ws + "/.moat/audit.jsonl";
  std::string text = test::Slurp(log);
  size_t at = text.find("\"run_start\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 11, "\"run_stort\"");
  Put(log, text);
  ASSERT_EQ(unlink((ws + "/out.txt").c_str()), 0);
  r = test::Cli(flags + " 'do it'");
  EXPECT_EQ(r.status, 5) << r.out << r.err;
  EXPECT_EQ(r.out.find("tool_start"), std::string::npos) << r.out;
  EXPECT_FALSE(Exists(ws + "/out.txt"));
  EXPECT_NE(r.err.find("audit"), std::string::npos) << r.err;

  // A log that fails part way (the shell's file size limit, SIGXFSZ ignored): the stream
  // ends with an audit_failed stop, still one JSON object per line, and exit status 5.
  std::string ws2 = Workspace("cli-full");
  Put(ws2 + "/in.txt", "input\n");
  std::string flags2 = "chat --json --script " + script + " --workspace " + ws2 + " --policy " +
                       policy + " --sessions none --approve none --tools-dir " + base_ + "/tools";
  // The limit holds for moat alone: its output goes through a pipe to a file without it.
  std::string runner = base_ + "/limited.sh";
  Put(runner, "set -o pipefail\n(trap '' XFSZ; ulimit -f 2; exec " MOAT_BINARY " " + flags2 +
                  " 'do it' </dev/null) | cat\n");
  r = test::Shell("bash " + runner);
  EXPECT_EQ(r.status, 5) << r.out << r.err;
  lines = JsonLines(r.out);
  ASSERT_FALSE(lines.empty()) << r.err;
  EXPECT_EQ(lines.back()["type"], "stop");
  EXPECT_EQ(lines.back()["stop"], "audit_failed") << lines.back();
  EXPECT_FALSE(Exists(ws2 + "/out.txt"));
}

}  // namespace
}  // namespace moat::session
