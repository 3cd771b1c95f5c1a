#include "base/json_text.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "base/utf8.h"

namespace moat {
namespace {

using nlohmann::json;

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

// Offset of the bracket that opens level limit + 1, or npos. Brackets inside strings do
// not count; text that is not JSON is scanned all the same (the parser refuses it after).
size_t FirstTooDeep(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > limit) return i;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return std::string_view::npos;
}

}  // namespace

Result<nlohmann::json> ParseJson(std::string_view text) {
  if (size_t at = FirstTooDeep(text, kMaxJsonDepth); at != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels (at byte " +
                         std::to_string(at) + ")");
  }
  // nlohmann's parser keeps its own stack (it does not recurse), and with exceptions off
  // it returns a discarded value for text that is not JSON.
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return MakeError(ErrorCode::kInvalidArgument, "not valid JSON");
  return j;
}

std::string DumpJson(const nlohmann::json& value, int indent) {
  // With the replacing handler dump() cannot throw: this file is the only one in src/ that
  // calls dump() (tests/json_dump_test.sh checks).
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

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
