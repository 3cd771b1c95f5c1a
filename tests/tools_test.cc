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
#include <thread>

#include "base/fs.h"
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

}  // namespace
}  // namespace moat::tools
