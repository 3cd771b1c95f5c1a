// The scenario corpus (tests/scenarios/, format in its README.md): each folder is a policy, a
// scripted model transcript and a workspace; `moat chat --json` runs it through the real
// binary, and its events, exit status, audit log, tool results and final files must be the
// ones expected.json names. One test per folder; a folder that is not well formed fails
// (a broken corpus or driver must never pass by checking nothing).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/json_text.h"
#include "test_util.h"

namespace moat {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kCorpus = fs::path(MOAT_SOURCE_DIR) / "tests" / "scenarios";

// Every folder of the corpus, sorted; files beside them (README.md) are not scenarios.
std::vector<std::string> ScenarioNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(kCorpus, ec)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Git cannot hold a folder named .git, so files/ spells it _git.
fs::path WorkspacePath(const fs::path& relative) {
  fs::path out;
  for (const fs::path& part : relative) out /= part == "_git" ? fs::path(".git") : part;
  return out;
}

// The workspace's files and symlinks (relative path -> content or link target), .moat/ left
// out: it is moat's own state.
std::map<std::string, std::string> TreeOf(const fs::path& root) {
  std::map<std::string, std::string> tree;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    fs::path rel = it->path().lexically_relative(root);
    if (*rel.begin() == ".moat") {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink()) {
      tree[rel.string()] = "symlink -> " + fs::read_symlink(it->path()).string();
    } else if (it->is_regular_file()) {
      tree[rel.string()] = test::Slurp(it->path().string());
    }
  }
  return tree;
}

std::string Quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Shown(const json& j) { return DumpJson(j); }

// One scenario folder, read and checked for form before anything runs.
struct Scenario {
  std::string name;
  fs::path dir;
  json expected;
  std::vector<std::string> args;
  bool has_policy = false;
};

// A relative path inside the workspace: no "..", not absolute, not empty.
bool InsideWorkspace(const std::string& p) {
  fs::path path(p);
  if (p.empty() || path.is_absolute()) return false;
  for (const fs::path& part : path) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

// The keys a field may have, and which of them it must have.
std::string CheckKeys(const json& j, const std::string& where, const std::set<std::string>& known,
                      const std::set<std::string>& required) {
  if (!j.is_object()) return where + " is not an object";
  for (const auto& [key, value] : j.items()) {
    if (known.count(key) == 0) return where + " has an unknown key \"" + key + "\"";
  }
  for (const std::string& key : required) {
    if (!j.contains(key)) return where + " lacks \"" + key + "\"";
  }
  return "";
}

bool StringArray(const json& j) {
  return j.is_array() &&
         std::all_of(j.begin(), j.end(), [](const json& x) { return x.is_string(); });
}

// The error that makes the folder `dir` malformed, or "".
std::string Load(const fs::path& dir, Scenario* s) {
  const std::string name = dir.filename().string();
  s->name = name;
  s->dir = dir;
  if (!fs::is_directory(dir)) return "not a folder";
  if (name.empty() ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
    return "the folder's name must be lower-case letters, digits and _";
  }
  static const std::set<std::string> kEntries = {"policy.json", "script.json", "files", "args",
                                                 "expected.json"};
  for (const fs::directory_entry& e : fs::directory_iterator(s->dir)) {
    std::string entry = e.path().filename().string();
    if (kEntries.count(entry) == 0) return "unexpected entry " + entry;
  }
  if (!fs::is_directory(s->dir / "files")) return "no files/ folder";
  if (!fs::is_regular_file(s->dir / "script.json")) return "no script.json";
  auto script = ParseJson(test::Slurp((s->dir / "script.json").string()));
  if (!script || !script->is_object() || !script->contains("turns")) {
    return "script.json is not a script (an object with \"turns\")";
  }
  s->has_policy = fs::exists(s->dir / "policy.json");
  if (s->has_policy) {
    auto policy = ParseJson(test::Slurp((s->dir / "policy.json").string()));
    if (!policy || !policy->is_object()) return "policy.json is not a JSON object";
  }
  if (fs::exists(s->dir / "args")) {
    std::istringstream in(test::Slurp((s->dir / "args").string()));
    for (std::string a; in >> a;) {
      if (a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                              "_=.,:/+-") != std::string::npos) {
        return "args: \"" + a + "\" holds a character the format does not allow";
      }
      s->args.push_back(a);
    }
    if (s->args.empty()) return "args is empty (leave it out instead)";
  }
  auto expected = ParseJson(test::Slurp((s->dir / "expected.json").string()));
  if (!expected) return "expected.json: " + expected.error().message;
  s->expected = *expected;
  const json& x = s->expected;
  std::string bad =
      CheckKeys(x, "expected.json",
                {"description", "exit_status", "stop", "stop_message", "tool_calls", "tool_events",
                 "approvals", "warnings", "usage", "audit", "files", "absent"},
                {"description", "exit_status", "stop", "tool_calls", "audit"});
  if (!bad.empty()) return bad;
  if (!x["description"].is_string() || x["description"].get<std::string>().empty()) {
    return "description must say what the scenario checks";
  }
  if (!x["exit_status"].is_number_integer()) return "exit_status is not an integer";
  if (!x["stop"].is_string()) return "stop is not a string";
  if (x.contains("stop_message") && !x["stop_message"].is_string()) {
    return "stop_message is not a string";
  }
  if (!x["tool_calls"].is_array()) return "tool_calls is not an array";
  for (size_t i = 0; i < x["tool_calls"].size(); ++i) {
    const json& c = x["tool_calls"][i];
    std::string where = "tool_calls[" + std::to_string(i) + "]";
    bad = CheckKeys(c, where,
                    {"tool", "status", "decision", "denials", "result_contains", "result_excludes"},
                    {"tool", "status", "decision"});
    if (!bad.empty()) return bad;
    for (const char* k : {"tool", "status", "decision"}) {
      if (!c[k].is_string()) return where + "." + k + " is not a string";
    }
    if (c.contains("denials")) {
      if (!c["denials"].is_array()) return where + ".denials is not an array";
      for (const json& d : c["denials"]) {
        bad = CheckKeys(d, where + ".denials[]", {"operation", "subject", "reason"}, {});
        if (!bad.empty()) return bad;
        if (d.empty()) return where + ".denials[] names nothing to match";
        for (const auto& [k, v] : d.items()) {
          if (!v.is_string()) return where + ".denials[]." + k + " is not a string";
        }
      }
    }
    for (const char* k : {"result_contains", "result_excludes"}) {
      if (c.contains(k) && !StringArray(c[k])) return where + "." + k + " is not a string array";
    }
  }
  for (const char* k : {"tool_events", "approvals", "warnings", "audit", "absent"}) {
    if (x.contains(k) && !StringArray(x[k])) return std::string(k) + " is not a string array";
  }
  if (x["audit"].empty()) return "audit is empty (every run leaves records)";
  if (x.contains("usage")) {
    if (!x["usage"].is_object()) return "usage is not an object";
    for (const auto& [k, v] : x["usage"].items()) {
      if (!v.is_number()) return "usage." + k + " is not a number";
    }
  }
  if (x.contains("files")) {
    if (!x["files"].is_object()) return "files is not an object";
    for (const auto& [k, v] : x["files"].items()) {
      if (!InsideWorkspace(k)) return "files: \"" + k + "\" is not a path inside the workspace";
      if (!v.is_string()) return "files: \"" + k + "\" is not a string";
    }
  }
  for (const json& p : x.value("absent", json::array())) {
    if (!InsideWorkspace(p)) return "absent: \"" + p.get<std::string>() + "\" is not inside";
    if (x.contains("files") && x["files"].contains(p.get<std::string>())) {
      return "absent: \"" + p.get<std::string>() + "\" is also in files";
    }
  }
  return "";
}

// The mismatches of one run, one per line.
struct Diff {
  std::vector<std::string> lines;
  void Add(const std::string& what, const std::string& want, const std::string& got) {
    lines.push_back(what + ":\n      expected " + want + "\n      got      " + got);
  }
  void Note(const std::string& what) { lines.push_back(what); }
  bool empty() const { return lines.empty(); }
  std::string Text() const {
    std::string out;
    for (const std::string& l : lines) out += "  - " + l + "\n";
    return out;
  }
};

std::string Joined(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + "]";
}

std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  for (const json& x : j) out.push_back(x.get<std::string>());
  return out;
}

// The object x[key], or an empty one: a reference that outlives the loop over its items.
const json& Object(const json& x, const char* key) {
  static const json kEmpty = json::object();
  return x.contains(key) ? x[key] : kEmpty;
}

std::string Str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// Runs one scenario and compares; returns its mismatches.
Diff RunScenario(const Scenario& s, const fs::path& root) {
  Diff diff;
  const json& x = s.expected;
  fs::path ws = root / "ws", user = root / "user";
  fs::remove_all(root);
  fs::create_directories(ws);
  fs::create_directories(user);
  const fs::path files = s.dir / "files";
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(files)) {
    fs::path to = ws / WorkspacePath(e.path().lexically_relative(files));
    if (e.is_symlink()) {
      fs::copy_symlink(e.path(), to);
    } else if (e.is_directory()) {
      fs::create_directories(to);
    } else {
      fs::copy_file(e.path(), to);
    }
  }
  const std::map<std::string, std::string> initial = TreeOf(ws);

  // The user's folders (tools, trust, approvals, secrets) are the scenario's own, empty.
  std::string env = "-u MOAT_TOOL_PATH -u MOAT_SECRETS_FILE XDG_CONFIG_HOME=" +
                    Quoted((user / "config").string()) +
                    " XDG_STATE_HOME=" + Quoted((user / "state").string()) +
                    " MOAT_CONFIG=" + Quoted((user / "no-config.json").string());
  std::string cmd = "chat --json --workspace " + Quoted(ws.string()) +
                    " --provider scripted --script " + Quoted((s.dir / "script.json").string());
  if (s.has_policy) cmd += " --policy " + Quoted((s.dir / "policy.json").string());
  for (const std::string& a : s.args) cmd += " " + Quoted(a);
  cmd += " go";
  // A hang fails the scenario (status 137) instead of stalling the test.
  test::CliResult r =
      test::Shell("</dev/null env " + env + " timeout -s KILL 120 " MOAT_BINARY " " + cmd);
  if (r.status != x["exit_status"].get<int>()) {
    diff.Add("exit status", std::to_string(x["exit_status"].get<int>()),
             std::to_string(r.status) + " (stderr: " + r.err + ")");
  }

  // Every line is one versioned event; the session first, one stop last.
  std::vector<json> events;
  std::istringstream out(r.out);
  size_t n = 0;
  for (std::string line; std::getline(out, line); ++n) {
    auto e = ParseJson(line);
    if (!e || !e->is_object()) {
      diff.Note("stdout line " + std::to_string(n + 1) + " is not a JSON object: " + line);
      continue;
    }
    if ((*e)["v"] != 1 || !(*e)["type"].is_string()) {
      diff.Note("stdout line " + std::to_string(n + 1) + " lacks \"v\":1 or a type: " + line);
    }
    events.push_back(std::move(*e));
  }
  if (events.empty() || Str(events.front(), "type") != "session" ||
      !events.front()["id"].is_string()) {
    diff.Note("the first line is not the session: " + r.out.substr(0, 300));
    return diff;
  }
  const std::string session_id = events.front()["id"];
  size_t stops = 0;
  for (const json& e : events) stops += Str(e, "type") == "stop";
  if (stops != 1 || Str(events.back(), "type") != "stop") {
    diff.Note("not exactly one stop event, last: " + std::to_string(stops) + " stop events");
    return diff;
  }
  const json& stop = events.back();
  if (Str(stop, "stop") != x["stop"].get<std::string>()) {
    diff.Add("stop", x["stop"], Str(stop, "stop") + " (" + Str(stop, "message") + ")");
  }
  if (x.contains("stop_message") &&
      Str(stop, "message").find(x["stop_message"].get<std::string>()) == std::string::npos) {
    diff.Add("stop message", "to contain " + Shown(x["stop_message"]), Str(stop, "message"));
  }
  for (const auto& [k, v] : Object(x, "usage").items()) {
    if (!stop["usage"].contains(k) || stop["usage"][k] != v) {
      diff.Add("usage." + k, Shown(v), Shown(stop["usage"].value(k, json())));
    }
  }

  // Tool calls: each start ends once, with the same tool, in the order expected.
  std::vector<json> ends;
  std::map<std::string, std::string> started;  // call id -> tool
  std::vector<std::string> tool_events, approvals, warnings;
  for (const json& e : events) {
    std::string type = Str(e, "type");
    if (type == "tool_start") {
      if (!started.emplace(Str(e, "call_id"), Str(e, "tool")).second) {
        diff.Note("call id " + Str(e, "call_id") + " started twice");
      }
    } else if (type == "tool_end") {
      auto it = started.find(Str(e, "call_id"));
      if (it == started.end() || it->second != Str(e, "tool")) {
        diff.Note("tool_end without its tool_start: " + Shown(e));
      } else {
        started.erase(it);
      }
      ends.push_back(e);
    } else if (type == "approval_answered") {
      approvals.push_back(Str(e, "approval"));
    } else if (type == "warning") {
      warnings.push_back(Str(e, "text"));
    }
    if (type == "tool_start" || type == "tool_end" || type.rfind("approval_", 0) == 0) {
      tool_events.push_back(type + " " + Str(e, "tool"));
    }
  }
  for (const auto& [id, tool] : started)
    diff.Note("tool_start " + id + " (" + tool + ") never ended");

  auto signature = [](const json& c) {
    return Str(c, "tool") + " " + Str(c, "status") + " [" + Str(c, "decision") + "]";
  };
  std::vector<std::string> want_calls, got_calls;
  for (const json& c : x["tool_calls"]) want_calls.push_back(signature(c));
  for (const json& e : ends) got_calls.push_back(signature(e));
  if (want_calls != got_calls) diff.Add("tool calls", Joined(want_calls), Joined(got_calls));

  // The session's stored tool results, read only when a call names text to look for.
  json messages;
  auto result_of = [&](const std::string& call_id) -> std::string {
    if (messages.is_null()) {
      test::CliResult ex =
          test::Shell("</dev/null env " + env + " " MOAT_BINARY " sessions --workspace " +
                      Quoted(ws.string()) + " export " + session_id);
      auto j = ParseJson(ex.out);
      messages = j && j->contains("messages") ? (*j)["messages"] : json::array();
    }
    for (const json& m : messages) {
      if (Str(m, "role") == "tool" && Str(m, "tool_call_id") == call_id) return Str(m, "content");
    }
    return "(no stored result for " + call_id + ")";
  };
  for (size_t i = 0; i < x["tool_calls"].size() && i < ends.size(); ++i) {
    const json& want = x["tool_calls"][i];
    const json& got = ends[i];
    std::string where = "tool_calls[" + std::to_string(i) + "] " + Str(want, "tool");
    if (want.contains("denials")) {
      const json& have = got["denials"];
      if (want["denials"].empty() && !have.empty()) {
        diff.Add(where + " denials", "none", Shown(have));
      }
      for (const json& d : want["denials"]) {
        bool found = std::any_of(have.begin(), have.end(), [&](const json& h) {
          for (const auto& [k, v] : d.items()) {
            if (Str(h, k.c_str()).find(v.get<std::string>()) == std::string::npos) return false;
          }
          return true;
        });
        if (!found) diff.Add(where + " denial", Shown(d), Shown(have));
      }
    }
    for (const json& text : want.value("result_contains", json::array())) {
      std::string result = result_of(Str(got, "call_id"));
      if (result.find(text.get<std::string>()) == std::string::npos) {
        diff.Add(where + " result", "to contain " + Shown(text), result.substr(0, 400));
      }
    }
    for (const json& text : want.value("result_excludes", json::array())) {
      std::string result = result_of(Str(got, "call_id"));
      if (result.find(text.get<std::string>()) != std::string::npos) {
        diff.Add(where + " result", "not to contain " + Shown(text), result.substr(0, 400));
      }
    }
  }
  if (x.contains("tool_events") && Strings(x["tool_events"]) != tool_events) {
    diff.Add("tool events", Joined(Strings(x["tool_events"])), Joined(tool_events));
  }
  std::vector<std::string> want_approvals = Strings(x.value("approvals", json::array()));
  if (want_approvals != approvals) {
    diff.Add("approvals", Joined(want_approvals), Joined(approvals));
  }
  std::vector<std::string> want_warnings = Strings(x.value("warnings", json::array()));
  bool warnings_match = want_warnings.size() == warnings.size();
  for (size_t i = 0; warnings_match && i < warnings.size(); ++i) {
    warnings_match = warnings[i].find(want_warnings[i]) != std::string::npos;
  }
  if (!warnings_match) diff.Add("warnings", Joined(want_warnings), Joined(warnings));

  // The audit log: its record types in order, its tool_call records the calls above, and
  // a chain `moat audit verify` accepts.
  std::string log = (ws / ".moat" / "audit.jsonl").string();
  std::vector<std::string> types, audited_calls;
  std::istringstream audit(test::Slurp(log));
  for (std::string line; std::getline(audit, line);) {
    auto rec = ParseJson(line);
    if (!rec || !rec->is_object()) {
      diff.Note("audit line is not a JSON object: " + line.substr(0, 200));
      continue;
    }
    types.push_back(Str(*rec, "type"));
    if (types.back() == "tool_call") audited_calls.push_back(signature(*rec));
  }
  if (Strings(x["audit"]) != types)
    diff.Add("audit records", Joined(Strings(x["audit"])), Joined(types));
  if (audited_calls != want_calls) {
    diff.Add("audited tool calls", Joined(want_calls), Joined(audited_calls));
  }
  test::CliResult verify = test::Shell("</dev/null " MOAT_BINARY " audit verify " + Quoted(log));
  if (verify.status != 0) diff.Add("audit verify", "ok", verify.out + verify.err);

  // The workspace afterwards: the files expected, every other file as it was, nothing new.
  std::map<std::string, std::string> want_tree = initial;
  for (const json& p : x.value("absent", json::array())) want_tree.erase(p.get<std::string>());
  for (const auto& [path, content] : Object(x, "files").items()) {
    want_tree[path] = content.get<std::string>();
  }
  std::map<std::string, std::string> got_tree = TreeOf(ws);
  for (const auto& [path, content] : want_tree) {
    auto it = got_tree.find(path);
    if (it == got_tree.end()) {
      diff.Add("file " + path, Shown(content), "(missing)");
    } else if (it->second != content) {
      diff.Add("file " + path, Shown(content), Shown(it->second));
    }
  }
  for (const auto& [path, content] : got_tree) {
    if (want_tree.count(path) == 0) diff.Add("file " + path, "(absent)", Shown(content));
  }
  return diff;
}

// A fresh folder under the temp dir for one run's workspace and user folders.
fs::path RunRoot(const std::string& name) {
  return fs::temp_directory_path() / ("moat-scenario-" + name + "-" + std::to_string(getpid()));
}

class ScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ScenarioTest, RunsAsExpected) {
  Scenario s;
  std::string bad = Load(kCorpus / GetParam(), &s);
  ASSERT_TRUE(bad.empty()) << "scenario " << GetParam() << " is malformed: " << bad;
  fs::path root = RunRoot(s.name);
  auto t0 = std::chrono::steady_clock::now();
  Diff diff = RunScenario(s, root);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (diff.empty()) {
    fs::remove_all(root);
  } else {
    ADD_FAILURE() << "scenario " << s.name << " (" << s.expected["description"].get<std::string>()
                  << ") differs; its workspace is kept at " << root.string() << "\n"
                  << diff.Text();
  }
  printf("scenario %s: %.0f ms\n", s.name.c_str(), ms);
}

INSTANTIATE_TEST_SUITE_P(Corpus, ScenarioTest, ::testing::ValuesIn(ScenarioNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

// An empty or missing corpus would make the suite above vanish without a failure.
TEST(ScenarioCorpus, IsThere) {
  std::vector<std::string> names = ScenarioNames();
  ASSERT_FALSE(names.empty()) << "no scenario folders under " << kCorpus.string();
  EXPECT_GE(names.size(), 12u) << "the corpus lost scenarios: " << Joined(names);
}

// A copy of one corpus scenario in a temp folder, to break on purpose.
class BrokenScenario : public ::testing::Test {
 protected:
  void SetUp() override { Copy("read_allowed"); }
  void Copy(const std::string& name) {
    dir_ = RunRoot("driver") / name;
    fs::remove_all(dir_.parent_path());
    fs::create_directories(dir_.parent_path());
    fs::copy(kCorpus / name, dir_, fs::copy_options::recursive);
    Scenario s;
    ASSERT_EQ(Load(dir_, &s), "") << "the copy of " << name << " should be well formed";
    expected_ = s.expected;
  }
  void TearDown() override { fs::remove_all(dir_.parent_path()); }
  void Expect(const json& expected) {
    test::PutFile((dir_ / "expected.json").string(), DumpJson(expected, 2));
  }
  std::string Refusal() {
    Scenario s;
    return Load(dir_, &s);
  }
  fs::path dir_;
  json expected_;
};

// Each defect of form is refused, naming what is wrong.
TEST_F(BrokenScenario, AMalformedFolderIsRefused) {
  Scenario s;
  EXPECT_EQ(Load(kCorpus / "no_such_scenario", &s), "not a folder");
  json x = expected_;
  x["tool_cals"] = json::array();  // a misspelt key would check nothing
  Expect(x);
  EXPECT_NE(Refusal().find("unknown key \"tool_cals\""), std::string::npos) << Refusal();
  x = expected_;
  x.erase("audit");
  Expect(x);
  EXPECT_NE(Refusal().find("lacks \"audit\""), std::string::npos) << Refusal();
  x = expected_;
  x["tool_calls"][0].erase("status");
  Expect(x);
  EXPECT_NE(Refusal().find("tool_calls[0] lacks \"status\""), std::string::npos) << Refusal();
  x = expected_;
  x["files"] = {{"../outside", "x"}};
  Expect(x);
  EXPECT_NE(Refusal().find("not a path inside"), std::string::npos) << Refusal();
  x = expected_;
  x["tool_calls"][0]["denials"] = json::array({json::object()});
  Expect(x);
  EXPECT_NE(Refusal().find("names nothing"), std::string::npos) << Refusal();
  Expect(expected_);
  EXPECT_EQ(Refusal(), "");
  test::PutFile((dir_ / "args").string(), "--approve all; rm -rf /\n");
  EXPECT_NE(Refusal().find("args"), std::string::npos) << Refusal();
  fs::remove(dir_ / "args");
  test::PutFile((dir_ / "polcy.json").string(), "{}");
  EXPECT_NE(Refusal().find("unexpected entry polcy.json"), std::string::npos) << Refusal();
  fs::remove(dir_ / "polcy.json");
  test::PutFile((dir_ / "script.json").string(), "[]");
  EXPECT_NE(Refusal().find("script.json"), std::string::npos) << Refusal();
  fs::remove(dir_ / "script.json");
  EXPECT_EQ(Refusal(), "no script.json");
  fs::remove_all(dir_ / "files");
  EXPECT_EQ(Refusal(), "no files/ folder");
}

// Wrong expectations are reported, each as its own line of the diff: the comparison is not
// vacuous.
TEST_F(BrokenScenario, WrongExpectationsAreEachReported) {
  json x = expected_;
  x["exit_status"] = 3;
  x["stop"] = "budget_steps";
  x["tool_calls"][0]["status"] = "denied";
  x["tool_calls"][0]["result_contains"] = json::array({"not in the file"});
  x["audit"].erase(x["audit"].begin());
  x["warnings"] = json::array({"a warning that never came"});
  x["files"] = {{"notes.md", "other text"}};
  Expect(x);
  Scenario s;
  ASSERT_EQ(Load(dir_, &s), "");
  Diff diff = RunScenario(s, RunRoot("driver-run"));
  fs::remove_all(RunRoot("driver-run"));
  std::string text = diff.Text();
  for (const char* want : {"exit status", "stop:", "tool calls:", "audited tool calls",
                           "result:", "audit records", "warnings", "file notes.md"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << " not reported in:\n" << text;
  }
}

// A file the run made that expected.json does not name is a difference.
TEST_F(BrokenScenario, AnUnexpectedFileIsReported) {
  Copy("ask_approve_all");
  json x = expected_;
  ASSERT_TRUE(x.contains("files"));
  x.erase("files");
  Expect(x);
  Scenario s;
  ASSERT_EQ(Load(dir_, &s), "");
  Diff diff = RunScenario(s, RunRoot("driver-run"));
  fs::remove_all(RunRoot("driver-run"));
  EXPECT_NE(diff.Text().find("file out.txt:\n      expected (absent)"), std::string::npos)
      << diff.Text();
}

}  // namespace
}  // namespace moat
