// moat.http_request from inside the sandbox: guests/net/http_probe.c, through the C header
// guests/include/moat/http.h, against a real HTTP server on loopback and a resolver the
// test controls. Covers the grant (deny by default, rule sets that must all allow), the
// per-run limits (count, request and response bytes, time, open responses), the per-tool
// rate, hostile pointers and handles, and secrets: substituted only for bound hosts, never
// in guest memory, output or the run report, and refused when a request would carry one
// out through the URL, a header, the body, a DNS name or a redirect.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>

#include "execution/engine.h"
#include "execution/net/http_backend.h"
#include "execution/net/secret_store.h"
#include "net_test_util.h"
#include "orchestration/tools/registry.h"
#include "test_util.h"

namespace moat {
namespace {

using net::ScriptedResolver;

constexpr const char* kSecret = "tok-9f8e7d6c5b4a3210";

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string Base64(std::string_view s) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += t[(v >> k) & 63];
  }
  if (i + 1 == s.size()) {
    uint32_t v = uint8_t(s[i]) << 16;
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == s.size()) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8);
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

class GuestHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    resolver_ = std::make_shared<ScriptedResolver>();
    EngineOptions o;
    o.http_backend = net::MakeHttpBackend(resolver_);
    auto e = Engine::Create(o);
    ASSERT_TRUE(e.ok()) << e.error().message;
    engine_ = std::move(*e).release();
    auto m = engine_->LoadFile(test::Guest("http_probe"));
    ASSERT_TRUE(m.ok()) << m.error().message;
    probe_ = new ModuleHandle(*m);
  }

  void SetUp() override {
    hits_ = 0;
    // Every request as the server received it, before it is answered.
    server_.set_pre_routing_handler([this](const httplib::Request& q, httplib::Response&) {
      ++hits_;
      std::lock_guard<std::mutex> lock(seen_mu_);
      seen_ += q.method + " " + q.target + "\n";
      for (const auto& [k, v] : q.headers) seen_ += k + ": " + v + "\n";
      seen_ += q.body + "\n";
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server_.Get("/hello", [](const httplib::Request&, httplib::Response& r) {
      r.set_content("hello from loopback", "text/plain");
    });
    server_.Get("/echo", [](const httplib::Request& q, httplib::Response& r) {
      r.set_content("auth=" + q.get_header_value("Authorization"), "text/plain");
    });
    server_.Get("/echo-b64", [](const httplib::Request& q, httplib::Response& r) {
      std::string auth = q.get_header_value("Authorization");
      r.set_content("encoded=" + Base64(auth.substr(auth.find(' ') + 1)), "text/plain");
    });
    server_.Get("/redirect", [](const httplib::Request& q, httplib::Response& r) {
      r.status = 302;
      r.set_header("Location", q.get_param_value("to"));
    });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(std::string(3 << 20, 'b'), "application/octet-stream");
    });
    server_.Get("/trickle", [](const httplib::Request&, httplib::Response& r) {
      r.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return sink.write("t", 1);
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    net::WaitRunning(server_);
    base_ = "http://svc.test:" + std::to_string(port_);
    other_ = "http://other.test:" + std::to_string(port_);
    resolver_->Set("svc.test", {{"127.0.0.1"}});
    resolver_->Set("other.test", {{"127.0.0.1"}});
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // A grant of both test hosts (as the caller's policy) and loopback.
  ExecRequest Request(std::vector<std::string> argv) {
    ExecRequest r;
    r.argv = {"http_probe.wasm"};
    r.argv.insert(r.argv.end(), argv.begin(), argv.end());
    r.network.rule_sets = {{base_, other_}};
    r.network.networks = {"127.0.0.1/32"};
    return r;
  }
  void GrantSecret(ExecRequest* r) {
    net::Secret s;
    s.name = "TOKEN";
    s.value = kSecret;
    s.hosts = {"svc.test"};
    r->network.secrets.push_back(s);
  }
  ExecResult Run(const ExecRequest& r) { return engine_->Run(*probe_, r); }
  static std::string Events(const ExecResult& r) {
    std::string s;
    for (const auto& e : r.denied) s += e.operation + " | " + e.subject + " | " + e.reason + "\n";
    return s;
  }
  std::string Seen() {
    std::lock_guard<std::mutex> lock(seen_mu_);
    return seen_;
  }

  static inline std::shared_ptr<ScriptedResolver> resolver_;
  static inline Engine* engine_ = nullptr;
  static inline ModuleHandle* probe_ = nullptr;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::string base_, other_;
  std::atomic<int> hits_{0};
  std::mutex seen_mu_;
  std::string seen_;
};

TEST_F(GuestHttpTest, AGrantedRequestReturnsStatusHeadersAndBody) {
  ExecResult r = Run(Request({"fetch", "GET", base_ + "/hello"}));
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.stdout_bytes.substr(0, r.stdout_bytes.find('\n')),
            "status=200 url=" + base_ + "/hello bytes=19");
  EXPECT_NE(r.stdout_bytes.find("content-type: text/plain"), std::string::npos);
  EXPECT_EQ(r.stdout_bytes.substr(r.stdout_bytes.size() - 19), "hello from loopback");
  EXPECT_EQ(r.http_requests, 1u);
  EXPECT_EQ(r.http_bytes_received, 19u);
  EXPECT_TRUE(r.denied.empty()) << Events(r);
}

TEST_F(GuestHttpTest, WithoutAGrantNothingLeavesAndTheDenialIsReported) {
  ExecRequest q = Request({"fetch", "GET", base_ + "/hello"});
  q.network = {};
  ExecResult r = Run(q);
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.stdout_bytes, "error=1 no network access is granted to this run\n");
  ASSERT_EQ(r.denied.size(), 1u);
  EXPECT_EQ(r.denied[0].operation, "http_request");
  EXPECT_EQ(r.denied[0].subject, "GET " + base_ + "/hello");
  EXPECT_EQ(hits_, 0);
  EXPECT_EQ(r.http_requests, 0u);
}

TEST_F(GuestHttpTest, EveryRuleSetMustAllowTheRequest) {
  // The tool's manifest asks for /hello only; the caller grants the whole host.
  ExecRequest q = Request({"fetch", "GET", base_ + "/echo"});
  q.network.rule_sets = {{"GET " + base_ + "/hello"}, {base_}};
  ExecResult r = Run(q);
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=1 ") << r.stdout_bytes;
  EXPECT_NE(r.stdout_bytes.find("matches no egress rule"), std::string::npos);
  q.argv = {"http_probe.wasm", "fetch", "GET", base_ + "/hello"};
  EXPECT_EQ(Run(q).stdout_bytes.substr(0, 10), "status=200");
  // The other way round: the caller narrows what the manifest asks for.
  q.network.rule_sets = {{base_}, {base_ + "/echo"}};
  r = Run(q);
  EXPECT_NE(r.stdout_bytes.find("not by every one"), std::string::npos) << r.stdout_bytes;
  // A method the rule does not list.
  q.network.rule_sets = {{"POST " + base_}};
  EXPECT_EQ(Run(q).stdout_bytes.substr(0, 8), "error=1 ");
  // A malformed grant is the caller's error, reported as such.
  q.network.rule_sets = {{"ftp://svc.test"}};
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=3 ") << r.stdout_bytes;
  EXPECT_EQ(hits_, 1);
}

TEST_F(GuestHttpTest, BlockedAddressesAndRedirectsStayBlockedFromTheGuest) {
  resolver_->Set("svc.test", {{"10.1.2.3"}});
  ExecResult r = Run(Request({"fetch", "GET", base_ + "/hello"}));
  EXPECT_NE(r.stdout_bytes.find("10.1.2.3 is private"), std::string::npos) << r.stdout_bytes;
  resolver_->Set("svc.test", {{"127.0.0.1"}});
  r = Run(Request({"fetch", "GET", base_ + "/redirect?to=http://169.254.169.254/latest"}));
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=1 ") << r.stdout_bytes;
  ASSERT_FALSE(r.denied.empty());
  EXPECT_NE(r.denied.back().reason.find("matches no egress rule"), std::string::npos);
  // Granted by the rules, the metadata address is still refused by its class.
  ExecRequest q = Request({"fetch", "GET", base_ + "/redirect?to=http://169.254.169.254/latest"});
  q.network.rule_sets[0].push_back("http://169.254.169.254");
  r = Run(q);
  EXPECT_NE(r.stdout_bytes.find("cloud metadata"), std::string::npos) << r.stdout_bytes;
}

TEST_F(GuestHttpTest, TheBodyIsReadInBoundedChunks) {
  ExecResult r = Run(Request({"chunks", base_ + "/hello", "7"}));
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.stdout_bytes, "reads=3 rc=0 bytes=19\nhello from loopback\nclose=0 close_again=5\n");
  r = Run(Request({"chunks", base_ + "/big", "1000000"}));
  EXPECT_EQ(r.stdout_bytes.substr(0, 30), "reads=4 rc=0 bytes=3145728\nbbb");
}

TEST_F(GuestHttpTest, HostilePointersHandlesAndHeadersAreErrorsNotCrashes) {
  ExecResult r = Run(Request({"abuse"}));
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.stdout_bytes,
            "6\n"  // request struct outside memory
            "6\n"  // request struct straddling the end of memory
            "6\n"  // URL outside memory
            "2\n"  // a body length of 4 GiB: over the request limit before any copy
            "6\n"  // response struct outside memory
            "3\n"  // header line without a name
            "5\n"  // handle 0
            "5\n"  // handle never opened
            "5\n"  // close of a handle never opened
            "6\n"  // error message into a buffer outside memory
            "last error: no open response with that handle\n");
  EXPECT_EQ(hits_, 0);
}

TEST_F(GuestHttpTest, PerRunLimitsOnCountsBytesAndOpenResponses) {
  ExecRequest q = Request({"repeat", base_ + "/hello", "5"});
  q.limits.max_http_requests = 3;
  ExecResult r = Run(q);
  EXPECT_EQ(r.stdout_bytes, "0\n0\n0\n2\n2\n");
  EXPECT_EQ(r.http_requests, 3u);
  EXPECT_EQ(hits_, 3);
  ASSERT_EQ(r.denied.size(), 2u) << Events(r);
  EXPECT_EQ(r.denied[0].reason, "request count limit reached");

  // Responses held open: the 17th is refused until one is closed.
  r = Run(Request({"hold", base_ + "/hello", "17"}));
  EXPECT_EQ(r.stdout_bytes.substr(r.stdout_bytes.size() - 4), "0\n2\n");

  // Response bytes of the whole run: the second 3 MiB body does not fit in 4 MiB.
  q = Request({"repeat", base_ + "/big", "2"});
  q.limits.max_http_total_bytes = 4 << 20;
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes, "0\n2\n");
  EXPECT_EQ(r.http_bytes_received, 3u << 20);

  // One response over the per-request limit.
  q = Request({"fetch", "GET", base_ + "/big"});
  q.limits.max_http_response_bytes = 1 << 20;
  r = Run(q);
  EXPECT_NE(r.stdout_bytes.find("error=2 response body larger than 1048576"), std::string::npos)
      << r.stdout_bytes;

  // Request bytes of the whole run: room for two and a half requests; the third is refused.
  q = Request({"repeat", base_ + "/hello", "3"});
  uint64_t one = 3 + (base_ + "/hello").size();
  q.limits.max_http_sent_bytes = 2 * one + one / 2;
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes, "0\n0\n2\n");
  EXPECT_EQ(r.http_bytes_sent, 2 * one);

  // A request over the request limit never leaves.
  int before = hits_;
  q = Request({"fetch", "POST", base_ + "/hello", "", std::string(5000, 'x')});
  q.limits.max_http_request_bytes = 4096;
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=2 ") << r.stdout_bytes;
  EXPECT_EQ(hits_, before);
}

TEST_F(GuestHttpTest, ATricklingResponseIsCutByTheRequestTimeOrTheRunDeadline) {
  ExecRequest q = Request({"fetch", "GET", base_ + "/trickle"});
  q.limits.http_timeout_us = 300'000;
  auto t0 = std::chrono::steady_clock::now();
  ExecResult r = Run(q);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, RunStatus::kOk);
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=2 ") << r.stdout_bytes;
  EXPECT_LT(s, 2.0);
  // The run's deadline comes first: the run ends as a timeout, on time.
  q.limits.http_timeout_us = 30'000'000;
  q.limits.timeout_us = 400'000;
  t0 = std::chrono::steady_clock::now();
  r = Run(q);
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, RunStatus::kTimeout) << r.message;
  EXPECT_LT(s, 2.0);
}

TEST_F(GuestHttpTest, CancellationStopsARequestInFlight) {
  ExecRequest q = Request({"fetch", "GET", base_ + "/trickle"});
  q.cancel = std::make_shared<CancelToken>();
  std::thread canceller([c = q.cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    c->Cancel();
  });
  auto t0 = std::chrono::steady_clock::now();
  ExecResult r = Run(q);
  canceller.join();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, RunStatus::kCancelled) << r.message;
  EXPECT_LT(s, 2.0);
}

TEST_F(GuestHttpTest, TheRateLimitIsSharedByEveryRunOfATool) {
  auto rate = std::make_shared<RateLimiter>(3);
  ExecRequest q = Request({"repeat", base_ + "/hello", "2"});
  q.network.rate = rate;
  EXPECT_EQ(Run(q).stdout_bytes, "0\n0\n");
  ExecResult r = Run(q);
  EXPECT_EQ(r.stdout_bytes, "0\n2\n");
  ASSERT_EQ(r.denied.size(), 1u);
  EXPECT_EQ(r.denied[0].reason, "rate limit reached");
}

TEST_F(GuestHttpTest, ASecretIsSubstitutedForItsHostAndNeverReadBack) {
  ExecRequest q =
      Request({"fetch", "GET", base_ + "/echo", "Authorization: Bearer {{secret:TOKEN}}"});
  GrantSecret(&q);
  ExecResult r = Run(q);
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  // The server got the value; the guest got the echo with the value redacted.
  EXPECT_NE(Seen().find(std::string("Authorization: Bearer ") + kSecret), std::string::npos);
  EXPECT_EQ(r.stdout_bytes.find(kSecret), std::string::npos);
  EXPECT_NE(r.stdout_bytes.find("auth=Bearer [redacted secret TOKEN]"), std::string::npos)
      << r.stdout_bytes;
  ASSERT_EQ(r.denied.size(), 1u) << Events(r);
  EXPECT_EQ(r.denied[0].operation, "http_response");
  // An encoded echo is caught as well.
  q.argv[3] = base_ + "/echo-b64";
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes.find(Base64(kSecret)), std::string::npos);
  EXPECT_NE(r.stdout_bytes.find("[redacted secret TOKEN]"), std::string::npos) << r.stdout_bytes;
}

TEST_F(GuestHttpTest, ExfiltrationOfASecretIsRefusedOnEveryPath) {
  auto run = [&](std::vector<std::string> argv) {
    ExecRequest q = Request(std::move(argv));
    GrantSecret(&q);
    return Run(q);
  };
  auto refused = [](const ExecResult& r) {
    return r.status == RunStatus::kOk && r.stdout_bytes.substr(0, 8) == "error=1 " &&
           r.stdout_bytes.find(kSecret) == std::string::npos;
  };
  // To a host the secret is not bound to: URL, header, body.
  ExecResult r = run({"fetch", "GET", other_ + "/hello?k={{secret:TOKEN}}"});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  r = run({"fetch", "GET", other_ + "/hello", "X-Key: {{secret:TOKEN}}"});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  r = run({"fetch", "POST", other_ + "/hello", "", "{\"k\":\"{{secret:TOKEN}}\"}"});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  // The value itself (a guest that learnt it somehow), raw and encoded, even to its host.
  r = run({"fetch", "GET", base_ + "/hello?k=" + std::string(kSecret)});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  r = run({"fetch", "GET", base_ + "/hello", "X-Data: " + Base64(kSecret)});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  r = run({"fetch", "POST", base_ + "/hello", "", "data=" + Hex(kSecret)});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  // Through a DNS name: neither the placeholder nor the value reaches the resolver.
  auto looked_up_secret = [&] {
    for (const std::string& name : resolver_->Lookups()) {
      if (name.find("tok-") != std::string::npos || name.find("secret") != std::string::npos ||
          name.find(Hex(kSecret)) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  r = run({"fetch", "GET", "http://{{secret:TOKEN}}.svc.test:" + std::to_string(port_) + "/"});
  EXPECT_EQ(r.stdout_bytes.find(kSecret), std::string::npos);
  EXPECT_NE(r.stdout_bytes.substr(0, 6), "status") << r.stdout_bytes;
  r = run({"fetch", "GET", "http://" + Hex(kSecret) + ".svc.test:" + std::to_string(port_) + "/"});
  EXPECT_EQ(r.stdout_bytes.find(kSecret), std::string::npos);
  EXPECT_NE(r.stdout_bytes.substr(0, 6), "status") << r.stdout_bytes;
  EXPECT_FALSE(looked_up_secret());
  // Through a redirect: the bound host answers with a Location on another host, and the
  // next hop would carry the value in its URL or in a header.
  r = run({"fetch", "GET", base_ + "/redirect?to=" + other_ + "/hello%3Fk%3D{{secret:TOKEN}}"});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  EXPECT_NE(r.stdout_bytes.find("would carry secret TOKEN"), std::string::npos) << r.stdout_bytes;
  r = run({"fetch", "GET", base_ + "/redirect?to=" + other_ + "/hello", "X-Key: {{secret:TOKEN}}"});
  EXPECT_TRUE(refused(r)) << r.stdout_bytes;
  // A redirect to a name made of the value is refused before it is looked up.
  r = run(
      {"fetch", "GET",
       base_ + "/redirect?to=http://{{secret:TOKEN}}.other.test:" + std::to_string(port_) + "/"});
  EXPECT_EQ(r.stdout_bytes.find(kSecret), std::string::npos);
  EXPECT_NE(r.stdout_bytes.substr(0, 6), "status") << r.stdout_bytes;
  EXPECT_FALSE(looked_up_secret());
  // The other host received nothing, and no report holds the value.
  EXPECT_EQ(Seen().find("Host: other.test"), std::string::npos) << Seen();
  EXPECT_EQ(Events(r).find(kSecret), std::string::npos);
}

TEST_F(GuestHttpTest, WithoutTheSecretGrantedAPlaceholderIsRefused) {
  ExecRequest q = Request({"fetch", "GET", base_ + "/echo", "Authorization: {{secret:TOKEN}}"});
  ExecResult r = Run(q);
  EXPECT_EQ(r.stdout_bytes, "error=1 secret TOKEN is not granted to this run\n");
  EXPECT_EQ(hits_, 0);
}

// The http_fetch tool through the registry: the manifest's rules and the caller's must
// both allow a URL, a secret reaches the tool only when the caller grants it, and the
// rate per tool holds across calls.
TEST_F(GuestHttpTest, RegistryCallsCombineManifestAndCallerGrants) {
  tools::RegistryOptions o;
  o.builtin_dirs = {MOAT_TOOLS_DIR};
  o.preload_builtins = false;
  auto reg = tools::Registry::Create(engine_, std::move(o));
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  tools::CallOptions co;
  co.network = {base_};
  co.private_networks = {"127.0.0.1/32"};
  nlohmann::json args = {{"url", base_ + "/echo"},
                         {"headers", {{"Authorization", "Bearer {{secret:TOKEN}}"}}}};
  // The placeholder names a secret the caller did not grant.
  tools::CallResult r = (*reg)->Call("http_fetch", args, co);
  EXPECT_EQ(r.result["error"]["code"], "network_denied") << r.result.dump();
  net::Secret s;
  s.name = "TOKEN";
  s.value = kSecret;
  s.hosts = {"svc.test"};
  co.secrets = {s};
  r = (*reg)->Call("http_fetch", args, co);
  ASSERT_TRUE(r.ok) << r.result.dump();
  EXPECT_EQ(r.result["content"]["content"], "auth=Bearer [redacted secret TOKEN]");
  EXPECT_EQ(r.result.dump().find(kSecret), std::string::npos);
  // The caller grants another host only.
  co.network = {other_};
  r = (*reg)->Call("http_fetch", {{"url", base_ + "/hello"}}, co);
  EXPECT_EQ(r.result["error"]["code"], "network_denied") << r.result.dump();
  // No caller grant at all: no network, whatever the manifest asks for.
  co.network.clear();
  r = (*reg)->Call("http_fetch", {{"url", base_ + "/hello"}}, co);
  EXPECT_EQ(r.result["error"]["code"], "network_denied") << r.result.dump();
  // Two requests a minute for this tool: the third call is refused.
  co.network = {base_};
  co.requests_per_minute = 2;
  EXPECT_TRUE((*reg)->Call("http_fetch", {{"url", base_ + "/hello"}}, co).ok);
  EXPECT_TRUE((*reg)->Call("http_fetch", {{"url", base_ + "/hello"}}, co).ok);
  r = (*reg)->Call("http_fetch", {{"url", base_ + "/hello"}}, co);
  EXPECT_EQ(r.result["error"]["code"], "limit") << r.result.dump();
}

// HTTPS from the guest with a secret in a header: the certificate is checked against the
// grant's CA file (here the test's self-signed certificate), and a name the certificate
// does not cover fails as a network error, with nothing sent.
TEST_F(GuestHttpTest, HttpsWithASecretVerifiesTheServer) {
  std::string dir = test::TempDir("guest-https");
  std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  std::filesystem::create_directories(dir);
  // openssl makes the certificate: a real external command, run through the shell.
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=svc.test "
      "-addext subjectAltName=DNS:svc.test -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(system(cmd.c_str()), 0);
  httplib::SSLServer tls(cert.c_str(), key.c_str());
  ASSERT_TRUE(tls.is_valid());
  std::string got;
  tls.Get("/me", [&](const httplib::Request& q, httplib::Response& r) {
    got = q.get_header_value("Authorization");
    r.set_content("{\"user\":\"moat\"}", "application/json");
  });
  int port = tls.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { tls.listen_after_bind(); });
  net::WaitRunning(tls);
  std::string origin = "https://svc.test:" + std::to_string(port);
  resolver_->Set("wrong.test", {{"127.0.0.1"}});
  ExecRequest q =
      Request({"fetch", "GET", origin + "/me", "Authorization: Bearer {{secret:TOKEN}}"});
  q.network.rule_sets = {{"https://*:" + std::to_string(port)}};
  q.network.ca_file = cert;
  GrantSecret(&q);
  ExecResult r = Run(q);
  EXPECT_EQ(r.stdout_bytes.substr(0, r.stdout_bytes.find('\n')),
            "status=200 url=" + origin + "/me bytes=15")
      << r.stdout_bytes;
  EXPECT_EQ(got, std::string("Bearer ") + kSecret);
  // Another name on the same server: the certificate does not cover it. The secret is not
  // bound to that name either, so the request is refused before any connection.
  got.clear();
  q.argv[3] = "https://wrong.test:" + std::to_string(port) + "/me";
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=1 ") << r.stdout_bytes;
  q.argv[4] = "";
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=4 ") << r.stdout_bytes;
  // Without the CA file the server is not trusted.
  q.argv[3] = origin + "/me";
  q.network.ca_file.clear();
  r = Run(q);
  EXPECT_EQ(r.stdout_bytes.substr(0, 8), "error=4 ") << r.stdout_bytes;
  EXPECT_EQ(got, "");
  tls.stop();
  t.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moat
