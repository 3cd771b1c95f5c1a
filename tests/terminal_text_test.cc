// TerminalSafe, TerminalCut, TerminalJson and TerminalStream (src/base/terminal_text.h):
// what a terminal could act on is escaped, everything else is left as it was, and a stream
// cut anywhere gives the same text as the whole.
#include "base/terminal_text.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "base/json_text.h"
#include "interaction/approval_prompt.h"
#include "orchestration/tools/registry.h"

namespace moat {
namespace {

using nlohmann::json;

TEST(TerminalSafe, EscapesControlsAndKeepsText) {
  EXPECT_EQ(TerminalSafe("plain text, caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \\x1b"),
            "plain text, caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \\x1b");
  EXPECT_EQ(TerminalSafe("a\x1b[8mb\x07"
                         "c\x7f"),
            "a\\x1b[8mb\\x07c\\x7f");
  EXPECT_EQ(TerminalSafe(std::string("nul\0!", 5)), "nul\\x00!");
  EXPECT_EQ(TerminalSafe("l1\nl2\tx\r"), "l1\\x0al2\\x09x\\x0d");
  EXPECT_EQ(TerminalSafe("l1\nl2\tx\r", TextKind::kProse), "l1\nl2\tx\\x0d");
}

TEST(TerminalSafe, EscapesC1ControlsRawAndEncoded) {
  EXPECT_EQ(TerminalSafe("\x9b"
                         "31m"),
            "\\x9b31m");  // a raw C1 byte is not UTF-8
  EXPECT_EQ(TerminalSafe("\xC2\x9B"
                         "31m"),
            "\\u009b31m");  // U+009B, CSI, as UTF-8
  EXPECT_EQ(TerminalSafe("\xC2\x80\xC2\x85\xC2\x9F\xC2\xA0"), "\\u0080\\u0085\\u009f\xC2\xA0");
}

TEST(TerminalSafe, EscapesBidiControls) {
  EXPECT_EQ(TerminalSafe("\xE2\x80\xAA\xE2\x80\xAB\xE2\x80\xAC\xE2\x80\xAD\xE2\x80\xAE"),
            "\\u202a\\u202b\\u202c\\u202d\\u202e");
  EXPECT_EQ(TerminalSafe("\xE2\x81\xA6\xE2\x81\xA7\xE2\x81\xA8\xE2\x81\xA9"),
            "\\u2066\\u2067\\u2068\\u2069");
  EXPECT_EQ(TerminalSafe("\xE2\x80\x8E\xE2\x80\x8F\xD8\x9C"), "\\u200e\\u200f\\u061c");
  // Neighbours are ordinary text: an en dash, a zero-width joiner, Arabic letters.
  EXPECT_EQ(TerminalSafe("\xE2\x80\x93\xE2\x80\x8D\xD8\xA8"), "\xE2\x80\x93\xE2\x80\x8D\xD8\xA8");
}

TEST(TerminalSafe, EscapesBytesThatAreNotUtf8) {
  EXPECT_EQ(TerminalSafe("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(TerminalSafe("\xC0\xAF"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(TerminalSafe("\xED\xA0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(TerminalSafe("\xF4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(TerminalSafe("\xE2\x82"), "\\xe2\\x82");                    // cut short
  EXPECT_EQ(TerminalSafe("\xE2\x82"
                         "A"),
            "\\xe2\\x82A");
}

TEST(TerminalCut, CutsAtAUnitAndSaysHowMuchIsLeft) {
  EXPECT_EQ(TerminalCut("short", 10), "short");
  EXPECT_EQ(TerminalCut("0123456789", 10), "0123456789");
  EXPECT_EQ(TerminalCut(std::string(12345 + 4, 'a'), 4), "aaaa\xE2\x80\xA6 (12,345 more bytes)");
  // Never inside an escape or a character; the count is of the text's own bytes.
  EXPECT_EQ(TerminalCut("ab\x1b[8m", 5), "ab\xE2\x80\xA6 (4 more bytes)");
  EXPECT_EQ(TerminalCut("ab\xE2\x82\xAC", 4), "ab\xE2\x80\xA6 (3 more bytes)");
  EXPECT_EQ(TerminalCut("a\nb", 10), "a\\x0ab");
}

TEST(GroupDigits, Thousands) {
  EXPECT_EQ(GroupDigits(0), "0");
  EXPECT_EQ(GroupDigits(999), "999");
  EXPECT_EQ(GroupDigits(1000), "1,000");
  EXPECT_EQ(GroupDigits(1234567), "1,234,567");
}

TEST(TerminalJson, IsTheSameValueWithNothingRaw) {
  json v = {{"text", "a\x1b[8m\xC2\x9B\xE2\x80\xAE\x7f\xC3\xA9"}, {"list", {1, "x\ny"}}};
  std::string out = TerminalJson(v, 2);
  EXPECT_EQ(json::parse(out), v);
  EXPECT_NE(out.find("\\u001b[8m\\u009b\\u202e\\u007f\xC3\xA9"), std::string::npos) << out;
  for (char c : out) EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << out;
  // Invalid UTF-8 becomes U+FFFD instead of throwing.
  EXPECT_EQ(json::parse(TerminalJson(json("a\xff"))), json("a\xEF\xBF\xBD"));
  EXPECT_EQ(DumpJson(json::array({"\xC0"})), "[\"\xEF\xBF\xBD\"]");
}

TEST(TerminalJsonText, ShowsTheValueOrTheEscapedText) {
  EXPECT_EQ(TerminalJsonText("{ \"p\" : \"\\u001b[8mx\xE2\x80\xAE\" }"),
            "{\"p\":\"\\u001b[8mx\\u202e\"}");
  // Not JSON (a model may write anything): the text itself, escaped.
  EXPECT_EQ(TerminalJsonText("{\"p\":\"\x1b[8m\xff"), "{\"p\":\"\\x1b[8m\\xff");
}

// A write tool as write_file's manifest declares it: `path` bounded, `content` not.
tools::Tool WriteTool() {
  auto m = tools::ParseManifest(R"({"name": "write_file", "version": "1.0.0",
    "description": "d", "capabilities": {"filesystem": "write",
      "network": ["https://api.example/v1"], "secrets": ["TOKEN"]},
    "arguments": {"type": "object", "properties": {
      "path": {"type": "string", "maxLength": 4096},
      "content": {"type": "string"}}}})");
  EXPECT_TRUE(m.ok()) << m.error().message;
  tools::Tool t;
  if (m) t.manifest = std::move(*m);
  return t;
}

TEST(ApprovalPrompt, ShowsTheTargetWholeAndSaysWhatIsCut) {
  tools::Tool tool = WriteTool();
  // The model puts a long `content` before the path, and a path of 2,000 escapes (12 KB
  // once escaped: still whole).
  std::string escapes;
  for (int i = 0; i < 2000; ++i) escapes += "\x1b";
  std::string path = "dir/" + escapes + "[8m.md";
  json args = {{"content", "\x1b[8m" + std::string(10240, 'A')}, {"path", path}};
  std::string out = ApprovalPrompt({&tool, DumpJson(args)});
  EXPECT_EQ(out.rfind("\x1b[0m\n  ? allow write_file (write files; network "
                      "https://api.example/v1; secrets TOKEN)\n      path: \"dir/",
                      0),
            0u)
      << out;
  std::string shown;
  for (int i = 0; i < 2000; ++i) shown += "\\u001b";
  EXPECT_NE(out.find(shown + "[8m.md\"\n      content: \"\\u001b[8mA"), std::string::npos) << out;
  EXPECT_NE(out.find("A\xE2\x80\xA6 (10,051 more bytes)\n    [y] once"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b', 1), std::string::npos) << "only the reset is raw";
}

TEST(ApprovalPrompt, CountsArgumentsTheToolDoesNotName) {
  tools::Tool tool = WriteTool();
  json args = {{"path", "zzz.md"}};
  for (int i = 0; i < 40; ++i) args["a" + std::to_string(100 + i)] = i;
  std::string out = ApprovalPrompt({&tool, DumpJson(args)});
  // The named argument comes first, whatever the others' names sort as.
  EXPECT_NE(out.find("(write files; network https://api.example/v1; secrets TOKEN)\n"
                     "      path: \"zzz.md\"\n      a100: 0\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("      a131: 31\n      \xE2\x80\xA6 (8 more arguments the tool does not "
                     "name)\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("a132"), std::string::npos) << out;
  // Arguments that are not an object are shown as text, escaped and cut.
  out = ApprovalPrompt({&tool, "[\"\x1b[2J\xC2\x9B\"" + std::string(300, ' ') + "]"});
  EXPECT_NE(out.find("arguments (not a JSON object): [\"\\x1b[2J\\u009b\""), std::string::npos)
      << out;
  EXPECT_NE(out.find(" more bytes)"), std::string::npos) << out;
}

std::string RandomText(std::mt19937& rng) {
  static const char* const kPieces[] = {"a",
                                        " ",
                                        "\n",
                                        "\t",
                                        "\r",
                                        "\x1b",
                                        "[8m",
                                        "\x07",
                                        "\x7f",
                                        "\x9b",
                                        "\xC2\x9B",
                                        "\xC2\x85",
                                        "\xC3\xA9",
                                        "\xE2\x82\xAC",
                                        "\xE2\x80\xAE",
                                        "\xE2\x81\xA6",
                                        "\xF0\x9F\x98\x80",
                                        "\xff",
                                        "\xE2\x82",
                                        "\xF0\x9F",
                                        "\xED\xA0\x80",
                                        "\xC0\xAF",
                                        "\\"};
  std::uniform_int_distribution<int> len(0, 30), pick(0, std::size(kPieces) - 1);
  std::string s;
  for (int n = len(rng); n > 0; --n) s += kPieces[pick(rng)];
  return s;
}

TEST(TerminalStream, AnyCutGivesTheWholeTextsEscaping) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string text = RandomText(rng);
    for (TextKind kind : {TextKind::kProse, TextKind::kLine}) {
      std::string whole = TerminalSafe(text, kind);
      // Every single cut, and random pieces.
      for (size_t cut = 0; cut <= text.size(); ++cut) {
        TerminalStream s(kind);
        std::string out = s.Write(std::string_view(text).substr(0, cut));
        out += s.Write(std::string_view(text).substr(cut));
        out += s.Flush();
        ASSERT_EQ(out, whole) << "cut at " << cut;
      }
      TerminalStream s(kind);
      std::string out;
      for (size_t i = 0; i < text.size();) {
        size_t n = std::min<size_t>(text.size() - i, rng() % 4);
        out += s.Write(std::string_view(text).substr(i, n));
        i += n;
      }
      out += s.Flush();
      ASSERT_EQ(out, whole);
    }
  }
}

TEST(TerminalStream, HoldsBackOnlyAnUnfinishedCharacter) {
  TerminalStream s;
  EXPECT_EQ(s.Write("caf\xC3"), "caf");
  EXPECT_EQ(s.Write("\xA9 \xF0\x9F"), "\xC3\xA9 ");
  EXPECT_EQ(s.Write("\x98"), "");
  EXPECT_EQ(s.Write("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(s.Write("\xE2\x82"), "");
  EXPECT_EQ(s.Flush(), "\\xe2\\x82");
}

}  // namespace
}  // namespace moat
