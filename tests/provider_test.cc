// The HTTP model providers (src/orchestration/agent/http_provider.h) against fake
// OpenAI-compatible and Anthropic servers on loopback (cpp-httplib) that stream in small
// pieces cut inside characters and tokens: the turn, the request they received, retries
// on 429 and 5xx with Retry-After, errors that are not retried, malformed and cut
// streams, cancellation mid-stream; and the agent loop on top of a provider.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
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
  test::PutFile(ws + "/a.txt", "hello\n");
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
  std::filesystem::remove_all(ws);
}

TEST_F(ProviderTest, MoatChatTalksToAnOpenAiCompatibleServerThroughThePlugin) {
  Mode("ok");
  std::string ws = test::TempDir("provider-cli-ws");
  test::PutFile(ws + "/a.txt", "hello\n");
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
  std::filesystem::remove_all(ws);
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
  test::PutFile(ws + "/a.txt", "hello\n");
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
  // The configured price counts (instead of the default for a model without a known price).
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
  std::filesystem::remove_all(ws);
}

// Ctrl-C while the model's answer streams in: moat chat stops it and exits 130 at once.
TEST_F(ProviderTest, CtrlCStopsTheModelsStreamInMoatChat) {
  Mode("slow");
  std::string ws = test::TempDir("provider-ctrlc-ws");
  std::filesystem::create_directories(ws);
  test::CliResult r =
      test::InterruptCli({"chat", "--provider", "openai", "--model", "m-1", "--base-url",
                          "http://127.0.0.1:" + std::to_string(port_) + "/v1", "--workspace", ws,
                          "--approve", "none", "go"},
                         kText.substr(0, 3));
  EXPECT_EQ(r.status, 130) << r.out;
  EXPECT_LT(r.ms, 2000);
  EXPECT_NE(r.out.find("-- cancelled"), std::string::npos) << r.out;
  EXPECT_EQ(test::Cli("audit verify " + ws + "/.moat/audit.jsonl").status, 0);
  std::filesystem::remove_all(ws);
}

// --- Budgets against a hostile provider, through moat chat ------------------------------

// An OpenAI-compatible server on loopback whose answer to its n-th request (from 1)
// `answer` writes; a handler may wait (Hold) until the test ends. Counts requests.
class BudgetServer {
 public:
  using Answer = std::function<void(int n, httplib::Response&)>;
  explicit BudgetServer(Answer answer) : answer_(std::move(answer)) {
    auto handler = [this](const httplib::Request& q, httplib::Response& r) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_body_ = q.body;
      }
      answer_(++requests_, r);
    };
    server_.Post("/v1/chat/completions", handler);
    server_.Post("/v1/messages", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    net::WaitRunning(server_);
  }
  ~BudgetServer() {
    released_ = true;
    server_.stop();
    thread_.join();
  }
  // Waits up to `ms` (less once the test ends) before answering.
  void Hold(int ms) {
    for (int i = 0; i < ms / 20 && !released_; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  int requests() const { return requests_; }
  std::string Flags(const std::string& ws) const {
    return "chat --provider openai --model m-1 --base-url http://127.0.0.1:" +
           std::to_string(port_) + "/v1 --workspace " + ws + " --audit none --approve none ";
  }
  int port() const { return port_; }
  json LastBody() {
    std::lock_guard<std::mutex> lock(mu_);
    return json::parse(last_body_, nullptr, false);
  }

 private:
  Answer answer_;
  std::mutex mu_;
  std::string last_body_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<bool> released_{false};
};

// A text-only turn; `usage` (the object's fields as the server writes them) is left out
// when null.
std::string TextTurn(const std::string& text, const json& usage) {
  std::string s = OpenAiChunk({{"role", "assistant"}, {"content", text}});
  s += OpenAiChunk(json::object(), "stop");
  if (!usage.is_null()) {
    s += "data: " + json({{"choices", json::array()}, {"usage", usage}}).dump() + "\n\n";
  }
  return s + "data: [DONE]\n\n";
}

std::string ToolTurn(const json& usage) {
  std::string s = OpenAiChunk(
      {{"role", "assistant"},
       {"tool_calls",
        {{{"index", 0},
          {"id", "call_1"},
          {"type", "function"},
          {"function", {{"name", "read_file"}, {"arguments", "{\"path\":\"a.txt\"}"}}}}}}});
  s += OpenAiChunk(json::object(), "tool_calls");
  s += "data: " + json({{"choices", json::array()}, {"usage", usage}}).dump() + "\n\n";
  return s + "data: [DONE]\n\n";
}

class BudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = test::TempDir("budget-ws");
    user_ = ws_ + "-user";
    std::filesystem::create_directories(ws_ + "/.moat");
    test::PutFile(ws_ + "/a.txt", "hello\n");
    setenv("XDG_CONFIG_HOME", (user_ + "/config").c_str(), 1);
    setenv("XDG_STATE_HOME", (user_ + "/state").c_str(), 1);
  }
  void TearDown() override {
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("XDG_STATE_HOME");
    std::filesystem::remove_all(ws_);
    std::filesystem::remove_all(user_);
  }
  void Policy(const std::string& text) {
    std::ofstream(ws_ + "/.moat/policy.json", std::ios::trunc) << text;
  }
  // The session a run printed ("-- session ID").
  static std::string SessionOf(const std::string& out) {
    size_t at = out.rfind("-- session ");
    return at == std::string::npos ? "" : out.substr(at + 11, 12);
  }
  std::string ws_, user_;
};

// A text-only turn costing $10 against a $0.001 budget ends the run with the cost stop
// (not "completed"); a resumed session and a second prompt are refused before any call.
TEST_F(BudgetTest, ATextOnlyTurnPastABudgetStopsTheRunAndNothingIsCalledAfter) {
  BudgetServer server([](int, httplib::Response& r) {
    Stream(r, TextTurn("expensive", {{"prompt_tokens", 5000}, {"completion_tokens", 5000}}), 64);
  });
  Policy(R"({"budgets": {"cost_usd": 0.001},
             "prices": {"m-1": {"input_per_mtok": 1000, "output_per_mtok": 1000}}})");
  test::CliResult r = test::Cli(server.Flags(ws_) + "go");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_cost: the cost budget of $0.001 is used up"), std::string::npos)
      << r.out;
  EXPECT_EQ(server.requests(), 1);
  std::string id = SessionOf(r.out);
  ASSERT_EQ(id.size(), 12u) << r.out;
  r = test::Cli(server.Flags(ws_) + "--session " + id + " again");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_cost"), std::string::npos) << r.out;
  EXPECT_EQ(server.requests(), 1);  // refused before calling the model
  // Prompts on stdin: the first one spends the budget, the second calls nothing.
  r = test::Cli(server.Flags(ws_), "printf 'one\\ntwo\\n'");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_EQ(server.requests(), 2);
}

// A model without a known price is counted at the conservative default, with a warning:
// 400k input tokens at $15 per million pass the default $5 budget.
TEST_F(BudgetTest, AnUnknownModelIsNeverFree) {
  BudgetServer server([](int, httplib::Response& r) {
    Stream(r, TextTurn("hi", {{"prompt_tokens", 400000}, {"completion_tokens", 20}}), 64);
  });
  test::CliResult r = test::Cli(server.Flags(ws_) + "go");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("no price is known for the model \"m-1\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-- budget_cost"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("$6.0015"), std::string::npos) << r.out;
}

// Usage counts: negative, fractional or text is a provider error naming the count; a
// missing one is estimated (never 0); the largest count saturates, in the run and in the
// session store, instead of wrapping.
TEST_F(BudgetTest, UsageIsValidatedEstimatedAndSaturated) {
  json usage;
  BudgetServer server(
      [&usage](int, httplib::Response& r) { Stream(r, TextTurn("hi", usage), 64); });
  for (const json& bad : {json(-5), json(1.5), json("12"), json(true)}) {
    usage = {{"prompt_tokens", 10}, {"completion_tokens", bad}};
    test::CliResult r = test::Cli(server.Flags(ws_) + "go");
    EXPECT_EQ(r.status, 1) << bad << r.out << r.err;
    EXPECT_NE(r.out.find("invalid usage count completion_tokens"), std::string::npos) << r.out;
  }
  // No usage at all: the request (system prompt, tool list) is far more than 50 tokens.
  Policy(R"({"budgets": {"input_tokens": 50}})");
  usage = nullptr;
  test::CliResult r = test::Cli(server.Flags(ws_) + "go");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_input_tokens"), std::string::npos) << r.out;
  usage = {{"completion_tokens", 3}};  // only the input is missing
  r = test::Cli(server.Flags(ws_) + "go");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_input_tokens"), std::string::npos) << r.out;

  Policy("{}");
  usage = {{"prompt_tokens", 1}, {"completion_tokens", UINT64_MAX}};
  r = test::Cli(server.Flags(ws_) + "go");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_output_tokens"), std::string::npos) << r.out;
  std::string id = SessionOf(r.out);
  ASSERT_EQ(id.size(), 12u) << r.out;
  int before = server.requests();
  usage = {{"prompt_tokens", 1}, {"completion_tokens", 1}};
  r = test::Cli(server.Flags(ws_) + "--session " + id + " again");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_output_tokens"), std::string::npos) << r.out;
  EXPECT_EQ(server.requests(), before);
}

// A model call is bounded by the wall time left: a server that takes 8 s to answer is cut
// at the 2 s budget.
TEST_F(BudgetTest, TheWallTimeBudgetCutsASlowModelCall) {
  BudgetServer* self = nullptr;
  BudgetServer server([&self](int, httplib::Response& r) {
    self->Hold(8000);
    Stream(r, TextTurn("late", {{"prompt_tokens", 1}, {"completion_tokens", 1}}), 64);
  });
  self = &server;
  Policy(R"({"budgets": {"wall_time": "2s"}})");
  test::CliResult r = test::Cli(server.Flags(ws_) + "go");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_wall_time"), std::string::npos) << r.out;
  EXPECT_LT(r.ms, 6000);
  EXPECT_EQ(server.requests(), 1);  // not retried past the deadline
}

// Anthropic: cached input tokens count as input, a bad count is an error, and the request
// asks for no more output tokens than the budgets leave.
TEST_F(BudgetTest, AnthropicUsageCountsCachedInputAndAsksOnlyForWhatIsLeft) {
  json start_usage;
  BudgetServer server([&start_usage](int, httplib::Response& r) {
    std::string s = AnthropicEvent("message_start", {{"message", {{"usage", start_usage}}}});
    s += AnthropicEvent("content_block_start",
                        {{"index", 0}, {"content_block", {{"type", "text"}, {"text", "hi"}}}});
    s += AnthropicEvent("message_delta", {{"delta", {{"stop_reason", "end_turn"}}},
                                          {"usage", {{"output_tokens", 7}}}});
    s += AnthropicEvent("message_stop", json::object());
    Stream(r, s, 16);
  });
  HttpProviderConfig c;
  c.kind = HttpProviderConfig::Kind::kAnthropic;
  c.base_url = "http://127.0.0.1:" + std::to_string(server.port());
  c.api_key = "k";
  HttpProvider p(c, net::MakeStreamingHttp());
  ModelRequest q;
  q.model = "claude-x";
  q.messages = {{Message::Role::kUser, "hi", {}, {}, {}}};
  q.max_output_tokens = 100;
  q.timeout_us = 20'000'000;
  start_usage = {{"input_tokens", 10},
                 {"cache_read_input_tokens", 1000},
                 {"cache_creation_input_tokens", 50},
                 {"output_tokens", 1}};
  auto turn = p.Complete(q, nullptr, nullptr);
  ASSERT_TRUE(turn.ok()) << turn.error().message;
  EXPECT_EQ(turn->usage.input_tokens, 1060u);
  EXPECT_EQ(turn->usage.output_tokens, 7u);
  EXPECT_EQ(server.LastBody()["max_tokens"], 100);
  start_usage = {{"input_tokens", 10}, {"cache_read_input_tokens", -3}};
  turn = p.Complete(q, nullptr, nullptr);
  ASSERT_FALSE(turn.ok());
  EXPECT_NE(turn.error().message.find("invalid usage count cache_read_input_tokens"),
            std::string::npos)
      << turn.error().message;
  // No usage at all: estimated from the bytes, never 0.
  start_usage = json::object();
  turn = p.Complete(q, nullptr, nullptr);
  ASSERT_TRUE(turn.ok()) << turn.error().message;
  EXPECT_GT(turn->usage.input_tokens, 0u);
}

// `kill -9` after a model call: what it used is in the session store, so a resumed
// session goes on from it (600 + 600 input tokens pass a budget of 1000).
TEST_F(BudgetTest, UsageOfAKilledChatIsStillCounted) {
  BudgetServer* self = nullptr;
  BudgetServer server([&self](int n, httplib::Response& r) {
    if (n == 2) self->Hold(60000);  // the run's second call: killed while it waits
    if (n == 1) {
      Stream(r, ToolTurn({{"prompt_tokens", 600}, {"completion_tokens", 5}}), 64);
    } else {
      Stream(r, TextTurn("done", {{"prompt_tokens", 600}, {"completion_tokens", 5}}), 64);
    }
  });
  self = &server;
  Policy(R"({"budgets": {"input_tokens": 1000},
             "prices": {"m-1": {"input_per_mtok": 1, "output_per_mtok": 1}}})");
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    execl(MOAT_BINARY, "moat", "chat", "--provider", "openai", "--model", "m-1", "--base-url",
          url.c_str(), "--workspace", ws_.c_str(), "--audit", "none", "--approve", "none", "go",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 600 && server.requests() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(server.requests(), 2);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  test::CliResult ls = test::Cli("sessions --workspace " + ws_ + " ls");
  ASSERT_EQ(ls.status, 0) << ls.err;
  std::string id = ls.out.substr(0, 12);
  test::CliResult r = test::Cli(server.Flags(ws_) + "--session " + id + " 'go on'");
  EXPECT_EQ(r.status, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("-- budget_input_tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-- session so far: 3 steps, 1 tool calls"), std::string::npos) << r.out;
}

// --- A hostile provider's size ----------------------------------------------------------

// A provider on loopback that streams `total` bytes of one generated answer, made of
// `piece(i)` repeated (generated as it goes: the server holds none of it).
class FloodServer {
 public:
  FloodServer(std::function<std::string(size_t)> piece, uint64_t total)
      : piece_(std::move(piece)), total_(total) {
    auto handler = [this](const httplib::Request&, httplib::Response& r) {
      ++requests_;
      r.set_chunked_content_provider("text/event-stream",
                                     [this](size_t offset, httplib::DataSink& sink) {
                                       if (offset >= total_ || stopped_) {
                                         sink.done();
                                         return true;
                                       }
                                       std::string p = piece_(n_++);
                                       sent_ += p.size();
                                       return sink.write(p.data(), p.size());
                                     });
    };
    server_.Post("/v1/chat/completions", handler);
    server_.Post("/v1/messages", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    net::WaitRunning(server_);
  }
  ~FloodServer() {
    stopped_ = true;
    server_.stop();
    thread_.join();
  }
  HttpProvider Provider(bool anthropic) const {
    HttpProviderConfig c;
    c.kind = anthropic ? HttpProviderConfig::Kind::kAnthropic : HttpProviderConfig::Kind::kOpenAi;
    c.base_url = "http://127.0.0.1:" + std::to_string(port_) + (anthropic ? "" : "/v1");
    c.backoff_us = 1000;
    return HttpProvider(c, net::MakeStreamingHttp());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const { return requests_; }
  uint64_t sent() const { return sent_; }

 private:
  std::function<std::string(size_t)> piece_;
  uint64_t total_;
  std::atomic<size_t> n_{0};
  std::atomic<uint64_t> sent_{0};
  std::atomic<int> requests_{0};
  std::atomic<bool> stopped_{false};
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

const std::string kFloodText(64 * 1024, 'x');

std::string TextDelta(bool anthropic, size_t i) {
  if (!anthropic) return OpenAiChunk({{"content", kFloodText}});
  if (i == 0) return AnthropicEvent("message_start", {{"message", json::object()}});
  if (i == 1) {
    return AnthropicEvent("content_block_start",
                          {{"index", 0}, {"content_block", {{"type", "text"}}}});
  }
  return AnthropicEvent("content_block_delta",
                        {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", kFloodText}}}});
}

// 200 MiB of text deltas (each event well under the 4 MiB event limit) end the call at
// the turn's text limit, without a retry.
TEST(ProviderLimits, AFloodOfTextEndsTheCallAtTheTurnsLimit) {
  for (bool anthropic : {false, true}) {
    FloodServer server([&](size_t i) { return TextDelta(anthropic, i); }, 200ull << 20);
    HttpProvider p = server.Provider(anthropic);
    uint64_t streamed = 0;
    auto t = p.Complete(
        ModelRequest{}, [&](std::string_view s) { streamed += s.size(); }, nullptr);
    ASSERT_FALSE(t.ok()) << anthropic;
    EXPECT_EQ(t.error().code, ErrorCode::kLimit);
    EXPECT_NE(t.error().message.find("is too large: the turn's text is larger than 8 MiB"),
              std::string::npos)
        << t.error().message;
    EXPECT_LE(streamed, 8u << 20);
    EXPECT_EQ(server.requests(), 1);
    EXPECT_LT(server.sent(), 64ull << 20) << "the transfer stopped at the limit";
  }
}

// Keep-alive comments and events the decoder skips count towards the stream's limit.
TEST(ProviderLimits, AnEndlessStreamOfNothingEndsAtTheStreamLimit) {
  const std::string comment = ":" + std::string(64 * 1024, ' ') + "\n";
  FloodServer server([&](size_t) { return comment; }, 200ull << 20);
  HttpProvider p = server.Provider(false);
  auto t = p.Complete(ModelRequest{}, nullptr, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("the stream is larger than 64 MiB (the limit)"),
            std::string::npos)
      << t.error().message;
  EXPECT_EQ(server.requests(), 1);
}

// A body whose content coding decodes to nothing (gzip of empty stored blocks) is bounded
// as received: the decoded limits alone would never see it.
TEST(ProviderLimits, ACompressedBodyIsBoundedAsReceived) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::atomic<int> requests{0};
  std::atomic<uint64_t> sent{0};
  std::thread server([&] {
    // gzip header, then empty non-final stored blocks (5 bytes each, decoding to nothing).
    std::string nothing;
    for (int i = 0; i < 13000; ++i) nothing += std::string("\x00\x00\x00\xff\xff", 5);
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
        "Connection: close\r\n\r\n" +
        std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
    for (;;) {
      pollfd pfd{listener, POLLIN, 0};
      if (poll(&pfd, 1, 3000) <= 0) return;  // no further attempt
      int c = accept(listener, nullptr, nullptr);
      if (c < 0) return;
      ++requests;
      char buf[65536];
      (void)!read(c, buf, sizeof buf);  // the request (not looked at)
      bool ok =
          send(c, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size());
      for (uint64_t total = 0; ok && total < (200ull << 20); total += nothing.size()) {
        ok = send(c, nothing.data(), nothing.size(), MSG_NOSIGNAL) > 0;
        if (ok) sent += nothing.size();
      }
      close(c);
    }
  });
  HttpProviderConfig c;
  c.base_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v1";
  c.backoff_us = 1000;
  HttpProvider p(c, net::MakeStreamingHttp());
  auto t = p.Complete(ModelRequest{}, nullptr, nullptr);
  server.join();
  close(listener);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kLimit);
  EXPECT_NE(t.error().message.find("the response is larger than 64 MiB as received (the limit)"),
            std::string::npos)
      << t.error().message;
  EXPECT_EQ(requests.load(), 1) << "not retried";
  EXPECT_LT(sent.load(), 100ull << 20);
}

// Through the real binary: `moat chat` against a provider that streams 200 MiB of text
// stops with a clear provider error, and its memory stays bounded.
TEST(ProviderLimits, MoatChatStaysSmallAgainstAFloodOfText) {
  FloodServer server([](size_t i) { return TextDelta(false, i); }, 200ull << 20);
  std::string ws = test::TempDir("provider-flood-ws");
  std::filesystem::create_directories(ws);
  std::string out_file = ws + ".out";
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    int out = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(null, 0);
    dup2(out, 1);
    dup2(null, 2);
    execl(MOAT_BINARY, "moat", "chat", "--provider", "openai", "--model", "m-1", "--base-url",
          server.url().c_str(), "--workspace", ws.c_str(), "--audit", "none", "--approve", "none",
          "go", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  pid_t done = 0;
  while ((done = wait4(pid, &status, WNOHANG, &usage)) == 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (done != pid) {
    kill(pid, SIGKILL);
    wait4(pid, &status, 0, &usage);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long peak_kib = usage.ru_maxrss;
  printf("moat chat against 200 MiB of text: %.1f s, peak RSS %ld KiB\n", secs, peak_kib);
  ASSERT_EQ(done, pid) << "still running after 120 s";
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1);
  // The last line of a long answer: the provider error and the limit.
  std::string printed = test::Slurp(out_file);
  std::string tail = printed.substr(printed.size() > 4096 ? printed.size() - 4096 : 0);
  EXPECT_NE(tail.find("-- provider_error: openai: the answer from openai is too large: the "
                      "turn's text is larger than 8 MiB (the limit)"),
            std::string::npos)
      << tail.substr(tail.size() > 300 ? tail.size() - 300 : 0);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's shadow and quarantine are memory of their own
  EXPECT_LT(peak_kib, 150L * 1024) << "peak RSS";
#endif
  EXPECT_EQ(server.requests(), 1);
  std::filesystem::remove_all(ws);
  std::filesystem::remove(out_file);
}

}  // namespace
}  // namespace moat::agent
