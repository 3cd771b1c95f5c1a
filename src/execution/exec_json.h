// The JSON form of a run's result (what `moat run --report json` prints, and what an API
// returns for a run), beside its type.
#pragma once

#include <nlohmann/json.hpp>

#include "execution/exec.h"

namespace moat {

// {"status","exit_code" (null unless the guest exited),"fuel_used","wall_us",
//  "peak_memory_bytes","trap" ({"kind","message"} or null),"message","denied":[...],
//  "fs_bytes_written","fs_files_created","http_requests","http_bytes_sent",
//  "http_bytes_received","module_sha256","compile_ms","cache_hit"}
nlohmann::json ExecResultToJson(const ExecResult& r);

// What the sandbox refused: [{"operation","subject","reason"}, ...].
nlohmann::json CapabilityEventsToJson(const std::vector<CapabilityEvent>& events);

}  // namespace moat
