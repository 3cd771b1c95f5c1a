#include "execution/exec_json.h"

namespace moat {

nlohmann::json CapabilityEventsToJson(const std::vector<CapabilityEvent>& events) {
  nlohmann::json out = nlohmann::json::array();
  for (const CapabilityEvent& e : events) {
    out.push_back({{"operation", e.operation}, {"subject", e.subject}, {"reason", e.reason}});
  }
  return out;
}

nlohmann::json ExecResultToJson(const ExecResult& r) {
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
  j["denied"] = CapabilityEventsToJson(r.denied);
  j["fs_bytes_written"] = r.fs_bytes_written;
  j["fs_files_created"] = r.fs_files_created;
  j["http_requests"] = r.http_requests;
  j["http_bytes_sent"] = r.http_bytes_sent;
  j["http_bytes_received"] = r.http_bytes_received;
  j["module_sha256"] = r.module_sha256;
  j["compile_ms"] = r.compile_ms;
  j["cache_hit"] = r.cache_hit;
  return j;
}

}  // namespace moat
