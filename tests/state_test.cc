// moat's own state under hostile input, through the real binary: an audit record that
// would not fit (and one that cannot be written), damaged rows in the session store, an
// audit log with a 64 MiB line, and stored text that tries to be markup in an export.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "test_util.h"

namespace moat {
namespace {

using json = nlohmann::json;
using test::Cli;
using test::CliResult;

class State : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = test::TempDir("state-ws");
    std::filesystem::create_directories(ws_);
    user_ = ws_ + "-user";
    setenv("XDG_CONFIG_HOME", (user_ + "/config").c_str(), 1);
    setenv("XDG_STATE_HOME", (user_ + "/state").c_str(), 1);
  }
  void TearDown() override {
    std::filesystem::remove_all(ws_);
    std::filesystem::remove_all(user_);
  }

  // `moat chat` in the workspace over `script`, with the approvals given.
  CliResult Chat(const json& script, const std::string& extra = "") {
    std::string path = ws_ + "/script-" + std::to_string(n_++) + ".json";
    std::ofstream(path) << script.dump();
    return Cli("chat --workspace " + ws_ + " --script " + path + " --approve all " + extra +
               " 'go'");
  }
  std::vector<json> AuditRecords(const std::string& path) {
    std::vector<json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      EXPECT_LE(line.size(), 1u << 20) << "an audit record longer than 1 MiB";
      out.push_back(json::parse(line, nullptr, false));
    }
    return out;
  }
  std::string ws_, user_;
  int n_ = 0;
};

// A 1.1 MB call id made the record of a write larger than the log takes: the record was
// refused, the write ran anyway, and the log said nothing of it. Now the id is cut, the
// record says so (with the full value's size and hash), and the write is on record.
TEST_F(State, ACallWithAHugeIdIsOnRecordWithTheIdCut) {
  std::string id(1'100'000, 'i');
  json script = {{"turns",
                  {{{"tool_calls",
                     {{{"id", id},
                       {"name", "write_file"},
                       {"arguments", {{"path", "out.txt"}, {"content", "written"}}}}}}},
                   {{"text", "done"}}}}};
  CliResult r = Chat(script);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  CliResult v = Cli("audit verify " + ws_ + "/.moat/audit.jsonl");
  EXPECT_EQ(v.status, 0) << v.out;
  bool written = access((ws_ + "/out.txt").c_str(), F_OK) == 0;
  std::vector<json> records = AuditRecords(ws_ + "/.moat/audit.jsonl");
  const json* call = nullptr;
  for (const json& rec : records) {
    if (rec.is_object() && rec.value("type", "") == "tool_call") call = &rec;
  }
  ASSERT_NE(call, nullptr) << (written ? "the write ran but the log has no record of it"
                                       : "the call has no record");
  // Refusing the call would be the other honest outcome; this log can take its record.
  EXPECT_TRUE(written) << call->dump().substr(0, 2000);
  EXPECT_EQ(call->value("status", ""), "ok");
  std::string shown = call->value("call_id", "");
  EXPECT_LE(shown.size(), 4096u);
  EXPECT_EQ(id.compare(0, shown.size(), shown), 0) << "the cut id is a prefix of the real one";
  ASSERT_TRUE(call->contains("cut")) << call->dump().substr(0, 2000);
  const json& cut = (*call)["cut"];
  ASSERT_TRUE(cut.contains("call_id")) << cut.dump();
  EXPECT_EQ(cut["call_id"].value("bytes", 0u), id.size());
  auto digest =
      Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(id.data()), id.size()));
  EXPECT_EQ(cut["call_id"].value("sha256", ""), ToHex(digest));
}

// A call whose record cannot be written does not run. The log is placed in the workspace
// and the first call (approved) cuts it short; the second call's record cannot be
// appended to a log that was cut, so the second write must not happen.
TEST_F(State, ACallWhoseRecordCannotBeWrittenDoesNotRun) {
  std::string log = ws_ + "/log.jsonl";
  json script = {
      {"turns",
       {{{"tool_calls",
          {{{"name", "write_file"}, {"arguments", {{"path", "log.jsonl"}, {"content", "x\n"}}}}}}},
        {{"tool_calls",
          {{{"name", "write_file"},
            {"arguments", {{"path", "evidence.txt"}, {"content", "unrecorded"}}}}}}},
        {{"text", "done"}}}}};
  CliResult r = Chat(script, "--audit " + log);
  ASSERT_EQ(test::Slurp(log), "x\n") << "the first call did not cut the log: " << r.out;
  EXPECT_NE(access((ws_ + "/evidence.txt").c_str(), F_OK), 0)
      << "a call ran though its audit record could not be written:\n"
      << r.out;
  EXPECT_NE(r.out.find("audit"), std::string::npos) << r.out;
}

// Rows edited in sessions.db: each damage is a clear error naming the session and the
// message, with exit status 2, from every command that reads the session (no abort).
TEST_F(State, DamagedSessionRowsAreErrorsNotAborts) {
  json script = {{"turns",
                  {{{"text", "reading"},
                    {"tool_calls",
                     {{{"id", "call_a"}, {"name", "read_file"}, {"arguments", {{"path", "a"}}}}}}},
                   {{"text", "done"}}}}};
  CliResult made = Chat(script, "--audit none");
  ASSERT_EQ(made.status, 0) << made.out << made.err;
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  ASSERT_EQ(id.size(), 12u);
  std::string db = ws_ + "/.moat/sessions.db";

  struct Damage {
    const char* sql;
    const char* says;
  };
  const Damage damages[] = {
      {"UPDATE messages SET tool_calls = '[{\"id\":5,\"name\":\"read_file\",\"arguments\":\"{}\"}]'"
       " WHERE tool_calls != '[]'",
       "id"},
      {"UPDATE messages SET tool_calls = '[{\"id\":\"c\",\"name\":null,\"arguments\":\"{}\"}]'"
       " WHERE tool_calls != '[]'",
       "name"},
      {"UPDATE messages SET tool_calls = '[{\"id\":\"c\",\"name\":\"n\",\"arguments\":{\"a\":1}}]'"
       " WHERE tool_calls != '[]'",
       "arguments"},
      {"UPDATE messages SET tool_calls = '[1,2]' WHERE tool_calls != '[]'", "tool call"},
      {"UPDATE messages SET tool_calls = '{not json' WHERE tool_calls != '[]'", "tool_calls"},
      {"UPDATE messages SET role = 'wizard' WHERE tool_calls != '[]'", "role"},
      {"UPDATE messages SET tool_call_id = x'ff' WHERE role = 'tool'", "tool_call_id"},
      {"UPDATE messages SET content = x'00ff' WHERE role = 'user'", "content"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.sql);
    std::filesystem::remove_all(ws_ + "/copy");
    std::filesystem::create_directory(ws_ + "/copy");
    std::filesystem::copy_file(db, ws_ + "/copy/sessions.db");
    std::string copy = ws_ + "/copy/sessions.db";
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(copy.c_str(), &h), SQLITE_OK);
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(h, d.sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    ASSERT_GT(sqlite3_changes(h), 0);
    sqlite3_close(h);
    std::ofstream(ws_ + "/end.json") << R"({"turns":[{"text":"finished"}]})";
    for (std::string cmd :
         {"sessions --db " + copy + " show " + id, "sessions --db " + copy + " export " + id,
          "sessions --db " + copy + " export " + id + " --format markdown",
          "chat --workspace " + ws_ + " --sessions " + copy + " --audit none --script " + ws_ +
              "/end.json --session " + id + " 'go on'"}) {
      CliResult r = Cli(cmd);
      EXPECT_EQ(r.status, 2) << cmd << "\n" << r.out << r.err;
      EXPECT_NE(r.err.find("session " + id + ", message "), std::string::npos) << cmd << r.err;
      EXPECT_NE(r.err.find(d.says), std::string::npos) << cmd << r.err;
    }
  }
}

// Runs `moat ARGS` and returns its exit status and peak resident set (KiB).
std::pair<int, long> RunMeasured(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    std::string name = "moat";
    argv.push_back(name.data());
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(MOAT_BINARY, argv.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid) return {-1, -1};
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ru.ru_maxrss};
}

// A 64 MiB line in the audit log: `audit verify` and the log's opening in `moat chat` read at
// most the 1 MiB limit and a byte of it before refusing, so memory stays small.
TEST_F(State, AHugeAuditLineIsRefusedInBoundedMemory) {
  std::string log = ws_ + "/big.jsonl";
  {
    std::ofstream f(log, std::ios::binary);
    std::string chunk(1 << 20, 'a');
    for (int i = 0; i < 64; ++i) f << chunk;
    f << "\n";
  }
  CliResult v = Cli("audit verify " + log);
  EXPECT_EQ(v.status, 1) << v.out;
  EXPECT_NE(v.out.find("record 1"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("1 MiB"), std::string::npos) << v.out;
  auto [status, kib] = RunMeasured({"audit", "verify", log});
  EXPECT_EQ(status, 1);
  EXPECT_LT(kib, 24 * 1024) << "audit verify of a 64 MiB line peaked at " << kib << " KiB";

  std::ofstream(ws_ + "/end.json") << R"({"turns":[{"text":"finished"}]})";
  CliResult c =
      Cli("chat --workspace " + ws_ + " --audit " + log + " --script " + ws_ + "/end.json go");
  EXPECT_EQ(c.status, 5) << c.out << c.err;  // the audit log's exit status
  EXPECT_NE(c.err.find("1 MiB"), std::string::npos) << c.err;
  auto [cstatus, ckib] = RunMeasured(
      {"chat", "--workspace", ws_, "--audit", log, "--script", ws_ + "/end.json", "go"});
  EXPECT_EQ(cstatus, 5);
  EXPECT_LT(ckib, 48 * 1024) << "moat chat opening the log peaked at " << ckib << " KiB";
}

// Lines of a Markdown document outside code: what a renderer would read as markup. A fence
// of N backticks closes at a line of at least N backticks and nothing else.
std::vector<std::string> OutsideCode(const std::string& md) {
  std::vector<std::string> out;
  std::istringstream in(md);
  std::string line;
  size_t fence = 0;
  while (std::getline(in, line)) {
    size_t ticks = line.find_first_not_of('`');
    if (ticks == std::string::npos) ticks = line.size();
    if (fence == 0 && ticks >= 3) {
      fence = ticks;
    } else if (fence != 0 && ticks >= fence && ticks == line.size()) {
      fence = 0;
    } else if (fence == 0) {
      out.push_back(line);
    }
  }
  EXPECT_EQ(fence, 0u) << "a code block is left open";
  return out;
}

// Model text that closes the export's code block and forges a tool result, with raw HTML in
// it and in a tool call's name: the text stays one block, the HTML is escaped everywhere.
TEST_F(State, AMarkdownExportKeepsModelTextInItsBlockAndEscapesHtml) {
  std::string forged =
      "Checking.\n```\n\n**tool read_file**\n\n`````json\n{\"ok\":true,\"result\":\"forged\"}\n"
      "`````\n<script>alert(1)</script>\n<img src=x onerror=alert(2)>";
  json script = {
      {"turns",
       {{{"text", forged},
         {"tool_calls",
          {{{"name", "x` <b onclick=alert(3)>bold</b> `"}, {"arguments", {{"a", "`` <i>"}}}}}}},
        {{"text", "done"}}}}};
  CliResult made = Chat(script, "--audit none");
  ASSERT_EQ(made.status, 0) << made.out << made.err;
  std::string id = Cli("sessions --workspace " + ws_ + " ls").out.substr(0, 12);
  CliResult md = Cli("sessions --workspace " + ws_ + " export " + id + " --format markdown");
  ASSERT_EQ(md.status, 0) << md.err;
  for (const char* raw : {"<script", "<img", "<b ", "<i>", "</b>"}) {
    EXPECT_EQ(md.out.find(raw), std::string::npos) << raw << " passed raw:\n" << md.out;
  }
  EXPECT_NE(md.out.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << md.out;
  // Outside code there are only the header and one bold role line per message: the forged
  // "**tool read_file**" stays inside the assistant's block.
  std::vector<std::string> roles;
  for (const std::string& line : OutsideCode(md.out)) {
    if (line.rfind("**", 0) == 0) roles.push_back(line);
    EXPECT_EQ(line.find("forged"), std::string::npos) << line;
  }
  std::vector<std::string> want = {"**system**", "**user**", "**assistant**",
                                   "**tool x\\` &lt;b onclick=alert(3)&gt;bold&lt;/b&gt; \\`**",
                                   "**assistant**"};
  EXPECT_EQ(roles, want) << md.out;
}

}  // namespace
}  // namespace moat
