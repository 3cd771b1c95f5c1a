// The network through the real `moat` binary: the libcurl backend comes from the plugin
// beside it (moat-http.so), loaded on a run's first request; `moat run` and
// `moat call http_fetch` with --allow-net, --allow-private and --secret, against a real server
// on loopback.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "net_test_util.h"
#include "test_util.h"

namespace moat {
namespace {

using json = nlohmann::json;
using test::Cli;
using test::CliResult;

constexpr const char* kPage = R"(<!DOCTYPE html>
<html><head><title>  Release
 notes </title><style>body { color: red }</style>
<script>var secret = "<p>not text</p>";</script></head>
<body><h1>moat 1.0</h1><p>Fast &amp; safe:   tools run
in a <b>sandbox</b>.</p><!-- hidden comment --><ul><li>fuel</li><li>memory &lt; 4&nbsp;GiB</li></ul>
<p>caf&#233; &#x2713;</p></body></html>)";

// How a server may reflect text: the escapes of JSON, JavaScript, HTML and URLs, alone,
// mixed and nested, and UTF-16. A guest chooses the form by the endpoint it calls.
std::string Reflected(const std::string& v, const std::string& as) {
  auto each = [&](std::vector<const char*> fmts) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      char b[16];
      snprintf(b, sizeof b, fmts[i % fmts.size()], static_cast<unsigned char>(v[i]));
      out += b;
    }
    return out;
  };
  if (as == "json-u") return "{\"auth\":\"" + each({"\\u%04x"}) + "\"}";
  if (as == "json") {  // as encoders that escape '/' and '+' write it
    std::string out;
    for (char c : v)
      out += c == '/' ? std::string("\\/") : c == '+' ? "\\u002B" : std::string(1, c);
    return "{\"auth\":\"" + out + "\"}";
  }
  if (as == "js") return "var auth = \"" + each({"\\x%02x"}) + "\";";
  if (as == "html") return "<p>" + each({"&#%d;", "&#x%x;", "%c"}) + "</p>";
  if (as == "pct") return "auth=" + each({"%%%02x"});
  if (as == "mixed") return "auth=" + each({"\\u%04x", "&#%d;", "%%%02X", "%c"});
  if (as == "nested") return "auth=" + each({"\\u0025%02x"});  // percent inside JSON
  if (as == "utf16") {
    std::string out;
    for (char c : v) out += std::string(1, c) + '\0';
    return out;
  }
  return "auth=" + v;
}

class NetCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/hello", [](const httplib::Request&, httplib::Response& r) {
      r.set_content("hello from loopback", "text/plain");
    });
    server_.Get("/page", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(kPage, "text/html; charset=utf-8");
    });
    server_.Get("/latin1", [](const httplib::Request&, httplib::Response& r) {
      r.set_content("caf\xe9", "text/plain; charset=ISO-8859-1");
    });
    server_.Get("/binary", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(std::string("\x89PNG\r\n\x1a\n\0\0\0", 11), "image/png");
    });
    server_.Get("/echo", [this](const httplib::Request& q, httplib::Response& r) {
      received_auth_ = q.get_header_value("Authorization");
      r.set_content("auth=" + received_auth_, "text/plain");
    });
    server_.Get("/reflect", [this](const httplib::Request& q, httplib::Response& r) {
      received_auth_ = q.get_header_value("Authorization");
      std::string as = q.get_param_value("as");
      r.set_content(Reflected(received_auth_, as), as.substr(0, 4) == "json" ? "application/json"
                                                   : as == "html"            ? "text/html"
                                                   : as == "utf16" ? "text/plain; charset=utf-16le"
                                                                   : "text/plain");
    });
    // The reflection in JSON escapes, a few bytes per network write.
    server_.Get("/trickle-reflect", [this](const httplib::Request& q, httplib::Response& r) {
      received_auth_ = q.get_header_value("Authorization");
      auto text = std::make_shared<std::string>(Reflected(received_auth_, "json-u"));
      r.set_chunked_content_provider(
          "application/json", [text](size_t offset, httplib::DataSink& sink) {
            if (offset >= text->size()) {
              sink.done();
              return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            return sink.write(text->data() + offset, std::min<size_t>(5, text->size() - offset));
          });
    });
    // A hostile server: the reflection in a content coding whatever the client asked for.
    server_.Get("/echo-coded", [this](const httplib::Request& q, httplib::Response& r) {
      received_auth_ = q.get_header_value("Authorization");
      std::string coding = q.get_param_value("coding");
      std::unique_ptr<httplib::detail::compressor> c;
      if (coding == "gzip") c = std::make_unique<httplib::detail::gzip_compressor>();
      if (coding == "br") c = std::make_unique<httplib::detail::brotli_compressor>();
      std::string plain = "auth=" + received_auth_, coded;
      c->compress(plain.data(), plain.size(), true, [&](const char* d, size_t n) {
        coded.append(d, n);
        return true;
      });
      r.set_header("Content-Encoding", coding);
      // moat asks for the identity coding, so cpp-httplib does not compress it again.
      r.set_content(coded, "text/plain");
    });
    // Everything else: the request target as sent, so a test sees what got through.
    server_.Get("[\\s\\S]*", [this](const httplib::Request& q, httplib::Response& r) {
      std::lock_guard<std::mutex> lock(targets_mutex_);
      targets_.push_back(q.target);
      r.set_content("reached " + q.path, "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    net::WaitRunning(server_);
    base_ = "http://127.0.0.1:" + std::to_string(port_);
    grant_ = "--allow-net " + base_ + " --allow-private 127.0.0.1/32 ";
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  CliResult Fetch(const std::string& args, const std::string& flags) {
    return Cli("call http_fetch " + flags + " --args '" + args + "'");
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::string base_, grant_;
  std::string received_auth_;
  std::mutex targets_mutex_;
  std::vector<std::string> targets_;
};

TEST_F(NetCliTest, RunLoadsTheNetworkPluginOnFirstUse) {
  CliResult r = Cli("run " + grant_ + test::Guest("http_probe") + " fetch GET " + base_ + "/hello");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "status=200 url=" + base_ + "/hello bytes=19");
  EXPECT_EQ(r.out.substr(r.out.size() - 19), "hello from loopback");
  // Without a grant, nothing leaves; the report names the denial.
  r = Cli("run --report json " + test::Guest("http_probe") + " fetch GET " + base_ + "/hello");
  EXPECT_EQ(r.out, "error=1 no network access is granted to this run\n");
  json report = json::parse(r.err.substr(r.err.find('{')));
  EXPECT_EQ(report["denied"][0]["operation"], "http_request") << r.err;
  // Granted by rule but not by address class: loopback needs --allow-private.
  r = Cli("run --allow-net " + base_ + " " + test::Guest("http_probe") + " fetch GET " + base_ +
          "/hello");
  EXPECT_NE(r.out.find("error=1 127.0.0.1: address 127.0.0.1 is loopback"), std::string::npos)
      << r.out;
  // Bad flags are usage errors.
  EXPECT_EQ(Cli("run --allow-net ftp://x " + test::Guest("http_probe") + " fetch GET " + base_)
                .out.substr(0, 8),
            "error=3 ");
  EXPECT_EQ(Cli("run --max-requests lots " + test::Guest("hello")).status, 2);
  EXPECT_EQ(
      Cli("run --secret NOPE --secrets-file /nonexistent/s.json " + test::Guest("hello")).status,
      2);
}

TEST_F(NetCliTest, HttpFetchTurnsHtmlIntoText) {
  CliResult r = Fetch(R"({"url":")" + base_ + R"(/page"})", grant_);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  json j = json::parse(r.out);
  ASSERT_TRUE(j["ok"].get<bool>()) << r.out;
  json c = j["content"];
  EXPECT_EQ(c["status"], 200);
  EXPECT_EQ(c["content_type"], "text/html");
  EXPECT_EQ(c["title"], "Release notes");
  EXPECT_EQ(c["format"], "text from html");
  EXPECT_EQ(c["content"],
            "moat 1.0\n\nFast & safe: tools run in a sandbox.\n\n- fuel\n- memory < 4 GiB\n\n"
            "caf\xc3\xa9 \xe2\x9c\x93");
  EXPECT_EQ(c["truncated"], false);
  // Raw, and cut at max_bytes on a character boundary.
  r = Fetch(R"({"url":")" + base_ + R"(/page","raw":true,"max_bytes":15})", grant_);
  c = json::parse(r.out)["content"];
  EXPECT_EQ(c["content"], "<!DOCTYPE html>");
  EXPECT_EQ(c["truncated"], true);
  r = Fetch(R"({"url":")" + base_ + R"(/latin1"})", grant_);
  EXPECT_EQ(json::parse(r.out)["content"]["content"], "caf\xc3\xa9") << r.out;
  r = Fetch(R"({"url":")" + base_ + R"(/binary"})", grant_);
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "binary_content") << r.out;
}

TEST_F(NetCliTest, HttpFetchErrorsAreResultsTheModelCanRead) {
  // No grant from the caller: the manifest asks, nobody grants.
  CliResult r = Fetch(R"({"url":")" + base_ + R"(/hello"})", "");
  json j = json::parse(r.out);
  EXPECT_EQ(j["error"]["code"], "network_denied") << r.out;
  // A host the caller did not grant.
  r = Fetch(R"({"url":"http://127.0.0.2:)" + std::to_string(port_) + R"(/hello"})", grant_);
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "network_denied") << r.out;
  // Not a URL moat accepts.
  r = Fetch(R"({"url":"file:///etc/passwd"})", grant_);
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "invalid_arguments") << r.out;
  // Nothing listens there.
  r = Fetch(R"({"url":"http://127.0.0.1:1/"})",
            "--allow-net http://127.0.0.1:1 --allow-private 127.0.0.1/32");
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "network_error") << r.out;
  // The schema refuses a method outside its list before anything runs.
  r = Fetch(R"({"url":")" + base_ + R"(/hello","method":"CONNECT"})", grant_);
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "invalid_arguments") << r.out;
}

TEST_F(NetCliTest, HttpFetchUsesAStoredSecretWithoutSeeingIt) {
  std::string dir = test::TempDir("net-cli-secrets");
  std::string file = dir + "/secrets.json";
  const std::string value = "sk-test-4b1d2c3e5f607182";
  ASSERT_EQ(
      Cli("secrets --file " + file + " set API_KEY --host 127.0.0.1", "printf '" + value + "\\n'")
          .status,
      0);
  std::string args =
      R"({"url":")" + base_ + R"(/echo","headers":{"Authorization":"Bearer {{secret:API_KEY}}"}})";
  CliResult r = Fetch(args, grant_ + "--secrets-file " + file + " --secret API_KEY");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(received_auth_, "Bearer " + value);
  EXPECT_EQ(r.out.find(value), std::string::npos);
  EXPECT_EQ(r.err.find(value), std::string::npos);
  EXPECT_EQ(json::parse(r.out)["content"]["content"], "auth=Bearer [redacted secret API_KEY]");
  // `moat run` with inherited stdio: the guest prints the echo, redacted on the way out;
  // the report counts the request and names the redaction.
  r = Cli("run --report json " + grant_ + "--secrets-file " + file + " --secret API_KEY " +
          test::Guest("http_probe") + " fetch GET " + base_ +
          "/echo 'Authorization: {{secret:API_KEY}}'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(received_auth_, value);
  EXPECT_EQ(r.out.find(value), std::string::npos);
  EXPECT_NE(r.out.find("auth=[redacted secret API_KEY]"), std::string::npos) << r.out;
  json report = json::parse(r.err.substr(r.err.find('{')));
  EXPECT_EQ(report["http_requests"], 1);
  EXPECT_EQ(report["denied"][0]["operation"], "http_response") << r.err;
  EXPECT_EQ(r.err.find(value), std::string::npos);
  // Not granted on this call: the placeholder is refused and nothing is sent.
  received_auth_.clear();
  r = Fetch(args, grant_);
  EXPECT_EQ(json::parse(r.out)["error"]["code"], "network_denied") << r.out;
  EXPECT_EQ(received_auth_, "");
  std::filesystem::remove_all(dir);
}

// A guest can ask the host a secret is bound to for any transformation of what it
// reflects: a content coding (Accept-Encoding), part of it (Range), or the escapes of the
// format it answers in. Whatever it asks, what reaches it (and what it prints) holds no
// form of the value. Through `moat run` with inherited stdio and through `moat call`.
class NetCliSecretTest : public NetCliTest {
 protected:
  void SetUp() override {
    NetCliTest::SetUp();
    dir_ = test::TempDir("net-cli-reflect");
    file_ = dir_ + "/secrets.json";
    ASSERT_EQ(Cli("secrets --file " + file_ + " set API_KEY --host 127.0.0.1",
                  "printf '" + value_ + "\\n'")
                  .status,
              0);
    secret_ = grant_ + "--secrets-file " + file_ + " --secret API_KEY ";
  }
  void TearDown() override {
    NetCliTest::TearDown();
    std::filesystem::remove_all(dir_);
  }
  CliResult Probe(const std::string& mode, const std::string& path, const std::string& headers) {
    return Cli("run " + secret_ + test::Guest("http_probe") + " " + mode + " " +
               (mode == "chunks" ? base_ + path + " 7" : "GET " + base_ + path) + " '" + headers +
               "'");
  }

  const std::string value_ = "sk/test+4b1d2c3e=5f607182";
  std::string dir_, file_, secret_;
};

TEST_F(NetCliSecretTest, AReflectedSecretIsRedactedWhateverContentCodingTheGuestAsksFor) {
  for (const char* coding : {"gzip", "br", "gzip, br;q=0.5"}) {
    received_auth_.clear();
    CliResult r =
        Probe("fetch", "/echo",
              "Authorization: {{secret:API_KEY}}\nAccept-Encoding: " + std::string(coding));
    ASSERT_EQ(r.status, 0) << coding << ": " << r.err;
    EXPECT_EQ(received_auth_, value_) << coding;
    EXPECT_NE(r.out.find("auth=[redacted secret API_KEY]"), std::string::npos)
        << coding << ": " << r.out;
    EXPECT_EQ(r.out.find(value_), std::string::npos) << coding;
    // The body the guest got is decoded: its headers say so.
    EXPECT_EQ(r.out.find("content-encoding:"), std::string::npos) << coding << ": " << r.out;
  }
}

// A hostile server compresses the reflection although nobody asked (moat asks for the
// identity coding): the body is decoded before it is scanned, so the value is redacted.
TEST_F(NetCliSecretTest, AReflectionCompressedUnaskedIsDecodedAndRedacted) {
  for (const char* coding : {"gzip", "br"}) {
    for (const char* asked : {"", "\nAccept-Encoding: gzip, br"}) {
      received_auth_.clear();
      CliResult r = Probe("fetch", std::string("/echo-coded?coding=") + coding,
                          std::string("Authorization: {{secret:API_KEY}}") + asked);
      ASSERT_EQ(r.status, 0) << coding << ": " << r.err;
      EXPECT_EQ(received_auth_, value_) << coding;
      EXPECT_NE(r.out.find("auth=[redacted secret API_KEY]"), std::string::npos)
          << coding << asked << ": " << r.out;
      EXPECT_EQ(r.out.find("content-encoding:"), std::string::npos) << coding << ": " << r.out;
    }
  }
  // Through the http_fetch tool as well.
  CliResult r = Fetch(
      R"({"url":")" + base_ +
          R"(/echo-coded?coding=gzip","raw":true,"headers":{"Authorization":"{{secret:API_KEY}}"}})",
      secret_);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("auth=[redacted secret API_KEY]"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(value_), std::string::npos) << r.out;
}

TEST_F(NetCliSecretTest, AReflectedSecretIsRedactedInEveryEscapeAServerApplies) {
  for (const char* as : {"json-u", "json", "js", "html", "pct", "mixed", "nested", "utf16"}) {
    received_auth_.clear();
    CliResult r =
        Probe("fetch", std::string("/reflect?as=") + as, "Authorization: {{secret:API_KEY}}");
    ASSERT_EQ(r.status, 0) << as << ": " << r.err;
    ASSERT_EQ(received_auth_, value_) << as;
    EXPECT_NE(r.out.find("[redacted secret API_KEY]"), std::string::npos) << as << ": " << r.out;
    EXPECT_EQ(r.out.find(Reflected(value_, as)), std::string::npos) << as << ": " << r.out;
    EXPECT_EQ(r.out.find(value_), std::string::npos) << as;
  }
  // Compressed and escaped at once.
  CliResult r = Probe("fetch", "/reflect?as=mixed",
                      "Authorization: {{secret:API_KEY}}\nAccept-Encoding: gzip");
  EXPECT_NE(r.out.find("auth=[redacted secret API_KEY]"), std::string::npos) << r.out;
  // Through the http_fetch tool, raw and as text.
  for (const char* as : {"json-u", "html", "mixed"}) {
    for (const char* raw : {"true", "false"}) {
      r = Fetch(
          R"({"url":")" + base_ + "/reflect?as=" + as + R"(","raw":)" + raw +
              R"(,"headers":{"Authorization":"{{secret:API_KEY}}","Accept-Encoding":"gzip"}})",
          secret_);
      ASSERT_EQ(r.status, 0) << as << ": " << r.out << r.err;
      EXPECT_NE(r.out.find("[redacted secret API_KEY]"), std::string::npos) << as << ": " << r.out;
      EXPECT_EQ(r.out.find(Reflected(value_, as)), std::string::npos) << as << ": " << r.out;
      EXPECT_EQ(r.out.find(value_), std::string::npos) << as << ": " << r.out;
    }
  }
}

TEST_F(NetCliSecretTest, AReflectedSecretSplitAcrossNetworkWritesAndGuestReadsIsRedacted) {
  CliResult r = Probe("chunks", "/trickle-reflect", "Authorization: {{secret:API_KEY}}");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 6), "reads=") << r.out;
  EXPECT_NE(r.out.find("{\"auth\":\"[redacted secret API_KEY]\"}"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\\u0073\\u006b"), std::string::npos) << r.out;
}

TEST_F(NetCliSecretTest, ARangeOfAResponseFromAHostASecretIsBoundToIsRefused) {
  // Pieces of a reflected value, each too short to be recognised, would add up to it.
  for (const char* range :
       {"Range: bytes=5-14", "Range: bytes=-8", "If-Range: x\nRange: bytes=9-"}) {
    received_auth_.clear();
    CliResult r =
        Probe("fetch", "/echo", "Authorization: {{secret:API_KEY}}\n" + std::string(range));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.substr(0, 8), "error=1 ") << range << ": " << r.out;
    EXPECT_NE(r.out.find("Range"), std::string::npos) << r.out;
    EXPECT_EQ(received_auth_, "") << range;
  }
  // Even without the secret in this request: the host could have kept it from an earlier one.
  CliResult r = Probe("fetch", "/hello", "Range: bytes=0-4");
  EXPECT_EQ(r.out.substr(0, 8), "error=1 ") << r.out;
  // A run without secrets may ask for ranges.
  r = Cli("run " + grant_ + test::Guest("http_probe") + " fetch GET " + base_ +
          "/hello 'Range: bytes=0-4'");
  EXPECT_EQ(r.out.substr(0, 10), "status=206") << r.out;
  EXPECT_EQ(r.out.substr(r.out.size() - 5), "hello") << r.out;
}

// Under a path-prefix rule, a path a server could read as one outside the prefix never
// leaves: ';' parameters ("..;", which Tomcat and Spring read as ".."), double encoding
// (any "%25"), NUL and other encoded controls, backslashes raw or encoded, encoded dots,
// slashes and ';', overlong UTF-8. Through `moat run` and `moat call http_fetch`; the
// server logs every request that reaches it.
TEST_F(NetCliTest, APathPrefixRuleRefusesPathsAServerCouldReadAsAnother) {
  std::string grant = "--allow-net " + base_ + "/api --allow-private 127.0.0.1/32 ";
  auto run = [&](const std::string& path) {
    return Cli("run " + grant + test::Guest("http_probe") + " fetch GET '" + base_ + path + "'");
  };
  CliResult ok = run("/api/v1/items");
  ASSERT_EQ(ok.out.substr(0, 10), "status=200") << ok.out << ok.err;
  EXPECT_NE(ok.out.find("reached /api/v1/items"), std::string::npos) << ok.out;
  {
    std::lock_guard<std::mutex> lock(targets_mutex_);
    ASSERT_EQ(targets_, std::vector<std::string>{"/api/v1/items"});
    targets_.clear();
  }
  for (const char* path :
       {"/api/..;/admin", "/api/..;x=1/admin", "/api/v1;jsessionid=1", "/api/..%3b/admin",
        "/api/%252e%252e/admin", "/api/%252e./admin", "/api/%25%32%65%25%32%65/admin", "/api/50%25",
        "/api/x%00", "/api/x%00.json", "/api/x%2500", "/api/x%0d%0aX:%20y", "/api/..%5cadmin",
        "/api/%255c..%255cadmin", "/api/..\\admin", "/api/%2e%2e/admin", "/api/..%2fadmin",
        "/api/%c0%ae%c0%ae/admin", "/api/%ef%bc%8e%ef%bc%8e/admin"}) {
    CliResult r = run(path);
    EXPECT_EQ(r.out.substr(0, 6), "error=") << path << ": " << r.out << r.err;
    EXPECT_EQ(r.out.find("reached"), std::string::npos) << path << ": " << r.out;
  }
  // The refusal says why.
  EXPECT_NE(run("/api/..;/admin").out.find("refuses a path with a ';' parameter"),
            std::string::npos);
  EXPECT_NE(run("/api/%252e%252e/admin").out.find("double encoding"), std::string::npos);
  for (const char* path : {"/api/..;/admin", "/api/%252e%252e/admin", "/api/x%00"}) {
    CliResult r = Fetch(R"({"url":")" + base_ + path + R"("})", grant);
    EXPECT_EQ(json::parse(r.out)["error"]["code"], "network_denied") << path << ": " << r.out;
  }
  std::lock_guard<std::mutex> lock(targets_mutex_);
  EXPECT_TRUE(targets_.empty()) << "reached the server: " << targets_.front();
}

}  // namespace
}  // namespace moat
