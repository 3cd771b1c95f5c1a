// What a guest's HTTP request costs over the same request made natively, against a real
// server on loopback, measured side by side in one run (the machine is noisy):
//   native   libcurl, a fresh easy handle per request (what a tool in a subprocess does)
//   host     net::HttpFetch: the egress checks, one lookup, the pinned connection
//   guest    guests/net/http_probe.c in the sandbox: moat_http_fetch, the whole body read
//            through moat_http_read, N requests in one run
// Each is the median of several rounds of N requests; rounds alternate between the three.
//   bench_net [--quick]
#include <curl/curl.h>
#include <httplib.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "execution/engine.h"
#include "execution/net/http_backend.h"
#include "execution/net/http_client.h"

using namespace moat;
using namespace moat::bench;

namespace {

size_t Discard(char*, size_t size, size_t n, void* ud) {
  *static_cast<size_t*>(ud) += size * n;
  return size * n;
}

double NativeRound(const std::string& url, int n, size_t expect) {
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    CURL* c = curl_easy_init();
    size_t got = 0;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) != CURLE_OK || got != expect) Die("native request failed");
    curl_easy_cleanup(c);
  }
  return Us(Clock::now() - t0) / n;
}

double HostRound(const std::string& url, int n, size_t expect, const net::EgressPolicy& policy,
                 net::Resolver* resolver) {
  net::HttpContext ctx;
  ctx.policy = &policy;
  ctx.resolver = resolver;
  net::HttpRequest q;
  q.url = url;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto r = net::HttpFetch(ctx, q, {});
    if (!r || r->body.size() != expect) Die("host request failed");
  }
  return Us(Clock::now() - t0) / n;
}

double GuestRound(Engine& engine, const ModuleHandle& probe, const std::string& url, int n,
                  size_t expect) {
  ExecRequest q;
  q.argv = {"http_probe.wasm", "read", url, std::to_string(n)};
  q.network.rule_sets = {{url.substr(0, url.find('/', 8))}};
  q.network.networks = {"127.0.0.1/32"};
  q.limits.max_http_requests = static_cast<uint64_t>(n);
  q.limits.max_http_total_bytes = Limits::kMaxHttpTotalBytes;
  auto t0 = Clock::now();
  ExecResult r = engine.Run(probe, q);
  double us = Us(Clock::now() - t0) / n;
  if (r.status != RunStatus::kOk || r.stdout_bytes != std::to_string(expect * n) + "\n") {
    Die("guest run failed: " + r.message + " " + r.stdout_bytes);
  }
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  httplib::Server server;
  const std::string small = "hello from loopback";
  const std::string big(1 << 20, 'b');
  server.Get("/small", [&](const httplib::Request&, httplib::Response& r) {
    r.set_content(small, "text/plain");
  });
  server.Get("/big", [&](const httplib::Request&, httplib::Response& r) {
    r.set_content(big, "application/octet-stream");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string base = "http://127.0.0.1:" + std::to_string(port);

  auto engine = Engine::Create({});
  if (!engine) Die(engine.error().message);
  EngineOptions eo;
  eo.http_backend = net::MakeHttpBackend();
  auto guest_engine = Engine::Create(eo);
  if (!guest_engine) Die(guest_engine.error().message);
  auto probe = (*guest_engine)->LoadFile(std::string(MOAT_GUEST_DIR) + "/http_probe.wasm");
  if (!probe) Die(probe.error().message);
  net::EgressPolicy policy;
  policy.rules.push_back(*net::EgressRule::Parse(base));
  policy.granted_networks.push_back(*net::Cidr::Parse("127.0.0.1/32"));
  auto resolver = net::SystemResolver();

  printf("bench_net: HTTP GET on loopback, per request (median of rounds)\n");
  struct Case {
    const char* name;
    std::string url;
    size_t size;
    int n;
    double target;
  };
  const Case cases[] = {{"19 B body", base + "/small", small.size(), quick ? 20 : 200, 1.5},
                        {"1 MiB body", base + "/big", big.size(), quick ? 4 : 40, 2.0}};
  int rounds = quick ? 3 : 9;
  for (const Case& c : cases) {
    std::vector<double> native, host, guest;
    for (int r = 0; r < rounds; ++r) {
      native.push_back(NativeRound(c.url, c.n, c.size));
      host.push_back(HostRound(c.url, c.n, c.size, policy, resolver.get()));
      guest.push_back(GuestRound(**guest_engine, *probe, c.url, c.n, c.size));
    }
    double nm = Percentile(native, 0.5), hm = Percentile(host, 0.5), gm = Percentile(guest, 0.5);
    printf("  %-10s native %8.1f us   host %8.1f us (%.2fx)   guest %8.1f us (%.2fx)\n", c.name, nm,
           hm, hm / nm, gm, gm / nm);
    char detail[128];
    snprintf(detail, sizeof detail, "%.2fx, target <= %.1fx", gm / nm, c.target);
    Check((std::string("guest request, ") + c.name + ", vs native libcurl").c_str(),
          gm / nm <= c.target, detail);
  }
  server.stop();
  t.join();
  printf("%s\n", g_misses == 0 ? "bench_net: all targets met" : "bench_net: targets missed");
  return 0;
}
