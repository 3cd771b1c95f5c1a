#include "execution/net/egress.h"

#include <curl/curl.h>
#include <idn2.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>

#include "base/utf8.h"

namespace moat::net {
namespace {

Error Bad(std::string message) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(message));
}

// A URL or rule shown in a message: at most 200 bytes, printable ASCII only.
std::string Shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) {
    out +=
        (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) ? '?' : c;
  }
  return s.size() > 200 ? out + "..." : out;
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStr {
  char* p = nullptr;
  ~CurlStr() { curl_free(p); }
};

// One part of a parsed URL; "" when absent.
std::string Part(CURLU* u, CURLUPart part, unsigned flags = 0) {
  CurlStr s;
  if (curl_url_get(u, part, &s.p, flags) != CURLUE_OK || s.p == nullptr) return "";
  return s.p;
}
bool Has(CURLU* u, CURLUPart part) {
  CurlStr s;
  return curl_url_get(u, part, &s.p, 0) == CURLUE_OK && s.p != nullptr;
}

// Lower case, one trailing dot dropped, internationalised labels as punycode (IDNA 2008,
// non-transitional), and nothing but letters, digits, '-' and '.' left.
Result<std::string> NormaliseName(std::string host) {
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (host.empty() || host.back() == '.') return Bad("empty host name label");
  bool ascii = std::all_of(host.begin(), host.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (!ascii) {
    char* out = nullptr;
    int rc = idn2_to_ascii_8z(host.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK) {
      return Bad("host name \"" + Shown(host) +
                 "\" is not a valid international name: " + idn2_strerror(rc));
    }
    host = out;
    idn2_free(out);
  }
  host = Lower(std::move(host));
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) return Bad("host name \"" + Shown(host) + "\" has a character not allowed in names");
  }
  if (host.find("..") != std::string::npos || host.front() == '.') {
    return Bad("empty host name label");
  }
  if (host.size() > 253) return Bad("host name longer than 253 bytes");
  return host;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Characters that Unicode compatibility normalisation (NFKC), or a "best fit" code page
// mapping, turns into '.', '/', '\', ';' or '%' on servers that apply one to paths.
bool LooksLikeASeparator(uint32_t cp) {
  switch (cp) {
    case 0x2024:
    case 0x2025:
    case 0x2026:
    case 0xFE52:
    case 0xFF0E:  // dots
    case 0xFF0F:
    case 0x2215:
    case 0x2044:  // slashes
    case 0xFF3C:
    case 0xFE68:  // backslashes
    case 0xFF1B:
    case 0xFE54:
    case 0xFF05:
    case 0xFE6A:  // ';' and '%'
      return true;
    default: return false;
  }
}

// Why a server could read `path` (as normalised: dot segments gone) as a path other than
// the one it spells, or nullopt. Under a path prefix, every segment must mean itself:
// no path parameters (Tomcat and Spring read "/api/..;/admin" as "/admin"), no
// backslashes, no encoded '.', '/', '\' or ';', no encoded '%' (a second decode would
// make a new escape of what follows), no encoded NUL or other control, no malformed
// escape, and no byte sequence that is not shortest-form UTF-8 (overlong forms of '.' and
// '/') or a character normalisation turns into a separator.
std::optional<std::string> AmbiguousPath(std::string_view path) {
  std::string decoded;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '\\') return "a backslash";
    if (c == ';') return "a ';' parameter";
    if (c != '%') {
      decoded += c;
      continue;
    }
    if (i + 2 >= path.size() || HexDigit(path[i + 1]) < 0 || HexDigit(path[i + 2]) < 0) {
      return "a malformed percent escape";
    }
    auto b = static_cast<unsigned char>(HexDigit(path[i + 1]) * 16 + HexDigit(path[i + 2]));
    i += 2;
    if (b == '.') return "an encoded '.'";
    if (b == '/' || b == '\\') return "an encoded slash or backslash";
    if (b == ';') return "an encoded ';'";
    if (b == '%') return "an encoded '%' (double encoding)";
    if (b < 0x20 || b == 0x7F) return "an encoded NUL or control character";
    decoded += static_cast<char>(b);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(decoded.data());
  for (size_t i = 0; i < decoded.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = Utf8Length(p + i, decoded.size() - i);
    if (len == 0) return "bytes that are not well-formed UTF-8";
    if (LooksLikeASeparator(Utf8Decode(p + i, len))) {
      return "a character that normalises to a separator";
    }
    i += len;
  }
  return std::nullopt;
}

}  // namespace

std::string Url::ToString() const {
  std::string h = host_is_ip && ip.v6 ? "[" + host + "]" : host;
  std::string s = scheme + "://" + h + ":" + std::to_string(port) + path;
  if (!query.empty()) s += "?" + query;
  return s;
}

Result<Url> ParseUrl(std::string_view text) {
  if (text.size() > 8192) return Bad("URL longer than 8192 bytes");
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return Bad("URL contains whitespace or a control character");
    if (c == '\\') return Bad("URL contains a backslash: \"" + Shown(text) + "\"");
  }
  std::unique_ptr<CURLU, CurlUrlDeleter> u(curl_url());
  if (!u) return MakeError(ErrorCode::kInternal, "out of memory");
  std::string owned(text);
  if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, owned.c_str(), CURLU_NON_SUPPORT_SCHEME);
      rc != CURLUE_OK) {
    return Bad("bad URL \"" + Shown(text) + "\": " + curl_url_strerror(rc));
  }
  Url url;
  url.scheme = Lower(Part(u.get(), CURLUPART_SCHEME));
  if (url.scheme != "http" && url.scheme != "https") {
    return Bad("scheme \"" + Shown(url.scheme) + "\" is not allowed (http and https only)");
  }
  if (Has(u.get(), CURLUPART_USER) || Has(u.get(), CURLUPART_PASSWORD) ||
      Has(u.get(), CURLUPART_OPTIONS)) {
    return Bad("URL with user info (user@host) refused: \"" + Shown(text) + "\"");
  }
  if (Has(u.get(), CURLUPART_ZONEID)) return Bad("URL with an IPv6 zone id refused");
  std::string host = Part(u.get(), CURLUPART_HOST);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    std::optional<IpAddress> ip = IpAddress::Parse(host.substr(1, host.size() - 2));
    if (!ip || !ip->v6) return Bad("bad IPv6 address in \"" + Shown(text) + "\"");
    url.host_is_ip = true;
    url.ip = *ip;
    url.host = ip->ToString();
  } else if (std::optional<IpAddress> ip = IpAddress::Parse(host); ip && !ip->v6) {
    url.host_is_ip = true;
    url.ip = *ip;
    url.host = ip->ToString();
  } else {
    auto name = NormaliseName(host);
    if (!name) return name.error();
    url.host = std::move(*name);
    // A name made only of digits and dots that is not an IPv4 address ("999.1.1.1").
    if (url.host.find_first_not_of("0123456789.") == std::string::npos) {
      return Bad("host \"" + Shown(url.host) + "\" is neither a name nor an IPv4 address");
    }
  }
  std::string port = Part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 ||
      p > 65535) {
    return Bad("bad port in \"" + Shown(text) + "\"");
  }
  url.port = static_cast<uint16_t>(p);
  url.path = Part(u.get(), CURLUPART_PATH);
  if (url.path.empty()) url.path = "/";
  url.query = Part(u.get(), CURLUPART_QUERY);
  return url;
}

Result<EgressRule> EgressRule::Parse(std::string_view text, std::vector<std::string> methods) {
  EgressRule r;
  r.text = std::string(text.substr(0, 512));
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    return Bad("egress rule \"" + Shown(text) + "\" must start with http:// or https://");
  }
  r.scheme = Lower(std::string(text.substr(0, sep)));
  if (r.scheme != "http" && r.scheme != "https") {
    return Bad("egress rule \"" + Shown(text) + "\": scheme must be http or https");
  }
  std::string_view rest = text.substr(sep + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return Bad("egress rule \"" + Shown(text) + "\" has user info");
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return Bad("egress rule \"" + Shown(text) + "\": bad IPv6 host");
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Bad("egress rule \"" + Shown(text) + "\": bad port");
      port = authority.substr(close + 2);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Bad("egress rule \"" + Shown(text) + "\" has no host");
  if (host == "*") {
    r.host = "*";
  } else if (host.size() > 2 && host.substr(0, 2) == "*.") {
    auto name = NormaliseName(std::string(host.substr(2)));
    if (!name) return Bad("egress rule \"" + Shown(text) + "\": " + name.error().message);
    r.host = "*." + *name;
  } else if (host.find('*') != std::string_view::npos) {
    return Bad("egress rule \"" + Shown(text) + "\": '*' only as the whole host or as \"*.\"");
  } else {
    // The host goes through the same normalisation as a request's.
    auto url = ParseUrl(r.scheme + "://" + std::string(host) + "/");
    if (!url) return Bad("egress rule \"" + Shown(text) + "\": " + url.error().message);
    r.host = url->host;
  }
  if (port == "*") {
    r.port = 0;  // any port
  } else if (!port.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
      return Bad("egress rule \"" + Shown(text) + "\": bad port");
    }
    r.port = static_cast<uint16_t>(p);
  } else {
    r.port = r.scheme == "https" ? 443 : 80;
  }
  if (!path.empty()) {
    bool dot_segment = false;
    for (size_t i = 0; i < path.size();) {
      size_t j = path.find('/', i + 1);
      std::string_view seg =
          path.substr(i + 1, (j == std::string_view::npos ? path.size() : j) - i - 1);
      if (seg == "." || seg == "..") dot_segment = true;
      i = j == std::string_view::npos ? path.size() : j;
    }
    if (dot_segment || path.find("//") != std::string_view::npos ||
        path.find('?') != std::string_view::npos || path.find('#') != std::string_view::npos) {
      return Bad("egress rule \"" + Shown(text) + "\": the path must be a plain prefix");
    }
    if (auto why = AmbiguousPath(path)) {
      return Bad("egress rule \"" + Shown(text) + "\": the path must be a plain prefix, not " +
                 *why);
    }
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    if (path != "/") r.path_prefix = std::string(path);
  }
  for (std::string& m : methods) {
    std::string up;
    for (char c : m) up += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (up.empty() || up.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos) {
      return Bad("egress rule \"" + Shown(text) + "\": bad method \"" + Shown(m) + "\"");
    }
    r.methods.push_back(std::move(up));
  }
  return r;
}

bool EgressRule::Matches(std::string_view method, const Url& url) const {
  if (url.scheme != scheme || (port != 0 && url.port != port)) return false;
  if (host == "*") {
    // any host
  } else if (host.size() > 2 && host[0] == '*') {
    std::string_view suffix = std::string_view(host).substr(1);  // ".example.com"
    if (url.host_is_ip || url.host.size() <= suffix.size() ||
        url.host.compare(url.host.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return false;
    }
  } else if (url.host != host) {
    return false;
  }
  if (!path_prefix.empty()) {
    const std::string& p = url.path;
    bool under = p.compare(0, path_prefix.size(), path_prefix) == 0 &&
                 (p.size() == path_prefix.size() || p[path_prefix.size()] == '/');
    if (!under || AmbiguousPath(p)) return false;
  }
  if (!methods.empty() && std::find(methods.begin(), methods.end(), method) == methods.end()) {
    return false;
  }
  return true;
}

std::optional<std::string> EgressPolicy::CheckUrl(std::string_view method, const Url& url) const {
  if (rules.empty()) return "no network access is granted (the egress allowlist is empty)";
  auto allows = [&](const std::vector<EgressRule>& set) {
    return std::any_of(set.begin(), set.end(),
                       [&](const EgressRule& r) { return r.Matches(method, url); });
  };
  if (!allows(rules)) {
    std::string why = std::string(method) + " " + Shown(url.ToString()) + " matches no egress rule";
    bool prefixed = std::any_of(rules.begin(), rules.end(),
                                [](const EgressRule& r) { return !r.path_prefix.empty(); });
    if (auto ambiguous = AmbiguousPath(url.path); ambiguous && prefixed) {
      why += " (a path-prefix rule refuses a path with " + *ambiguous + ")";
    }
    return why;
  }
  for (const auto& set : also_required) {
    if (!allows(set)) {
      return std::string(method) + " " + Shown(url.ToString()) +
             " is allowed by one grant but not by every one (the tool's manifest and the "
             "caller's policy must both allow it)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> EgressPolicy::CheckAddress(const IpAddress& a) const {
  AddressClass c = Classify(a);
  if (c == AddressClass::kPublic) return std::nullopt;
  for (const Cidr& n : granted_networks) {
    if (n.Contains(a)) return std::nullopt;
  }
  return "address " + a.ToString() + " is " + AddressClassName(c) +
         " (grant its network explicitly to allow it)";
}

}  // namespace moat::net
