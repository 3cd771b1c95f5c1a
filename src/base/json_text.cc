#include "base/json_text.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace moat {
namespace {

using nlohmann::json;

// Length of the well-formed UTF-8 sequence at s[0] (which is >= 0x80), or 0 (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
size_t Utf8Length(const unsigned char* s, size_t n) {
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

// Bytes copied as they are: printable ASCII other than '"' and '\\'.
bool Plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

class Writer {
 public:
  bool String(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    out_ += '"';
    size_t i = 0;
    while (i < n) {
      size_t run = i;
      while (run < n && Plain(p[run])) ++run;
      out_.append(s, i, run - i);
      i = run;
      if (i == n) break;
      unsigned char c = p[i];
      if (c >= 0x80) {
        size_t len = Utf8Length(p + i, n - i);
        if (len == 0) return false;
        out_.append(s, i, len);
        i += len;
        continue;
      }
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default: {
          static const char kHex[] = "0123456789abcdef";
          char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out_.append(esc, sizeof esc);
        }
      }
      ++i;
    }
    out_ += '"';
    return true;
  }

  bool Value(const json& v) {
    switch (v.type()) {
      case json::value_t::object: {
        out_ += '{';
        bool first = true;
        for (const auto& [key, item] : v.items()) {
          if (!first) out_ += ',';
          first = false;
          path_.push_back(key);
          if (!String(key)) return false;
          out_ += ':';
          if (!Value(item)) return false;
          path_.pop_back();
        }
        out_ += '}';
        return true;
      }
      case json::value_t::array: {
        out_ += '[';
        for (size_t i = 0; i < v.size(); ++i) {
          if (i > 0) out_ += ',';
          path_.push_back(std::to_string(i));
          if (!Value(v[i])) return false;
          path_.pop_back();
        }
        out_ += ']';
        return true;
      }
      case json::value_t::string: return String(v.get_ref<const std::string&>());
      default: out_ += v.dump(); return true;  // numbers, booleans, null, binary
    }
  }

  std::string& out() { return out_; }
  std::string Pointer() const {
    std::string p;
    for (const auto& part : path_) {
      p += '/';
      for (char c : part) {  // shown in messages: bytes outside printable ASCII as '?'
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) {
          p += '?';
        } else if (c == '~') {
          p += "~0";
        } else if (c == '/') {
          p += "~1";
        } else {
          p += c;
        }
      }
    }
    return p.empty() ? "/" : p;
  }

 private:
  std::string out_;
  std::vector<std::string> path_;
};

}  // namespace

Result<std::string> CompactJson(const nlohmann::json& value) {
  Writer w;
  if (!w.Value(value)) {
    std::string where = w.Pointer();
    if (where.size() > 200) where = where.substr(0, 200) + "...";
    return MakeError(ErrorCode::kInvalidArgument, "the string at " + where + " is not valid UTF-8");
  }
  return std::move(w.out());
}

}  // namespace moat
