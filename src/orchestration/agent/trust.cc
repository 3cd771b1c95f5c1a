#include "orchestration/agent/trust.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/sha256.h"
#include "base/units.h"
#include "execution/limits.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxPolicyBytes = 1 << 20;
constexpr uint64_t kMaxTrustBytes = 16 << 20;

// A value from the file, quoted and escaped as a JSON string.
std::string Q(const std::string& s) { return DumpJson(json(s)); }

std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Bytes(uint64_t n) {
  char buf[48];
  if (n >= (1ull << 30) && n % (1ull << 30) == 0) {
    snprintf(buf, sizeof buf, "%llu GiB", static_cast<unsigned long long>(n >> 30));
  } else if (n >= (1ull << 20) && n % (1ull << 20) == 0) {
    snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(n >> 20));
  } else {
    return Grouped(n) + " bytes";
  }
  return buf;
}

std::string Duration(uint64_t us) {
  char buf[48];
  snprintf(buf, sizeof buf, "%g s", static_cast<double>(us) / 1e6);
  return buf;
}

std::string Dollars(double d) {
  char buf[48];
  snprintf(buf, sizeof buf, "$%.2f", d);
  return buf;
}

// One limit: kept in `narrowed` when at or below the default, else described.
struct LimitCheck {
  std::vector<std::string>* widening;
  void Check(const std::string& what, std::optional<uint64_t> set, uint64_t dflt,
             std::string (*show)(uint64_t), std::optional<uint64_t>* keep) const {
    if (!set) return;
    if (*set <= dflt) {
      *keep = set;
      return;
    }
    widening->push_back("raises " + what + " to " + show(*set) + " (default " + show(dflt) + ")");
  }
};

void ReviewTools(const Policy& p, const ManifestLookup& lookup, PolicyReview* out) {
  LimitCheck limit{&out->widening};
  for (const auto& [name, rule] : p.tools) {
    std::optional<tools::ToolManifest> m = lookup ? lookup(name) : std::nullopt;
    ToolRule& keep = out->narrowed.tools[name];
    if (rule.decision) {
      if (*rule.decision != Decision::kAllow) {
        keep.decision = rule.decision;  // ask or deny: never more than the default
      } else if (!m) {
        out->widening.push_back("lets " + Q(name) +
                                " (not installed now) run without asking, whatever it does");
      } else if (Policy{}.DecisionFor(*m) != Decision::kAllow) {
        std::string why = !m->capabilities.network.empty() ? "it uses the network"
                                                           : "it writes files in the workspace";
        out->widening.push_back("lets " + Q(name) + " run without asking you (" + why + ")");
      }
    }
    const tools::ToolLimits& l = rule.limits;
    if (!m) {
      if (l.fuel || l.memory_bytes || l.timeout_us || l.max_output_bytes) {
        out->widening.push_back("sets the limits of " + Q(name) + " (not installed now)");
      }
    } else {
      Limits d;
      const tools::ToolLimits& ml = m->limits;
      std::string of = " of " + Q(name);
      limit.Check("the fuel" + of, l.fuel, ml.fuel.value_or(d.fuel), Grouped, &keep.limits.fuel);
      limit.Check("the memory" + of, l.memory_bytes, ml.memory_bytes.value_or(d.memory_bytes),
                  Bytes, &keep.limits.memory_bytes);
      limit.Check("the time limit" + of, l.timeout_us, ml.timeout_us.value_or(d.timeout_us),
                  Duration, &keep.limits.timeout_us);
      limit.Check("the output limit" + of, l.max_output_bytes,
                  ml.max_output_bytes.value_or(d.max_output_bytes), Bytes,
                  &keep.limits.max_output_bytes);
    }
    if (!keep.decision && !keep.limits.fuel && !keep.limits.memory_bytes &&
        !keep.limits.timeout_us && !keep.limits.max_output_bytes) {
      out->narrowed.tools.erase(name);
    }
  }
}

void ReviewBudgets(const Policy& p, PolicyReview* out) {
  const Budgets& b = p.budgets;
  const Budgets d;
  Budgets& keep = out->narrowed.budgets;
  auto count = [&](const char* what, uint64_t set, uint64_t dflt, std::string (*show)(uint64_t),
                   uint64_t* k) {
    if (set <= dflt) {
      *k = set;
    } else {
      out->widening.push_back(std::string("raises the session's budget of ") + what + " to " +
                              show(set) + " (default " + show(dflt) + ")");
    }
  };
  count("model turns", b.steps, d.steps, Grouped, &keep.steps);
  count("tool calls", b.tool_calls, d.tool_calls, Grouped, &keep.tool_calls);
  count("input tokens", b.input_tokens, d.input_tokens, Grouped, &keep.input_tokens);
  count("output tokens", b.output_tokens, d.output_tokens, Grouped, &keep.output_tokens);
  count("fuel", b.fuel, d.fuel, Grouped, &keep.fuel);
  count("wall time", b.wall_time_us, d.wall_time_us, Duration, &keep.wall_time_us);
  if (b.cost_usd == 0) {
    out->widening.push_back("removes the session's cost limit (default " + Dollars(d.cost_usd) +
                            ")");
  } else if (b.cost_usd > d.cost_usd) {
    out->widening.push_back("raises the session's cost limit to " + Dollars(b.cost_usd) +
                            " (default " + Dollars(d.cost_usd) + ")");
  } else {
    keep.cost_usd = b.cost_usd;
  }
}

void ReviewGovernor(const Policy& p, PolicyReview* out) {
  const GovernorOptions& g = p.governor;
  const GovernorOptions d;
  GovernorOptions& keep = out->narrowed.governor;
  // Each kept value is at most its default, so a warning still comes at or before its stop.
  auto one = [&](const char* what, uint32_t set, uint32_t dflt, uint32_t* k) {
    if (set <= dflt) {
      *k = set;
    } else {
      out->widening.push_back(std::string("loosens the loop governor: ") + what + " after " +
                              std::to_string(set) + " (default " + std::to_string(dflt) + ")");
    }
  };
  one("a warning for a repeated call", g.repeat_warn, d.repeat_warn, &keep.repeat_warn);
  one("a stop for a repeated call", g.repeat_stop, d.repeat_stop, &keep.repeat_stop);
  one("a warning for steps without progress", g.no_progress_warn, d.no_progress_warn,
      &keep.no_progress_warn);
  one("a stop for steps without progress", g.no_progress_stop, d.no_progress_stop,
      &keep.no_progress_stop);
}

void ReviewPrices(const Policy& p, const std::map<std::string, Price>& user_prices,
                  PolicyReview* out) {
  char buf[200];
  for (const auto& [model, price] : p.prices) {
    auto u = user_prices.find(model);
    bool known = u != user_prices.end() || Policy{}.KnownPrice(model).has_value();
    // A model nobody prices counts at the conservative default (kUnknownModelPrice).
    Price floor = u != user_prices.end() ? u->second : Policy{}.PriceOf(model);
    if (price.input_per_mtok >= floor.input_per_mtok &&
        price.output_per_mtok >= floor.output_per_mtok) {
      out->narrowed.prices[model] = price;
      continue;
    }
    snprintf(buf, sizeof buf,
             " below its %s price ($%g in, $%g out per million tokens; that price is $%g, "
             "$%g), which loosens the cost limit",
             known ? "known" : "default", price.input_per_mtok, price.output_per_mtok,
             floor.input_per_mtok, floor.output_per_mtok);
    out->widening.push_back("prices the model " + Q(model) + buf);
  }
}

Result<json> ParseStore(const std::string& path, const std::optional<std::string>& text) {
  if (!text) return json{{"workspaces", json::object()}};
  auto parsed = ParseJson(*text);
  json j = parsed ? std::move(*parsed) : json();
  bool ok =
      !j.is_discarded() && j.is_object() && j.contains("workspaces") && j["workspaces"].is_object();
  if (ok) {
    for (const auto& [ws, r] : j["workspaces"].items()) {
      ok = ok && r.is_object() && r.contains("policy_sha256") && r["policy_sha256"].is_string() &&
           (!r.contains("trusted_at") || r["trusted_at"].is_string());
    }
  }
  if (!ok) {
    return MakeError(ErrorCode::kInvalidArgument,
                     path + ": expected {\"workspaces\": {PATH: {\"policy_sha256\": ...}}}");
  }
  return j;
}

Status UpdateStore(const std::string& path, const std::function<void(json& workspaces)>& change) {
  if (path.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no user config folder to keep trust in (no HOME)");
  }
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (auto s = EnsurePrivateDir(path.substr(0, slash)); !s) return s.error();
  }
  return UpdateFileLocked(path, kMaxTrustBytes,
                          [&](const std::optional<std::string>& text) -> Result<std::string> {
                            auto j = ParseStore(path, text);
                            if (!j) return j.error();
                            change((*j)["workspaces"]);
                            return DumpJson(*j, 2) + "\n";
                          });
}

}  // namespace

Result<PolicyFile> ReadPolicyFile(const std::string& path) {
  PolicyFile f;
  f.path = path;
  auto bytes = ReadFile(path, kMaxPolicyBytes);
  if (!bytes) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return f;
    return bytes.error();
  }
  f.exists = true;
  f.sha256 = ToHex(Sha256(*bytes));
  auto p =
      Policy::Parse(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  if (!p) return MakeError(ErrorCode::kInvalidArgument, path + ": " + p.error().message);
  f.policy = std::move(*p);
  return f;
}

PolicyReview ReviewPolicy(const Policy& p, const ManifestLookup& tools,
                          const std::map<std::string, Price>& user_prices) {
  PolicyReview out;
  for (const Mount& m : p.mounts) {
    out.widening.push_back("mounts " + Q(m.host_path) + " at " + Q(m.guest_path) +
                           (m.read_only ? ", read-only" : ", read-write (for tools that write)"));
  }
  for (const std::string& r : p.network) {
    out.widening.push_back("lets tools that use the network reach " + Q(r));
  }
  for (const std::string& n : p.private_networks) {
    out.widening.push_back("lets tools reach the private network " + Q(n));
  }
  for (const std::string& s : p.secrets) {
    out.widening.push_back("gives tools the stored secret " + Q(s));
  }
  ReviewTools(p, tools, &out);
  ReviewBudgets(p, &out);
  ReviewGovernor(p, &out);
  ReviewPrices(p, user_prices, &out);
  const Policy d;
  if (p.parallel_tools > d.parallel_tools) {
    out.widening.push_back("runs up to " + std::to_string(p.parallel_tools) +
                           " tool calls at once (default " + std::to_string(d.parallel_tools) +
                           ")");
  } else {
    out.narrowed.parallel_tools = p.parallel_tools;
  }
  out.narrowed.requests_per_minute = p.requests_per_minute;  // 0 (no rate) is the default
  out.narrowed.protect = p.protect;
  out.narrowed.untrusted = p.untrusted;  // more untrusted paths only raise the bar
  // After untrusted input: a decision below the default lowers the bar.
  const struct {
    Decision set, dflt;
    Decision* keep;
    const char* what;
  } after[] = {
      {p.after_untrusted.network, d.after_untrusted.network, &out.narrowed.after_untrusted.network,
       "use the network"},
      {p.after_untrusted.write, d.after_untrusted.write, &out.narrowed.after_untrusted.write,
       "write files in the workspace"},
      {p.after_untrusted.secrets, d.after_untrusted.secrets, &out.narrowed.after_untrusted.secrets,
       "use secrets"},
  };
  for (const auto& a : after) {
    if (Stricter(a.set, a.dflt) == a.set) {
      *a.keep = a.set;
    } else {
      out.widening.push_back(
          "after the session has read untrusted content (a web page, a "
          "downloaded file), lets tools that " +
          std::string(a.what) + " " +
          (a.set == Decision::kAllow ? "run without asking you" : "run when asked") +
          " (default: " + std::string(DecisionName(a.dflt)) + ")");
    }
  }
  out.narrowed.audit_sync = p.audit_sync;  // either is at least as strict as the default
  // Checkpoints: other bounds either fill the disk or leave changes beyond undo, so both
  // need the user's trust; a stricter decision once they are full only asks more.
  if (p.checkpoints.max_bytes != d.checkpoints.max_bytes ||
      p.checkpoints.max_files != d.checkpoints.max_files) {
    out.widening.push_back(
        "keeps checkpoints for undo up to " + std::to_string(p.checkpoints.max_bytes) +
        " bytes and " + std::to_string(p.checkpoints.max_files) +
        " pre-images a session (default " + std::to_string(d.checkpoints.max_bytes) + " bytes, " +
        std::to_string(d.checkpoints.max_files) + ")");
  }
  if (Stricter(p.checkpoints_when_full, d.checkpoints_when_full) == p.checkpoints_when_full) {
    out.narrowed.checkpoints_when_full = p.checkpoints_when_full;
  }
  return out;
}

std::string TrustStore::DefaultPath() {
  std::string dir = UserConfigDir();
  return dir.empty() ? "" : dir + "/trust.json";
}

Result<std::optional<TrustRecord>> TrustStore::Find(const std::string& path,
                                                    const std::string& workspace) {
  if (path.empty()) return std::optional<TrustRecord>();
  std::optional<std::string> text;
  auto bytes = ReadFile(path, kMaxTrustBytes);
  if (bytes) {
    text.emplace(bytes->begin(), bytes->end());
  } else if (access(path.c_str(), F_OK) == 0 || errno != ENOENT) {
    return bytes.error();
  }
  auto j = ParseStore(path, text);
  if (!j) return j.error();
  const json& all = (*j)["workspaces"];
  if (!all.contains(workspace)) return std::optional<TrustRecord>();
  const json& r = all[workspace];
  return std::optional<TrustRecord>(
      TrustRecord{workspace, r["policy_sha256"], r.value("trusted_at", "")});
}

Status TrustStore::Trust(const std::string& path, const std::string& workspace,
                         const std::string& policy_sha256) {
  return UpdateStore(path, [&](json& all) {
    all[workspace] = {{"policy_sha256", policy_sha256}, {"trusted_at", UtcNowIso()}};
  });
}

Result<bool> TrustStore::Revoke(const std::string& path, const std::string& workspace) {
  bool found = false;
  auto s = UpdateStore(path, [&](json& all) { found = all.erase(workspace) > 0; });
  if (!s) return s.error();
  return found;
}

Result<ResolvedPolicy> ResolvePolicy(const PolicySource& src) {
  ResolvedPolicy r;
  PolicyReview review = ReviewPolicy(src.file.policy, src.tools, src.user_prices);
  r.widening = std::move(review.widening);
  if (r.widening.empty() || src.user_named) {
    r.trust = r.widening.empty() ? PolicyTrust::kNothingToTrust : PolicyTrust::kUserNamed;
    r.effective = src.file.policy;
    return r;
  }
  auto record = TrustStore::Find(src.trust_file, src.workspace);
  if (!record) return record.error();
  if (*record && (*record)->policy_sha256 == src.file.sha256) {
    r.trust = PolicyTrust::kTrusted;
    r.effective = src.file.policy;
    return r;
  }
  r.trust = *record ? PolicyTrust::kChanged : PolicyTrust::kUntrusted;
  r.effective = std::move(review.narrowed);
  return r;
}

}  // namespace moat::agent
