// The network through the real `moat` binary: the libcurl backend comes from the plugin
// beside it (moat-http.so), loaded on a run's first request; `moat run` and
// `moat call http_fetch` with --allow-net, --allow-private and --secret, against a real server
// on loopback.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>

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
  EXPECT_EQ(system(("rm -rf " + dir).c_str()), 0);
}

}  // namespace
}  // namespace moat
