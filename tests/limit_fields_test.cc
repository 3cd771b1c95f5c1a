// The limit table (execution/limit_fields.h) and every surface that reads it: the flags of
// `moat run`, `moat compile` and `moat call`, a policy's tools/NAME limits and a
// manifest's limits. A bad value is refused naming the field on each; one value gives one
// number on all of them.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "execution/limit_fields.h"
#include "interaction/cli_util.h"
#include "orchestration/agent/policy.h"
#include "orchestration/tools/manifest.h"
#include "test_util.h"

namespace moat {
namespace {

using nlohmann::json;

const char* const kManifest = R"({
  "name": "probe", "version": "1.0.0", "description": "A tool for tests.",
  "arguments": {"type": "object"}
})";

// `args` parsed by a command that has the limit flags of `use`, as `moat` registers them.
Result<std::vector<GivenLimit>> FlagsOf(LimitUse use, std::vector<std::string> args) {
  CLI::App app{"test"};
  LimitFlags flags;
  AddLimitFlags(&app, use, &flags);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them backwards
  app.parse(reversed);
  return ParseLimitFlags(flags);
}

Result<tools::ToolManifest> ManifestWith(const json& limits) {
  json m = json::parse(kManifest);
  m["limits"] = limits;
  return tools::ParseManifest(m.dump());
}

Result<agent::Policy> PolicyWith(const json& rule) {
  return agent::Policy::Parse(json({{"tools", {{"x", rule}}}}).dump());
}

std::string ErrorOf(const Status& s) { return s ? "(accepted)" : s.error().message; }
template <typename T>
std::string ErrorOf(const Result<T>& r) {
  return r ? "(accepted)" : r.error().message;
}

TEST(LimitFields, NamesAndFlagsAreUnique) {
  std::set<std::string_view> names, flags;
  for (const LimitField& f : LimitFields()) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_TRUE(flags.insert(f.flag).second) << f.flag;
    EXPECT_EQ(FindLimitField(f.name, f.uses), &f);
  }
  EXPECT_EQ(FindLimitField("timeout_us", 0), nullptr);
  EXPECT_EQ(FindLimitField("max_write", kLimitToolField), nullptr);  // not a tool's own
}

// The default a help text shows is the default the run gets.
TEST(LimitFields, HelpShowsTheRealDefault) {
  const Limits run;
  const CompileLimits compile;
  for (const LimitField& f : LimitFields()) {
    std::string help(f.help);
    size_t at = help.find("(default ");
    ASSERT_NE(at, std::string::npos) << f.name << ": " << help;
    std::string shown = help.substr(at + 9, help.find_first_of(",)", at) - at - 9);
    auto v = f.parse(shown);
    ASSERT_TRUE(v) << f.name << ": " << shown;
    uint64_t real = f.run ? run.*(f.run) : compile.*(f.compile);
    EXPECT_EQ(*v, real) << f.name << ": help says " << shown;
  }
}

// Every per-tool field has its own place in ToolLimits; no other field has one.
TEST(LimitFields, EachToolLimitHasItsOwnSlot) {
  tools::ToolLimits l;
  std::set<std::optional<uint64_t>*> seen;
  for (const LimitField& f : LimitFields()) {
    std::optional<uint64_t>* slot = tools::ToolLimitSlot(&l, f);
    if (f.uses & kLimitToolField) {
      ASSERT_NE(slot, nullptr) << f.name;
      EXPECT_TRUE(seen.insert(slot).second) << f.name;
    } else {
      EXPECT_EQ(slot, nullptr) << f.name;
    }
  }
  EXPECT_EQ(seen.size(), 4u);
}

// ---- hostile values: each surface names the field, on one line ----

TEST(LimitFields, EveryFlagRefusesJunkNamingItself) {
  for (const LimitField& f : LimitFields()) {
    for (LimitUse use : {kLimitRunFlag, kLimitCallFlag, kLimitCompileFlag}) {
      if (!(f.uses & use)) continue;
      for (const char* bad : {"lots", "-1", "5 parsecs", "1e99"}) {
        auto r = FlagsOf(use, {std::string(f.flag) + "=" + bad});
        std::string e = ErrorOf(r);
        EXPECT_EQ(e.rfind(std::string(f.flag) + ": ", 0), 0u) << f.flag << " " << bad << ": " << e;
        EXPECT_EQ(e.find('\n'), std::string::npos) << e;
      }
    }
  }
  EXPECT_EQ(ErrorOf(FlagsOf(kLimitRunFlag, {"--fuel", "lots"})), "--fuel: not a number: 'lots'");
  EXPECT_EQ(ErrorOf(FlagsOf(kLimitCallFlag, {"--timeout", "soon"})),
            "--timeout: not a duration: 'soon'");
}

TEST(LimitFields, PolicyRefusesJunkNamingTheField) {
  EXPECT_EQ(ErrorOf(PolicyWith({{"fuel", "lots"}})), "policy: tools/x/fuel: not a number: 'lots'");
  EXPECT_EQ(ErrorOf(PolicyWith({{"memory", "64Q"}})),
            "policy: tools/x/memory: unknown size unit in '64Q' (use K, M, G)");
  EXPECT_EQ(ErrorOf(PolicyWith({{"timeout", "soon"}})),
            "policy: tools/x/timeout: not a duration: 'soon'");
  EXPECT_EQ(ErrorOf(PolicyWith({{"max_output", true}})),
            "policy: tools/x/max_output: expected a positive number or text such as \"64M\" or "
            "\"10s\"");
  EXPECT_EQ(ErrorOf(PolicyWith({{"fuel", -5}})),
            "policy: tools/x/fuel: expected a positive number or text such as \"64M\" or \"10s\"");
  // Names that are no limit of a tool: the manifest writer's old spelling, a run's quota.
  for (const char* k : {"timeout_us", "max_write", "compile_timeout", "Fuel"}) {
    EXPECT_EQ(ErrorOf(PolicyWith({{k, "1"}})),
              "policy: tools/x/" + std::string(k) + ": unknown field");
  }
}

TEST(LimitFields, ManifestRefusesJunkNamingTheField) {
  EXPECT_EQ(ErrorOf(ManifestWith({{"fuel", "lots"}})),
            "manifest: limits/fuel: not a number: 'lots'");
  EXPECT_EQ(ErrorOf(ManifestWith({{"timeout", "soon"}})),
            "manifest: limits/timeout: not a duration: 'soon'");
  EXPECT_EQ(ErrorOf(ManifestWith({{"memory", json::array()}})),
            "manifest: limits/memory: expected a positive number or text such as \"64M\" or "
            "\"10s\"");
  for (const char* k : {"timeout_us", "max_write", "http_timeout", "compile_memory", ""}) {
    EXPECT_EQ(ErrorOf(ManifestWith({{k, "1"}})),
              "manifest: unknown limit \"" + std::string(k) + "\"");
  }
  // A limit of 0 would make every call of the tool fail: refused as a number and as text.
  for (const char* k : {"fuel", "memory", "timeout", "max_output"}) {
    for (const json& zero : {json(0), json("0"), json("0s")}) {
      if (zero == "0s" && std::string(k) != "timeout") continue;
      EXPECT_EQ(ErrorOf(ManifestWith({{k, zero}})),
                "manifest: limits/" + std::string(k) + ": must be more than 0")
          << zero;
    }
  }
}

TEST(LimitFields, FlagsThroughTheBinaryFailOnOneLine) {
  using test::Cli;
  auto r = Cli("run --fuel lots " + test::Guest("hello"));
  EXPECT_EQ(r.status, kUsageError);
  EXPECT_EQ(r.err, "moat: --fuel: not a number: 'lots'\n");
  EXPECT_EQ(r.out, "");
  r = Cli("run --max-response 3X " + test::Guest("hello"));
  EXPECT_EQ(r.status, kUsageError);
  EXPECT_EQ(r.err, "moat: --max-response: unknown size unit in '3X' (use K, M, G)\n");
  r = Cli("call no_such_tool --timeout soon --tools-dir /nonexistent");
  EXPECT_EQ(r.status, kUsageError);
  EXPECT_EQ(r.err, "moat: --timeout: not a duration: 'soon'\n");
  r = Cli("compile --compile-memory lots " + test::Guest("hello"));
  EXPECT_EQ(r.status, kUsageError);
  EXPECT_EQ(r.err, "moat: --compile-memory: not a size: 'lots'\n");
}

// ---- the manifest writer and reader agree ----

TEST(LimitFields, ManifestRoundTripsThroughItsWriter) {
  auto m =
      ManifestWith({{"fuel", "2e9"}, {"memory", "64M"}, {"timeout", "10s"}, {"max_output", "4M"}});
  ASSERT_TRUE(m) << m.error().message;
  json written = tools::ManifestJson(*m);
  EXPECT_EQ(written["limits"]["timeout"], 10'000'000u) << written["limits"].dump();
  auto back = tools::ParseManifest(written.dump());
  ASSERT_TRUE(back) << back.error().message << "\n" << written.dump();
  EXPECT_EQ(back->limits.fuel, m->limits.fuel);
  EXPECT_EQ(back->limits.memory_bytes, m->limits.memory_bytes);
  EXPECT_EQ(back->limits.timeout_us, m->limits.timeout_us);
  EXPECT_EQ(back->limits.max_output_bytes, m->limits.max_output_bytes);
  EXPECT_EQ(*back->limits.timeout_us, 10'000'000u);
  // And again: what the writer writes is stable.
  EXPECT_EQ(tools::ManifestJson(*back), written);

  // Unset limits stay unset.
  auto some = ManifestWith({{"timeout", "1500ms"}});
  ASSERT_TRUE(some);
  auto again = tools::ParseManifest(tools::ManifestJson(*some).dump());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->limits.timeout_us, std::optional<uint64_t>(1'500'000));
  EXPECT_FALSE(again->limits.fuel.has_value());
  EXPECT_FALSE(again->limits.memory_bytes.has_value());
  EXPECT_FALSE(again->limits.max_output_bytes.has_value());
}

// ---- one value, one number ----

TEST(LimitFields, OneValueGivesOneNumberOnEverySurface) {
  struct Each {
    const char* name;
    const char* text;
    uint64_t Limits::*run;
  };
  const Each values[] = {{"timeout", "2s", &Limits::timeout_us},
                         {"memory", "64M", &Limits::memory_bytes},
                         {"max_output", "64M", &Limits::max_output_bytes},
                         {"fuel", "1e9", &Limits::fuel}};
  std::vector<std::string> args;
  json fields = json::object();
  for (const Each& e : values) {
    args.push_back(std::string(FindLimitField(e.name, kLimitToolField)->flag));
    args.push_back(e.text);
    fields[e.name] = e.text;
  }

  // moat run: the flags into the run's limits.
  CLI::App app{"test"};
  LimitFlags flags;
  AddLimitFlags(&app, kLimitRunFlag, &flags);
  app.parse(std::vector<std::string>(args.rbegin(), args.rend()));
  Limits run;
  ASSERT_TRUE(ApplyLimitFlags(flags, &run));

  // moat call: the flags as the tool's own limits.
  auto call = FlagsOf(kLimitCallFlag, args);
  ASSERT_TRUE(call) << call.error().message;
  tools::ToolLimits call_limits;
  for (const GivenLimit& g : *call) *tools::ToolLimitSlot(&call_limits, *g.field) = g.value;

  auto policy = PolicyWith(fields);
  ASSERT_TRUE(policy) << policy.error().message;
  tools::ToolLimits policy_limits = policy->tools.at("x").limits;
  auto manifest = ManifestWith(fields);
  ASSERT_TRUE(manifest) << manifest.error().message;

  for (const Each& e : values) {
    const LimitField* f = FindLimitField(e.name, kLimitToolField);
    ASSERT_NE(f, nullptr) << e.name;
    uint64_t want = *f->parse(e.text);
    EXPECT_EQ(run.*(e.run), want) << e.name;
    EXPECT_EQ(*tools::ToolLimitSlot(&call_limits, *f), want) << e.name;
    EXPECT_EQ(*tools::ToolLimitSlot(&policy_limits, *f), want) << e.name;
    EXPECT_EQ(*tools::ToolLimitSlot(&manifest->limits, *f), want) << e.name;
  }
  EXPECT_EQ(run.timeout_us, 2'000'000u);
  EXPECT_EQ(run.memory_bytes, 64u << 20);
  EXPECT_EQ(run.fuel, 1'000'000'000u);
}

// ---- help lists every flag, with its text ----

TEST(LimitFields, HelpListsEveryLimitFlag) {
  auto run = test::Cli("run --help");
  auto call = test::Cli("call --help");
  auto compile = test::Cli("compile --help");
  ASSERT_EQ(run.status, 0) << run.err;
  ASSERT_EQ(call.status, 0) << call.err;
  ASSERT_EQ(compile.status, 0) << compile.err;
  for (const LimitField& f : LimitFields()) {
    std::string flag(f.flag);
    EXPECT_EQ(run.out.find(flag + " ") != std::string::npos, (f.uses & kLimitRunFlag) != 0) << flag;
    EXPECT_EQ(call.out.find(flag + " ") != std::string::npos, (f.uses & kLimitCallFlag) != 0)
        << flag;
    EXPECT_EQ(compile.out.find(flag + " ") != std::string::npos, (f.uses & kLimitCompileFlag) != 0)
        << flag;
    // Long texts may wrap: look for their first words.
    std::string run_help(f.help.substr(0, 24));
    if (f.uses & kLimitRunFlag) EXPECT_NE(run.out.find(run_help), std::string::npos) << flag;
    std::string call_help((f.call_help.empty() ? f.help : f.call_help).substr(0, 24));
    if (f.uses & kLimitCallFlag) EXPECT_NE(call.out.find(call_help), std::string::npos) << flag;
  }
  EXPECT_NE(call.out.find("Fuel budget (default: the manifest's)"), std::string::npos) << call.out;
}

}  // namespace
}  // namespace moat
