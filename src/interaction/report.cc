#include "interaction/report.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/terminal_text.h"
#include "execution/exec_json.h"

namespace moat {

std::string ReportJson(const ExecResult& r) {
  nlohmann::json j = ExecResultToJson(r);
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
