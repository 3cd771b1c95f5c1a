// Leak detection and redaction of secret values (declared in secret_store.h).
//
// A guest chooses much of how a host a secret is bound to answers: the format (JSON, HTML,
// a URL), so the escapes a reflected value comes back in. Once a guest holds a value in
// any form it can undo, it holds the value. So a value is looked for not only in the bytes
// as they are, but in "views" of them with each layer of the escapes a server applies to
// reflected text undone (JSON and JavaScript string escapes, HTML character references,
// URL percent-encoding; up to kMaxLayers layers, so nested escapes are undone too), all
// with ASCII letters folded to lower case. In each view the value is looked for raw, as
// hex, percent-encoded, base64 and base64url at each alignment, and as UTF-16. A match in
// a view maps back to the bytes that made it, and those are what Redact replaces.
//
// Content codings are not undone here: the HTTP client asks for the identity coding and
// decodes any other before the body is scanned (http_client.h).
#include <algorithm>
#include <cstring>

#include "base/utf8.h"
#include "execution/net/secret_store.h"

namespace moat::net {
namespace {

// Layers of escapes undone, beyond the bytes as they are.
constexpr int kMaxLayers = 4;
// Redaction rounds before the whole text is replaced (a match that survives replacement
// would be an escape straddling a replaced span; replacing again removes it).
constexpr int kMaxRounds = 4;

char Fold(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Folded(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Fold(c);
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of `n` hex digits at s[at], or -1.
long HexAt(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) return -1;
  long v = 0;
  for (size_t i = 0; i < n; ++i) {
    int d = HexValue(s[at + i]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool CodePointOk(long cp) { return cp > 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

// HTML named references to ASCII characters (HTML5), lower case: views are folded.
struct NamedRef {
  const char* name;
  char c;
};
constexpr NamedRef kNamedRefs[] = {
    {"excl", '!'},         {"quot", '"'},     {"num", '#'},    {"dollar", '$'},
    {"percnt", '%'},       {"amp", '&'},      {"apos", '\''},  {"lpar", '('},
    {"rpar", ')'},         {"ast", '*'},      {"midast", '*'}, {"plus", '+'},
    {"comma", ','},        {"period", '.'},   {"sol", '/'},    {"colon", ':'},
    {"semi", ';'},         {"lt", '<'},       {"equals", '='}, {"gt", '>'},
    {"quest", '?'},        {"commat", '@'},   {"lsqb", '['},   {"lbrack", '['},
    {"bsol", '\\'},        {"rsqb", ']'},     {"rbrack", ']'}, {"hat", '^'},
    {"lowbar", '_'},       {"underbar", '_'}, {"grave", '`'},  {"lcub", '{'},
    {"lbrace", '{'},       {"verbar", '|'},   {"vert", '|'},   {"rcub", '}'},
    {"rbrace", '}'},       {"newline", '\n'}, {"tab", '\t'},   {"diacriticalgrave", '`'},
    {"verticalline", '|'},
};

// One escape at s[at] (s is folded): appends what it stands for to `out` and returns its
// length, or 0 when s[at] starts no escape.
size_t DecodeOne(std::string_view s, size_t at, std::string* out) {
  char c = s[at];
  if (c == '%') {
    if (long v = HexAt(s, at + 1, 2); v >= 0) {
      out->push_back(static_cast<char>(v));
      return 3;
    }
    if (at + 1 < s.size() && s[at + 1] == 'u') {  // %uXXXX, as JavaScript's escape() writes
      if (long v = HexAt(s, at + 2, 4); CodePointOk(v)) {
        AppendUtf8(out, static_cast<uint32_t>(v));
        return 6;
      }
    }
    return 0;
  }
  if (c == '\\') {
    if (at + 1 >= s.size()) return 0;
    char n = s[at + 1];
    if (n == 'u') {
      if (at + 2 < s.size() && s[at + 2] == '{') {  // \u{X...}
        size_t close = s.find('}', at + 3);
        if (close == std::string_view::npos || close == at + 3 || close - at - 3 > 6) return 0;
        long v = HexAt(s, at + 3, close - at - 3);
        if (!CodePointOk(v)) return 0;
        AppendUtf8(out, static_cast<uint32_t>(v));
        return close - at + 1;
      }
      long v = HexAt(s, at + 2, 4);
      if (v < 0) return 0;
      if (v >= 0xD800 && v <= 0xDBFF && at + 12 <= s.size() && s[at + 6] == '\\' &&
          s[at + 7] == 'u') {
        long lo = HexAt(s, at + 8, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          AppendUtf8(out, static_cast<uint32_t>(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)));
          return 12;
        }
      }
      if (!CodePointOk(v)) return 0;
      AppendUtf8(out, static_cast<uint32_t>(v));
      return 6;
    }
    if (n == 'x') {
      long v = HexAt(s, at + 2, 2);
      if (v <= 0) return 0;
      out->push_back(static_cast<char>(v));
      return 4;
    }
    const char* from = "/\\\"'bfnrt";
    const char* to = "/\\\"'\b\f\n\r\t";
    if (const char* p = n != '\0' ? strchr(from, n) : nullptr; p != nullptr) {
      out->push_back(to[p - from]);
      return 2;
    }
    return 0;
  }
  if (c == '&') {
    if (at + 1 < s.size() && s[at + 1] == '#') {
      bool hex = at + 2 < s.size() && s[at + 2] == 'x';
      size_t start = at + (hex ? 3 : 2), end = start;
      while (end < s.size() && end - start < 8 &&
             (hex ? HexValue(s[end]) >= 0 : (s[end] >= '0' && s[end] <= '9'))) {
        ++end;
      }
      if (end == start) return 0;
      long v = 0;
      for (size_t i = start; i < end; ++i) v = v * (hex ? 16 : 10) + HexValue(s[i]);
      if (!CodePointOk(v)) return 0;
      AppendUtf8(out, static_cast<uint32_t>(v));
      return end - at + (end < s.size() && s[end] == ';' ? 1 : 0);
    }
    size_t end = at + 1;
    while (end < s.size() && end - at <= 16 &&
           ((s[end] >= 'a' && s[end] <= 'z') || (s[end] >= '0' && s[end] <= '9'))) {
      ++end;
    }
    std::string_view name = s.substr(at + 1, end - at - 1);
    bool semi = end < s.size() && s[end] == ';';
    for (const NamedRef& r : kNamedRefs) {
      if (name != r.name) continue;
      // Only the four oldest are recognised without their ';', as browsers do.
      if (!semi && name != "amp" && name != "lt" && name != "gt" && name != "quot") return 0;
      out->push_back(r.c);
      return end - at + (semi ? 1 : 0);
    }
    return 0;
  }
  return 0;
}

// `in` with one layer of escapes undone and the result folded; nullopt when nothing was
// an escape. With `origin`, also where each output byte came from: in_origin[i] of the
// input byte that starts its escape (i itself without in_origin).
std::optional<std::string> DecodeLayer(std::string_view in, const std::vector<uint32_t>* in_origin,
                                       std::vector<uint32_t>* origin) {
  if (in.find_first_of("%\\&") == std::string_view::npos) return std::nullopt;
  std::string out;
  out.reserve(in.size());
  if (origin) {
    origin->clear();
    origin->reserve(in.size());
  }
  bool changed = false;
  for (size_t i = 0; i < in.size();) {
    size_t before = out.size();
    size_t n = (in[i] == '%' || in[i] == '\\' || in[i] == '&') ? DecodeOne(in, i, &out) : 0;
    if (n == 0) {
      out.push_back(in[i]);
      n = 1;
    } else {
      changed = true;
      for (size_t k = before; k < out.size(); ++k) out[k] = Fold(out[k]);
    }
    if (origin) {
      uint32_t from = in_origin ? (*in_origin)[i] : static_cast<uint32_t>(i);
      origin->insert(origin->end(), out.size() - before, from);
    }
    i += n;
  }
  if (!changed) return std::nullopt;
  return out;
}

// The data and its views, built lazily: texts first; where each byte of a view came from
// only when a match in it must be located.
class Views {
 public:
  explicit Views(std::string_view data) : data_(data) {
    texts_.push_back(Folded(data));
    for (int l = 0; l < kMaxLayers; ++l) {
      auto next = DecodeLayer(texts_.back(), nullptr, nullptr);
      if (!next) break;
      texts_.push_back(std::move(*next));
    }
  }
  size_t size() const { return texts_.size(); }
  const std::string& text(size_t layer) const { return texts_[layer]; }

  // The bytes of the data that made [at, at + len) of view `layer`. Where each byte came
  // from is kept for one view at a time (matches are located view by view, in order).
  std::pair<size_t, size_t> Span(size_t layer, size_t at, size_t len) {
    if (layer == 0) return {at, at + len};
    if (origin_layer_ > layer) origin_layer_ = 0;
    while (origin_layer_ < layer) {
      std::vector<uint32_t> next;
      DecodeLayer(texts_[origin_layer_], origin_layer_ == 0 ? nullptr : &origin_, &next);
      origin_ = std::move(next);
      ++origin_layer_;
    }
    const std::vector<uint32_t>& o = origin_;
    size_t start = o[at];
    // The end: where the next byte's escape starts, past any that share the last one's.
    size_t last = o[at + len - 1];
    size_t end = data_.size();
    for (size_t k = at + len; k < o.size(); ++k) {
      if (o[k] > last) {
        end = o[k];
        break;
      }
    }
    return {start, end};
  }

 private:
  std::string_view data_;
  std::vector<std::string> texts_;
  size_t origin_layer_ = 0;       // the view origin_ describes; 0: none
  std::vector<uint32_t> origin_;  // for each byte of that view, where its escape starts
};

std::string Base64(std::string_view in, bool url) {
  const char* table = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += table[(v >> s) & 63];
  }
  if (i < in.size()) {  // the partial group, without padding (callers cut it anyway)
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    size_t chars = in.size() - i + 1;
    for (size_t k = 0; k < chars; ++k) out += table[(v >> (18 - 6 * k)) & 63];
  }
  return out;
}

std::string Hex(std::string_view in) {
  const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// UTF-16 in either byte order; "" when the value is not well-formed UTF-8.
std::string Utf16(std::string_view v, bool big_endian) {
  std::string out;
  auto unit = [&](uint32_t u) {
    char hi = static_cast<char>(u >> 8), lo = static_cast<char>(u & 0xFF);
    out += big_endian ? hi : lo;
    out += big_endian ? lo : hi;
  };
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size();) {
    uint32_t cp = p[i];
    size_t len = 1;
    if (cp >= 0x80) {
      len = Utf8Length(p + i, v.size() - i);
      if (len == 0) return "";
      cp = Utf8Decode(p + i, len);
    }
    if (cp >= 0x10000) {
      unit(0xD800 + ((cp - 0x10000) >> 10));
      unit(0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else {
      unit(cp);
    }
    i += len;
  }
  return out;
}

// Every form of the value to look for in a view, folded. Base64 of a value inside longer
// data depends on its offset modulo 3: for each offset, the characters that come from the
// value's bytes alone.
std::vector<std::string> Forms(std::string_view v) {
  std::vector<std::string> forms = {std::string(v), Hex(v), PercentEncode(v), Utf16(v, false),
                                    Utf16(v, true)};
  if (v.find(' ') != std::string_view::npos) {  // form encoding writes a space as '+'
    std::string plus(v);
    std::replace(plus.begin(), plus.end(), ' ', '+');
    forms.push_back(plus);
  }
  for (bool url : {false, true}) {
    for (size_t k = 0; k < 3; ++k) {
      std::string padded = std::string(k, '\0') + std::string(v);
      std::string b = Base64(padded, url);
      size_t start = k == 0 ? 0 : k + 1;     // first character free of the padding's bits
      size_t end = (padded.size() * 8) / 6;  // last character made of the value's bits only
      if (end > start + 4) forms.push_back(b.substr(start, end - start));
    }
  }
  // A value that itself holds escapes shows in the views as what they stand for.
  std::string layer = Folded(v);
  for (int l = 0; l < kMaxLayers; ++l) {
    auto next = DecodeLayer(layer, nullptr, nullptr);
    if (!next) break;
    layer = std::move(*next);
    if (layer.size() >= Secret::kMinSecretBytes) forms.push_back(layer);
  }
  for (std::string& f : forms) f = Folded(f);
  std::erase_if(forms, [](const std::string& f) { return f.empty(); });
  std::sort(forms.begin(), forms.end());
  forms.erase(std::unique(forms.begin(), forms.end()), forms.end());
  return forms;
}

bool Contains(std::string_view hay, std::string_view needle) {
  return memmem(hay.data(), hay.size(), needle.data(), needle.size()) != nullptr;
}

struct Match {
  size_t start, end;
  size_t secret;
};

// Every match of every secret's forms in the data's views, as spans of the data.
std::vector<Match> Matches(std::string_view data, const std::vector<Secret>& secrets,
                           const std::vector<std::vector<std::string>>& forms) {
  std::vector<Match> out;
  Views views(data);
  for (size_t l = 0; l < views.size(); ++l) {
    std::string_view text = views.text(l);
    for (size_t s = 0; s < secrets.size(); ++s) {
      for (const std::string& f : forms[s]) {
        const char* base = text.data();
        for (const char* p = base; p != nullptr;) {
          size_t from = static_cast<size_t>(p - base);
          p = static_cast<const char*>(memmem(p, text.size() - from, f.data(), f.size()));
          if (p == nullptr) break;
          auto [start, end] = views.Span(l, static_cast<size_t>(p - base), f.size());
          out.push_back({start, end, s});
          ++p;
        }
      }
    }
  }
  return out;
}

}  // namespace

std::string PercentEncode(std::string_view in) {
  const char* d = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += d[c >> 4];
      out += d[c & 15];
    }
  }
  return out;
}

std::optional<std::string> FindLeak(std::string_view data, const std::vector<Secret>& secrets) {
  if (secrets.empty() || data.empty()) return std::nullopt;
  Views views(data);
  for (const Secret& s : secrets) {
    std::vector<std::string> forms = Forms(s.value);
    for (size_t l = 0; l < views.size(); ++l) {
      for (const std::string& f : forms) {
        if (Contains(views.text(l), f)) return s.name;
      }
    }
  }
  return std::nullopt;
}

std::string Redact(std::string data, const std::vector<Secret>& secrets,
                   std::vector<std::string>* found) {
  if (secrets.empty() || data.empty()) return data;
  std::vector<std::vector<std::string>> forms;
  for (const Secret& s : secrets) forms.push_back(Forms(s.value));
  std::vector<bool> hit(secrets.size(), false);
  for (int round = 0;; ++round) {
    std::vector<Match> matches = Matches(data, secrets, forms);
    if (matches.empty()) break;
    for (const Match& m : matches) hit[m.secret] = true;
    if (round == kMaxRounds) {  // fail closed
      data = "[redacted secret " + secrets[matches.front().secret].name + "]";
      break;
    }
    // Overlapping matches become one; each is replaced by the mark of its first secret.
    std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) {
      return a.start != b.start ? a.start < b.start : a.secret < b.secret;
    });
    std::string out;
    size_t copied = 0;
    for (size_t i = 0; i < matches.size();) {
      size_t start = matches[i].start, end = matches[i].end, secret = matches[i].secret;
      for (++i; i < matches.size() && matches[i].start < end; ++i) {
        end = std::max(end, matches[i].end);
      }
      out.append(data, copied, start - copied);
      out += "[redacted secret " + secrets[secret].name + "]";
      copied = end;
    }
    out.append(data, copied, std::string::npos);
    data = std::move(out);
  }
  if (found) {
    for (size_t s = 0; s < secrets.size(); ++s) {
      if (hit[s]) found->push_back(secrets[s].name);
    }
  }
  return data;
}

}  // namespace moat::net
