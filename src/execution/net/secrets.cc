#include "execution/net/secrets.h"

#include <algorithm>

namespace moat::net {
namespace {

constexpr std::string_view kOpen = "{{secret:";
constexpr std::string_view kClose = "}}";

Error Denied(std::string m) { return MakeError(ErrorCode::kDenied, std::move(m)); }
Error Bad(std::string m) { return MakeError(ErrorCode::kInvalidArgument, std::move(m)); }

bool NameOk(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool HostBoundImpl(const Secret& s, const Url& url) {
  for (const std::string& h : s.hosts) {
    if (h.size() > 2 && h[0] == '*' && h[1] == '.') {
      std::string_view suffix = std::string_view(h).substr(1);
      if (!url.host_is_ip && url.host.size() > suffix.size() &&
          url.host.compare(url.host.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return true;
      }
    } else if (h == url.host) {
      return true;
    }
  }
  return false;
}

const Secret* Granted(const std::vector<Secret>& granted, std::string_view name) {
  for (const Secret& s : granted) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Substitutes placeholders in `text`. `where` names the place for messages; `header` is
// the lower-case header name or "" outside headers; `percent` encodes values for a URL.
Result<std::string> Fill(std::string_view text, const std::string& where, const std::string& header,
                         bool percent, const Url& url, const std::vector<Secret>& granted) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string_view::npos) break;
    std::string_view name = text.substr(open + kOpen.size(), close - open - kOpen.size());
    if (!NameOk(name)) return Bad("malformed secret placeholder in " + where);
    const Secret* s = Granted(granted, name);
    if (s == nullptr) return Denied("secret " + std::string(name) + " is not granted to this run");
    if (!HostBoundImpl(*s, url)) {
      return Denied("secret " + s->name + " may not be sent to " + url.host);
    }
    if (!s->headers.empty() && (header.empty() || std::find(s->headers.begin(), s->headers.end(),
                                                            header) == s->headers.end())) {
      return Denied("secret " + s->name + " may not be sent in " + where);
    }
    out.append(text.substr(pos, open - pos));
    out += percent ? PercentEncode(s->value) : s->value;
    pos = close + kClose.size();
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace

bool SecretBoundTo(const Secret& s, const Url& url) { return HostBoundImpl(s, url); }

Result<HttpRequest> SubstituteSecrets(const HttpRequest& request, const Url& url,
                                      const std::vector<Secret>& granted) {
  // What the guest sends must not already hold a value (it cannot know one honestly).
  std::string sent = request.url + "\n" + request.body;
  for (const auto& [k, v] : request.headers) sent += "\n" + k + ": " + v;
  if (auto leak = FindLeak(sent, granted)) {
    return Denied("the request carries the value of secret " + *leak + " (use its placeholder)");
  }
  HttpRequest out = request;
  // URL: placeholders only after the authority, values percent-encoded; the host, port
  // and scheme must come out unchanged.
  if (request.url.find(kOpen) != std::string::npos) {
    size_t scheme_end = request.url.find("://");
    size_t path_start =
        scheme_end == std::string::npos ? 0 : request.url.find_first_of("/?#", scheme_end + 3);
    if (path_start == std::string::npos || request.url.find(kOpen) < path_start) {
      return Denied("a secret placeholder may not be in the URL's host or port");
    }
    auto filled = Fill(request.url, "the URL", "", true, url, granted);
    if (!filled) return filled.error();
    auto again = ParseUrl(*filled);
    if (!again || again->host != url.host || again->port != url.port ||
        again->scheme != url.scheme) {
      return Denied("substituting a secret changed the URL's origin");
    }
    out.url = std::move(*filled);
  }
  for (auto& [k, v] : out.headers) {
    auto filled = Fill(v, "header " + k, Lower(k), false, url, granted);
    if (!filled) return filled.error();
    v = std::move(*filled);
  }
  auto body = Fill(request.body, "the body", "", false, url, granted);
  if (!body) return body.error();
  out.body = std::move(*body);
  return out;
}

}  // namespace moat::net
