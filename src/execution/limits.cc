#include "execution/limits.h"

namespace moat {

namespace {
Status Check(const char* name, uint64_t v, uint64_t lo, uint64_t hi) {
  if (v < lo || v > hi) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(name) + " must be between " + std::to_string(lo) + " and " +
                         std::to_string(hi) + ", got " + std::to_string(v));
  }
  return OkStatus();
}
}  // namespace

Status Limits::Validate() const {
  if (auto s = Check("fuel", fuel, 1, kMaxFuel); !s) return s;
  if (auto s = Check("memory", memory_bytes, 64 * 1024, kMaxMemory); !s) return s;
  if (auto s = Check("timeout (us)", timeout_us, 1000, kMaxTimeoutUs); !s) return s;
  if (auto s = Check("max-output", max_output_bytes, 0, kMaxOutput); !s) return s;
  if (auto s = Check("max-write", max_write_bytes, 0, kMaxWrite); !s) return s;
  if (auto s = Check("max-files", max_files_created, 0, kMaxFilesCreated); !s) return s;
  if (auto s = Check("max-fds", max_open_fds, 1, kMaxOpenFds); !s) return s;
  if (auto s = Check("max-http-requests", max_http_requests, 0, kMaxHttpRequests); !s) return s;
  if (auto s = Check("max-http-request", max_http_request_bytes, 0, kMaxHttpRequestBytes); !s)
    return s;
  if (auto s = Check("max-http-sent", max_http_sent_bytes, 0, kMaxHttpSentBytes); !s) return s;
  if (auto s = Check("max-http-response", max_http_response_bytes, 0, kMaxHttpResponseBytes); !s)
    return s;
  if (auto s = Check("max-http-total", max_http_total_bytes, 0, kMaxHttpTotalBytes); !s) return s;
  if (auto s = Check("http-timeout (us)", http_timeout_us, 1000, kMaxTimeoutUs); !s) return s;
  return OkStatus();
}

Status CompileLimits::Validate() const {
  if (auto s = Check("compile-timeout (us)", timeout_us, kMinTimeoutUs, kMaxTimeoutUs); !s)
    return s;
  if (auto s = Check("compile-memory", memory_bytes, kMinMemory, kMaxMemory); !s) return s;
  return OkStatus();
}

}  // namespace moat
