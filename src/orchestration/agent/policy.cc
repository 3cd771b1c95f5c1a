#include "orchestration/agent/policy.h"

#include <unistd.h>

#include <cerrno>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/units.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;
using tools::LimitValue;
using tools::StringList;

Error Bad(const std::string& m) { return MakeError(ErrorCode::kInvalidArgument, "policy: " + m); }

Result<Decision> ParseDecision(const json& v, const std::string& where) {
  if (v == "allow") return Decision::kAllow;
  if (v == "ask") return Decision::kAsk;
  if (v == "deny") return Decision::kDeny;
  return Bad(where + ": must be \"allow\", \"ask\" or \"deny\"");
}

Result<ToolRule> ParseToolRule(const json& v, const std::string& where) {
  ToolRule r;
  if (v.is_string()) {
    auto d = ParseDecision(v, where);
    if (!d) return d.error();
    r.decision = *d;
    return r;
  }
  if (!v.is_object()) return Bad(where + ": expected a decision or an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    std::string w = where + "/" + k;
    if (k == "decision") {
      auto d = ParseDecision(*it, w);
      if (!d) return d.error();
      r.decision = *d;
      continue;
    }
    const LimitField* f = FindLimitField(k, kLimitToolField);
    if (f == nullptr) return Bad(w + ": unknown field");
    auto n = tools::ReadToolLimit(*f, *it, "policy: " + w, &r.limits);
    if (!n) return n.error();
  }
  return r;
}

Status ParseBudgets(const json& v, Budgets* b) {
  if (!v.is_object()) return Bad("budgets: expected an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    std::string w = "policy: budgets/" + k;
    if (k == "cost_usd") {
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1e6) {
        return Bad("budgets/cost_usd: expected a number of dollars between 0 and 1e6");
      }
      b->cost_usd = it->get<double>();
      continue;
    }
    Result<uint64_t> n = uint64_t{0};
    if (k == "wall_time") {
      n = LimitValue(*it, w, ParseDurationUs);
      if (n) b->wall_time_us = *n;
    } else if (k == "steps" || k == "tool_calls" || k == "input_tokens" || k == "output_tokens" ||
               k == "fuel") {
      n = LimitValue(*it, w, ParseCount);
      if (n) {
        uint64_t* out = k == "steps"           ? &b->steps
                        : k == "tool_calls"    ? &b->tool_calls
                        : k == "input_tokens"  ? &b->input_tokens
                        : k == "output_tokens" ? &b->output_tokens
                                               : &b->fuel;
        *out = *n;
      }
    } else {
      return Bad("budgets/" + k + ": unknown field");
    }
    if (!n) return n.error();
    if (*n == 0) return Bad("budgets/" + k + ": must be above 0");
  }
  return OkStatus();
}

Status ParseGovernor(const json& v, GovernorOptions* g) {
  if (!v.is_object()) return Bad("governor: expected an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > 1000) {
      return Bad("governor/" + k + ": expected a count from 1 to 1000");
    }
    uint32_t n = it->get<uint32_t>();
    if (k == "repeat_warn") {
      g->repeat_warn = n;
    } else if (k == "repeat_stop") {
      g->repeat_stop = n;
    } else if (k == "no_progress_warn") {
      g->no_progress_warn = n;
    } else if (k == "no_progress_stop") {
      g->no_progress_stop = n;
    } else {
      return Bad("governor/" + k + ": unknown field");
    }
  }
  if (g->repeat_warn > g->repeat_stop || g->no_progress_warn > g->no_progress_stop) {
    return Bad("governor: a warning must come at or before its stop");
  }
  return OkStatus();
}

// HOST[::GUEST][:ro]; HOST must be an absolute directory.
Result<Mount> ParseMount(std::string spec, const std::string& where) {
  Mount m;
  if (spec.size() > 3 && spec.compare(spec.size() - 3, 3, ":ro") == 0) {
    m.read_only = true;
    spec.resize(spec.size() - 3);
  }
  size_t sep = spec.find("::");
  m.host_path = spec.substr(0, sep);
  m.guest_path = sep == std::string::npos ? m.host_path : spec.substr(sep + 2);
  if (m.host_path.empty() || m.host_path[0] != '/' || m.guest_path.empty() ||
      m.guest_path[0] != '/') {
    return Bad(where + ": expected /HOST[::/GUEST][:ro] with absolute paths");
  }
  return m;
}

Status ParseAfterUntrusted(const json& v, AfterUntrusted* a) {
  if (!v.is_object()) return Bad("after_untrusted: expected an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    Decision* out = k == "network"   ? &a->network
                    : k == "write"   ? &a->write
                    : k == "secrets" ? &a->secrets
                                     : nullptr;
    if (out == nullptr) {
      return Bad("after_untrusted/" + k + ": unknown field (network, write or secrets)");
    }
    auto d = ParseDecision(*it, "after_untrusted/" + k);
    if (!d) return d.error();
    *out = *d;
  }
  return OkStatus();
}

Status ParseCheckpoints(const json& v, Policy* p) {
  if (!v.is_object()) return Bad("checkpoints: expected an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    std::string w = "policy: checkpoints/" + k;
    if (k == "max_bytes") {
      auto n = LimitValue(*it, w, ParseSize);
      if (!n) return n.error();
      if (*n > undo::kMaxCheckpointBytes) {
        return Bad("checkpoints/max_bytes: at most " +
                   std::to_string(undo::kMaxCheckpointBytes >> 30) + " GiB");
      }
      p->checkpoints.max_bytes = *n;
    } else if (k == "max_files") {
      auto n = LimitValue(*it, w, ParseCount);
      if (!n) return n.error();
      if (*n > undo::kMaxCheckpointFiles) {
        return Bad("checkpoints/max_files: at most " + std::to_string(undo::kMaxCheckpointFiles));
      }
      p->checkpoints.max_files = *n;
    } else if (k == "when_full") {
      auto d = ParseDecision(*it, "checkpoints/when_full");
      if (!d) return d.error();
      p->checkpoints_when_full = *d;
    } else {
      return Bad("checkpoints/" + k + ": unknown field (max_bytes, max_files or when_full)");
    }
  }
  return OkStatus();
}

}  // namespace

Decision Stricter(Decision a, Decision b) {
  auto rank = [](Decision d) { return d == Decision::kDeny ? 2 : d == Decision::kAsk ? 1 : 0; };
  return rank(a) >= rank(b) ? a : b;
}

std::string_view DecisionName(Decision d) {
  switch (d) {
    case Decision::kAllow: return "allow";
    case Decision::kAsk: return "ask";
    case Decision::kDeny: return "deny";
  }
  return "?";
}

Result<Policy> Policy::Parse(std::string_view text) {
  auto parsed = ParseJson(text);
  if (!parsed) return Bad(parsed.error().message);
  json j = std::move(*parsed);
  if (!j.is_object()) return Bad("expected an object");
  Policy p;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "tools") {
      if (!it->is_object()) return Bad("tools: expected an object of tool names");
      for (auto t = it->begin(); t != it->end(); ++t) {
        auto r = ParseToolRule(*t, "tools/" + t.key());
        if (!r) return r.error();
        p.tools[t.key()] = *r;
      }
    } else if (k == "mounts") {
      auto list = StringList(*it, "policy: mounts");
      if (!list) return list.error();
      for (size_t i = 0; i < list->size(); ++i) {
        auto m = ParseMount((*list)[i], "mounts/" + std::to_string(i));
        if (!m) return m.error();
        p.mounts.push_back(*m);
      }
    } else if (k == "network" || k == "private_networks" || k == "secrets" || k == "protect") {
      auto list = StringList(*it, "policy: " + k);
      if (!list) return list.error();
      (k == "network"   ? p.network
       : k == "secrets" ? p.secrets
       : k == "protect" ? p.protect
                        : p.private_networks) = *list;
    } else if (k == "requests_per_minute") {
      if (!it->is_number_unsigned() || it->get<uint64_t>() > 1'000'000) {
        return Bad("requests_per_minute: expected a count up to 1000000");
      }
      p.requests_per_minute = it->get<uint32_t>();
    } else if (k == "parallel_tools") {
      if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > 16) {
        return Bad("parallel_tools: expected a count from 1 to 16");
      }
      p.parallel_tools = it->get<uint32_t>();
    } else if (k == "untrusted") {
      auto list = StringList(*it, "policy: untrusted");
      if (!list) return list.error();
      for (size_t i = 0; i < list->size(); ++i) {
        const std::string& pat = (*list)[i];
        if (pat.empty() || pat.size() > 4096 || pat.find('\0') != std::string::npos) {
          return Bad("untrusted/" + std::to_string(i) +
                     ": expected a path pattern of 1 to 4096 bytes without NUL");
        }
      }
      p.untrusted = *list;
    } else if (k == "after_untrusted") {
      if (auto s = ParseAfterUntrusted(*it, &p.after_untrusted); !s) return s.error();
    } else if (k == "budgets") {
      if (auto s = ParseBudgets(*it, &p.budgets); !s) return s.error();
    } else if (k == "governor") {
      if (auto s = ParseGovernor(*it, &p.governor); !s) return s.error();
    } else if (k == "prices") {
      if (!it->is_object()) return Bad("prices: expected an object of model names");
      for (auto m = it->begin(); m != it->end(); ++m) {
        const json& v = *m;
        if (!v.is_object() || !v.contains("input_per_mtok") || !v.contains("output_per_mtok") ||
            !v["input_per_mtok"].is_number() || !v["output_per_mtok"].is_number() ||
            v.size() != 2 || v["input_per_mtok"].get<double>() < 0 ||
            v["output_per_mtok"].get<double>() < 0) {
          return Bad("prices/" + m.key() +
                     ": expected {\"input_per_mtok\": N, \"output_per_mtok\": N}");
        }
        p.prices[m.key()] = {v["input_per_mtok"].get<double>(), v["output_per_mtok"].get<double>()};
      }
    } else if (k == "checkpoints") {
      if (auto s = ParseCheckpoints(*it, &p); !s) return s.error();
    } else if (k == "audit") {
      if (!it->is_object()) return Bad("audit: expected an object");
      for (auto a = it->begin(); a != it->end(); ++a) {
        if (a.key() != "sync") return Bad("audit/" + a.key() + ": unknown field");
        if (*a == "group") {
          p.audit_sync = AuditSync::kGroup;
        } else if (*a == "always") {
          p.audit_sync = AuditSync::kAlways;
        } else {
          return Bad("audit/sync: expected \"group\" or \"always\"");
        }
      }
    } else {
      return Bad("unknown field \"" + k + "\"");
    }
  }
  return p;
}

Result<Policy> Policy::Load(const std::string& path) {
  auto bytes = ReadFile(path, 1 << 20);
  if (!bytes) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return Policy{};
    return bytes.error();
  }
  auto p = Parse(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  if (!p) return MakeError(ErrorCode::kInvalidArgument, path + ": " + p.error().message);
  return p;
}

Decision Policy::DecisionFor(const tools::ToolManifest& m) const {
  if (auto it = tools.find(m.name); it != tools.end() && it->second.decision) {
    return *it->second.decision;
  }
  if (!m.capabilities.network.empty()) return Decision::kAsk;
  if (m.capabilities.filesystem == tools::FsAccess::kWrite) return Decision::kAsk;
  return Decision::kAllow;
}

Decision Policy::DecisionAfterUntrusted(const tools::ToolManifest& m, std::string* why) const {
  const struct {
    bool applies;
    Decision to;
    const char* what;
  } kinds[] = {
      {!m.capabilities.network.empty(), after_untrusted.network, "uses the network"},
      {m.capabilities.filesystem == tools::FsAccess::kWrite, after_untrusted.write,
       "may write the workspace"},
      {!m.capabilities.secrets.empty(), after_untrusted.secrets, "names secrets"},
  };
  Decision d = Decision::kAllow;
  for (const auto& k : kinds) {
    if (k.applies) d = Stricter(d, k.to);
  }
  if (why != nullptr) {
    why->clear();  // what gives the strictest decision
    for (const auto& k : kinds) {
      if (k.applies && d != Decision::kAllow && k.to == d) {
        *why += (why->empty() ? "" : ", ") + std::string(k.what);
      }
    }
  }
  return d;
}

std::optional<Price> Policy::KnownPrice(const std::string& model) const {
  if (auto it = prices.find(model); it != prices.end()) return it->second;
  // Public list prices (USD per million tokens) of a few common models.
  static const std::map<std::string, Price> kBuiltIn = {
      {"gpt-4o", {2.5, 10.0}},
      {"gpt-4o-mini", {0.15, 0.6}},
      {"gpt-4.1", {2.0, 8.0}},
      {"gpt-4.1-mini", {0.4, 1.6}},
      {"claude-sonnet-4-0", {3.0, 15.0}},
      {"claude-3-5-haiku-latest", {0.8, 4.0}},
      {"claude-opus-4-0", {15.0, 75.0}},
      {"scripted", {0.0, 0.0}},  // the offline provider
  };
  if (auto it = kBuiltIn.find(model); it != kBuiltIn.end()) return it->second;
  return std::nullopt;
}

Price Policy::PriceOf(const std::string& model) const {
  return KnownPrice(model).value_or(kUnknownModelPrice);
}

}  // namespace moat::agent
