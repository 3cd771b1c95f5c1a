#include "interaction/report.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/terminal_text.h"

namespace moat {

std::string ReportJson(const ExecResult& r) {
  nlohmann::json j;
  j["status"] = std::string(RunStatusName(r.status));
  j["exit_code"] = r.exited ? nlohmann::json(r.exit_code) : nlohmann::json(nullptr);
  j["fuel_used"] = r.fuel_used;
  j["wall_us"] = r.wall_us;
  j["peak_memory_bytes"] = r.peak_memory_bytes;
  if (r.trap != TrapKind::kNone) {
    j["trap"] = {{"kind", std::string(TrapKindName(r.trap))},
                 {"message", std::string(TrapKindMessage(r.trap))}};
  } else {
    j["trap"] = nullptr;
  }
  j["message"] = r.message;
  nlohmann::json denied = nlohmann::json::array();
  for (const CapabilityEvent& e : r.denied) {
    denied.push_back({{"operation", e.operation}, {"subject", e.subject}, {"reason", e.reason}});
  }
  j["denied"] = denied;
  j["fs_bytes_written"] = r.fs_bytes_written;
  j["fs_files_created"] = r.fs_files_created;
  j["http_requests"] = r.http_requests;
  j["http_bytes_sent"] = r.http_bytes_sent;
  j["http_bytes_received"] = r.http_bytes_received;
  j["module_sha256"] = r.module_sha256;
  j["compile_ms"] = r.compile_ms;
  j["cache_hit"] = r.cache_hit;
  // Guest bytes may be any bytes: invalid UTF-8 is replaced rather than fatal, and what a
  // terminal could act on is written as a JSON escape (the report goes to stderr).
  return TerminalJson(j);
}

std::string ReportText(const ExecResult& r) {
  char buf[256];
  snprintf(buf, sizeof buf,
           "status=%s exit=%d fuel=%llu wall=%.3fms peak_memory=%lluKiB compile=%.0fms",
           std::string(RunStatusName(r.status)).c_str(), r.exit_code,
           static_cast<unsigned long long>(r.fuel_used), r.wall_us / 1000.0,
           static_cast<unsigned long long>(r.peak_memory_bytes >> 10), r.compile_ms);
  std::string s = std::string("moat: ") + buf;
  if (r.trap != TrapKind::kNone) s += " trap=" + std::string(TrapKindName(r.trap));
  if (!r.message.empty()) s += " (" + TerminalSafe(r.message) + ")";
  for (const CapabilityEvent& e : r.denied) {
    s += "\nmoat: denied " + TerminalSafe(e.operation) + " " + TerminalSafe(e.subject) + ": " +
         TerminalSafe(e.reason);
  }
  return s;
}

}  // namespace moat
