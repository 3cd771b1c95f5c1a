// Well-formed UTF-8, decided in one place: the JSON writer and the terminal escaper must
// agree on which bytes are characters and which are stray bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace moat {

// Length of the well-formed UTF-8 sequence at s[0] (which is >= 0x80), or 0 (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
inline size_t Utf8Length(const unsigned char* s, size_t n) {
  auto cont = [&](size_t i) { return i < n && (s[i] & 0xC0) == 0x80; };
  unsigned char c = s[0];
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 2) return 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return s[1] >= lo && s[1] <= hi && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 2) return 0;
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return s[1] >= lo && s[1] <= hi && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// The code point of a sequence Utf8Length accepted (len 2 to 4).
inline uint32_t Utf8Decode(const unsigned char* s, size_t len) {
  if (len == 2) return (s[0] & 0x1Fu) << 6 | (s[1] & 0x3Fu);
  if (len == 3) return (s[0] & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
  return (s[0] & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3Fu);
}

// True when s[0..n) is the start of a well-formed sequence that needs more bytes (what a
// stream cut inside a character leaves at the end of a chunk).
inline bool Utf8IncompletePrefix(const unsigned char* s, size_t n) {
  if (n == 0 || n > 3) return false;
  unsigned char c = s[0];
  size_t need = c >= 0xC2 && c <= 0xDF   ? 2
                : c >= 0xE0 && c <= 0xEF ? 3
                : c >= 0xF0 && c <= 0xF4 ? 4
                                         : 0;
  if (need == 0 || n >= need) return false;
  if (n >= 2) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi) return false;
  }
  for (size_t i = 2; i < n; ++i) {
    if ((s[i] & 0xC0) != 0x80) return false;
  }
  return true;
}

// Whether all of `s` is well-formed UTF-8; when not, `*bad_at` (if given) gets the offset
// of the first byte that is not.
inline bool IsUtf8(std::string_view s, size_t* bad_at = nullptr) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    size_t len = p[i] < 0x80 ? 1 : Utf8Length(p + i, s.size() - i);
    if (len == 0) {
      if (bad_at != nullptr) *bad_at = i;
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace moat
