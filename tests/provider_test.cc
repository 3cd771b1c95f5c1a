// The HTTP model providers (src/orchestration/agent/http_provider.h) against fake
// OpenAI-compatible and Anthropic servers on loopback (cpp-httplib) that stream in small
// pieces cut inside characters and tokens: the turn, the request they received, retries
// on 429 and 5xx with Retry-After, errors that are not retried, malformed and cut
// streams, cancellation mid-stream; and the agent loop on top of a provider.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "execution/net/http_stream.h"
#include "net_test_util.h"
#include "orchestration/agent/agent.h"
#include "orchestration/agent/http_provider.h"
#include "orchestration/agent/provider_config.h"
#include "test_util.h"
#include "wire_streams.h"

namespace moat::agent {
namespace {

// Streams `body` in pieces of `piece` bytes, `delay_ms` apart.
void Stream(httplib::Response& r, std::string body, size_t piece, int delay_ms = 0) {
  auto data = std::make_shared<std::string>(std::move(body));
  r.set_chunked_content_provider(
      "text/event-stream", [data, piece, delay_ms](size_t offset, httplib::DataSink& sink) {
        if (offset >= data->size()) {
          sink.done();
          return true;
        }
        if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        size_t n = std::min(piece, data->size() - offset);
        return sink.write(data->data() + offset, n);
      });
}

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto handler = [this](const httplib::Request& q, httplib::Response& r) {
      int n;
      std::string mode;
      {
        std::lock_guard<std::mutex> lock(mu_);
        n = ++requests_;
        bodies_.push_back(q.body);
        headers_ = q.headers;
        mode = mode_;
      }
      bool anthropic = q.path == "/v1/messages";
      std::string ok = anthropic ? AnthropicStreamBytes() : OpenAiStreamBytes();
      if (mode == "ok") {
        Stream(r, ok, 7);
      } else if (mode == "429-then-ok" && n == 1) {
        r.status = 429;
        r.set_header("Retry-After", "0");
        r.set_content(R"({"error":{"message":"slow down"}})", "application/json");
      } else if (mode == "429-then-ok") {
        Stream(r, ok, 5);
      } else if (mode == "500") {
        r.status = 503;
        r.set_content("upstream unavailable", "text/plain");
      } else if (mode == "401") {
        r.status = 401;
        r.set_content(R"({"error":{"message":"invalid api key"}})", "application/json");
      } else if (mode == "malformed") {
        Stream(r, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {nope\n\n", 4);
      } else if (mode == "cut") {
        Stream(r, ok.substr(0, ok.size() / 2), 9);
      } else if (mode == "slow") {
        Stream(r, ok, 3, 20);
      }
    };
    server_.Post("/v1/chat/completions", handler);
    server_.Post("/v1/messages", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    net::WaitRunning(server_);
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  HttpProvider Make(bool anthropic) {
    HttpProviderConfig c;
    c.kind = anthropic ? HttpProviderConfig::Kind::kAnthropic : HttpProviderConfig::Kind::kOpenAi;
    c.base_url = "http://127.0.0.1:" + std::to_string(port_) + (anthropic ? "" : "/v1");
    c.api_key = "test-key-123";
    c.backoff_us = 1000;
    return HttpProvider(c, net::MakeStreamingHttp());
  }
  ModelRequest Request() {
    ModelRequest r;
    r.model = "m-1";
    r.messages = {{Message::Role::kSystem, "sys", {}, {}, {}},
                  {Message::Role::kUser, "hi", {}, {}, {}}};
    r.tools = {{"read_file", "reads a file", json{{"type", "object"}}}};
    return r;
  }
  void Mode(const std::string& m) {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = m;
    requests_ = 0;
    bodies_.clear();
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::string mode_ = "ok";
  int requests_ = 0;
  std::vector<std::string> bodies_;
  httplib::Headers headers_;
};

TEST_F(ProviderTest, OpenAiCompatibleStreamsATurnWithToolCalls) {
  Mode("ok");
  HttpProvider p = Make(false);
  std::string streamed;
  auto t = p.Complete(
      Request(), [&](std::string_view s) { streamed += s; }, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->text, kText);
  EXPECT_EQ(streamed, kText);
  ASSERT_EQ(t->tool_calls.size(), 2u);
  EXPECT_EQ(t->tool_calls[0].arguments, "{\"path\":\"a.txt\"}");
  EXPECT_EQ(t->usage.input_tokens, 120u);
  json sent = json::parse(bodies_.at(0));
  EXPECT_EQ(sent["model"], "m-1");
  EXPECT_EQ(sent["stream"], true);
  EXPECT_EQ(sent["tools"][0]["function"]["name"], "read_file");
  EXPECT_EQ(headers_.find("Authorization")->second, "Bearer test-key-123");
}

TEST_F(ProviderTest, AnthropicStreamsATurnWithToolUse) {
  Mode("ok");
  HttpProvider p = Make(true);
  auto t = p.Complete(Request(), nullptr, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->text, kText);
  ASSERT_EQ(t->tool_calls.size(), 1u);
  EXPECT_EQ(t->tool_calls[0].name, "read_file");
  EXPECT_EQ(t->usage.output_tokens, 45u);
  json sent = json::parse(bodies_.at(0));
  EXPECT_EQ(sent["system"], "sys");
  EXPECT_EQ(sent["tools"][0]["input_schema"]["type"], "object");
  EXPECT_EQ(headers_.find("x-api-key")->second, "test-key-123");
  EXPECT_EQ(headers_.find("anthropic-version")->second, "2023-06-01");
}

TEST_F(ProviderTest, RetriesOn429And5xxButNotOnOtherErrors) {
  Mode("429-then-ok");
  HttpProvider p = Make(false);
  auto t = p.Complete(Request(), nullptr, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(requests_, 2);

  Mode("500");
  t = p.Complete(Request(), nullptr, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(requests_, 4);  // the first try and three retries
  EXPECT_NE(t.error().message.find("HTTP 503: upstream unavailable (after 4 attempts)"),
            std::string::npos)
      << t.error().message;

  Mode("401");
  t = p.Complete(Request(), nullptr, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(requests_, 1);
  EXPECT_EQ(t.error().message, "HTTP 401: invalid api key");
}

TEST_F(ProviderTest, MalformedAndCutStreamsAreErrors) {
  Mode("malformed");
  HttpProvider p = Make(false);
  std::string streamed;
  auto t = p.Complete(
      Request(), [&](std::string_view s) { streamed += s; }, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("malformed stream"), std::string::npos) << t.error().message;
  EXPECT_EQ(requests_, 1);  // text was already shown: not retried
  Mode("cut");
  t = p.Complete(Request(), nullptr, nullptr);
  ASSERT_FALSE(t.ok());
  // Cut inside an event: its partial line is malformed; cut between events: incomplete.
  EXPECT_NE(t.error().message.find("stream"), std::string::npos) << t.error().message;
  // Nothing listening.
  HttpProviderConfig c;
  c.base_url = "http://127.0.0.1:1/v1";
  c.max_attempts = 2;
  c.backoff_us = 1000;
  HttpProvider down(c, net::MakeStreamingHttp());
  t = down.Complete(Request(), nullptr, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("after 2 attempts"), std::string::npos) << t.error().message;
}

TEST_F(ProviderTest, CancellationStopsAStreamPromptly) {
  Mode("slow");
  HttpProvider p = Make(false);
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    cancel.Cancel();
  });
  auto t0 = std::chrono::steady_clock::now();
  auto t = p.Complete(Request(), nullptr, &cancel);
  canceller.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message, "cancelled");
  EXPECT_LT(secs, 2.0);
}

TEST_F(ProviderTest, TheAgentLoopRunsOnAProvider) {
  // Every turn of the fake server asks for the same two calls: the governor stops it.
  Mode("ok");
  HttpProvider p = Make(false);
  tools::RegistryOptions o;
  o.builtin_dirs = {MOAT_TOOLS_DIR};
  o.preload_builtins = false;
  auto reg = tools::Registry::Create(&test::SharedEngine(), std::move(o));
  ASSERT_TRUE(reg.ok());
  std::string ws = test::TempDir("provider-ws");
  ASSERT_EQ(system(("mkdir -p " + ws + " && echo hello > " + ws + "/a.txt").c_str()), 0);
  Policy policy;
  policy.governor.repeat_warn = 2;
  policy.governor.repeat_stop = 3;
  FixedApprover allow(true);
  AgentConfig c;
  c.model = "m-1";
  c.workspace = ws;
  Agent agent(p, **reg, policy, allow, nullptr, c);
  std::vector<Message> history;
  RunSummary s = agent.Run(history, "go", nullptr, nullptr);
  EXPECT_EQ(s.stop, StopKind::kGovernor) << s.message;
  EXPECT_EQ(s.input_tokens, 120u * s.steps);
  // The second request carried the first turn's calls and their results.
  json second = json::parse(bodies_.at(1));
  bool saw_result = false;
  for (const json& m : second["messages"]) {
    if (m["role"] == "tool" && m["tool_call_id"] == "call_a") {
      saw_result = m["content"].get<std::string>().find("hello") != std::string::npos;
    }
  }
  EXPECT_TRUE(saw_result) << second.dump();
  EXPECT_EQ(system(("rm -rf " + ws).c_str()), 0);
}

TEST_F(ProviderTest, MoatChatTalksToAnOpenAiCompatibleServerThroughThePlugin) {
  Mode("ok");
  std::string ws = test::TempDir("provider-cli-ws");
  ASSERT_EQ(system(("mkdir -p " + ws + " && echo hello > " + ws + "/a.txt").c_str()), 0);
  std::string base = "--base-url http://127.0.0.1:" + std::to_string(port_) + "/v1 ";
  test::CliResult r = test::Cli("chat --provider openai --model m-1 " + base + "--workspace " + ws +
                                " --audit none --approve none go");
  EXPECT_EQ(r.status, 4) << r.out << r.err;  // the fake model repeats itself forever
  EXPECT_NE(r.out.find(kText), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("* read_file {\"path\":\"a.txt\"}"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-- loop_governor"), std::string::npos) << r.out;
  Mode("401");
  r = test::Cli("chat --provider openai --model m-1 " + base + "--workspace " + ws +
                " --audit none go");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("-- provider_error: openai: HTTP 401: invalid api key"), std::string::npos)
      << r.out;
  EXPECT_EQ(test::Cli("chat --provider openai --workspace " + ws + " go").status, 2);  // no model
  EXPECT_EQ(system(("rm -rf " + ws).c_str()), 0);
}

// --- The provider config file ---------------------------------------------------------

TEST(ProviderConfig, HostileFilesAreRefusedWithTheField) {
  auto err = [](const std::string& text) {
    auto f = ProviderFile::Parse(text);
    return f.ok() ? std::string() : f.error().message;
  };
  EXPECT_NE(err("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(err("[]").find("expected an object"), std::string::npos);
  EXPECT_NE(err(R"({"provider":{}})").find("unknown field \"provider\""), std::string::npos);
  EXPECT_NE(err(R"({"providers":[]})").find("providers: expected an object"), std::string::npos);
  EXPECT_NE(err(R"({"providers":{"a b":{"type":"openai"}}})").find("is not a name"),
            std::string::npos);
  EXPECT_NE(err(R"({"providers":{"scripted":{"type":"openai"}}})").find("reserved"),
            std::string::npos);
  EXPECT_NE(err(R"({"providers":{"x":{}}})").find("providers/x/type: missing"), std::string::npos);
  EXPECT_NE(err(R"({"providers":{"x":{"type":"gemini"}}})").find("providers/x/type"),
            std::string::npos);
  EXPECT_NE(err(R"({"providers":{"x":{"type":"openai","base_url":"ftp://h/"}}})")
                .find("providers/x/base_url"),
            std::string::npos);
  EXPECT_NE(err(R"({"providers":{"x":{"type":"openai","base_url":"http://a b/"}}})")
                .find("providers/x/base_url"),
            std::string::npos);
  EXPECT_NE(err(R"({"providers":{"x":{"type":"openai","base_url":"http://"}}})")
                .find("providers/x/base_url"),
            std::string::npos);
  // A key in the file is refused, and the message does not repeat it.
  std::string e = err(R"({"providers":{"x":{"type":"openai","api_key":"sk-live-123456"}}})");
  EXPECT_NE(e.find("api_key_env"), std::string::npos) << e;
  EXPECT_EQ(e.find("sk-live"), std::string::npos) << e;
  EXPECT_NE(err(R"({"providers":{"x":{"type":"openai","api_key_env":"1BAD"}}})")
                .find("providers/x/api_key_env"),
            std::string::npos);
  EXPECT_NE(err(R"({"providers":{"x":{"type":"openai","api_key_env":"A;rm -rf"}}})")
                .find("providers/x/api_key_env"),
            std::string::npos);
  for (const char* bad :
       {R"("max_tokens":0)", R"("max_tokens":-1)", R"("max_tokens":"9")", R"("max_attempts":11)",
        R"("timeout":"forever")", R"("timeout":0)", R"("idle_timeout":"48h")",
        R"("price":{"input_per_mtok":1})", R"("price":{"input_per_mtok":-1,"output_per_mtok":1})",
        R"("model":"")", R"("model":7)", R"("colour":"red")"}) {
    std::string text = std::string(R"({"providers":{"x":{"type":"openai",)") + bad + "}}}";
    EXPECT_NE(err(text).find("providers/x/"), std::string::npos) << bad << ": " << err(text);
  }
  EXPECT_NE(err(R"({"default_provider":"nowhere"})").find("default_provider"), std::string::npos);
  EXPECT_NE(err(R"({"default_provider":""})").find("default_provider"), std::string::npos);
  // A missing file is an empty one; an unreadable one is an error naming it.
  auto missing = ProviderFile::Load("/nonexistent/moat/config.json");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->providers.empty());
  auto dir = ProviderFile::Load("/");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("/"), std::string::npos);
}

TEST(ProviderConfig, FlagsBeatTheFileWhichBeatsTheEnvironment) {
  auto file = ProviderFile::Parse(R"({
    "default_provider": "local",
    "providers": {
      "local": {"type": "openai", "base_url": "http://127.0.0.1:8080/v1/", "model": "qwen",
                "api_key_env": "LOCAL_KEY", "max_attempts": 2, "timeout": "90s",
                "price": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}},
      "claude": {"type": "anthropic", "model": "claude-x", "max_tokens": 8192},
      "openai": {"model": "gpt-x"}
    }})");
  ASSERT_TRUE(file.ok()) << file.error().message;
  std::map<std::string, std::string> vars = {{"LOCAL_KEY", "k-local"},
                                             {"OPENAI_API_KEY", "k-openai"},
                                             {"OPENAI_BASE_URL", "https://proxy.example/v1"}};
  auto env = [&](const std::string& k) { return vars.count(k) ? vars[k] : std::string(); };

  auto r = ResolveProvider(*file, {}, env);  // the file's default
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "local");
  EXPECT_FALSE(r->scripted);
  EXPECT_EQ(r->http.base_url, "http://127.0.0.1:8080/v1");
  EXPECT_EQ(r->http.api_key, "k-local");
  EXPECT_EQ(r->http.max_attempts, 2);
  EXPECT_EQ(r->http.total_timeout_us, 90'000'000u);
  EXPECT_EQ(r->model, "qwen");
  ASSERT_TRUE(r->price.has_value());
  EXPECT_EQ(r->price->output_per_mtok, 1.5);

  r = ResolveProvider(*file, {"local", "other", "http://10.0.0.2:1/v1", ""}, env);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model, "other");
  EXPECT_EQ(r->http.base_url, "http://10.0.0.2:1/v1");

  // The built-in name takes its base URL from the environment when the file has none.
  r = ResolveProvider(*file, {"openai", "", "", ""}, env);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->http.base_url, "https://proxy.example/v1");
  EXPECT_EQ(r->http.api_key, "k-openai");
  EXPECT_EQ(r->model, "gpt-x");

  // Anthropic without its key is refused, naming the variable.
  r = ResolveProvider(*file, {"claude", "", "", ""}, env);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ANTHROPIC_API_KEY"), std::string::npos);
  vars["ANTHROPIC_API_KEY"] = "k-ant";
  r = ResolveProvider(*file, {"claude", "", "", ""}, env);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->http.base_url, "https://api.anthropic.com");
  EXPECT_EQ(r->http.max_tokens, 8192u);

  // A key with a line break could forge headers: refused.
  vars["LOCAL_KEY"] = "k\r\nX-Evil: 1";
  r = ResolveProvider(*file, {"local", "", "", ""}, env);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("$LOCAL_KEY"), std::string::npos);
  EXPECT_EQ(r.error().message.find("X-Evil"), std::string::npos);

  r = ResolveProvider(*file, {"mystery", "", "", ""}, env);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("known: scripted, openai, anthropic, claude, local"),
            std::string::npos)
      << r.error().message;
  r = ResolveProvider(*file, {"local", "", "gopher://x", ""}, env);
  EXPECT_FALSE(r.ok());
  // Without a file the offline provider is the default; a remote one needs a model.
  r = ResolveProvider(ProviderFile{}, {}, env);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->scripted);
  r = ResolveProvider(ProviderFile{}, {"openai", "", "", ""}, env);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("needs a model"), std::string::npos);
}

TEST_F(ProviderTest, MoatChatUsesANamedProviderFromTheConfigFile) {
  Mode("ok");
  std::string ws = test::TempDir("provider-config-ws");
  ASSERT_EQ(system(("mkdir -p " + ws + " && echo hello > " + ws + "/a.txt").c_str()), 0);
  std::ofstream(ws + "/config.json") << R"({"default_provider": "fake", "providers": {"fake": {
      "type": "openai", "base_url": "http://127.0.0.1:)" +
                                            std::to_string(port_) + R"(/v1",
      "model": "m-cfg", "api_key_env": "MOAT_TEST_FAKE_KEY", "max_attempts": 1,
      "price": {"input_per_mtok": 1000, "output_per_mtok": 1000}}}})";
  setenv("MOAT_TEST_FAKE_KEY", "fake-key-789", 1);
  test::CliResult r = test::Cli("chat --config " + ws + "/config.json --workspace " + ws +
                                " --audit none --sessions none --approve none go");
  unsetenv("MOAT_TEST_FAKE_KEY");
  EXPECT_EQ(r.status, 4) << r.out << r.err;  // the budget or the governor ends it
  EXPECT_EQ(headers_.find("Authorization")->second, "Bearer fake-key-789");
  EXPECT_EQ(json::parse(bodies_.at(0))["model"], "m-cfg");
  // The configured price counts (an unknown model is otherwise free).
  EXPECT_NE(r.out.find("-- "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("$0.0000"), std::string::npos) << r.out;
  // $MOAT_CONFIG finds it too; a broken file is a usage error naming it.
  const char* before = getenv("MOAT_CONFIG");
  std::string saved = before != nullptr ? before : "";
  setenv("MOAT_CONFIG", (ws + "/config.json").c_str(), 1);
  r = test::Cli("chat --provider nowhere --workspace " + ws + " --audit none go");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("known: scripted, openai, anthropic, fake"), std::string::npos) << r.err;
  std::ofstream(ws + "/config.json", std::ios::trunc) << "{\"providers\": 3}";
  r = test::Cli("chat --workspace " + ws + " --audit none go");
  if (before != nullptr) {
    setenv("MOAT_CONFIG", saved.c_str(), 1);
  } else {
    unsetenv("MOAT_CONFIG");
  }
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(ws + "/config.json: provider config: providers"), std::string::npos)
      << r.err;
  EXPECT_EQ(system(("rm -rf " + ws).c_str()), 0);
}

// Ctrl-C while the model's answer streams in: moat chat stops it and exits 130 at once.
TEST_F(ProviderTest, CtrlCStopsTheModelsStreamInMoatChat) {
  Mode("slow");
  std::string ws = test::TempDir("provider-ctrlc-ws");
  ASSERT_EQ(system(("mkdir -p " + ws).c_str()), 0);
  test::CliResult r =
      test::InterruptCli({"chat", "--provider", "openai", "--model", "m-1", "--base-url",
                          "http://127.0.0.1:" + std::to_string(port_) + "/v1", "--workspace", ws,
                          "--approve", "none", "go"},
                         kText.substr(0, 3));
  EXPECT_EQ(r.status, 130) << r.out;
  EXPECT_LT(r.ms, 2000);
  EXPECT_NE(r.out.find("-- cancelled"), std::string::npos) << r.out;
  EXPECT_EQ(test::Cli("audit verify " + ws + "/.moat/audit.jsonl").status, 0);
  EXPECT_EQ(system(("rm -rf " + ws).c_str()), 0);
}

}  // namespace
}  // namespace moat::agent
