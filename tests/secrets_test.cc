// Secrets (src/execution/net/secrets.h): the store's file permissions, placeholders
// substituted only for granted secrets and bound hosts and headers, and leak detection of
// values in the encodings an exfiltration would use.
#include "execution/net/secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "test_util.h"

namespace moat::net {
namespace {

const char kValue[] = "sk-test-4f9a8b7c6d5e";

Secret Key() {
  Secret s;
  s.name = "API_KEY";
  s.value = kValue;
  s.hosts = {"api.example.com", "*.example.org"};
  s.headers = {"authorization", "x-api-key"};
  return s;
}

Secret Token() {
  Secret s;
  s.name = "TOKEN";
  s.value = "tok_0123456789abcdef";
  s.hosts = {"api.example.com"};
  return s;
}

Url U(const std::string& s) { return *ParseUrl(s); }

std::string B64(const std::string& in, bool url = false) {
  const char* t = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += t[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

TEST(Secrets, StoreIsPrivateAndRoundTrips) {
  std::string dir = test::TempDir("secrets");
  std::string path = dir + "/cfg/moat/secrets.json";
  auto empty = SecretStore::Load(path);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->all().empty());
  SecretStore store;
  ASSERT_TRUE(store.Set(Key()).ok());
  ASSERT_TRUE(store.Set(Token()).ok());
  ASSERT_TRUE(store.Save(path).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir + "/cfg/moat").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto back = SecretStore::Load(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->all().size(), 2u);
  EXPECT_EQ(back->Find("API_KEY")->value, kValue);
  EXPECT_EQ(back->Find("API_KEY")->headers, Key().headers);
  EXPECT_TRUE(back->Remove("TOKEN"));
  EXPECT_FALSE(back->Remove("TOKEN"));
  // A file others can read is refused, as is a symlink.
  chmod(path.c_str(), 0644);
  auto open = SecretStore::Load(path);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().message.find("chmod 600"), std::string::npos);
  chmod(path.c_str(), 0600);
  std::string link = dir + "/link.json";
  ASSERT_EQ(symlink(path.c_str(), link.c_str()), 0);
  EXPECT_FALSE(SecretStore::Load(link).ok());
  // Garbage is an error, not a crash.
  for (const char* bad :
       {"", "[]", "{\"secrets\":{}}", "{\"secrets\":[{\"name\":1}]}",
        "{\"secrets\":[{\"name\":\"A\",\"value\":\"short\",\"hosts\":[\"h\"]}]}",
        "{\"secrets\":[{\"name\":\"A\",\"value\":\"longenough\",\"hosts\":[\"*\"]}]}"}) {
    std::ofstream(path) << bad;
    chmod(path.c_str(), 0600);
    EXPECT_FALSE(SecretStore::Load(path).ok()) << bad;
  }
  EXPECT_EQ(system(("rm -rf " + dir).c_str()), 0);
}

TEST(Secrets, BadSecretsAreRefused) {
  SecretStore store;
  Secret s = Key();
  s.value = "short";
  EXPECT_FALSE(store.Set(s).ok());
  s = Key();
  s.value = std::string("line\nbreak-value");
  EXPECT_FALSE(store.Set(s).ok());
  s = Key();
  s.hosts = {};
  EXPECT_FALSE(store.Set(s).ok());
  for (const char* h : {"*", "a*.example.com", "*.a.*.com"}) {
    s = Key();
    s.hosts = {h};
    EXPECT_FALSE(store.Set(s).ok()) << h;
  }
  s = Key();
  s.name = "bad name";
  EXPECT_FALSE(store.Set(s).ok());
}

TEST(Secrets, PlaceholdersAreFilledOnlyWhereBound) {
  std::vector<Secret> granted = {Key(), Token()};
  HttpRequest q;
  q.url = "https://api.example.com/v1/chat";
  q.headers = {{"Authorization", "Bearer {{secret:API_KEY}}"}};
  q.body = "{\"token\":\"{{secret:TOKEN}}\"}";
  auto r = SubstituteSecrets(q, U(q.url), granted);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->headers[0].second, std::string("Bearer ") + kValue);
  EXPECT_EQ(r->body, "{\"token\":\"tok_0123456789abcdef\"}");
  // A wildcard-bound host.
  q.url = "https://a.b.example.org/";
  q.body = "";
  EXPECT_TRUE(SubstituteSecrets(q, U(q.url), granted).ok());
  // Not to another host, nor to example.org itself.
  for (const char* other :
       {"https://evil.example/", "https://example.org/", "https://api.example.com.evil.example/"}) {
    q.url = other;
    auto d = SubstituteSecrets(q, U(q.url), granted);
    ASSERT_FALSE(d.ok()) << other;
    EXPECT_EQ(d.error().code, ErrorCode::kDenied);
  }
  // Not in a header it is not bound to, nor in the body or URL when bound to headers.
  q.url = "https://api.example.com/";
  q.headers = {{"X-Other", "{{secret:API_KEY}}"}};
  EXPECT_EQ(SubstituteSecrets(q, U(q.url), granted).error().code, ErrorCode::kDenied);
  q.headers = {};
  q.body = "{{secret:API_KEY}}";
  EXPECT_EQ(SubstituteSecrets(q, U(q.url), granted).error().code, ErrorCode::kDenied);
  q.body = "";
  q.url = "https://api.example.com/?k={{secret:API_KEY}}";
  EXPECT_EQ(SubstituteSecrets(q, U("https://api.example.com/"), granted).error().code,
            ErrorCode::kDenied);
  // A secret without header binding may go in the query, percent-encoded.
  q.url = "https://api.example.com/q?t={{secret:TOKEN}}";
  r = SubstituteSecrets(q, U("https://api.example.com/q"), granted);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->url, "https://api.example.com/q?t=tok_0123456789abcdef");
  // Never in the host or port.
  q.url = "https://{{secret:TOKEN}}.api.example.com/";
  EXPECT_EQ(SubstituteSecrets(q, U("https://api.example.com/"), granted).error().code,
            ErrorCode::kDenied);
  // Not granted to this run.
  q.url = "https://api.example.com/";
  q.headers = {{"Authorization", "{{secret:API_KEY}}"}};
  auto ungranted = SubstituteSecrets(q, U(q.url), {Token()});
  ASSERT_FALSE(ungranted.ok());
  EXPECT_NE(ungranted.error().message.find("not granted"), std::string::npos);
}

TEST(Secrets, LeaksAreFoundInEveryEncoding) {
  std::vector<Secret> run = {Key()};
  const std::string v = kValue;
  std::vector<std::string> carriers = {v, "prefix" + v + "suffix"};
  for (const std::string& pre : {"", "a", "ab"}) {  // each base64 alignment
    carriers.push_back(B64(pre + v + "tail"));
    carriers.push_back(B64(pre + v, true));
  }
  std::string hex, HEX, pct;
  for (unsigned char c : v) {
    char b[8];
    snprintf(b, sizeof b, "%02x", c);
    hex += b;
    snprintf(b, sizeof b, "%02X", c);
    HEX += b;
  }
  carriers.push_back("id=" + hex);
  carriers.push_back(HEX);
  carriers.push_back("q=sk-test-4f9a8b7c6d5e%20and");  // unreserved: same as raw
  Secret odd = Key();
  odd.name = "ODD";
  odd.value = "p@ss w/rd+=?&";
  run.push_back(odd);
  carriers.push_back("x=p%40ss%20w%2Frd%2B%3D%3F%26");
  carriers.push_back("x=p%40ss%20w%2frd%2b%3d%3f%26");
  for (const std::string& c : carriers) {
    EXPECT_TRUE(FindLeak(c, run).has_value()) << c;
  }
  EXPECT_FALSE(FindLeak("nothing to see here, sk-test-4f9a8b7c6d5", run).has_value());
  // A guest that learned a value and sends it (say, to a host the secret is not bound
  // to) is refused before anything is substituted.
  HttpRequest q;
  q.url = "https://collector.example/?d=" + B64("x" + v);
  auto r = SubstituteSecrets(q, U("https://collector.example/"), run);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_NE(r.error().message.find("API_KEY"), std::string::npos);
}

TEST(Secrets, RedactionRemovesEveryForm) {
  std::vector<Secret> run = {Key()};
  std::vector<std::string> found;
  std::string out =
      Redact("key=" + std::string(kValue) + " b64=" + B64(std::string("z") + kValue), run, &found);
  EXPECT_EQ(found, std::vector<std::string>{"API_KEY"});
  EXPECT_FALSE(FindLeak(out, run).has_value()) << out;
  EXPECT_NE(out.find("[redacted secret API_KEY]"), std::string::npos);
  found.clear();
  EXPECT_EQ(Redact("clean", run, &found), "clean");
  EXPECT_TRUE(found.empty());
}

}  // namespace
}  // namespace moat::net
