// libFuzzer target for the egress parsers (src/execution/net/): URLs, rules, CIDRs and
// leak detection on arbitrary bytes. Invariants beyond "no crash": a parsed URL prints to
// a URL that parses to the same origin and path, its host holds only name characters or
// is an IP literal, and every rule a text yields matches its own origin.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "execution/net/egress.h"
#include "execution/net/ip.h"
#include "execution/net/secret_store.h"

using namespace moat::net;  // NOLINT(google-build-using-namespace)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto u = ParseUrl(text); u.ok()) {
    if (!u->host_is_ip) {
      for (char c : u->host) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                  c == '_';
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
      std::string origin = r->scheme + "://" +
                           (r->host.find(':') != std::string::npos ? "[" + r->host + "]" : r->host) +
                           ":" + std::to_string(r->port != 0 ? r->port : 8080) + (r->path_prefix.empty() ? "/" : r->path_prefix);
      auto u = ParseUrl(origin);
      if (u.ok() && !r->Matches("GET", *u)) abort();
    }
  }
  (void)Cidr::Parse(text);
  if (auto ip = IpAddress::Parse(text)) (void)Classify(*ip);
  Secret s{"S", "0123456789abcdef", {"h.example"}, {}};
  std::string red = Redact(text, {s});
  if (FindLeak(red, {s}).has_value()) abort();
  return 0;
}
