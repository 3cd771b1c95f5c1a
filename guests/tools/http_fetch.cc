// http_fetch: one HTTP request through moat's host API (guests/include/moat/http.h),
// the response as text. HTML becomes readable text unless `raw` is set; a body that is
// not text is refused; the content is cut at `max_bytes` on a character boundary.
#include <cstring>
#include <string>
#include <string_view>

#include "moat/http.h"
#include "toolkit.h"

namespace {

using tk::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

// The value of a header in "name: value\r\n" lines (names are lower case).
std::string Header(std::string_view block, std::string_view name) {
  while (!block.empty()) {
    size_t end = block.find("\r\n");
    std::string_view line = block.substr(0, end);
    block = end == std::string_view::npos ? std::string_view() : block.substr(end + 2);
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ':') {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return std::string(v);
    }
  }
  return "";
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes one character reference at s[i] == '&'; returns false when it is not one.
bool Entity(std::string_view s, size_t* i, std::string* out) {
  size_t semi = s.find(';', *i);
  if (semi == std::string_view::npos || semi - *i > 10) return false;
  std::string_view name = s.substr(*i + 1, semi - *i - 1);
  static const struct {
    const char* name;
    uint32_t cp;
  } kNamed[] = {{"amp", '&'},     {"lt", '<'},      {"gt", '>'},      {"quot", '"'},
                {"apos", '\''},   {"nbsp", 0xA0},   {"copy", 0xA9},   {"reg", 0xAE},
                {"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026}, {"laquo", 0xAB},
                {"raquo", 0xBB},  {"rsquo", 0x2019}, {"lsquo", 0x2018}, {"rdquo", 0x201D},
                {"ldquo", 0x201C}, {"middot", 0xB7}, {"euro", 0x20AC}, {"times", 0xD7}};
  uint32_t cp = 0;
  if (!name.empty() && name[0] == '#') {
    bool hex = name.size() > 1 && (name[1] == 'x' || name[1] == 'X');
    std::string_view digits = name.substr(hex ? 2 : 1);
    if (digits.empty() || digits.size() > 7) return false;
    for (char c : digits) {
      int d = (c >= '0' && c <= '9')              ? c - '0'
              : hex && (c >= 'a' && c <= 'f')     ? c - 'a' + 10
              : hex && (c >= 'A' && c <= 'F')     ? c - 'A' + 10
                                                  : -1;
      if (d < 0) return false;
      cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
    }
  } else {
    bool found = false;
    for (const auto& e : kNamed) {
      if (name == e.name) {
        cp = e.cp;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  AppendUtf8(out, cp == 0xA0 ? ' ' : cp);
  *i = semi + 1;
  return true;
}

bool IsBlockTag(std::string_view tag) {
  static const char* kBlocks[] = {"p",  "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4",
                                  "h5", "h6",  "tr", "table", "section", "article", "header",
                                  "footer", "nav", "pre", "blockquote", "hr", "dt", "dd",
                                  "main", "aside", "form", "title", "figcaption"};
  for (const char* b : kBlocks) {
    if (tag == b) return true;
  }
  return false;
}

// Readable text of an HTML document: no tags, scripts, styles or comments; block
// elements start new lines, list items get "- ", runs of spaces fold into one, and at
// most one blank line separates blocks. The <title> goes to *title.
std::string HtmlToText(std::string_view html, std::string* title) {
  std::string out;
  bool space = false;
  auto newline = [&](int max_blank) {
    while (!out.empty() && out.back() == ' ') out.pop_back();
    int have = 0;
    for (size_t k = out.size(); k > 0 && out[k - 1] == '\n'; --k) ++have;
    if (!out.empty() && have < max_blank + 1) out += '\n';
    space = false;
  };
  size_t i = 0;
  bool in_title = false;
  while (i < html.size()) {
    char c = html[i];
    if (c == '<') {
      if (html.compare(i, 4, "<!--") == 0) {
        size_t end = html.find("-->", i + 4);
        i = end == std::string_view::npos ? html.size() : end + 3;
        continue;
      }
      size_t end = html.find('>', i);
      if (end == std::string_view::npos) break;
      std::string_view inner = html.substr(i + 1, end - i - 1);
      bool closing = !inner.empty() && inner[0] == '/';
      if (closing) inner.remove_prefix(1);
      size_t n = 0;
      while (n < inner.size() && (isalnum(static_cast<unsigned char>(inner[n])) != 0)) ++n;
      std::string tag = Lower(inner.substr(0, n));
      i = end + 1;
      if (!closing && (tag == "script" || tag == "style" || tag == "noscript" || tag == "template" ||
                       tag == "svg")) {
        std::string close = "</" + tag;
        size_t stop = i;
        for (;;) {
          stop = html.find("</", stop);
          if (stop == std::string_view::npos) break;
          if (Lower(html.substr(stop, close.size())) == close) break;
          stop += 2;
        }
        if (stop == std::string_view::npos) {
          i = html.size();
        } else {
          size_t gt = html.find('>', stop);
          i = gt == std::string_view::npos ? html.size() : gt + 1;
        }
        continue;
      }
      if (tag == "title") {
        in_title = !closing;
        continue;
      }
      if (tag == "li" && !closing) {
        newline(0);
        out += "- ";
      } else if (tag == "br") {
        newline(1);
      } else if (IsBlockTag(tag)) {
        newline(tag == "br" || tag == "li" || tag == "tr" ? 0 : 1);
      } else if ((tag == "td" || tag == "th") && !closing) {
        if (!out.empty() && out.back() != '\n') out += " | ";
      }
      continue;
    }
    std::string piece;
    if (c == '&' && Entity(html, &i, &piece)) {
      // decoded into piece
    } else {
      piece.assign(1, c);
      ++i;
    }
    if (in_title) {
      *title += piece;
      continue;
    }
    for (char p : piece) {
      if (p == ' ' || p == '\n' || p == '\t' || p == '\r' || p == '\f') {
        space = true;
      } else {
        if (space && !out.empty() && out.back() != '\n') out += ' ';
        space = false;
        out += p;
      }
    }
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  // Fold the title's whitespace too.
  std::string t;
  bool sp = false;
  for (char p : *title) {
    if (p == ' ' || p == '\n' || p == '\t' || p == '\r') {
      sp = !t.empty();
    } else {
      if (sp) t += ' ';
      sp = false;
      t += p;
    }
  }
  *title = t;
  return out;
}

std::string Latin1ToUtf8(std::string_view s) {
  std::string out;
  for (unsigned char c : s) AppendUtf8(&out, c);
  return out;
}

bool IsTextType(const std::string& type) {
  return type.empty() || type.rfind("text/", 0) == 0 || type.find("json") != std::string::npos ||
         type.find("xml") != std::string::npos || type.find("javascript") != std::string::npos ||
         type == "application/x-www-form-urlencoded" || type.find("yaml") != std::string::npos ||
         type.find("csv") != std::string::npos;
}

tk::Outcome HttpFetch(const json& j) {
  tk::Args args(j, {"url", "method", "headers", "body", "max_bytes", "raw"});
  std::string url = args.Str("url", true);
  std::string method = args.Str("method", false, "GET");
  std::string body = args.Str("body", false);
  int64_t max_bytes = args.Int("max_bytes", 256 << 10, 1, 8 << 20);
  bool raw = args.Bool("raw", false);
  if (!args.ok()) return args.Error();
  std::string headers;
  if (auto it = j.find("headers"); it != j.end()) {
    if (!it->is_object()) return tk::Fail("invalid_arguments", "headers must be an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        return tk::Fail("invalid_arguments", "header " + k + " must have a string value");
      }
      const std::string& value = v.get_ref<const std::string&>();
      if (k.find_first_of(":\r\n") != std::string::npos ||
          value.find_first_of("\r\n") != std::string::npos) {
        return tk::Fail("invalid_arguments", "header " + k + " has a line break or colon");
      }
      headers += k + ": " + value + "\n";
    }
  }

  moat_http_result_t r;
  uint32_t rc = moat_http_fetch(method.c_str(), url.c_str(), headers.c_str(), body.data(),
                                body.size(), &r);
  if (rc != MOAT_OK) {
    char why[2048];
    std::string message = moat_http_last_error(why, sizeof why);
    switch (rc) {
      case MOAT_EDENIED: return tk::Fail("network_denied", message);
      case MOAT_ELIMIT: return tk::Fail("limit", message);
      case MOAT_EINVAL: return tk::Fail("invalid_arguments", message);
      case MOAT_ENOSYS: return tk::Fail("network_unavailable", message);
      default: return tk::Fail("network_error", message);
    }
  }
  std::string type_header = Header(std::string_view(r.headers, r.headers_len), "content-type");
  std::string type = Lower(type_header.substr(0, type_header.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  std::string charset;
  if (size_t cs = Lower(type_header).find("charset="); cs != std::string::npos) {
    charset = Lower(type_header.substr(cs + 8));
    charset = charset.substr(0, charset.find_first_of("; "));
    if (!charset.empty() && charset.front() == '"') charset = charset.substr(1, charset.size() - 2);
  }
  std::string_view data(r.body, r.body_len);
  json content = {{"status", r.status},
                  {"url", std::string(r.url)},
                  {"content_type", type},
                  {"bytes", r.body_len}};
  std::string text;
  if (method == "HEAD") {
    text.clear();
  } else if (charset == "iso-8859-1" || charset == "latin1" || charset == "windows-1252") {
    text = Latin1ToUtf8(data);
  } else {
    if (!IsTextType(type) || !tk::LooksLikeText(data)) {
      std::string shown = type.empty() ? "unknown type" : type;
      moat_http_result_free(&r);
      return tk::Fail("binary_content", "the response is not text (" + shown + ", " +
                                            std::to_string(data.size()) + " bytes)");
    }
    text.assign(data);
  }
  moat_http_result_free(&r);
  if (!raw && (type == "text/html" || type == "application/xhtml+xml")) {
    std::string title;
    text = HtmlToText(text, &title);
    content["title"] = title;
    content["format"] = "text from html";
  } else {
    content["format"] = raw ? "raw" : "text";
  }
  bool truncated = text.size() > static_cast<size_t>(max_bytes);
  if (truncated) text.resize(tk::Utf8Prefix(text, static_cast<size_t>(max_bytes)));
  content["content"] = std::move(text);
  content["truncated"] = truncated;
  return tk::Ok(std::move(content));
}

}  // namespace

int main() { return tk::Main(HttpFetch); }
