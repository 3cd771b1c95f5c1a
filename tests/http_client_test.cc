// The host's HTTP client (src/execution/net/http_client.h) against real HTTP and HTTPS
// servers on loopback (cpp-httplib), with a resolver the test controls: allowed and denied
// hosts, paths and methods; blocked addresses; DNS answers that change between lookups;
// redirects into private addresses; oversized, endless and trickling responses.
#include "execution/net/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "net_test_util.h"
#include "test_util.h"

namespace moat::net {
namespace {

using std::chrono::steady_clock;

// Percent-encodes a URL for a query parameter.
std::string Enc(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

void Routes(httplib::Server& s) {
  s.Get("/hello", [](const httplib::Request&, httplib::Response& r) {
    r.set_content("hello from loopback", "text/plain");
  });
  s.Post("/echo", [](const httplib::Request& q, httplib::Response& r) {
    std::string out = q.method + " " + q.body + " auth=" + q.get_header_value("Authorization");
    r.set_content(out, "text/plain");
  });
  s.Get("/echo", [](const httplib::Request& q, httplib::Response& r) {
    r.set_content(q.method + " auth=" + q.get_header_value("Authorization") +
                      " x=" + q.get_header_value("X-Test"),
                  "text/plain");
  });
  s.Get("/redirect", [](const httplib::Request& q, httplib::Response& r) {
    r.status = std::atoi(q.has_param("code") ? q.get_param_value("code").c_str() : "302");
    r.set_header("Location", q.get_param_value("to"));
  });
  s.Post("/redirect", [](const httplib::Request& q, httplib::Response& r) {
    r.status = std::atoi(q.get_param_value("code").c_str());
    r.set_header("Location", q.get_param_value("to"));
  });
  s.Get("/api/redirect", [](const httplib::Request& q, httplib::Response& r) {
    r.status = 302;
    r.set_header("Location", q.get_param_value("to"));
  });
  s.Get("/codings", [](const httplib::Request& q, httplib::Response& r) {
    r.set_content("ae=" + q.get_header_value("Accept-Encoding") +
                      " te=" + q.get_header_value("TE") + " " + std::string(200, 'x'),
                  "text/plain");
  });
  s.Get("/loop", [](const httplib::Request& q, httplib::Response& r) {
    int n = std::atoi(q.get_param_value("n").c_str());
    r.status = 302;
    r.set_header("Location", "/loop?n=" + std::to_string(n + 1));
  });
  s.Get("/big", [](const httplib::Request&, httplib::Response& r) {
    r.set_content(std::string(3 << 20, 'b'), "application/octet-stream");
  });
  s.Get("/endless", [](const httplib::Request&, httplib::Response& r) {
    r.set_chunked_content_provider("application/octet-stream", [](size_t, httplib::DataSink& sink) {
      std::string chunk(64 << 10, 'e');
      return sink.write(chunk.data(), chunk.size());
    });
  });
  s.Get("/trickle", [](const httplib::Request&, httplib::Response& r) {
    r.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return sink.write("t", 1);
    });
  });
}

// A server that answers every connection with one fixed response, for what cpp-httplib
// will not send (transfer codings, content codings nobody knows).
class CannedServer {
 public:
  explicit CannedServer(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(fd_, 8) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedServer() {
    shutdown(fd_, SHUT_RDWR);  // ends the accept below
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  void Serve() {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      for (size_t at = 0; at < response_.size();) {
        ssize_t n = write(c, response_.data() + at, response_.size() - at);
        if (n <= 0) break;
        at += static_cast<size_t>(n);
      }
      close(c);
    }
  }

  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Routes(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    WaitRunning(server_);
    base_ = "http://svc.test:" + std::to_string(port_);
    resolver_.Set("svc.test", {{"127.0.0.1"}});
    policy_.rules.push_back(*EgressRule::Parse(base_));
    policy_.granted_networks.push_back(*Cidr::Parse("127.0.0.1/32"));
    ctx_.policy = &policy_;
    ctx_.resolver = &resolver_;
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  Result<HttpResponse> Get(const std::string& path, HttpLimits limits = {}) {
    HttpRequest r;
    r.url = base_ + path;
    return HttpFetch(ctx_, r, limits);
  }
  static std::string Why(const Result<HttpResponse>& r) { return r.ok() ? "" : r.error().message; }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::string base_;
  ScriptedResolver resolver_;
  EgressPolicy policy_;
  HttpContext ctx_;
};

TEST_F(HttpClientTest, AllowedRequestGoesToTheCheckedAddress) {
  auto r = Get("/hello");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello from loopback");
  EXPECT_EQ(r->url, base_ + "/hello");
  // svc.test exists only in the test's resolver: libcurl connected to the address moat
  // checked, without a lookup of its own.
  EXPECT_EQ(resolver_.Calls("svc.test"), 1);
}

TEST_F(HttpClientTest, DeniedHostsPathsMethodsAndAddresses) {
  EgressPolicy empty;
  ctx_.policy = &empty;
  auto r = Get("/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_NE(Why(r).find("allowlist is empty"), std::string::npos);
  EXPECT_EQ(resolver_.Calls("svc.test"), 0);  // refused before any lookup

  EgressPolicy narrow;
  narrow.rules.push_back(*EgressRule::Parse(base_ + "/echo", {"GET"}));
  narrow.granted_networks = policy_.granted_networks;
  ctx_.policy = &narrow;
  EXPECT_TRUE(Get("/echo").ok());
  EXPECT_EQ(Get("/hello").error().code, ErrorCode::kDenied);  // path
  HttpRequest post;
  post.method = "POST";
  post.url = base_ + "/echo";
  EXPECT_EQ(HttpFetch(ctx_, post, {}).error().code, ErrorCode::kDenied);  // method

  // The name is allowed, its address is not granted.
  ctx_.policy = &policy_;
  policy_.granted_networks.clear();
  r = Get("/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_NE(Why(r).find("127.0.0.1 is loopback"), std::string::npos) << Why(r);
}

TEST_F(HttpClientTest, EveryAnswerMustBeAllowed) {
  resolver_.Set("svc.test", {{"127.0.0.1", "10.0.0.7"}});
  auto r = Get("/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Why(r).find("10.0.0.7 is private"), std::string::npos) << Why(r);
  resolver_.Set("svc.test", {{"169.254.169.254"}});
  EXPECT_NE(Why(Get("/hello")).find("cloud metadata"), std::string::npos);
  resolver_.Set("svc.test", {{"::ffff:169.254.169.254"}});
  EXPECT_NE(Why(Get("/hello")).find("cloud metadata"), std::string::npos);
  resolver_.Set("svc.test", {{"64:ff9b::a9fe:a9fe"}});
  EXPECT_NE(Why(Get("/hello")).find("cloud metadata"), std::string::npos);
}

TEST_F(HttpClientTest, ANameThatRebindsIsLookedUpOncePerHop) {
  // First answer allowed, every later one private: the request uses the first answer
  // only, so rebinding between the check and the connection cannot happen.
  resolver_.Set("svc.test", {{"127.0.0.1"}, {"10.0.0.1"}});
  auto r = Get("/hello");
  ASSERT_TRUE(r.ok()) << Why(r);
  EXPECT_EQ(resolver_.Calls("svc.test"), 1);
  // A redirect back to the same name is a new hop: looked up and checked again.
  resolver_.Set("svc.test", {{"127.0.0.1"}, {"10.0.0.1"}});
  r = Get("/redirect?to=/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_NE(Why(r).find("10.0.0.1 is private"), std::string::npos) << Why(r);
  EXPECT_EQ(resolver_.Calls("svc.test"), 2);
}

TEST_F(HttpClientTest, RedirectsAreCheckedAtEveryHop) {
  auto ok = Get("/redirect?to=/hello");
  ASSERT_TRUE(ok.ok()) << Why(ok);
  EXPECT_EQ(ok->body, "hello from loopback");
  EXPECT_EQ(ok->redirects, 1);
  // Into the metadata service, by address and by decimal spelling, and to a name that
  // resolves to a private address.
  policy_.rules.push_back(*EgressRule::Parse("http://*"));
  for (const std::string to :
       {"http://169.254.169.254/latest/meta-data/", "http://2852039166/latest/meta-data/",
        "http://[::1]:1/", "http://internal.test/"}) {
    resolver_.Set("internal.test", {{"192.168.0.10"}});
    auto r = Get("/redirect?to=" + Enc(to));
    ASSERT_FALSE(r.ok()) << to;
    EXPECT_EQ(r.error().code, ErrorCode::kDenied) << to << ": " << Why(r);
  }
  policy_.rules.pop_back();
  // Outside the allowlist, another scheme, user info.
  EXPECT_EQ(Get("/redirect?to=http://other.test/").error().code, ErrorCode::kDenied);
  for (const std::string& to :
       std::vector<std::string>{"file:///etc/passwd", "gopher://svc.test/", "ftp://svc.test/x",
                                "http://user@svc.test:" + std::to_string(port_) + "/hello"}) {
    auto r = Get("/redirect?to=" + Enc(to));
    ASSERT_FALSE(r.ok()) << to;
    EXPECT_EQ(r.error().code, ErrorCode::kDenied) << to << ": " << Why(r);
  }
  // A chain longer than 5.
  auto loop = Get("/loop?n=0");
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.error().code, ErrorCode::kLimit);
  EXPECT_NE(Why(loop).find("more than 5 redirects"), std::string::npos);
  // 303 after a POST continues as a GET without the body; credentials stay on the origin.
  HttpRequest post;
  post.method = "POST";
  post.url = base_ + "/redirect?code=303&to=/echo";
  post.body = "payload";
  post.headers = {{"Authorization", "Bearer t"}, {"X-Test", "kept"}};
  auto r = HttpFetch(ctx_, post, {});
  ASSERT_TRUE(r.ok()) << Why(r);
  EXPECT_EQ(r->body, "GET auth=Bearer t x=kept");
  // 307 keeps the method and body.
  post.url = base_ + "/redirect?code=307&to=/echo";
  r = HttpFetch(ctx_, post, {});
  ASSERT_TRUE(r.ok()) << Why(r);
  EXPECT_EQ(r->body, "POST payload auth=Bearer t");
}

TEST_F(HttpClientTest, CredentialsDoNotFollowARedirectToAnotherOrigin) {
  resolver_.Set("other.test", {{"127.0.0.1"}});
  std::string other = "http://other.test:" + std::to_string(port_);
  policy_.rules.push_back(*EgressRule::Parse(other));
  HttpRequest q;
  q.url = base_ + "/redirect?to=" + Enc(other + "/echo");
  q.headers = {{"Authorization", "Bearer secret"}, {"X-Test", "kept"}};
  auto r = HttpFetch(ctx_, q, {});
  ASSERT_TRUE(r.ok()) << Why(r);
  EXPECT_EQ(r->body, "GET auth= x=kept");
}

TEST_F(HttpClientTest, OversizedEndlessAndTricklingResponsesHitLimits) {
  HttpLimits small;
  small.max_response_bytes = 1 << 20;
  auto big = Get("/big", small);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, ErrorCode::kLimit);
  EXPECT_NE(Why(big).find("larger than 1048576"), std::string::npos) << Why(big);
  EXPECT_TRUE(Get("/big").ok());  // 3 MB is within the default 8 MB

  auto endless = Get("/endless", small);
  ASSERT_FALSE(endless.ok());
  EXPECT_EQ(endless.error().code, ErrorCode::kLimit);

  HttpLimits quick;
  quick.timeout_us = 700'000;
  auto t0 = steady_clock::now();
  auto trickle = Get("/trickle", quick);
  double s = std::chrono::duration<double>(steady_clock::now() - t0).count();
  ASSERT_FALSE(trickle.ok());
  EXPECT_EQ(trickle.error().code, ErrorCode::kLimit) << Why(trickle);
  EXPECT_LT(s, 3.0);
  // The run's deadline wins over a longer request timeout.
  ctx_.deadline_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               steady_clock::now().time_since_epoch())
                                               .count()) +
                     500'000'000;
  t0 = steady_clock::now();
  trickle = Get("/trickle");
  s = std::chrono::duration<double>(steady_clock::now() - t0).count();
  ASSERT_FALSE(trickle.ok());
  EXPECT_LT(s, 3.0);
}

TEST_F(HttpClientTest, CancellationStopsATransferPromptly) {
  std::atomic<bool> cancel{false};
  ctx_.cancel = &cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  auto t0 = steady_clock::now();
  auto r = Get("/trickle");
  double s = std::chrono::duration<double>(steady_clock::now() - t0).count();
  stopper.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Why(r).find("cancelled"), std::string::npos);
  EXPECT_LT(s, 3.0);
}

TEST_F(HttpClientTest, MalformedRequestsAreRefused) {
  HttpRequest q;
  q.url = base_ + "/echo";
  q.headers = {{"X-Test", "a\r\nX-Injected: 1"}};
  EXPECT_EQ(HttpFetch(ctx_, q, {}).error().code, ErrorCode::kInvalidArgument);
  q.headers = {{"Bad Name", "x"}};
  EXPECT_EQ(HttpFetch(ctx_, q, {}).error().code, ErrorCode::kInvalidArgument);
  q.headers = {{"Host", "internal.test"}};
  EXPECT_EQ(HttpFetch(ctx_, q, {}).error().code, ErrorCode::kInvalidArgument);
  q.headers = {};
  q.method = "GET /x";
  EXPECT_EQ(HttpFetch(ctx_, q, {}).error().code, ErrorCode::kInvalidArgument);
  q.method = "POST";
  q.body = std::string(2 << 20, 'x');
  EXPECT_EQ(HttpFetch(ctx_, q, {}).error().code, ErrorCode::kLimit);
  q.body = "";
  q.url = "http://user@svc.test:" + std::to_string(port_) + "/echo";
  EXPECT_EQ(HttpFetch(ctx_, q, {}).error().code, ErrorCode::kInvalidArgument);
}

// What a guest asks for cannot change the form of the body it gets back: moat asks for the
// identity coding, decodes a coding the server uses anyway, and refuses a response it
// cannot decode, so the body it scans for secrets is the body the server meant.
TEST_F(HttpClientTest, ResponsesComeBackDecodedOrNotAtAll) {
  HttpRequest q;
  q.url = base_ + "/codings";
  q.headers = {{"Accept-Encoding", "gzip, br"}, {"TE", "gzip"}};
  auto r = HttpFetch(ctx_, q, {});
  ASSERT_TRUE(r.ok()) << Why(r);
  EXPECT_EQ(r->body, "ae=identity te= " + std::string(200, 'x'));
  // A server that compresses anyway (cpp-httplib does when asked): decoded, and the
  // headers no longer claim a coding.
  httplib::Client plain("127.0.0.1", port_);
  plain.set_decompress(false);
  auto compressed = plain.Get("/codings", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(compressed);
  ASSERT_EQ(compressed->get_header_value("Content-Encoding"), "gzip");  // the server would
  auto canned = [&](const std::string& head, const std::string& body) {
    CannedServer server("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n" +
                        head + "\r\n" + body);
    EgressPolicy p;
    p.rules.push_back(*EgressRule::Parse("http://svc.test:" + std::to_string(server.port())));
    p.granted_networks.push_back(*Cidr::Parse("127.0.0.1/32"));
    HttpContext c = ctx_;
    c.policy = &p;
    HttpRequest get;
    get.url = "http://svc.test:" + std::to_string(server.port()) + "/";
    return HttpFetch(c, get, {});
  };
  // The same gzip bytes from a server that sends them whatever was asked.
  auto gz = canned("Content-Encoding: gzip\r\nContent-Length: " +
                       std::to_string(compressed->body.size()) + "\r\n",
                   compressed->body);
  ASSERT_TRUE(gz.ok()) << Why(gz);
  EXPECT_EQ(gz->body, "ae=gzip te= " + std::string(200, 'x'));
  for (const auto& [k, v] : gz->headers) EXPECT_NE(k, "content-encoding");
  // A content coding moat cannot decode, and a transfer coding other than chunked.
  auto unknown = canned("Content-Encoding: x-private\r\nContent-Length: 5\r\n", "abcde");
  ASSERT_FALSE(unknown.ok()) << unknown->body;
  EXPECT_EQ(unknown.error().code, ErrorCode::kDenied) << Why(unknown);
  auto transfer = canned("Transfer-Encoding: gzip, chunked\r\n", "5\r\nabcde\r\n0\r\n\r\n");
  ASSERT_FALSE(transfer.ok()) << transfer->body;
  EXPECT_EQ(transfer.error().code, ErrorCode::kDenied) << Why(transfer);
}

// Part of a response from a host a secret is bound to could hold part of a reflected
// value, too short to recognise; pieces would add up to it. Checked at every hop.
TEST_F(HttpClientTest, NoRangeFromAHostASecretIsBoundTo) {
  Secret s{"TOKEN", "tok-0123456789abcdef", {"svc.test"}, {}};
  std::vector<Secret> secrets = {s};
  ctx_.secrets = &secrets;
  HttpRequest q;
  q.url = base_ + "/hello";
  for (const char* h : {"Range", "range", "If-Range"}) {
    q.headers = {{h, "bytes=0-4"}};
    auto r = HttpFetch(ctx_, q, {});
    ASSERT_FALSE(r.ok()) << h;
    EXPECT_EQ(r.error().code, ErrorCode::kDenied);
    EXPECT_NE(Why(r).find("Range"), std::string::npos) << Why(r);
  }
  // Into the bound host by a redirect from one it is not bound to.
  resolver_.Set("other.test", {{"127.0.0.1"}});
  std::string other = "http://other.test:" + std::to_string(port_);
  policy_.rules.push_back(*EgressRule::Parse(other));
  q.url = other + "/redirect?to=" + Enc(base_ + "/hello");
  q.headers = {{"Range", "bytes=0-4"}};
  auto r = HttpFetch(ctx_, q, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDenied) << Why(r);
  // A host no secret is bound to answers ranges as usual.
  q.url = other + "/hello";
  r = HttpFetch(ctx_, q, {});
  ASSERT_TRUE(r.ok()) << Why(r);
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->body, "hello");
}

// A redirect inside a path prefix is checked like the first request: a server cannot
// send the client where the rule would not let it go by itself.
TEST_F(HttpClientTest, ARedirectCannotLeaveAPathPrefix) {
  EgressPolicy p;
  p.rules.push_back(*EgressRule::Parse(base_ + "/api"));
  p.granted_networks.push_back(*Cidr::Parse("127.0.0.1/32"));
  ctx_.policy = &p;
  for (const std::string to : {"/api/..;/hello", "/api/%2e%2e/hello", "/api/%252e%252e/hello",
                               "/api/x%00", "/api/..%5chello", "/hello"}) {
    auto r = Get("/api/redirect?to=" + Enc(to));
    ASSERT_FALSE(r.ok()) << to;
    EXPECT_EQ(r.error().code, ErrorCode::kDenied) << to << ": " << Why(r);
  }
}

// HTTPS against a self-signed certificate made for the test (the test's CA file is the
// certificate itself); a certificate for another name is refused.
TEST(HttpsClient, VerifiesTheServerCertificate) {
  std::string dir = test::TempDir("https");
  std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  std::filesystem::create_directories(dir);
  // openssl makes the certificate: a real external command, run through the shell.
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=svc.test "
      "-addext subjectAltName=DNS:svc.test -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(system(cmd.c_str()), 0);
  httplib::SSLServer server(cert.c_str(), key.c_str());
  ASSERT_TRUE(server.is_valid());
  Routes(server);
  int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { server.listen_after_bind(); });
  WaitRunning(server);

  ScriptedResolver resolver;
  resolver.Set("svc.test", {{"127.0.0.1"}});
  resolver.Set("wrong.test", {{"127.0.0.1"}});
  EgressPolicy policy;
  policy.rules.push_back(*EgressRule::Parse("https://*:" + std::to_string(port)));
  policy.granted_networks.push_back(*Cidr::Parse("127.0.0.1"));
  HttpContext ctx;
  ctx.policy = &policy;
  ctx.resolver = &resolver;
  HttpLimits limits;
  limits.ca_file = cert;
  HttpRequest q;
  q.url = "https://svc.test:" + std::to_string(port) + "/hello";
  auto r = HttpFetch(ctx, q, limits);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "hello from loopback");
  q.url = "https://wrong.test:" + std::to_string(port) + "/hello";
  r = HttpFetch(ctx, q, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo) << r.error().message;
  // Without the test's CA the certificate is not trusted.
  q.url = "https://svc.test:" + std::to_string(port) + "/hello";
  EXPECT_FALSE(HttpFetch(ctx, q, {}).ok());
  server.stop();
  t.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moat::net
