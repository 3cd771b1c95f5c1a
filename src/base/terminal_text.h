// Text from a model, a tool, a manifest or a stored session, made safe to print on a
// terminal. Such text must never drive the terminal: an escape sequence can hide a line
// (ESC[8m), rewrite the screen, set the clipboard (OSC 52) or disguise a link (OSC 8), and
// a bidi override can reorder what a line seems to say; either could make an approval
// prompt lie. Every front end prints such text only through these functions.
//
// The rule, one place for it:
//  - C0 controls and DEL are written as \xNN (streamed prose keeps \n and \t);
//  - a byte that is not part of well-formed UTF-8 is written as \xNN;
//  - C1 controls encoded in UTF-8 (U+0080..U+009F; some terminals obey them) and the bidi
//    controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) as \uXXXX;
//  - everything else, other non-ASCII text included, as it is.
// A backslash is printed as it is: "\x1b" on the screen may be four characters the text
// really held, never the control itself.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moat {

enum class TextKind {
  kLine,   // one line: \n, \t and \r escaped too
  kProse,  // streamed model text, a stored message: \n and \t kept
};

std::string TerminalSafe(std::string_view text, TextKind kind = TextKind::kLine);

// TerminalSafe(text, kLine) cut to at most `max_bytes` (at a character or escape boundary),
// followed by "… (12,345 more bytes)" naming how many bytes of `text` are not shown.
std::string TerminalCut(std::string_view text, size_t max_bytes);

// JSON text (DumpJson) safe to print: the characters above written as JSON \u escapes,
// so it is still valid JSON and parses to the same value (invalid UTF-8 becomes U+FFFD).
std::string TerminalJson(const nlohmann::json& value, int indent = -1);

// JSON text written elsewhere (the arguments a model gave a call): TerminalJson of its value
// when it parses, compact; else TerminalSafe of the text as it is.
std::string TerminalJsonText(std::string_view text);

// "12,345"
std::string GroupDigits(size_t n);

// For text that arrives in pieces: the concatenated output equals TerminalSafe of the
// concatenated input, however it is cut. An incomplete UTF-8 sequence at the end of a
// piece is held back until the next piece (or Flush) decides whether it is a character.
class TerminalStream {
 public:
  explicit TerminalStream(TextKind kind = TextKind::kProse) : kind_(kind) {}
  std::string Write(std::string_view piece);
  // Whatever is held back (a sequence that never completed, so escaped byte by byte).
  std::string Flush();

 private:
  TextKind kind_;
  std::string held_;
};

}  // namespace moat
