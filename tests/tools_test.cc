// Tool manifests, the moat.manifest custom section, the registry (loading, pinning, hot
// reload, calls through the sandbox) and the `moat tools` / `moat call` commands.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/sha256.h"
#include "orchestration/tools/manifest.h"
#include "orchestration/tools/registry.h"
#include "test_util.h"

namespace moat::tools {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char kProbeManifest[] = R"({
  "name": "probe", "version": "1.0.0",
  "description": "A test tool that echoes or misbehaves on request.",
  "arguments": {"type": "object",
                "properties": {"mode": {"type": "string"}, "n": {"type": "integer"}},
                "additionalProperties": false},
  "capabilities": {"filesystem": "read", "env": ["TOOL_ENV"]},
  "limits": {"fuel": "1e8", "memory": "16M", "timeout": "5s"}
})";

std::string WithName(const std::string& manifest, const std::string& name) {
  json j = json::parse(manifest);
  j["name"] = name;
  return j.dump();
}

std::vector<uint8_t> Packed(const std::string& manifest) {
  auto packed = SetCustomSection(test::GuestBytes("contract_probe"), kManifestSection, manifest);
  EXPECT_TRUE(packed.ok()) << packed.error().message;
  return packed.ok() ? *packed : std::vector<uint8_t>{};
}

void Put(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void Put(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

// ---- the custom section ----

TEST(ManifestSection, RoundTripKeepsTheModuleValid) {
  std::vector<uint8_t> hello = test::GuestBytes("hello");
  ASSERT_FALSE(hello.empty());
  auto none = FindCustomSection(hello, kManifestSection);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto once = SetCustomSection(hello, kManifestSection, "{\"a\":1}");
  ASSERT_TRUE(once.ok());
  auto twice = SetCustomSection(*once, kManifestSection, "{\"b\":2}");
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(**FindCustomSection(*twice, kManifestSection), "{\"b\":2}") << "replaced, not added";
  EXPECT_EQ(twice->size(), once->size()) << "one section, same length payload";
  // The pipeline accepts the result and it still runs.
  auto h = test::SharedEngine().Load(*twice, "hello+manifest");
  ASSERT_TRUE(h.ok()) << h.error().message;
  ExecRequest req;
  req.argv = {"hello"};
  EXPECT_EQ(test::SharedEngine().Run(*h, req).stdout_bytes, "hello from wasm\n");
  // A payload bigger than 127 bytes needs a multi-byte size.
  std::string big(100000, 'x');
  auto large = SetCustomSection(hello, kManifestSection, big);
  ASSERT_TRUE(large.ok());
  EXPECT_EQ(**FindCustomSection(*large, kManifestSection), big);
}

TEST(ManifestSection, MalformedFramingIsAnErrorNotACrash) {
  std::vector<uint8_t> ok = {0, 'a', 's', 'm', 1, 0, 0, 0};
  EXPECT_TRUE(FindCustomSection(ok, kManifestSection).ok());
  std::vector<std::vector<uint8_t>> bad = {
      {},
      {0, 'a', 's', 'm'},
      {0, 'a', 's', 'm', 2, 0, 0, 0},                                         // version 2
      {0, 'a', 's', 'm', 1, 0, 0, 0, 0},                                      // id without size
      {0, 'a', 's', 'm', 1, 0, 0, 0, 0, 5, 1, 'x'},                           // size past the end
      {0, 'a', 's', 'm', 1, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},  // 6-byte LEB
      {0, 'a', 's', 'm', 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f},        // > 32 bits
      {0, 'a', 's', 'm', 1, 0, 0, 0, 0, 2, 9, 'x'},  // name longer than section
      {0, 'a', 's', 'm', 1, 0, 0, 0, 0, 1, 0x80},    // name length truncated
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_FALSE(FindCustomSection(bad[i], kManifestSection).ok()) << i;
    EXPECT_FALSE(SetCustomSection(bad[i], kManifestSection, "{}").ok()) << i;
  }
  // Every truncation of a real module is refused or parses; none crashes.
  std::vector<uint8_t> real = Packed(kProbeManifest);
  for (size_t len = 0; len < real.size(); len += 97) {
    std::vector<uint8_t> cut(real.begin(), real.begin() + static_cast<long>(len));
    auto r = FindCustomSection(cut, kManifestSection);
    if (r.ok() && r->has_value()) EXPECT_LE((*r)->size(), len);
  }
}

// ---- the manifest ----

TEST(Manifest, ParsesTheDocumentedShape) {
  auto m = ParseManifest(kProbeManifest);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->name, "probe");
  EXPECT_EQ(m->capabilities.filesystem, FsAccess::kRead);
  EXPECT_EQ(m->capabilities.env, std::vector<std::string>{"TOOL_ENV"});
  EXPECT_EQ(*m->limits.fuel, 100'000'000u);
  EXPECT_EQ(*m->limits.memory_bytes, 16u << 20);
  EXPECT_EQ(*m->limits.timeout_us, 5'000'000u);
  EXPECT_FALSE(m->limits.max_output_bytes.has_value());
  json back = ManifestJson(*m);
  EXPECT_EQ(back["capabilities"]["filesystem"], "read");
  EXPECT_EQ(back["limits"]["fuel"], 100'000'000u);
}

TEST(Manifest, EveryProblemNamesTheField) {
  json base = json::parse(kProbeManifest);
  struct Case {
    std::function<void(json&)> mutate;
    std::string expect;
  };
  std::vector<Case> cases = {
      {[](json& j) { j["extra"] = 1; }, "unknown field \"extra\""},
      {[](json& j) { j.erase("name"); }, "\"name\" must be a non-empty string"},
      {[](json& j) { j["name"] = "Read File"; }, "must be lowercase"},
      {[](json& j) { j["name"] = std::string(65, 'a'); }, "longer than 64"},
      {[](json& j) { j["version"] = 3; }, "\"version\" must be a non-empty string"},
      {[](json& j) { j["description"] = ""; }, "\"description\" must be a non-empty string"},
      {[](json& j) { j.erase("arguments"); }, "\"arguments\" (a JSON Schema) is missing"},
      {[](json& j) {
         j["arguments"] = {{"type", "array"}};
       },
       "\"type\": \"object\""},
      {[](json& j) { j["capabilities"]["filesystem"] = "all"; }, "capabilities/filesystem"},
      {[](json& j) { j["capabilities"]["network"] = "x"; }, "capabilities/network"},
      {[](json& j) { j["capabilities"]["secrets"] = {""}; }, "capabilities/secrets/0"},
      {[](json& j) { j["capabilities"]["root"] = true; }, "unknown capability \"root\""},
      {[](json& j) { j["limits"]["memory"] = "lots"; }, "limits/memory"},
      {[](json& j) { j["limits"]["fuel"] = 0; }, "limits/fuel: must be more than 0"},
      {[](json& j) { j["limits"]["fuel"] = -5; }, "limits/fuel"},
      {[](json& j) { j["limits"]["cpus"] = 2; }, "unknown limit \"cpus\""},
  };
  for (const Case& c : cases) {
    json j = base;
    c.mutate(j);
    auto m = ParseManifest(j.dump());
    ASSERT_FALSE(m.ok()) << c.expect;
    EXPECT_NE(m.error().message.find(c.expect), std::string::npos) << m.error().message;
  }
  for (const std::string& bad :
       std::vector<std::string>{"", "[]", "{", "null", "\"x\"", std::string(300000, ' ')}) {
    EXPECT_FALSE(ParseManifest(bad).ok()) << bad.substr(0, 10);
  }
}

// ---- the registry ----

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::TempDir("registry") + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    ext_ = root_ / "ext";
    ws_ = root_ / "workspace";
    fs::create_directories(ext_);
    fs::create_directories(ws_);
    Put(ws_ / "a.txt", std::string("a"));
  }
  void TearDown() override {
    registry_.reset();
    fs::remove_all(root_);
  }

  void Open(std::map<std::string, std::string> pins = {}) {
    RegistryOptions o;
    o.extension_dirs = {ext_.string()};
    o.pins = std::move(pins);
    o.on_event = [this](const json& ev) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(ev);
      cv_.notify_all();
    };
    auto r = Registry::Create(&test::SharedEngine(), std::move(o));
    ASSERT_TRUE(r.ok()) << r.error().message;
    registry_ = std::move(*r);
  }

  // Waits (up to 20 s: a first compile of the probe can take seconds) for an event.
  json WaitEvent(const std::string& kind, const std::string& key = "",
                 const std::string& val = "") {
    std::unique_lock<std::mutex> lock(mu_);
    json found;
    cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      for (size_t i = 0; i < events_.size(); ++i) {
        if (events_[i].value("event", "") == kind &&
            (key.empty() || events_[i].value(key, "") == val)) {
          found = events_[i];
          events_.erase(events_.begin() + static_cast<long>(i));  // each event matches once
          return true;
        }
      }
      return false;
    });
    return found;
  }

  json Call(const std::string& name, const json& args, CallOptions o = {}) {
    if (o.workspace.empty()) o.workspace = ws_.string();
    return registry_->Call(name, args, o).result;
  }

  fs::path root_, ext_, ws_;
  std::unique_ptr<Registry> registry_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json> events_;
};

TEST_F(RegistryTest, CallsGoThroughSchemaAndSandbox) {
  Put(ext_ / "probe.wasm", Packed(kProbeManifest));
  Open();
  ASSERT_NE(registry_->Find("probe"), nullptr);
  EXPECT_EQ(Call("probe", {{"mode", "echo"}, {"n", 3}}),
            json({{"ok", true}, {"content", {{"mode", "echo"}, {"n", 3}}}}));
  // Arguments are checked before anything runs.
  json bad = Call("probe", {{"n", "three"}});
  EXPECT_EQ(bad["error"]["code"], "invalid_arguments") << bad;
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("/n"), std::string::npos) << bad;
  EXPECT_EQ(Call("probe", {{"mood", "x"}})["error"]["code"], "invalid_arguments");
  EXPECT_EQ(Call("probe", json::array())["error"]["code"], "invalid_arguments");
  EXPECT_EQ(Call("nope", json::object())["error"]["code"], "unknown_tool");
  // A string that is not UTF-8 (only a caller building the value itself can make one;
  // parsed text never holds one) is refused by name, not thrown out of the host.
  json not_utf8 = Call("probe", {{"mode", "echo\xC0\x80"}});
  EXPECT_EQ(not_utf8["error"]["code"], "invalid_arguments") << not_utf8;
  EXPECT_NE(not_utf8["error"]["message"].get<std::string>().find("/mode"), std::string::npos);
  // The tool's own error result passes through; every misbehaviour becomes one.
  EXPECT_EQ(Call("probe", {{"mode", "error"}})["error"]["code"], "not_found");
  EXPECT_EQ(Call("probe", {{"mode", "garbage"}})["error"]["code"], "bad_tool_output");
  json ex = Call("probe", {{"mode", "exit"}});
  EXPECT_EQ(ex["error"]["code"], "tool_failed") << ex;
  EXPECT_NE(ex["error"]["message"].get<std::string>().find("giving up"), std::string::npos);
  EXPECT_EQ(Call("probe", {{"mode", "loop"}})["error"]["code"], "fuel_exhausted")
      << "the manifest's fuel limit applies";
  CallOptions slow;
  slow.fuel = 100'000'000'000ull;
  slow.timeout_us = 200'000;
  EXPECT_EQ(Call("probe", {{"mode", "loop"}}, slow)["error"]["code"], "timeout");
}

TEST_F(RegistryTest, CapabilitiesComeFromTheManifest) {
  Put(ext_ / "probe.wasm", Packed(kProbeManifest));
  json w = json::parse(kProbeManifest);
  w["name"] = "writer";
  w["capabilities"]["filesystem"] = "write";
  Put(ext_ / "writer.wasm", Packed(w.dump()));
  json n = json::parse(kProbeManifest);
  n["name"] = "isolated";
  n["capabilities"] = {{"filesystem", "none"}};
  Put(ext_ / "isolated.wasm", Packed(n.dump()));
  Open();
  EXPECT_EQ(Call("probe", {{"mode", "ls"}}), json({{"ok", true}, {"content", {"a.txt"}}}));
  // filesystem "read": the workspace is mounted read-only.
  EXPECT_EQ(Call("probe", {{"mode", "write"}})["error"]["code"], "permission_denied");
  EXPECT_FALSE(fs::exists(ws_ / "made.txt"));
  EXPECT_EQ(Call("writer", {{"mode", "write"}})["ok"], true);
  EXPECT_TRUE(fs::exists(ws_ / "made.txt"));
  // filesystem "none": no mounts at all, even extra ones the caller offers.
  CallOptions o;
  o.extra_mounts.push_back({root_.string(), "/workspace", false});
  EXPECT_EQ(Call("isolated", {{"mode", "ls"}}, o)["error"]["code"], "not_found");
  // Only variables the manifest lists reach the tool.
  o = {};
  o.env = {{"TOOL_ENV", "granted"}, {"HOME", "/root"}};
  EXPECT_EQ(Call("probe", {{"mode", "env"}}, o)["content"], "granted");
  EXPECT_EQ(Call("isolated", {{"mode", "env"}}, o)["content"], "(unset)");
}

TEST_F(RegistryTest, ManifestBesideAPlainModule) {
  Put(ext_ / "plain.wasm", test::GuestBytes("contract_probe"));
  Put(ext_ / "plain.manifest.json", WithName(kProbeManifest, "plain"));
  Put(ext_ / "nomanifest.wasm", test::GuestBytes("contract_probe"));
  Put(ext_ / "broken.wasm", std::string("not wasm at all"));
  Put(ext_ / "broken.manifest.json", WithName(kProbeManifest, "broken"));
  Open();
  EXPECT_NE(registry_->Find("plain"), nullptr);
  EXPECT_EQ(Call("plain", {{"mode", "echo"}})["ok"], true);
  EXPECT_EQ(registry_->List().size(), 1u);
  json no = WaitEvent("tool_rejected", "path", (ext_ / "nomanifest.wasm").string());
  EXPECT_NE(no.value("reason", "").find("no manifest"), std::string::npos) << no;
  EXPECT_FALSE(WaitEvent("tool_rejected", "path", (ext_ / "broken.wasm").string()).is_null());
}

TEST_F(RegistryTest, DigestPinning) {
  std::vector<uint8_t> bytes = Packed(kProbeManifest);
  std::string digest = ToHex(Sha256(bytes));
  Put(ext_ / "probe.wasm", bytes);
  Open({{"probe", digest}});
  EXPECT_NE(registry_->Find("probe"), nullptr);
  registry_.reset();
  Open({{"probe", std::string(64, '0')}});
  EXPECT_EQ(registry_->Find("probe"), nullptr);
  json ev = WaitEvent("tool_rejected");
  EXPECT_NE(ev.value("reason", "").find("pinned"), std::string::npos) << ev;
  registry_.reset();
  RegistryOptions o;
  o.pins = {{"probe", "xyz"}};
  EXPECT_FALSE(Registry::Create(&test::SharedEngine(), o).ok());
}

TEST_F(RegistryTest, HotReload) {
  Open();
  ASSERT_TRUE(registry_->StartWatching().ok());
  EXPECT_EQ(registry_->Find("probe"), nullptr);
  // A new module: added, callable.
  std::vector<uint8_t> v1 = Packed(kProbeManifest);
  Put(ext_ / ".probe.tmp", v1);
  fs::rename(ext_ / ".probe.tmp", ext_ / "probe.wasm");
  json added = WaitEvent("tool_added", "name", "probe");
  ASSERT_FALSE(added.is_null());
  EXPECT_EQ(added["sha256"], ToHex(Sha256(v1)));
  std::shared_ptr<const Tool> first = registry_->Find("probe");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(Call("probe", {{"mode", "echo"}})["ok"], true);
  // A broken replacement is rejected; the working one stays.
  Put(ext_ / "probe.wasm", std::string("\0asm garbage", 12));
  EXPECT_FALSE(WaitEvent("tool_rejected", "path", (ext_ / "probe.wasm").string()).is_null());
  EXPECT_EQ(registry_->Find("probe"), first);
  EXPECT_EQ(Call("probe", {{"mode", "echo"}})["ok"], true);
  // A good new version replaces it atomically; a holder of the old one keeps it.
  json m2 = json::parse(kProbeManifest);
  m2["version"] = "2.0.0";
  Put(ext_ / "probe.wasm", Packed(m2.dump()));
  json updated = WaitEvent("tool_updated", "name", "probe");
  ASSERT_FALSE(updated.is_null());
  EXPECT_EQ(updated["version"], "2.0.0");
  EXPECT_EQ(registry_->Find("probe")->manifest.version, "2.0.0");
  EXPECT_EQ(first->manifest.version, "1.0.0");
  // Removal is noticed.
  fs::remove(ext_ / "probe.wasm");
  EXPECT_FALSE(WaitEvent("tool_removed", "name", "probe").is_null());
  EXPECT_EQ(registry_->Find("probe"), nullptr);
  registry_->StopWatching();
}

TEST_F(RegistryTest, ConcurrentCallsDuringReload) {
  Put(ext_ / "probe.wasm", Packed(kProbeManifest));
  Open();
  ASSERT_TRUE(registry_->StartWatching().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        json r = Call("probe", {{"mode", "echo"}});
        ++calls;
        if (r["ok"] != true) ++bad;
      }
    });
  }
  for (int v = 2; v <= 4; ++v) {
    json m = json::parse(kProbeManifest);
    m["version"] = std::to_string(v) + ".0.0";
    Put(ext_ / ".next", Packed(m.dump()));
    fs::rename(ext_ / ".next", ext_ / "probe.wasm");
    ASSERT_FALSE(WaitEvent("tool_updated", "version", m["version"]).is_null()) << v;
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(calls.load(), 10);
  EXPECT_EQ(bad.load(), 0) << "every call saw a whole tool";
}

// ---- the command line ----

TEST(ToolsCli, PackInspectAddListCallRemove) {
  std::string dir = test::TempDir("tools-cli");
  fs::create_directories(dir + "/ext");
  fs::create_directories(dir + "/ws");
  Put(dir + "/ws/a.txt", std::string("a"));
  Put(dir + "/probe.manifest.json", std::string(kProbeManifest));
  std::string flags = " --tools-dir " + dir + "/ext";
  test::CliResult pack = test::Cli("tools pack " + test::Guest("contract_probe") + " --manifest " +
                                   dir + "/probe.manifest.json -o " + dir + "/probe.wasm");
  ASSERT_EQ(pack.status, 0) << pack.err;
  test::CliResult inspect = test::Cli("tools inspect " + dir + "/probe.wasm");
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  json m = json::parse(inspect.out);
  EXPECT_EQ(m["name"], "probe");
  EXPECT_EQ(m["module"]["manifest_from"], "section moat.manifest");
  EXPECT_EQ(test::Cli("tools inspect " + test::Guest("hello")).status, 1) << "no manifest";

  test::CliResult add = test::Cli("tools add " + dir + "/probe.wasm" + flags);
  ASSERT_EQ(add.status, 0) << add.err;
  EXPECT_TRUE(fs::exists(dir + "/ext/probe.wasm"));
  test::CliResult list = test::Cli("tools list --json" + flags);
  ASSERT_EQ(list.status, 0) << list.err;
  bool listed = false;
  for (const json& t : json::parse(list.out)) listed = listed || t["name"] == "probe";
  EXPECT_TRUE(listed) << list.out;

  test::CliResult call =
      test::Cli("call probe --args '{\"mode\":\"ls\"}' --workspace " + dir + "/ws" + flags);
  EXPECT_EQ(call.status, 0) << call.err;
  EXPECT_EQ(json::parse(call.out), json({{"ok", true}, {"content", {"a.txt"}}}));
  test::CliResult invalid = test::Cli("call probe --args '{\"n\":\"x\"}'" + flags);
  EXPECT_EQ(invalid.status, 1);
  EXPECT_EQ(json::parse(invalid.out)["error"]["code"], "invalid_arguments");
  EXPECT_EQ(json::parse(test::Cli("call probe --args '{nope'" + flags).out)["error"]["code"],
            "invalid_arguments");
  // A pinned digest that does not match refuses the tool.
  test::CliResult pinned = test::Cli("call probe --pin probe=" + std::string(64, 'a') + flags);
  EXPECT_EQ(json::parse(pinned.out)["error"]["code"], "unknown_tool") << pinned.out;
  EXPECT_NE(pinned.err.find("pinned"), std::string::npos) << pinned.err;

  // A module that does not load never lands in the folder.
  Put(dir + "/bad.wasm", std::string("garbage"));
  Put(dir + "/bad.manifest.json", WithName(kProbeManifest, "bad"));
  EXPECT_NE(test::Cli("tools add " + dir + "/bad.wasm" + flags).status, 0);
  EXPECT_FALSE(fs::exists(dir + "/ext/bad.wasm"));

  EXPECT_EQ(test::Cli("tools remove probe" + flags).status, 0);
  EXPECT_FALSE(fs::exists(dir + "/ext/probe.wasm"));
  EXPECT_NE(test::Cli("tools remove probe" + flags).status, 0);
  fs::remove_all(dir);
}

// `moat tools watch` prints one JSON line per change while modules come and go.
TEST(ToolsCli, WatchPrintsOneEventPerChange) {
  std::string dir = test::TempDir("tools-watch");
  fs::create_directories(dir + "/ext");
  std::string out = dir + "/events.jsonl";
  std::string cmd = std::string(MOAT_BINARY) + " tools watch --tools-dir " + dir + "/ext >" + out +
                    " 2>" + dir + "/err & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  int pid = 0;
  ASSERT_EQ(fscanf(p, "%d", &pid), 1);
  pclose(p);
  auto events = [&] {
    std::vector<json> v;
    std::ifstream f(out);
    std::string line;
    while (std::getline(f, line)) {
      json j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not one JSON object per line: " << line;
      if (!j.is_discarded()) v.push_back(j);
    }
    return v;
  };
  auto wait_for = [&](const std::string& kind) {
    for (int i = 0; i < 400; ++i) {  // up to 40 s: the first compile of the probe
      for (const json& e : events()) {
        if (e.value("event", "") == kind) return true;
      }
      usleep(100'000);
    }
    return false;
  };
  ASSERT_TRUE(wait_for("watching")) << test::Slurp(dir + "/err");
  Put(dir + "/ext/.tmp", Packed(kProbeManifest));
  fs::rename(dir + "/ext/.tmp", dir + "/ext/probe.wasm");
  EXPECT_TRUE(wait_for("tool_added")) << test::Slurp(dir + "/err");
  Put(dir + "/ext/probe.wasm", std::string("garbage"));
  EXPECT_TRUE(wait_for("tool_rejected"));
  fs::remove(dir + "/ext/probe.wasm");
  EXPECT_TRUE(wait_for("tool_removed"));
  kill(pid, SIGTERM);
  for (int i = 0; i < 50 && kill(pid, 0) == 0; ++i) usleep(100'000);
  EXPECT_NE(kill(pid, 0), 0) << "watch stops on SIGTERM";
  fs::remove_all(dir);
}

// `moat tools watch` prints one JSON object per line whatever bytes a file name in the
// folder holds: not UTF-8 (U+FFFD in the event) or terminal controls (JSON escapes).
TEST(ToolsCli, WatchEventsStayJsonWhateverAFileIsCalled) {
  std::string dir = test::TempDir("tools-watch-bytes");
  fs::create_directories(dir + "/ext");
  Put(dir + "/ext/bad\xff\x1b[8m\xC2\x9B.wasm", std::string("garbage"));
  std::string out = dir + "/events.jsonl";
  std::string cmd = std::string(MOAT_BINARY) + " tools watch --tools-dir " + dir + "/ext >" + out +
                    " 2>" + dir + "/err & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  int pid = 0;
  ASSERT_EQ(fscanf(p, "%d", &pid), 1);
  pclose(p);
  for (int i = 0; i < 400 && test::Slurp(out).find("watching") == std::string::npos; ++i) {
    usleep(100'000);
  }
  kill(pid, SIGTERM);
  for (int i = 0; i < 50 && kill(pid, 0) == 0; ++i) usleep(100'000);
  std::string text = test::Slurp(out);
  EXPECT_EQ(test::RawControlAt(text + test::Slurp(dir + "/err")), "") << text;
  std::istringstream lines(text);
  std::string line;
  bool rejected = false, watching = false;
  while (std::getline(lines, line)) {
    json e = json::parse(line, nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << "not one JSON object per line: " << line;
    watching = watching || e.value("event", "") == "watching";
    if (e.value("event", "") == "tool_rejected") {
      rejected = e["path"] == dir + "/ext/bad\xEF\xBF\xBD\x1b[8m\xC2\x9B.wasm";
    }
  }
  EXPECT_TRUE(watching) << text << test::Slurp(dir + "/err");
  EXPECT_TRUE(rejected) << text;
  fs::remove_all(dir);
}

// A tool's output may hold any bytes: `moat call` prints a valid JSON result for output
// that is not UTF-8 (invalid bytes become U+FFFD) instead of aborting, and terminal
// controls in a result reach the terminal only as JSON escapes.
TEST(ToolsCli, CallPrintsAResultWhateverBytesTheToolWrote) {
  std::string dir = test::TempDir("tools-bytes");
  fs::create_directories(dir + "/ext");
  Put(dir + "/ext/probe.wasm", Packed(kProbeManifest));
  std::string flags = " --tools-dir " + dir + "/ext";
  const std::string kReplacement = "\xEF\xBF\xBD";

  test::CliResult r = test::Cli("call probe --args '{\"mode\":\"badutf8\"}'" + flags);
  EXPECT_EQ(r.status, 1) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out << r.err;
  EXPECT_EQ(j["error"]["code"], "tool_failed");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("bad " + kReplacement), std::string::npos)
      << r.out;
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "");

  r = test::Cli("call probe --args '{\"mode\":\"badout\"}'" + flags);
  EXPECT_EQ(r.status, 1) << r.err;
  j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out << r.err;
  EXPECT_EQ(j["error"]["code"], "bad_tool_output");
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "");

  r = test::Cli("call probe --args '{\"mode\":\"escapes\"}'" + flags);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "");
  j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["error"]["code"],
            "\x1b[8mhidden\xC2\x9B"
            "2J")
      << "the same value, escaped";
  EXPECT_NE(r.out.find("\\u009b2J"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\\u202eevil"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

// A result nested deeper than moat reads JSON (kMaxJsonDepth) is bad_tool_output, like
// any other broken result; 300,000 levels once took the host down by recursion.
TEST(ToolsCli, AResultNestedTooDeeplyIsBadToolOutput) {
  std::string dir = test::TempDir("tools-deep");
  fs::create_directories(dir + "/ext");
  Put(dir + "/ext/probe.wasm", Packed(kProbeManifest));
  std::string flags = " --tools-dir " + dir + "/ext";

  test::CliResult r = test::Cli("call probe --args '{\"mode\":\"deep\"}'" + flags);
  EXPECT_EQ(r.status, 1) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out.substr(0, 500) << r.err;
  EXPECT_EQ(j["error"]["code"], "bad_tool_output");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("nested deeper than"), std::string::npos)
      << r.out.substr(0, 500);
  // At the limit a result is still a result.
  r = test::Cli("call probe --args '{\"mode\":\"deep\",\"n\":" + std::to_string(kMaxJsonDepth - 1) +
                "}'" + flags);
  EXPECT_EQ(r.status, 0) << r.err;
  j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out.substr(0, 500);
  EXPECT_EQ(j["ok"], true) << r.out.substr(0, 500);
  // Arguments nested as deeply are refused before the tool runs.
  Put(dir + "/args.json", "{\"a\":" + std::string(60000, '[') + std::string(60000, ']') + "}");
  r = test::Cli("call probe --args-file " + dir + "/args.json" + flags);
  EXPECT_EQ(r.status, 1) << r.err;
  j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out.substr(0, 500) << r.err;
  EXPECT_EQ(j["error"]["code"], "invalid_arguments");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("nested deeper than"), std::string::npos)
      << r.out.substr(0, 500);
  fs::remove_all(dir);
}

// Manifest text (a version, a description, a rejected name) reaches the terminal escaped,
// in `moat tools list` and its --json form and in `moat tools inspect`.
TEST(ToolsCli, ManifestTextIsEscapedInListings) {
  std::string dir = test::TempDir("tools-esc");
  fs::create_directories(dir + "/ext");
  json m = json::parse(kProbeManifest);
  m["version"] = "1.0\x1b[8m";
  m["description"] =
      "Looks harmless\x1b]8;;http://evil/\x1b\\link\xC2\x9B"
      "2J \xE2\x80\xAEgnp.exe";
  Put(dir + "/ext/probe.wasm", Packed(m.dump()));
  m["name"] = "bad\x1b[2Jname";
  Put(dir + "/ext/bad.wasm", Packed(m.dump()));
  std::string flags = " --tools-dir " + dir + "/ext";

  test::CliResult r = test::Cli("tools list" + flags);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "");
  EXPECT_NE(r.out.find("1.0\\x1b[8m"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Looks harmless\\x1b]8;;http://evil/\\x1b\\link\\u009b2J \\u202egnp"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("bad\\x1b[2Jname"), std::string::npos) << r.err;

  r = test::Cli("tools list --json" + flags);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "");
  bool found = false;
  for (const json& t : json::parse(r.out)) {
    if (t["name"] == "probe") found = t["description"] == m["description"];
  }
  EXPECT_TRUE(found) << r.out;

  r = test::Cli("tools inspect probe" + flags);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::RawControlAt(r.out + r.err), "");
  EXPECT_EQ(json::parse(r.out)["version"], "1.0\x1b[8m");
  fs::remove_all(dir);
}

// ---- the tool folders under hostile changes ----

// One file per name: `tools add` of a name another file declares is refused naming that
// file; two files declaring one name make it unavailable (neither serves), and `tools
// remove` refuses to guess which to delete.
TEST(ToolsCli, OneFilePerToolName) {
  std::string dir = test::TempDir("tools-dup");
  fs::create_directories(dir + "/ext");
  std::string flags = " --tools-dir " + dir + "/ext";
  Put(dir + "/ext/other.wasm", Packed(kProbeManifest));
  json v2 = json::parse(kProbeManifest);
  v2["version"] = "2.0.0";
  Put(dir + "/probe.wasm", Packed(v2.dump()));

  test::CliResult add = test::Cli("tools add " + dir + "/probe.wasm" + flags);
  EXPECT_NE(add.status, 0) << add.out;
  EXPECT_EQ(add.out.find("added"), std::string::npos) << add.out;
  EXPECT_NE(add.err.find(dir + "/ext/other.wasm"), std::string::npos) << add.err;
  EXPECT_FALSE(fs::exists(dir + "/ext/probe.wasm"));
  test::CliResult call = test::Cli("call probe --args '{\"mode\":\"echo\"}'" + flags);
  EXPECT_EQ(call.status, 0) << call.out << call.err;

  // A second file declaring the name (not through `tools add`): neither serves.
  Put(dir + "/ext/probe.wasm", Packed(v2.dump()));
  call = test::Cli("call probe --args '{\"mode\":\"echo\"}'" + flags);
  EXPECT_EQ(call.status, 1);
  json j = json::parse(call.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << call.out;
  EXPECT_EQ(j["error"]["code"], "tool_unavailable") << call.out;
  std::string msg = j["error"]["message"];
  EXPECT_NE(msg.find(dir + "/ext/other.wasm"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir + "/ext/probe.wasm"), std::string::npos) << msg;
  test::CliResult list = test::Cli("tools list --json" + flags);
  for (const json& t : json::parse(list.out)) EXPECT_NE(t["name"], "probe") << list.out;
  EXPECT_NE(list.err.find(dir + "/ext/other.wasm"), std::string::npos) << list.err;

  test::CliResult rm = test::Cli("tools remove probe" + flags);
  EXPECT_NE(rm.status, 0);
  EXPECT_NE(rm.err.find(dir + "/ext/other.wasm"), std::string::npos) << rm.err;
  EXPECT_TRUE(fs::exists(dir + "/ext/other.wasm"));
  EXPECT_TRUE(fs::exists(dir + "/ext/probe.wasm"));

  // Once one goes, the other serves, and `tools remove` removes that one.
  fs::remove(dir + "/ext/other.wasm");
  call = test::Cli("call probe --args '{\"mode\":\"echo\"}'" + flags);
  EXPECT_EQ(call.status, 0) << call.out << call.err;
  // Adding a new version of the same tool under its own file name still works.
  add = test::Cli("tools add " + dir + "/probe.wasm" + flags);
  EXPECT_EQ(add.status, 0) << add.err;
  // A file of another tool at NAME.wasm is not overwritten.
  Put(dir + "/ext/probe.wasm", Packed(WithName(kProbeManifest, "third")));
  add = test::Cli("tools add " + dir + "/probe.wasm" + flags);
  EXPECT_NE(add.status, 0);
  EXPECT_NE(add.err.find("holds tool third"), std::string::npos) << add.err;
  EXPECT_EQ(test::Cli("tools remove third" + flags).status, 0);
  EXPECT_FALSE(fs::exists(dir + "/ext/probe.wasm"));
  fs::remove_all(dir);
}

// A FIFO where moat reads a manifest, a module or its approvals makes the command fail at
// once naming it, never wait for a writer.
TEST(ToolsCli, AFifoNeverBlocksAReader) {
  std::string dir = test::TempDir("tools-fifo");
  fs::create_directories(dir + "/ext");
  std::string flags = " --tools-dir " + dir + "/ext";
  fs::copy_file(test::Guest("contract_probe"), dir + "/ext/probe.wasm");
  ASSERT_EQ(mkfifo((dir + "/ext/probe.manifest.json").c_str(), 0600), 0);
  ASSERT_EQ(mkfifo((dir + "/ext/pipe.wasm").c_str(), 0600), 0);

  test::CliResult r = test::CliWithin(20, "tools list" + flags);
  EXPECT_EQ(r.status, 0) << "tools list hung or failed: " << r.err;
  EXPECT_NE(r.err.find(dir + "/ext/probe.manifest.json: not a regular file"), std::string::npos)
      << r.err;
  r = test::CliWithin(20, "call probe" + flags);
  EXPECT_EQ(r.status, 1) << "call hung: " << r.err;
  EXPECT_NE(r.err.find(dir + "/ext/probe.manifest.json"), std::string::npos) << r.err;
  r = test::CliWithin(20, "tools inspect " + dir + "/ext/probe.wasm");
  EXPECT_EQ(r.status, 1) << r.err;

  // The standing approvals, in the state folder.
  fs::create_directories(dir + "/state/moat");
  ASSERT_EQ(mkfifo((dir + "/state/moat/approvals.json").c_str(), 0600), 0);
  setenv("XDG_STATE_HOME", (dir + "/state").c_str(), 1);
  r = test::CliWithin(20, "approvals ls");
  unsetenv("XDG_STATE_HOME");
  EXPECT_NE(r.status, 124) << "approvals ls hung";
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(dir + "/state/moat/approvals.json"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

// Tools are loaded only from folders and files no other user can change: a folder or a
// module writable by others, or a module or manifest owned by another user, is refused
// with a message naming it.
TEST(ToolsCli, ToolFilesOthersCanChangeAreRefused) {
  std::string dir = test::TempDir("tools-owner");
  fs::create_directories(dir + "/ext");
  std::string flags = " --tools-dir " + dir + "/ext";
  Put(dir + "/ext/probe.wasm", Packed(kProbeManifest));
  auto refused = [&](const std::string& what, const std::string& expect) {
    test::CliResult r = test::Cli("call probe --args '{\"mode\":\"echo\"}'" + flags);
    EXPECT_EQ(r.status, 1) << what;
    EXPECT_EQ(json::parse(r.out, nullptr, false).value("ok", true), false) << what << r.out;
    EXPECT_NE(r.err.find(expect), std::string::npos) << what << ": " << r.err;
  };
  ASSERT_EQ(test::Cli("call probe --args '{\"mode\":\"echo\"}'" + flags).status, 0);

  chmod((dir + "/ext").c_str(), 0777);
  refused("world-writable folder", dir + "/ext can be written by others");
  chmod((dir + "/ext").c_str(), 0775);
  refused("group-writable folder", dir + "/ext can be written by others");
  chmod((dir + "/ext").c_str(), 0755);

  chmod((dir + "/ext/probe.wasm").c_str(), 0666);
  refused("world-writable module", dir + "/ext/probe.wasm can be written by others");
  chmod((dir + "/ext/probe.wasm").c_str(), 0644);

  // Another user's files (the test runs as root, or as a user who can give files away).
  if (chown((dir + "/ext/probe.wasm").c_str(), 65534, 65534) == 0) {
    refused("module of another user", dir + "/ext/probe.wasm belongs to another user");
    ASSERT_EQ(chown((dir + "/ext/probe.wasm").c_str(), getuid(), getgid()), 0);
    fs::copy_file(test::Guest("contract_probe"), dir + "/ext/plain.wasm");
    Put(dir + "/ext/plain.manifest.json", WithName(kProbeManifest, "plain"));
    ASSERT_EQ(chown((dir + "/ext/plain.manifest.json").c_str(), 65534, 65534), 0);
    test::CliResult r = test::Cli("call plain" + flags);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(dir + "/ext/plain.manifest.json belongs to another user"),
              std::string::npos)
        << r.err;
  } else {
    GTEST_LOG_(INFO) << "cannot chown here: the other-user cases were not run";
  }
  EXPECT_EQ(test::Cli("call probe --args '{\"mode\":\"echo\"}'" + flags).status, 0);
  fs::remove_all(dir);
}

// A schema whose subschemas apply one another many times over (allOf of two $refs per
// level, 40 levels: 2^40 applications) cannot hang `moat call`: a manifest whose schema
// is that costly on any one value is refused when the tool loads, and a schema that gets
// there only through the value (the same chain through a property, with a value nested 40
// levels deep) stops at the validation budget with invalid_arguments naming the limit.
TEST(ToolsCli, ExponentialSchemasFailFast) {
  std::string dir = test::TempDir("tools-schema-bomb");
  fs::create_directories(dir + "/ext");
  json chain = json::object();
  json via_property = json::object();
  for (int i = 0; i < 40; ++i) {
    std::string n = std::to_string(i), next = std::to_string(i + 1);
    chain["l" + n] = {{"allOf", {{{"$ref", "#/$defs/l" + next}}, {{"$ref", "#/$defs/l" + next}}}}};
    via_property["l" + n] = {{"allOf", {{{"$ref", "#/$defs/p" + n}}, {{"$ref", "#/$defs/p" + n}}}}};
    via_property["p" + n] = {{"properties", {{"x", {{"$ref", "#/$defs/l" + next}}}}}};
  }
  chain["l40"] = {{"type", "object"}};
  via_property["l40"] = {{"type", "integer"}};
  json m = json::parse(kProbeManifest);
  m["name"] = "bomb";
  m["arguments"] = {{"type", "object"}, {"$defs", chain}, {"$ref", "#/$defs/l0"}};
  Put(dir + "/ext/bomb.wasm", Packed(m.dump()));
  m["name"] = "deep";
  m["arguments"] = {{"type", "object"}, {"$defs", via_property}, {"$ref", "#/$defs/l0"}};
  Put(dir + "/ext/deep.wasm", Packed(m.dump()));
  std::string flags = " --tools-dir " + dir + "/ext";

  test::CliResult r = test::CliWithin(60, "call bomb --args '{}'" + flags);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_LT(r.ms, 20000);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out << r.err;
  EXPECT_TRUE(j["error"]["code"] == "unknown_tool" || j["error"]["code"] == "tool_unavailable")
      << r.out;
  EXPECT_NE((r.out + r.err).find("would take more than 10000 subschema steps"), std::string::npos)
      << r.out << r.err;
  r = test::CliWithin(60, "tools list" + flags);
  EXPECT_NE(r.err.find("would take more than 10000 subschema steps"), std::string::npos) << r.err;

  json value = 1;
  for (int i = 0; i < 40; ++i) value = json{{"x", value}};
  r = test::CliWithin(60, "call deep --args '" + value.dump() + "'" + flags);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_LT(r.ms, 20000);
  j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out << r.err;
  EXPECT_EQ(j["error"]["code"], "invalid_arguments") << r.out;
  EXPECT_NE(j["error"]["message"].get<std::string>().find("steps (the limit)"), std::string::npos)
      << r.out;
  // The same tool with a shallow value runs.
  value = 1;
  for (int i = 0; i < 5; ++i) value = json{{"x", value}};
  r = test::CliWithin(60, "call deep --args '" + value.dump() + "'" + flags);
  j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out << r.err;
  EXPECT_NE(j["error"]["code"], "invalid_arguments") << r.out;
  fs::remove_all(dir);
}

// Attack: editing a sidecar NAME.manifest.json widened a tool (read -> write, secrets,
// limits) while its --pin still passed and its "always" approval still answered. The
// digest that pins and approvals bind covers the manifest in force.
TEST(ToolsCli, APinCoversTheManifestInForce) {
  std::string dir = test::TempDir("tools-pin");
  fs::create_directories(dir + "/ext");
  std::string flags = " --tools-dir " + dir + "/ext";
  Put(dir + "/ext/plain.wasm", test::GuestBytes("contract_probe"));
  Put(dir + "/ext/plain.manifest.json", WithName(kProbeManifest, "plain"));
  test::CliResult inspect = test::Cli("tools inspect plain" + flags);
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  json j = json::parse(inspect.out);
  std::string digest = j["digest"], module = j["module"]["sha256"];
  EXPECT_EQ(digest.size(), 64u);
  EXPECT_NE(digest, module) << "a sidecar manifest is part of the digest";
  std::string call = "call plain --args '{\"mode\":\"echo\"}'" + flags + " --pin plain=";
  test::CliResult r = test::Cli(call + digest);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(test::Cli(call + module).status, 0) << "the module's digest alone pins nothing";

  // Widened beside the module: the pin no longer passes.
  json wider = json::parse(WithName(kProbeManifest, "plain"));
  wider["capabilities"]["filesystem"] = "write";
  Put(dir + "/ext/plain.manifest.json", wider.dump());
  r = test::Cli(call + digest);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE((r.out + r.err).find("pinned"), std::string::npos) << r.out << r.err;
  json list = json::parse(test::Cli("tools list --json" + flags).out);
  ASSERT_EQ(list.size() > 0, true);
  for (const json& t : list) {
    if (t["name"] == "plain") EXPECT_NE(t["digest"], digest);
  }

  // A packed tool's manifest is in its module: its digest is the module's sha256.
  fs::remove(dir + "/ext/plain.wasm");
  fs::remove(dir + "/ext/plain.manifest.json");
  Put(dir + "/ext/probe.wasm", Packed(kProbeManifest));
  j = json::parse(test::Cli("tools inspect probe" + flags).out);
  EXPECT_EQ(j["digest"], j["module"]["sha256"]);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moat::tools
