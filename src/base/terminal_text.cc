#include "base/terminal_text.h"

#include <cstdio>

#include "base/json_text.h"
#include "base/utf8.h"

namespace moat {
namespace {

enum class Style { kLine, kProse, kJson };

bool BidiControl(uint32_t cp) {
  return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

void AppendHex(std::string* out, const char* format, unsigned value) {
  char buf[16];
  snprintf(buf, sizeof buf, format, value);
  out->append(buf);
}

// Appends the printable form of the unit at p[0] (one byte, or one UTF-8 character) and
// returns how many input bytes it took.
size_t AppendUnit(const unsigned char* p, size_t n, Style style, std::string* out) {
  unsigned char c = p[0];
  if (c < 0x80) {
    bool control = c < 0x20 || c == 0x7F;
    if (!control || (style == Style::kProse && (c == '\n' || c == '\t')) ||
        (style == Style::kJson && c == '\n')) {  // JSON text holds \n only as indentation
      out->push_back(static_cast<char>(c));
    } else {
      AppendHex(out, style == Style::kJson ? "\\u%04x" : "\\x%02x", c);
    }
    return 1;
  }
  size_t len = Utf8Length(p, n);
  if (len == 0) {  // not UTF-8 (DumpJson never leaves such a byte)
    AppendHex(out, style == Style::kJson ? "\\u%04x" : "\\x%02x", c);
    return 1;
  }
  uint32_t cp = Utf8Decode(p, len);
  if ((cp >= 0x80 && cp <= 0x9F) || BidiControl(cp)) {
    AppendHex(out, "\\u%04x", cp);
  } else {
    out->append(reinterpret_cast<const char*>(p), len);
  }
  return len;
}

std::string Escape(std::string_view text, Style style) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  std::string out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    // Plain printable ASCII (the bulk of any text) is copied in runs.
    size_t run = i;
    while (run < n && p[run] >= 0x20 && p[run] < 0x7F) ++run;
    out.append(text.data() + i, run - i);
    i = run;
    if (i < n) i += AppendUnit(p + i, n - i, style, &out);
  }
  return out;
}

}  // namespace

std::string TerminalSafe(std::string_view text, TextKind kind) {
  return Escape(text, kind == TextKind::kProse ? Style::kProse : Style::kLine);
}

std::string GroupDigits(size_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string TerminalCut(std::string_view text, size_t max_bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  std::string out, unit;
  size_t i = 0;
  while (i < n) {
    unit.clear();
    size_t used = AppendUnit(p + i, n - i, Style::kLine, &unit);
    if (out.size() + unit.size() > max_bytes) break;
    out += unit;
    i += used;
  }
  if (i < n) out += "\xE2\x80\xA6 (" + GroupDigits(n - i) + " more bytes)";  // "…"
  return out;
}

std::string TerminalJson(const nlohmann::json& value, int indent) {
  return Escape(DumpJson(value, indent), Style::kJson);
}

std::string TerminalJsonText(std::string_view text) {
  auto value = ParseJson(text);
  if (!value) return TerminalSafe(text);
  return TerminalJson(*value);
}

std::string TerminalStream::Write(std::string_view piece) {
  held_.append(piece);
  // Hold back the start of a character the next piece may complete (at most 3 bytes).
  size_t keep = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(held_.data());
  for (size_t k = 1; k <= 3 && k <= held_.size(); ++k) {
    if (Utf8IncompletePrefix(p + held_.size() - k, k)) {
      keep = k;
      break;
    }
  }
  std::string out = TerminalSafe(std::string_view(held_).substr(0, held_.size() - keep), kind_);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string TerminalStream::Flush() {
  std::string out = TerminalSafe(held_, kind_);
  held_.clear();
  return out;
}

}  // namespace moat
