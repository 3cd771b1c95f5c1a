// Checkpoints and undo through the real binary: every built-in tool that writes, one step
// at a time in one session, then `moat sessions undo --to STEP` back through each step
// (the workspace byte for byte as it was before that step); a run killed with SIGKILL in
// the middle of a step; the session's checkpoint bounds (a call past them is not
// undoable, then asked about); hidden and protected paths.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "base/json_text.h"
#include "base/sha256.h"
#include "orchestration/undo/checkpoints.h"
#include "test_util.h"

namespace moat {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

const std::string& Home() {
  static const std::string home = [] {
    std::string h = test::TempDir("checkpoint-home");
    fs::create_directories(h + "/config");
    fs::create_directories(h + "/state");
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
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

std::string Bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The workspace as data: every path beneath it (but .moat) with its kind, mode and bytes.
std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    if (rel == ".moat") {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    lstat(it->path().c_str(), &st);
    std::string mode = std::to_string(st.st_mode & 07777);
    if (S_ISLNK(st.st_mode)) {
      out[rel] = "link " + fs::read_symlink(it->path()).string();
    } else if (S_ISDIR(st.st_mode)) {
      out[rel] = "dir " + mode;
    } else {
      out[rel] = "file " + mode + " sha256 " + Sha256Hex(Bytes(it->path().string()));
    }
  }
  return out;
}

std::string Describe(const std::map<std::string, std::string>& a,
                     const std::map<std::string, std::string>& b) {
  std::string d;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end())
      d += "  only before: " + k + "\n";
    else if (it->second != v)
      d += "  differs: " + k + "\n";
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) d += "  only after: " + k + "\n";
  }
  return d;
}

json Call(const std::string& name, const json& args) {
  return {{"name", name}, {"arguments", args}};
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    auto j = ParseJson(std::string_view(text).substr(pos, end - pos));
    if (j.ok()) out.push_back(*j);
    pos = end + 1;
  }
  return out;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = test::TempDir("checkpoint");
    ws_ = base_ + "/ws";
    fs::create_directories(ws_);
    fs::create_directories(base_ + "/tools");
  }
  void TearDown() override { fs::remove_all(base_); }

  std::string Policy(const json& extra = json::object()) {
    json p = {{"tools",
               {{"write_file", "allow"},
                {"edit_file", "allow"},
                {"apply_patch", "allow"},
                {"move", "allow"},
                {"delete", "allow"},
                {"make_dir", "allow"},
                {"sql", "allow"}}}};
    for (auto it = extra.begin(); it != extra.end(); ++it) p[it.key()] = *it;
    std::string path = base_ + "/policy-" + std::to_string(n_++) + ".json";
    Put(path, p.dump());
    return path;
  }
  std::string Script(const json& turns) {
    std::string path = base_ + "/script-" + std::to_string(n_++) + ".json";
    Put(path, json({{"model", "scripted"}, {"turns", turns}}).dump());
    return path;
  }
  // One run of `moat chat --json` with these turns; the session id is kept and resumed.
  std::vector<json> Run(const json& turns, const std::string& policy, const std::string& approve,
                        int want_status = 0) {
    std::string flags = "chat --json --script " + Script(turns) + " --workspace " + ws_ +
                        " --policy " + policy + " --approve " + approve + " --tools-dir " + base_ +
                        "/tools";
    if (!session_.empty()) flags += " --session " + session_;
    test::CliResult r = test::Cli(flags + " 'go'");
    EXPECT_EQ(r.status, want_status) << r.out << r.err;
    std::vector<json> lines = JsonLines(r.out);
    if (!lines.empty() && lines.front()["type"] == "session") {
      session_ = lines.front().value("id", "");
    }
    return lines;
  }
  std::string CheckpointDir() const { return ws_ + "/.moat/checkpoints/" + session_; }

  std::string base_, ws_, session_;
  int n_ = 0;
};

// Whether the built-in tool is there (the sql and js tools need third-party sources the
// sanitizer builds do not fetch).
bool HaveTool(const std::string& name) {
  return fs::exists(fs::path(MOAT_BINARY).parent_path() / "tools" / (name + ".wasm"));
}

json ToolEnd(const std::vector<json>& lines, const std::string& tool) {
  for (const json& j : lines) {
    if (j["type"] == "tool_end" && j["tool"] == tool) return j;
  }
  return json();
}

// Every built-in tool that writes, one step per run; then undo back through every step.
TEST_F(CheckpointTest, EveryWritingToolIsUndoneByteForByteStepByStep) {
  Put(ws_ + "/a.txt", "alpha\nbeta\ngamma\n");
  Put(ws_ + "/b.txt", "one\ntwo\nthree\n");
  Put(ws_ + "/dir/c.txt", "c content\n");
  Put(ws_ + "/dir/deep/d.bin", std::string("\x00\x01\x02\xff", 4));
  Put(ws_ + "/old/x.txt", "to be deleted\n");
  Put(ws_ + "/old/y/z.txt", "also\n");
  chmod((ws_ + "/b.txt").c_str(), 0640);
  std::string policy = Policy();

  std::string patch =
      "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n alpha\n-beta\n+BETA\n gamma\n"
      "--- a/dir/c.txt\n+++ b/dir/c.txt\n@@ -1 +1,2 @@\n c content\n+more\n"
      "--- /dev/null\n+++ b/patched/new.txt\n@@ -0,0 +1 @@\n+created by a patch\n";
  std::vector<std::pair<json, std::string>> ops = {
      {Call("write_file", {{"path", "new.txt"}, {"content", "fresh\n"}}), "write_file"},
      {Call("write_file", {{"path", "a.txt"}, {"content", "overwritten\n"}}), "write_file"},
      {Call("edit_file", {{"path", "b.txt"}, {"old_text", "two"}, {"new_text", "TWO"}}),
       "edit_file"},
      {Call("write_file", {{"path", "a.txt"}, {"content", "alpha\nbeta\ngamma\n"}}), "write_file"},
      {Call("apply_patch", {{"patch", patch}}), "apply_patch"},
      {Call("move", {{"from", "dir"}, {"to", "moved/dir2"}, {"create_dirs", true}}), "move"},
      {Call("move", {{"from", "b.txt"}, {"to", "new.txt"}, {"overwrite", true}}), "move"},
      {Call("delete", {{"path", "old"}, {"recursive", true}}), "delete"},
      {Call("make_dir", {{"path", "m/n/o"}, {"parents", true}}), "make_dir"},
      {Call("sql", {{"database", "data.db"},
                    {"sql", "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'x'), (2, 'y')"}}),
       "sql"},
      {Call("sql", {{"database", "data.db"}, {"sql", "UPDATE t SET b = 'z' WHERE a = 1"}}), "sql"},
  };
  if (!HaveTool("sql")) {  // the other tools still run
    std::erase_if(ops, [](const auto& op) { return op.second == "sql"; });
  }
  std::vector<std::map<std::string, std::string>> before;  // the workspace before each op
  std::vector<uint64_t> steps;
  for (const auto& [call, tool] : ops) {
    before.push_back(Snapshot(ws_));
    auto lines = Run({{{"tool_calls", {call}}}, {{"text", "done"}}}, policy, "none");
    json end = ToolEnd(lines, tool);
    ASSERT_EQ(end.value("status", ""), "ok") << call << "\n" << end;
    ASSERT_TRUE(end.contains("checkpoint")) << end;
    EXPECT_TRUE(end["checkpoint"]["undoable"].get<bool>()) << end;
    ASSERT_NE(Snapshot(ws_), before.back()) << "the call changed nothing: " << call;
    auto journal = undo::ReadJournal(CheckpointDir());
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    ASSERT_FALSE(journal->empty());
    steps.push_back(journal->back().step);
  }
  ASSERT_FALSE(session_.empty());
  // Steps are numbered for the session: each run's call is a later step.
  for (size_t i = 1; i < steps.size(); ++i) EXPECT_GT(steps[i], steps[i - 1]);

  // The diff names what changed.
  test::CliResult d = test::Cli("sessions --workspace " + ws_ + " diff " + session_);
  EXPECT_EQ(d.status, 0) << d.err;
  if (HaveTool("sql")) EXPECT_NE(d.out.find("data.db"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("m/n/o"), std::string::npos) << d.out;

  // Undo back through every step, newest first: each time the workspace is exactly what it
  // was before that step.
  for (size_t i = ops.size(); i-- > 0;) {
    test::CliResult u = test::Cli("sessions --workspace " + ws_ + " undo " + session_ + " --to " +
                                  std::to_string(steps[i]));
    ASSERT_EQ(u.status, 0) << ops[i].first << "\n" << u.out << u.err;
    auto now = Snapshot(ws_);
    EXPECT_EQ(now, before[i]) << "after undoing to step " << steps[i] << " (" << ops[i].first
                              << "):\n"
                              << Describe(before[i], now);
  }
  // A second undo finds nothing left to do and changes nothing.
  test::CliResult again = test::Cli("sessions --workspace " + ws_ + " undo " + session_);
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(Snapshot(ws_), before.front());
}

// A file changed outside moat after the step: undo refuses, names it, and changes nothing;
// --force restores it.
TEST_F(CheckpointTest, UndoRefusesToOverwriteAChangeMadeOutsideMoat) {
  Put(ws_ + "/a.txt", "original\n");
  Put(ws_ + "/b.txt", "other\n");
  std::string policy = Policy();
  auto before = Snapshot(ws_);
  Run({{{"tool_calls",
         {Call("write_file", {{"path", "a.txt"}, {"content", "agent\n"}}),
          Call("write_file", {{"path", "b.txt"}, {"content", "agent too\n"}})}}},
       {{"text", "done"}}},
      policy, "none");
  Put(ws_ + "/a.txt", "the user's edit\n");
  test::CliResult u = test::Cli("sessions --workspace " + ws_ + " undo " + session_);
  EXPECT_NE(u.status, 0) << u.out;
  EXPECT_NE((u.out + u.err).find("a.txt"), std::string::npos) << u.out << u.err;
  EXPECT_EQ(Bytes(ws_ + "/a.txt"), "the user's edit\n");
  EXPECT_EQ(Bytes(ws_ + "/b.txt"), "agent too\n") << "a refused undo changed a file";
  u = test::Cli("sessions --workspace " + ws_ + " undo " + session_ + " --force");
  EXPECT_EQ(u.status, 0) << u.out << u.err;
  EXPECT_EQ(Snapshot(ws_), before);
  // The undo is on record in the audit log.
  std::string audit = Bytes(ws_ + "/.moat/audit.jsonl");
  EXPECT_NE(audit.find("\"undo\""), std::string::npos);
}

// The pre-image is on record before the change: a run killed with SIGKILL in the middle of
// a step (the database already changed, the call not ended) is undone to before that step.
TEST_F(CheckpointTest, ARunKilledMidStepIsUndoneToBeforeThatStep) {
  if (!HaveTool("sql")) GTEST_SKIP() << "the sql tool is not built in this configuration";
  std::string policy =
      Policy({{"tools", {{"sql", {{"decision", "allow"}, {"timeout", "60s"}, {"fuel", "1e13"}}}}}});
  Run({{{"tool_calls",
         {Call("sql", {{"database", "data.db"},
                       {"sql", "CREATE TABLE t(a); INSERT INTO t VALUES (1)"}})}}},
       {{"text", "done"}}},
      policy, "none");
  ASSERT_FALSE(session_.empty());
  auto before = Snapshot(ws_);
  std::string db_before = Bytes(ws_ + "/data.db");
  // Commits an insert, then runs for a long time.
  std::string slow =
      "INSERT INTO t VALUES (2); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
      "WHERE x < 4000000000) SELECT count(*) FROM c";
  std::string script =
      Script({{{"tool_calls", {Call("sql", {{"database", "data.db"}, {"sql", slow}})}}},
              {{"text", "done"}}});
  std::string moat = MOAT_BINARY;
  std::vector<std::string> args = {
      moat,     "chat",        "--json",         "--script",  script, "--workspace",
      ws_,      "--policy",    policy,           "--approve", "none", "--session",
      session_, "--tools-dir", base_ + "/tools", "go"};
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(MOAT_BINARY, argv.data());
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  // Wait until the database has changed on disk (the insert committed), then kill.
  auto start = std::chrono::steady_clock::now();
  bool changed = false;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
    if (Bytes(ws_ + "/data.db") != db_before) {
      changed = true;
      break;
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    usleep(2000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(changed) << "the step never changed the database";
  auto journal = undo::ReadJournal(CheckpointDir());
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  ASSERT_GE(journal->size(), 2u);
  EXPECT_FALSE(journal->back().ended) << "the killed call has an end line";
  test::CliResult u = test::Cli("sessions --workspace " + ws_ + " undo " + session_ + " --to " +
                                std::to_string(journal->back().step));
  EXPECT_EQ(u.status, 0) << u.out << u.err;
  auto now = Snapshot(ws_);
  EXPECT_EQ(now, before) << Describe(before, now);
}

// Past the session's bound a call is not undoable (the event and the audit log say so);
// with when_full "ask" the next writing call is asked about, and why.
TEST_F(CheckpointTest, PastTheBoundACallIsNotUndoableAndTheNextIsAsked) {
  Put(ws_ + "/f0", "x\n");
  // Room for two pre-images: the delete takes one, the make_dir needs three.
  auto lines = Run({{{"tool_calls", {Call("delete", {{"path", "f0"}})}}},
                    {{"tool_calls", {Call("make_dir", {{"path", "d1/d2/d3"}, {"parents", true}})}}},
                    {{"text", "done"}}},
                   Policy({{"checkpoints", {{"max_files", 2}}}}), "none");
  std::vector<json> ends;
  for (const json& j : lines) {
    if (j["type"] == "tool_end") ends.push_back(j);
  }
  ASSERT_EQ(ends.size(), 2u) << lines.size();
  EXPECT_TRUE(ends[0]["checkpoint"].value("undoable", false)) << ends[0];
  EXPECT_EQ(ends[1]["status"], "ok") << ends[1];  // the change is made, only not kept
  EXPECT_FALSE(ends[1]["checkpoint"].value("undoable", true)) << ends[1];
  EXPECT_NE(ends[1]["checkpoint"].value("reason", "").find("limit"), std::string::npos) << ends[1];
  EXPECT_TRUE(fs::is_directory(ws_ + "/d1/d2/d3"));
  std::string audit = Bytes(ws_ + "/.moat/audit.jsonl");
  EXPECT_NE(audit.find("\"undoable\":false"), std::string::npos);

  // The store is full: with when_full "ask", the next writing call is asked about, and why.
  lines = Run({{{"tool_calls", {Call("write_file", {{"path", "g"}, {"content", "y"}})}}},
               {{"text", "done"}}},
              Policy({{"checkpoints", {{"max_files", 2}, {"when_full", "ask"}}}}), "none");
  json end = ToolEnd(lines, "write_file");
  EXPECT_EQ(end.value("status", ""), "not_approved") << end;
  EXPECT_EQ(end.value("decision", ""), "ask") << end;
  EXPECT_NE(end.value("reason", "").find("checkpoints are full"), std::string::npos) << end;
  EXPECT_FALSE(fs::exists(ws_ + "/g"));
  audit = Bytes(ws_ + "/.moat/audit.jsonl");
  EXPECT_NE(audit.find("checkpoints are full"), std::string::npos);
  // "deny" refuses it outright.
  lines = Run({{{"tool_calls", {Call("write_file", {{"path", "g"}, {"content", "y"}})}}},
               {{"text", "done"}}},
              Policy({{"checkpoints", {{"max_files", 2}, {"when_full", "deny"}}}}), "all");
  end = ToolEnd(lines, "write_file");
  EXPECT_EQ(end.value("status", ""), "denied") << end;
  EXPECT_FALSE(fs::exists(ws_ + "/g"));

  // Undo refuses to pass a call that is not undoable unless forced, and names it.
  test::CliResult u = test::Cli("sessions --workspace " + ws_ + " undo " + session_);
  EXPECT_NE(u.status, 0) << u.out;
  EXPECT_NE((u.out + u.err).find("d1"), std::string::npos) << u.out << u.err;
  EXPECT_FALSE(fs::exists(ws_ + "/f0"));
  EXPECT_TRUE(fs::is_directory(ws_ + "/d1/d2/d3"));
}

// A checkpoint never holds a hidden or protected path a guest could read: they cannot be
// changed, so they are never kept; what a directory move keeps lives under .moat, which no
// tool can list or read.
TEST_F(CheckpointTest, HiddenAndProtectedPathsStayOutOfReach) {
  Put(ws_ + "/.git/config", "[core]\n");
  Put(ws_ + "/proj/.env", "SECRET=1\n");
  Put(ws_ + "/proj/main.c", "int main;\n");
  std::string policy = Policy({{"tools",
                                {{"write_file", "allow"},
                                 {"move", "allow"},
                                 {"read_file", "allow"},
                                 {"list_dir", "allow"}}}});
  auto lines = Run({{{"tool_calls",
                      {Call("write_file", {{"path", ".git/config"}, {"content", "evil"}}),
                       Call("write_file", {{"path", "proj/.env"}, {"content", "evil"}})}}},
                    {{"tool_calls", {Call("move", {{"from", "proj"}, {"to", "proj2"}})}}},
                    {{"text", "done"}}},
                   policy, "none");
  EXPECT_EQ(Bytes(ws_ + "/.git/config"), "[core]\n");
  auto journal = undo::ReadJournal(CheckpointDir());
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  for (const auto& c : *journal) {
    for (const auto& ch : c.changes) {
      EXPECT_EQ(ch.path.find(".git"), std::string::npos) << ch.path;
    }
  }
  // Whatever the move kept, no tool reaches it.
  std::string blobs = ".moat/checkpoints/" + session_ + "/blobs";
  auto probe =
      Run({{{"tool_calls",
             {Call("list_dir", {{"path", ".moat"}}), Call("list_dir", {{"path", blobs}}),
              Call("read_file", {{"path", blobs + "/1"}}),
              Call("read_file", {{"path", ".moat/checkpoints/" + session_ + "/journal.jsonl"}})}}},
           {{"text", "done"}}},
          policy, "none");
  int ends = 0;
  for (const json& j : probe) {
    if (j["type"] != "tool_end") continue;
    ++ends;
    EXPECT_NE(j["status"], "ok") << j;
  }
  EXPECT_EQ(ends, 4);
  // And an undo of the move puts .env back where it was.
  test::CliResult u = test::Cli("sessions --workspace " + ws_ + " undo " + session_);
  EXPECT_EQ(u.status, 0) << u.out << u.err;
  EXPECT_EQ(Bytes(ws_ + "/proj/.env"), "SECRET=1\n");
  EXPECT_FALSE(fs::exists(ws_ + "/proj2"));
}

// A journal is a file in the workspace, which may have come from elsewhere (a cloned
// repository): an undo changes nothing in a folder that is neither the workspace nor a
// writable mount of a policy the user trusts or names, even forced. A session open in
// another process cannot be undone under it.
TEST_F(CheckpointTest, APlantedJournalCannotReachOutsideTheWorkspace) {
  std::string outside = base_ + "/outside";
  Put(outside + "/victim.txt", "precious\n");
  std::string id = "0123456789ab";
  std::string dir = ws_ + "/.moat/checkpoints/" + id;
  fs::create_directories(dir);
  chmod((ws_ + "/.moat").c_str(), 0700);
  std::string sha = Sha256Hex("precious\n");
  Put(dir + "/journal.jsonl",
      json({{"t", "call"}, {"call", 1}, {"step", 1}, {"id", "c"}, {"tool", "write_file"}}).dump() +
          "\n" +
          json({{"t", "pre"},
                {"call", 1},
                {"n", 1},
                {"root", outside},
                {"path", "victim.txt"},
                {"kind", "absent"}})
              .dump() +
          "\n" +
          json({{"t", "post"},
                {"call", 1},
                {"root", outside},
                {"path", "victim.txt"},
                {"kind", "file"},
                {"mode", 420},
                {"size", 9},
                {"sha256", sha}})
              .dump() +
          "\n" + json({{"t", "end"}, {"call", 1}, {"undoable", true}}).dump() + "\n");
  for (const char* flags : {"", " --force"}) {
    test::CliResult u = test::Cli("sessions --workspace " + ws_ + " undo " + id + flags);
    EXPECT_NE(u.status, 0) << flags << u.out << u.err;
    EXPECT_NE((u.out + u.err).find(outside), std::string::npos) << u.out << u.err;
    EXPECT_EQ(Bytes(outside + "/victim.txt"), "precious\n") << flags;
  }
}

TEST_F(CheckpointTest, APolicyMountOutsideTheWorkspaceIsUndoneWhenTheUserNamesThePolicy) {
  std::string data = base_ + "/data";
  Put(data + "/d.txt", "data\n");
  std::string policy = Policy({{"mounts", {data + "::/data"}}});
  Run({{{"tool_calls",
         {Call("write_file", {{"path", "/data/d.txt"}, {"content", "changed\n"}}),
          Call("write_file", {{"path", "w.txt"}, {"content", "w\n"}})}}},
       {{"text", "done"}}},
      policy, "none");
  ASSERT_EQ(Bytes(data + "/d.txt"), "changed\n");
  // Without the policy, the mount is not the workspace's: nothing is changed.
  test::CliResult u = test::Cli("sessions --workspace " + ws_ + " undo " + session_);
  EXPECT_NE(u.status, 0) << u.out << u.err;
  EXPECT_EQ(Bytes(data + "/d.txt"), "changed\n");
  EXPECT_TRUE(fs::exists(ws_ + "/w.txt"));
  // While the session is open elsewhere (its checkpoints locked), no undo.
  {
    int fd = open((CheckpointDir() + "/journal.jsonl").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(flock(fd, LOCK_EX), 0);
    u = test::Cli("sessions --workspace " + ws_ + " undo " + session_ + " --policy " + policy);
    EXPECT_NE(u.status, 0) << u.out << u.err;
    EXPECT_NE((u.out + u.err).find("another moat process"), std::string::npos) << u.err;
    close(fd);
  }
  u = test::Cli("sessions --workspace " + ws_ + " undo " + session_ + " --policy " + policy);
  EXPECT_EQ(u.status, 0) << u.out << u.err;
  EXPECT_EQ(Bytes(data + "/d.txt"), "data\n");
  EXPECT_FALSE(fs::exists(ws_ + "/w.txt"));
}

}  // namespace
}  // namespace moat
