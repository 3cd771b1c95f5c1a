// Secrets (src/execution/net/secrets.h): the store's file permissions, placeholders
// substituted only for granted secrets and bound hosts and headers, and leak detection of
// values in the encodings an exfiltration would use.
#include "execution/net/secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

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
  std::filesystem::remove_all(dir);
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

// The escapes a server applies to text it reflects (JSON, JavaScript, HTML and URL),
// each alone, mixed within one value and nested, and other spellings a guest can ask a
// server for (UTF-16, another letter case): all found, and all redacted with the text
// around them kept.
std::vector<std::string> EscapedCarriers(const std::string& v) {
  auto each = [&](const char* fmt) {
    std::string out;
    for (unsigned char c : v) {
      char b[16];
      snprintf(b, sizeof b, fmt, c);
      out += b;
    }
    return out;
  };
  auto alternate = [&](std::vector<const char*> fmts) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      char b[16];
      snprintf(b, sizeof b, fmts[i % fmts.size()], static_cast<unsigned char>(v[i]));
      out += b;
    }
    return out;
  };
  auto replace_all = [](std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
      s.replace(at, from.size(), to);
    }
    return s;
  };
  std::string utf16le, utf16be;
  for (char c : v) {
    utf16le += c;
    utf16le += '\0';
    utf16be += '\0';
    utf16be += c;
  }
  std::string upper = v;
  for (char& c : upper) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  std::string json_some = replace_all(replace_all(v, "/", "\\/"), "&", "\\u0026");
  std::string html_named = v;
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{{"&", "&amp;"},
                                                                          {"@", "&commat;"},
                                                                          {"/", "&sol;"},
                                                                          {"+", "&plus;"},
                                                                          {"=", "&equals;"},
                                                                          {"?", "&quest;"},
                                                                          {" ", "&#32;"},
                                                                          {"-", "&#x2D;"}}) {
    html_named = replace_all(html_named, from, to);
  }
  std::string form = replace_all(each("%%%02X"), "%20", "+");
  return {
      "{\"auth\":\"" + each("\\u%04x") + "\"}",                // JSON, every character
      "{\"auth\":\"" + each("\\u%04X") + "\"}",                // upper-case hex digits
      "{\"auth\":\"" + json_some + "\"}",                      // JSON, some characters
      "var a = '" + each("\\x%02x") + "';",                    // JavaScript
      "<p>" + each("&#%d;") + "</p>",                          // HTML decimal references
      "<p>" + each("&#x%x;") + "</p>",                         // hex
      "<p>" + each("&#X%02X;") + "</p>",                       // hex, upper case
      "<p>" + each("&#%d") + " </p>",                          // without the semicolons
      "<p>" + html_named + "</p>",                             // named references
      "q=" + each("%%%02x") + "&x",                            // percent, lower case
      "q=" + form + "&x",                                      // form encoding, '+' for space
      "m=" + alternate({"\\u%04x", "&#%d;", "%%%02X", "%c"}),  // mixed within one value
      "n=" + replace_all(each("%%%02X"), "%", "\\u0025"),      // percent inside JSON
      "n=" + replace_all(each("%%%02X"), "%", "&#37;"),        // percent inside HTML
      "n=" + replace_all(each("&#%d;"), "&", "&amp;"),         // HTML escaped twice
      "n=" + replace_all(each("\\u%04x"), "\\", "\\\\"),       // JSON escaped twice
      "w=" + utf16le + ";",
      "w=" + utf16be + ";",
      "u=" + upper + ";",
  };
}

TEST(Secrets, LeaksAreFoundThroughTheEscapesAServerApplies) {
  Secret odd = Key();
  odd.name = "ODD";
  odd.value = "p@ss w/rd+=?&";
  for (const Secret& s : {Key(), odd}) {
    std::vector<Secret> run = {s};
    for (const std::string& c : EscapedCarriers(s.value)) {
      EXPECT_TRUE(FindLeak(c, run).has_value()) << s.name << ": " << c;
      std::vector<std::string> found;
      std::string out = Redact("before " + c + " after", run, &found);
      EXPECT_FALSE(FindLeak(out, run).has_value()) << c << " -> " << out;
      EXPECT_EQ(found, std::vector<std::string>{s.name}) << c;
      EXPECT_EQ(out.substr(0, 7), "before ") << out;
      EXPECT_EQ(out.substr(out.size() - 6), " after") << out;
      EXPECT_NE(out.find("[redacted secret " + s.name + "]"), std::string::npos) << out;
    }
  }
  // Base64 of a value inside JSON that escapes '/' and '+'.
  std::string b = B64(std::string("xy?") + kValue + "\xff\xfe");
  std::string escaped;
  for (char c : b)
    escaped += c == '/' ? std::string("\\/") : c == '+' ? "\\u002b" : std::string(1, c);
  EXPECT_TRUE(FindLeak("{\"d\":\"" + escaped + "\"}", {Key()}).has_value()) << escaped;
  // What is not the value stays as it is: a cut value in every escape, and escapes that
  // decode to other text.
  std::string cut = std::string(kValue).substr(0, sizeof(kValue) - 2);
  for (const std::string& c : EscapedCarriers(cut)) {
    EXPECT_FALSE(FindLeak(c, {Key()}).has_value()) << c;
    EXPECT_EQ(Redact(c, {Key()}), c);
  }
  const std::string plain =
      "{\"a\":\"\\u00e9\\/\\\\\"} &amp;&lt;&#233;&#x2713;&bogus; %41%zz%%2 \\x4 \\u12";
  EXPECT_EQ(Redact(plain, {Key()}), plain);
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

// ---- `moat secrets` through the binary ----

void RemoveAll(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  EXPECT_FALSE(ec) << dir << ": " << ec.message();
}

// The names `moat secrets ls --json` lists for a store.
std::vector<std::string> StoredNames(const std::string& file) {
  test::CliResult r = test::Cli("secrets --file " + file + " ls --json");
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<std::string> names;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded()) return names;
  for (const auto& e : j["secrets"]) names.push_back(e["name"]);
  std::sort(names.begin(), names.end());
  return names;
}

// Changes are read-modify-write under a lock: 20 `set`s at once all land.
TEST(SecretsCli, ParallelSetsAreAllKept) {
  std::string dir = test::TempDir("secrets-parallel");
  std::string file = dir + "/store/secrets.json";
  std::string cmd = "for i in $(seq 1 20); do printf 'value-%s-abcdefgh' $i | " +
                    std::string(MOAT_BINARY) + " secrets --file " + file +
                    " set S$i --host api.example.com 2>/dev/null & done; wait";
  // Through a shell on purpose: 20 `moat secrets set` processes at once are the test.
  ASSERT_EQ(system(cmd.c_str()), 0);
  std::vector<std::string> expect;
  for (int i = 1; i <= 20; ++i) expect.push_back("S" + std::to_string(i));
  std::sort(expect.begin(), expect.end());
  EXPECT_EQ(StoredNames(file), expect);
  RemoveAll(dir);
}

// `set` reads its value before it loads the store: an `rm` that ends while `set` waits
// for stdin stays done. The waiting `set` holds no core-dump limit above 0.
TEST(SecretsCli, ASetWaitingForItsValueDoesNotUndoAnRm) {
  std::string dir = test::TempDir("secrets-race");
  std::string file = dir + "/secrets.json";
  std::string moat = MOAT_BINARY;
  ASSERT_EQ(test::Cli("secrets --file " + file + " set OLD --host api.example.com",
                      "printf 'old-value-12345678'")
                .status,
            0);
  std::string limits = dir + "/limits";
  std::string cmd = "(sleep 2; printf 'new-value-12345678') | " + moat + " secrets --file " + file +
                    " set NEW --host api.example.com 2>/dev/null & P=$!; sleep 0.5; " +
                    "grep 'core file' /proc/$P/limits >" + limits + "; " + moat +
                    " secrets --file " + file + " rm OLD; wait";
  // Through a shell on purpose: the timing of two `moat` processes (one waiting for its
  // stdin) and a read of the waiting one's limits are the test.
  ASSERT_EQ(system(cmd.c_str()), 0);
  EXPECT_EQ(StoredNames(file), std::vector<std::string>{"NEW"}) << "the rm of OLD was undone";
  std::string line = test::Slurp(limits);
  std::istringstream words(line);
  std::string w1, w2, w3, w4, soft, hard;
  words >> w1 >> w2 >> w3 >> w4 >> soft >> hard;
  EXPECT_EQ(soft, "0") << line;
  EXPECT_EQ(hard, "0") << line;
  RemoveAll(dir);
}

// A value or a host that is not UTF-8 is refused with a clear message and status 2 (never an
// abort, whose core dump would hold the value), and the store is left as it was.
TEST(SecretsCli, NonUtf8ValuesAndHostsAreRefused) {
  std::string dir = test::TempDir("secrets-utf8");
  std::string file = dir + "/secrets.json";
  test::CliResult r = test::Cli("secrets --file " + file + " set K --host api.example.com",
                                "printf 'abcdefgh\\377\\376xyz'");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("not valid UTF-8"), std::string::npos) << r.err;
  EXPECT_EQ(test::RawControlAt(r.err), "");
  r = test::Cli("secrets --file " + file + " set K --host \"$(printf 'api\\377.example.com')\"",
                "printf 'abcdefgh-12345678'");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("UTF-8"), std::string::npos) << r.err;
  EXPECT_EQ(test::RawControlAt(r.err), "");
  r = test::Cli("secrets --file " + file +
                    " set K --host api.example.com --header \"$(printf "
                    "'x-\\377')\"",
                "printf 'abcdefgh-12345678'");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(test::RawControlAt(r.err), "");
  EXPECT_TRUE(StoredNames(file).empty());
  // A good one still lands, and a bad one afterwards leaves it alone.
  ASSERT_EQ(test::Cli("secrets --file " + file + " set K --host api.example.com",
                      "printf 'abcdefgh-12345678'")
                .status,
            0);
  EXPECT_EQ(test::Cli("secrets --file " + file + " set K --host api.example.com",
                      "printf 'abcdefgh\\377'")
                .status,
            2);
  auto store = SecretStore::Load(file);
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_NE(store->Find("K"), nullptr);
  EXPECT_EQ(store->Find("K")->value, "abcdefgh-12345678");
  RemoveAll(dir);
}

}  // namespace
}  // namespace moat::net
