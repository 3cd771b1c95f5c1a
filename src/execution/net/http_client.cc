#include "execution/net/http_client.h"

#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "execution/net/secrets.h"

namespace moat::net {
namespace {

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

Error Denied(std::string m) { return MakeError(ErrorCode::kDenied, std::move(m)); }
Error Limit(std::string m) { return MakeError(ErrorCode::kLimit, std::move(m)); }
Error BadRequest(std::string m) { return MakeError(ErrorCode::kInvalidArgument, std::move(m)); }

class GetAddrInfoResolver : public Resolver {
 public:
  Result<std::vector<IpAddress>> Resolve(const std::string& host) override {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
      return MakeError(ErrorCode::kIo, "cannot resolve \"" + host + "\": " + gai_strerror(rc));
    }
    std::vector<IpAddress> out;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
      IpAddress ip = IpAddress::FromSockaddr(a->ai_addr);
      if (std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
    }
    freeaddrinfo(res);
    return out;
  }
};

// RFC 9110 token characters, for header names and methods.
bool IsToken(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool SafeValue(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

struct Transfer {
  CURL* easy = nullptr;
  const HttpLimits* limits = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  uint64_t deadline_ns = 0;
  IpAddress pinned;
  uint16_t port = 0;
  std::string body;
  Headers headers;
  uint64_t header_bytes = 0;
  bool body_too_big = false;
  bool headers_too_big = false;
  std::string refused_transfer_coding;  // a transfer coding other than chunked
  bool wrong_address = false;
  bool cancelled = false;
  bool deadline = false;
};

size_t OnBody(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  if (t->body.size() + len > t->limits->max_response_bytes) {
    t->body_too_big = true;
    return 0;  // aborts the transfer
  }
  if (t->body.empty()) {
    // One allocation for a body of known length (growing by doubling touched about twice
    // its size in fresh pages). A length beyond the limit fails above anyway.
    curl_off_t length = -1;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
        length > 0) {
      t->body.reserve(
          std::min<uint64_t>(static_cast<uint64_t>(length), t->limits->max_response_bytes));
    }
  }
  t->body.append(p, len);
  return len;
}

size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  t->header_bytes += len;
  if (t->header_bytes > t->limits->max_header_bytes) {
    t->headers_too_big = true;
    return 0;
  }
  std::string_view line(p, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {  // a new response (after 100 Continue): start over
    t->headers.clear();
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return len;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  std::string name = Lower(std::string(line.substr(0, colon)));
  if (name == "transfer-encoding") {
    // Only chunked framing: libcurl passes any other transfer coding through undecoded,
    // and a body moat cannot read is a body it cannot scan for secrets.
    for (size_t at = 0; at < value.size();) {
      size_t comma = std::min(value.find(',', at), value.size());
      std::string coding = Lower(std::string(value.substr(at, comma - at)));
      std::erase_if(coding, [](char c) { return c == ' ' || c == '\t'; });
      if (!coding.empty() && coding != "chunked" && coding != "identity") {
        t->refused_transfer_coding = coding.substr(0, 64);
        return 0;  // aborts the transfer
      }
      at = comma + 1;
    }
  }
  t->headers.emplace_back(std::move(name), std::string(value));
  return len;
}

// Connects only to the address that was checked: CURLOPT_RESOLVE hands it to libcurl, and
// this refuses any other (defence in depth against a lookup libcurl might make itself).
curl_socket_t OnOpenSocket(void* ud, curlsocktype, curl_sockaddr* addr) {
  auto* t = static_cast<Transfer*>(ud);
  if (addr->family != AF_INET && addr->family != AF_INET6) {
    t->wrong_address = true;
    return CURL_SOCKET_BAD;
  }
  IpAddress ip = IpAddress::FromSockaddr(&addr->addr);
  uint16_t port = addr->family == AF_INET6
                      ? ntohs(reinterpret_cast<const sockaddr_in6*>(&addr->addr)->sin6_port)
                      : ntohs(reinterpret_cast<const sockaddr_in*>(&addr->addr)->sin_port);
  if (!(ip == t->pinned) || port != t->port) {
    t->wrong_address = true;
    return CURL_SOCKET_BAD;
  }
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

int OnProgress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(ud);
  if (t->cancel && t->cancel->load(std::memory_order_relaxed)) {
    t->cancelled = true;
    return 1;
  }
  if (t->deadline_ns && NowNs() >= t->deadline_ns) {
    t->deadline = true;
    return 1;
  }
  return 0;
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

const std::string* FindHeader(const Headers& h, std::string_view lower_name) {
  for (const auto& [k, v] : h) {
    if (k == lower_name) return &v;
  }
  return nullptr;
}

// The absolute URL a Location header points to, relative to `base`.
Result<std::string> Resolve(const std::string& base, const std::string& location) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u.get(), CURLUPART_URL, location.c_str(), CURLU_NON_SUPPORT_SCHEME) !=
          CURLUE_OK) {
    return BadRequest("redirect to a malformed location");
  }
  char* out = nullptr;
  if (curl_url_get(u.get(), CURLUPART_URL, &out, 0) != CURLUE_OK) {
    return BadRequest("redirect to a malformed location");
  }
  std::string s = out;
  curl_free(out);
  return s;
}

// Part of a response (Range, If-Range) from a host a secret is bound to could carry part of
// a reflected value, too short to recognise, and parts add up to the value; the host may
// also keep a value from an earlier request. nullopt when the request may go.
std::optional<std::string> RangeRefusal(const HttpContext& ctx, const Url& url,
                                        const Headers& headers) {
  if (ctx.secrets == nullptr) return std::nullopt;
  const Secret* bound = nullptr;
  for (const Secret& s : *ctx.secrets) {
    if (SecretBoundTo(s, url)) {
      bound = &s;
      break;
    }
  }
  if (bound == nullptr) return std::nullopt;
  for (const auto& [k, v] : headers) {
    std::string lk = Lower(k);
    if (lk == "range" || lk == "if-range") {
      return "header " + k + " refused in a request to " + url.host + ", which secret " +
             bound->name + " is bound to (a Range of a response could hold part of its value)";
    }
  }
  return std::nullopt;
}

}  // namespace

std::unique_ptr<Resolver> SystemResolver() { return std::make_unique<GetAddrInfoResolver>(); }

Result<HttpResponse> HttpFetch(const HttpContext& ctx, const HttpRequest& request,
                               const HttpLimits& limits) {
  GlobalInit();
  if (ctx.policy == nullptr || ctx.resolver == nullptr) {
    return MakeError(ErrorCode::kInternal, "HttpFetch without a policy or resolver");
  }
  std::string method = request.method;
  if (!IsToken(method)) return BadRequest("bad HTTP method");
  for (char& c : method) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  uint64_t request_bytes = request.url.size() + request.body.size();
  for (const auto& [k, v] : request.headers) {
    if (!IsToken(k)) return BadRequest("bad header name");
    if (!SafeValue(v)) return BadRequest("header " + k + " has a line break or NUL in its value");
    std::string lk = Lower(k);
    if (lk == "host" || lk == "content-length" || lk == "transfer-encoding" || lk == "connection") {
      return BadRequest("header " + k + " is set by moat, not by the guest");
    }
    request_bytes += k.size() + v.size() + 4;
  }
  // The body comes back in the identity coding, or decoded by libcurl: the caller may not
  // choose the coding (a compressed echo of a secret would pass any scan of its bytes).
  Headers headers = request.headers;
  std::erase_if(headers, [](const auto& kv) {
    std::string k = Lower(kv.first);
    return k == "accept-encoding" || k == "te";
  });
  if (request_bytes > limits.max_request_bytes) {
    return Limit("request of " + std::to_string(request_bytes) + " bytes exceeds the limit of " +
                 std::to_string(limits.max_request_bytes));
  }
  uint64_t deadline = NowNs() + limits.timeout_us * 1000;
  if (ctx.deadline_ns != 0) deadline = std::min(deadline, ctx.deadline_ns);

  std::string current = request.url;
  std::string body = request.body;
  for (int hop = 0;; ++hop) {
    auto url = ParseUrl(current);
    if (!url) return url.error();
    if (auto why = ctx.policy->CheckUrl(method, *url)) return Denied(*why);
    if (auto why = RangeRefusal(ctx, *url, headers)) return Denied(*why);
    if (hop > 0 && ctx.secrets != nullptr && !ctx.secrets->empty()) {
      // Checked before the name is resolved: a value in a host name would leak by DNS.
      std::vector<Secret> unbound;
      for (const Secret& s : *ctx.secrets) {
        if (!SecretBoundTo(s, *url)) unbound.push_back(s);
      }
      std::string sent = current + "\n" + body;
      for (const auto& [k, v] : headers) sent += "\n" + k + ": " + v;
      if (auto leak = FindLeak(sent, unbound)) {
        return Denied("redirect to " + url->host + " refused: it would carry secret " + *leak +
                      ", which is not bound to that host");
      }
    }
    std::vector<IpAddress> addresses;
    if (url->host_is_ip) {
      addresses.push_back(url->ip);
    } else {
      auto found = ctx.resolver->Resolve(url->host);
      if (!found) return found.error();
      addresses = std::move(*found);
      if (addresses.empty()) {
        return MakeError(ErrorCode::kIo, "\"" + url->host + "\" has no address");
      }
    }
    for (const IpAddress& a : addresses) {
      if (auto why = ctx.policy->CheckAddress(a)) {
        return Denied(url->host + (url->host_is_ip ? ": " : " resolves to a blocked address: ") +
                      *why);
      }
    }
    uint64_t now = NowNs();
    if (now >= deadline) return Limit("time limit reached before the request was sent");

    Transfer t;
    t.limits = &limits;
    t.cancel = ctx.cancel;
    t.deadline_ns = deadline;
    t.pinned = addresses.front();
    t.port = url->port;

    std::unique_ptr<CURL, EasyDeleter> c(curl_easy_init());
    if (!c) return MakeError(ErrorCode::kInternal, "curl_easy_init failed");
    CURL* h = c.get();
    t.easy = h;
    std::string target = url->ToString();
    curl_easy_setopt(h, CURLOPT_URL, target.c_str());
    std::unique_ptr<curl_slist, ListDeleter> resolve;
    if (!url->host_is_ip) {
      std::string addr = t.pinned.v6 ? "[" + t.pinned.ToString() + "]" : t.pinned.ToString();
      std::string entry = url->host + ":" + std::to_string(url->port) + ":" + addr;
      resolve.reset(curl_slist_append(nullptr, entry.c_str()));
      curl_easy_setopt(h, CURLOPT_RESOLVE, resolve.get());
    }
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &t);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "moat");
    // Sends "Accept-Encoding: identity" and decodes any content coding libcurl knows that
    // a server uses anyway; an unknown one fails the transfer (CURLE_BAD_CONTENT_ENCODING).
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "identity");
    // Rounded up: libcurl's timer must not fire before the deadline (a request cut by the
    // run's deadline then leaves the run out of time, as it is).
    long ms = static_cast<long>((deadline - now + 999'999) / 1'000'000);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(limits.max_response_bytes));
    if (!limits.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, limits.ca_file.c_str());
    if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (method == "GET" && body.empty()) {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    }
    std::unique_ptr<curl_slist, ListDeleter> list(curl_slist_append(nullptr, "Expect:"));
    for (const auto& [k, v] : headers) {
      std::string line = k + ": " + v;
      list.reset(curl_slist_append(list.release(), line.c_str()));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get());

    CURLcode rc = curl_easy_perform(h);
    if (t.wrong_address) {
      return Denied("connection to an address other than the checked " + t.pinned.ToString() +
                    " refused");
    }
    if (t.body_too_big || rc == CURLE_FILESIZE_EXCEEDED) {
      return Limit("response body larger than " + std::to_string(limits.max_response_bytes) +
                   " bytes");
    }
    if (t.headers_too_big) {
      return Limit("response headers larger than " + std::to_string(limits.max_header_bytes) +
                   " bytes");
    }
    if (!t.refused_transfer_coding.empty()) {
      return Denied("response from " + url->host + " in transfer coding \"" +
                    t.refused_transfer_coding + "\" refused (moat reads chunked only)");
    }
    if (rc == CURLE_BAD_CONTENT_ENCODING) {
      return Denied("response from " + url->host +
                    " refused: its content coding is unknown to moat or does not decode");
    }
    if (t.cancelled) return MakeError(ErrorCode::kLimit, "request cancelled");
    if (t.deadline || rc == CURLE_OPERATION_TIMEDOUT) {
      // libcurl's timers may fire a little early; a time-limit error comes back no earlier
      // than the deadline, so a caller comparing clocks sees it passed.
      for (uint64_t n = NowNs(); n < deadline; n = NowNs()) {
        timespec ts{static_cast<time_t>((deadline - n) / 1'000'000'000),
                    static_cast<long>((deadline - n) % 1'000'000'000)};
        nanosleep(&ts, nullptr);
      }
      return Limit("time limit of " + std::to_string(limits.timeout_us / 1000) +
                   " ms (or the run's deadline) reached");
    }
    if (rc != CURLE_OK) {
      return MakeError(ErrorCode::kIo, std::string("request to ") + url->host +
                                           " failed: " + curl_easy_strerror(rc));
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    const std::string* location = FindHeader(t.headers, "location");
    bool redirect =
        status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    if (!redirect || location == nullptr) {
      HttpResponse r;
      r.status = static_cast<int>(status);
      r.headers = std::move(t.headers);
      // The body is decoded: headers describing the coded form would mislead the caller.
      if (FindHeader(r.headers, "content-encoding") != nullptr) {
        std::erase_if(r.headers, [](const auto& kv) {
          return kv.first == "content-encoding" || kv.first == "content-length";
        });
      }
      r.body = std::move(t.body);
      r.url = url->ToString();
      r.redirects = hop;
      return r;
    }
    if (hop >= limits.max_redirects) {
      return Limit("more than " + std::to_string(limits.max_redirects) + " redirects");
    }
    auto next = Resolve(target, *location);
    if (!next) return Denied("redirect refused: " + next.error().message);
    // 303, and 301/302 after a POST, continue as GET without the body (as browsers do).
    if (status == 303 || ((status == 301 || status == 302) && method == "POST")) {
      if (method != "HEAD") method = "GET";
      body.clear();
    }
    // Credentials do not follow a redirect to another origin.
    // A location moat would refuse as a URL (another scheme, user info...) ends the
    // exchange as a denial: the server, not the guest, chose it.
    auto next_url = ParseUrl(*next);
    if (!next_url) return Denied("redirect refused: " + next_url.error().message);
    if (next_url->host != url->host || next_url->port != url->port ||
        next_url->scheme != url->scheme) {
      std::erase_if(headers, [](const auto& kv) {
        std::string k = Lower(kv.first);
        return k == "authorization" || k == "cookie" || k == "proxy-authorization";
      });
    }
    current = *next;
  }
}

}  // namespace moat::net
