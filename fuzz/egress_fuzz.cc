// libFuzzer target for the egress parsers (src/execution/net/): URLs, rules, CIDRs and
// leak detection on arbitrary bytes. Invariants beyond "no crash": a parsed URL prints to
// a URL that parses to the same origin and path, its host holds only name characters or
// is an IP literal, every rule a text yields matches its own origin, a path a prefix rule
// allows stays under the prefix however many times a server percent-decodes it (no dot
// segment, ';', backslash or control appears), and redacted text holds no value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "execution/net/egress.h"
#include "execution/net/ip.h"
#include "execution/net/secret_store.h"

using namespace moat::net;  // NOLINT(google-build-using-namespace)

namespace {

// One round of percent-decoding, as a server might apply (again) to a path.
std::string PercentDecode(const std::string& s) {
  auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// What a server that decodes `path` up to three times could take for another path.
bool LeavesPrefix(std::string path, const std::string& prefix) {
  for (int round = 0; round < 3; ++round) {
    path = PercentDecode(path);
    if (path.compare(0, prefix.size(), prefix) != 0 ||
        (path.size() > prefix.size() && path[prefix.size()] != '/')) {
      return true;
    }
    for (char c : path) {
      if (c == ';' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
    }
    for (size_t i = 0; i < path.size();) {
      size_t j = path.find('/', i + 1);
      std::string seg = path.substr(i + 1, (j == std::string::npos ? path.size() : j) - i - 1);
      if (seg == "." || seg == "..") return true;
      i = j == std::string::npos ? path.size() : j;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto u = ParseUrl(text); u.ok()) {
    if (!u->host_is_ip) {
      for (char c : u->host) {
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
        if (!ok) abort();
      }
    } else if (Classify(u->ip) == AddressClass::kPublic && u->ip.EmbeddedV4()) {
      if (Classify(*u->ip.EmbeddedV4()) != AddressClass::kPublic) abort();
    }
    auto again = ParseUrl(u->ToString());
    if (!again.ok() || again->host != u->host || again->port != u->port ||
        again->scheme != u->scheme || again->path != u->path) {
      abort();
    }
  }
  if (auto r = EgressRule::Parse(text); r.ok()) {
    if (r->host != "*" && r->host[0] != '*') {
      std::string origin =
          r->scheme + "://" +
          (r->host.find(':') != std::string::npos ? "[" + r->host + "]" : r->host) + ":" +
          std::to_string(r->port != 0 ? r->port : 8080) +
          (r->path_prefix.empty() ? "/" : r->path_prefix);
      auto u = ParseUrl(origin);
      if (u.ok() && !r->Matches("GET", *u)) abort();
    }
  }
  static const EgressRule prefix_rule = *EgressRule::Parse("http://h.example/api");
  if (auto u = ParseUrl("http://h.example/api/" + text); u.ok()) {
    if (prefix_rule.Matches("GET", *u) && LeavesPrefix(u->path, "/api")) abort();
  }
  (void)Cidr::Parse(text);
  if (auto ip = IpAddress::Parse(text)) (void)Classify(*ip);
  Secret s{"S", "0123456789abcdef", {"h.example"}, {}};
  Secret t{"T", "p@ss w/rd+=?&%41", {"h.example"}, {}};
  std::string red = Redact(text, {s, t});
  if (FindLeak(red, {s, t}).has_value()) abort();
  return 0;
}
