// CompactJson (src/base/json_text.h): the same text as nlohmann's dump() for every valid
// value, and an error naming the place of a string that is not UTF-8 where dump() throws.
// ParseJson: nlohmann's value for JSON text, and a refusal for text nested deeper than
// kMaxJsonDepth, whatever brackets hide in strings.
#include "base/json_text.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace moat {
namespace {

using nlohmann::json;

std::string RandomString(std::mt19937& rng) {
  static const char* const kPieces[] = {"a",  "Z",  " ",  "\"",         "\\",   "/",    "\n", "\t",
                                        "\r", "\b", "\f", "\x01",       "\x1f", "\x7f", "é",  "€",
                                        "😀",  "ﬀ",  "~",  "" /* NUL */, "x\ty", "{}"};
  std::uniform_int_distribution<int> len(0, 40), pick(0, std::size(kPieces) - 1);
  std::string s;
  for (int n = len(rng); n > 0; --n) {
    int k = pick(rng);
    if (k == 19) {
      s += '\0';
    } else {
      s += kPieces[k];
    }
  }
  return s;
}

json RandomValue(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 3 ? 5 : 7);
  switch (kind(rng)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<int64_t>(rng()) - (1ll << 31);
    case 3: return static_cast<uint64_t>(rng()) << 32;
    case 4: return static_cast<double>(rng()) / 7.0;
    case 5: return RandomString(rng);
    case 6: {
      json a = json::array();
      for (int n = static_cast<int>(rng() % 5); n > 0; --n)
        a.push_back(RandomValue(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int n = static_cast<int>(rng() % 5); n > 0; --n)
        o[RandomString(rng)] = RandomValue(rng, depth + 1);
      return o;
    }
  }
}

TEST(JsonText, MatchesDumpOnRandomValues) {
  std::mt19937 rng(20261128);
  for (int i = 0; i < 5000; ++i) {
    json v = RandomValue(rng, 0);
    auto text = CompactJson(v);
    ASSERT_TRUE(text.ok()) << text.error().message;
    ASSERT_EQ(*text, v.dump()) << "value " << i;
    ASSERT_EQ(json::parse(*text), v);
  }
}

TEST(JsonText, EveryAsciiByteInAString) {
  for (int c = 0; c < 0x80; ++c) {
    json v = {{"k", std::string(1, static_cast<char>(c))}};
    auto text = CompactJson(v);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, v.dump()) << "byte " << c;
  }
}

TEST(JsonText, LargeStringsCopiedWhole) {
  std::string big(3 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = '\n';
  json v = {{"sql", big}, {"n", 1}};
  auto text = CompactJson(v);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, v.dump());
}

TEST(JsonText, InvalidUtf8IsAnErrorNamingThePlace) {
  const std::string bad[] = {
      "\x80",              // lone continuation byte
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong
      "\xE0\x80\x80",      // overlong three-byte
      "\xED\xA0\x80",      // UTF-16 surrogate
      "\xF0\x80\x80\x80",  // overlong four-byte
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\xF5\x80\x80\x80",  // never valid
      "\xFF",              // never valid
      "\xE2\x82",          // truncated at the end
      "\xE2\x82x",         // truncated before ASCII
      "ok\xC3",            // truncated after text
  };
  for (const std::string& b : bad) {
    json v = {{"args", json::array({"fine", {{"path", "a" + b + "z"}}})}};
    EXPECT_THROW((void)v.dump(), json::type_error);
    auto text = CompactJson(v);
    ASSERT_FALSE(text.ok()) << "accepted bytes of length " << b.size();
    EXPECT_EQ(text.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(text.error().message, "the string at /args/1/path is not valid UTF-8");
  }
  // A bad key is named with its bytes outside printable ASCII shown as '?'.
  json v = {{std::string("k\xFF\n~/"), 1}};
  auto text = CompactJson(v);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().message, "the string at /k??~0~1 is not valid UTF-8");
}

TEST(JsonText, ValidMultibyteAtTheEdges) {
  for (const std::string s :
       {"\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF",
        "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF"}) {
    json v = s;
    auto text = CompactJson(v);
    ASSERT_TRUE(text.ok()) << text.error().message;
    EXPECT_EQ(*text, v.dump());
  }
}

std::string Nested(size_t depth, const std::string& open = "[", const std::string& close = "]",
                   const std::string& inner = "1") {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += open;
  s += inner;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(ParseJson, ReadsWhatNlohmannReads) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    json v = RandomValue(rng, 0);
    auto got = ParseJson(v.dump());
    ASSERT_TRUE(got.ok()) << v.dump() << ": " << got.error().message;
    EXPECT_EQ(*got, v);
  }
  for (const char* bad : {"", "{", "[1,]", "{\"a\":1} x", "\"\xff\"", "nul", "[1]]"}) {
    auto got = ParseJson(bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(got.error().message, "not valid JSON") << bad;
  }
}

TEST(ParseJson, DepthUpToTheLimitOnly) {
  auto at = ParseJson(Nested(kMaxJsonDepth));
  ASSERT_TRUE(at.ok()) << at.error().message;
  at = ParseJson(Nested(kMaxJsonDepth / 2, "{\"k\":[", "]}"));
  ASSERT_TRUE(at.ok()) << at.error().message;
  for (const std::string& deep :
       {Nested(kMaxJsonDepth + 1), Nested(kMaxJsonDepth / 2 + 1, "{\"k\":[", "]}"), Nested(300000),
        Nested(60000, "{\"a\":", "}"),
        // unbalanced: the parser would refuse it too, but only after building it
        std::string(1'000'000, '[')}) {
    auto got = ParseJson(deep);
    ASSERT_FALSE(got.ok()) << deep.size();
    EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(got.error().message.rfind(
                  "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels (at byte ", 0),
              0u)
        << got.error().message;
  }
  // The offset is that of the bracket one level too deep.
  auto got = ParseJson(Nested(kMaxJsonDepth + 1));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("(at byte " + std::to_string(kMaxJsonDepth) + ")"),
            std::string::npos)
      << got.error().message;
}

TEST(ParseJson, BracketsInStringsAreText) {
  // Brackets and escaped quotes inside strings open nothing.
  std::string many(100000, '[');
  auto got = ParseJson("{\"s\":\"" + many + "\\\"" + many + "\\\\\",\"t\":[\"]]]]\"]}");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ((*got)["s"].get<std::string>().size(), 2 * many.size() + 2);
  // An escaped quote does not end the string: the brackets after it are still text.
  got = ParseJson("[\"\\\"" + many + "\"]");
  ASSERT_TRUE(got.ok()) << got.error().message;
  // A string at the deepest level still counts the levels around it.
  got = ParseJson(Nested(kMaxJsonDepth + 1, "[", "]", "\"[[\""));
  EXPECT_FALSE(got.ok());
}

}  // namespace
}  // namespace moat
