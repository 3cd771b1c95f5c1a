#include "execution/net/http_backend.h"

#include <algorithm>

#include "execution/net/secrets.h"

namespace moat::net {
namespace {

// "GET,HEAD https://host/path" or "https://host/path".
Result<EgressRule> ParseGrantRule(const std::string& text) {
  std::string_view t = text;
  std::vector<std::string> methods;
  if (size_t space = t.find(' '); space != std::string_view::npos) {
    std::string_view list = t.substr(0, space);
    t = t.substr(space + 1);
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string m(list.substr(0, comma));
      for (char& c : m) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
      if (m.empty() || m.size() > 32 ||
          !std::all_of(m.begin(), m.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "egress rule \"" + text.substr(0, 200) + "\": bad method list");
      }
      methods.push_back(std::move(m));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  return EgressRule::Parse(t, std::move(methods));
}

Result<EgressPolicy> PolicyOf(const NetworkGrant& grant) {
  EgressPolicy p;
  for (size_t i = 0; i < grant.rule_sets.size(); ++i) {
    std::vector<EgressRule> set;
    for (const std::string& text : grant.rule_sets[i]) {
      auto r = ParseGrantRule(text);
      if (!r) return r.error();
      set.push_back(std::move(*r));
    }
    if (i == 0) {
      p.rules = std::move(set);
    } else {
      p.also_required.push_back(std::move(set));
    }
  }
  for (const std::string& n : grant.networks) {
    auto c = Cidr::Parse(n);
    if (!c) return c.error();
    p.granted_networks.push_back(*c);
  }
  return p;
}

class CurlBackend : public HttpBackend {
 public:
  explicit CurlBackend(std::shared_ptr<Resolver> resolver) : resolver_(std::move(resolver)) {}

  Result<HttpResponse> Fetch(const NetworkGrant& grant, const HttpRequest& request,
                             const HttpLimits& limits, uint64_t deadline_ns,
                             const std::atomic<bool>* cancel, FetchReport* report) override {
    auto r = FetchUnredacted(grant, request, limits, deadline_ns, cancel);
    if (!r) {
      // A message may quote a URL after substitution (a refused redirect, say).
      Error e = r.error();
      e.message = Redact(std::move(e.message), grant.secrets);
      return e;
    }
    if (!grant.secrets.empty()) {
      std::vector<std::string> found;
      for (auto& [k, v] : r->headers) v = Redact(std::move(v), grant.secrets, &found);
      r->body = Redact(std::move(r->body), grant.secrets, &found);
      r->url = Redact(std::move(r->url), grant.secrets, &found);
      std::sort(found.begin(), found.end());
      found.erase(std::unique(found.begin(), found.end()), found.end());
      if (report != nullptr) report->redacted = std::move(found);
    }
    return r;
  }

 private:
  Result<HttpResponse> FetchUnredacted(const NetworkGrant& grant, const HttpRequest& request,
                                       const HttpLimits& limits, uint64_t deadline_ns,
                                       const std::atomic<bool>* cancel) {
    auto policy = PolicyOf(grant);
    if (!policy) return policy.error();
    auto url = ParseUrl(request.url);
    if (!url) return url.error();
    std::string method = request.method;
    for (char& c : method) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (auto why = policy->CheckUrl(method, *url)) {
      return MakeError(ErrorCode::kDenied, *why);
    }
    auto filled = SubstituteSecrets(request, *url, grant.secrets);
    if (!filled) return filled.error();
    HttpContext ctx;
    ctx.policy = &*policy;
    ctx.resolver = resolver_.get();
    ctx.deadline_ns = deadline_ns;
    ctx.cancel = cancel;
    ctx.secrets = &grant.secrets;
    return HttpFetch(ctx, *filled, limits);
  }

  std::shared_ptr<Resolver> resolver_;
};

}  // namespace

std::shared_ptr<HttpBackend> MakeHttpBackend(std::shared_ptr<Resolver> resolver) {
  if (!resolver) resolver = SystemResolver();
  return std::make_shared<CurlBackend>(std::move(resolver));
}

}  // namespace moat::net
