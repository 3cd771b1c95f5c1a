// Egress policy: which URLs a guest may request, deny by default.
//
// A request URL is normalised with libcurl's URL parser (IPv4 in decimal, octal or hex
// becomes a dotted quad, dot segments are removed) and libidn2 (an internationalised name
// becomes its punycode form); the host is lower-cased and loses one trailing dot. URLs with
// user info (user@host), a zone id, a backslash, whitespace or control characters, or a
// scheme other than http and https are refused outright.
//
// A rule is "scheme://host[:port][/path-prefix]", optionally with methods. Host is a name,
// "*" (any host) or "*.example.com" (any name below example.com, not example.com itself);
// an IP literal matches only itself. Without a port a rule allows the scheme's default
// port; ":*" allows any port. A path prefix matches at a segment boundary ("/api" allows "/api"
// and "/api/x", not "/apix") and then refuses whatever a server could read as another path:
// ';' parameters ("/api/..;/admin"), encoded dots, slashes, backslashes and ';', an encoded
// '%' (double encoding: "%252e"), encoded NUL and other controls, malformed escapes, bytes
// that are not shortest-form UTF-8, and characters that Unicode normalisation turns into a
// separator (fullwidth dots and slashes). The query is not checked.
//
// Allowing the URL is half the decision: after DNS, every address must be public or in a
// network the policy grants explicitly (see ip.h for the classes that are not public).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "execution/net/ip.h"

namespace moat::net {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case, punycode, no trailing dot; an IPv6 literal unbracketed
  bool host_is_ip = false;
  IpAddress ip;       // when host_is_ip
  uint16_t port = 0;  // explicit or the scheme's default
  std::string path;   // normalised, starts with '/'
  std::string query;  // without '?', may be empty
  // The normalised URL, what the request is made with (no fragment).
  std::string ToString() const;
};

// ErrorCode::kInvalidArgument with the reason.
Result<Url> ParseUrl(std::string_view text);

struct EgressRule {
  std::string scheme;
  std::string host;                  // exact name or IP, "*", or "*.suffix"
  uint16_t port = 0;                 // 0: any port (written ":*")
  std::string path_prefix;           // "" or "/..." without a trailing slash
  std::vector<std::string> methods;  // upper case; empty: any
  std::string text;                  // as written, for messages

  // "https://api.example.com/v1", with methods given separately ("GET", "POST"...).
  static Result<EgressRule> Parse(std::string_view text, std::vector<std::string> methods = {});
  bool Matches(std::string_view method, const Url& url) const;
};

struct EgressPolicy {
  std::vector<EgressRule> rules;
  // Further rule sets that must each allow the request too (e.g. the tool's manifest and
  // the caller's grants); an empty set allows nothing.
  std::vector<std::vector<EgressRule>> also_required;
  std::vector<Cidr> granted_networks;  // non-public addresses allowed anyway

  // nullopt when some rule allows the request, else why not.
  std::optional<std::string> CheckUrl(std::string_view method, const Url& url) const;
  // nullopt when the address may be connected to, else why not.
  std::optional<std::string> CheckAddress(const IpAddress& a) const;
};

}  // namespace moat::net
