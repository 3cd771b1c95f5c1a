#include "execution/limit_fields.h"

#include "base/units.h"

namespace moat {

namespace {

constexpr unsigned kRun = kLimitRunFlag;
constexpr unsigned kCall = kLimitCallFlag;
constexpr unsigned kTool = kLimitToolField;
constexpr unsigned kCompile = kLimitCompileFlag;
constexpr std::string_view kNoCallHelp = "";  // `moat call` shows `help`

constexpr LimitField kFields[] = {
    // A tool's own limits: manifests and policies set them, `moat call` overrides.
    {"fuel", "--fuel", LimitUnit::kCount, ParseCount,
     "Fuel budget, about one unit per wasm instruction (default 1e10)",
     "Fuel budget (default: the manifest's)", &Limits::fuel, nullptr, kRun | kCall | kTool},
    {"memory", "--memory", LimitUnit::kSize, ParseSize,
     "Linear memory cap, e.g. 64M (default 256M)", "Memory cap (default: the manifest's)",
     &Limits::memory_bytes, nullptr, kRun | kCall | kTool},
    {"timeout", "--timeout", LimitUnit::kDuration, ParseDurationUs,
     "Wall-clock limit, e.g. 5s, 250ms (default 30s); when given, compiling the module counts "
     "against it",
     "Wall-clock limit (default: the manifest's)", &Limits::timeout_us, nullptr,
     kRun | kCall | kTool},
    {"max_output", "--max-output", LimitUnit::kSize, ParseSize,
     "Cap on stdout+stderr bytes (default 16M)", "Output cap (default: the manifest's)",
     &Limits::max_output_bytes, nullptr, kRun | kCall | kTool},
    // Filesystem quotas of a run.
    {"max_write", "--max-write", LimitUnit::kSize, ParseSize,
     "Quota on bytes written to files in mounts (default 1G)",
     "Quota on bytes written (default 1G)", &Limits::max_write_bytes, nullptr, kRun | kCall},
    {"max_files", "--max-files", LimitUnit::kCount, ParseCount,
     "Quota on files, directories and links created (default 100000)", kNoCallHelp,
     &Limits::max_files_created, nullptr, kRun},
    {"max_fds", "--max-fds", LimitUnit::kCount, ParseCount,
     "Quota on fds open at once (default 512)", kNoCallHelp, &Limits::max_open_fds, nullptr, kRun},
    // Network.
    {"max_requests", "--max-requests", LimitUnit::kCount, ParseCount,
     "HTTP requests per run (default 100)", kNoCallHelp, &Limits::max_http_requests, nullptr,
     kRun | kCall},
    {"max_request", "--max-request", LimitUnit::kSize, ParseSize,
     "Bytes of one HTTP request (default 1M)", kNoCallHelp, &Limits::max_http_request_bytes,
     nullptr, kRun | kCall},
    {"max_request_total", "--max-request-total", LimitUnit::kSize, ParseSize,
     "Bytes of all HTTP requests of a run (default 16M)", kNoCallHelp, &Limits::max_http_sent_bytes,
     nullptr, kRun | kCall},
    {"max_response", "--max-response", LimitUnit::kSize, ParseSize,
     "Bytes of one HTTP response (default 8M)", kNoCallHelp, &Limits::max_http_response_bytes,
     nullptr, kRun | kCall},
    {"max_response_total", "--max-response-total", LimitUnit::kSize, ParseSize,
     "Bytes of all HTTP responses of a run (default 64M)", kNoCallHelp,
     &Limits::max_http_total_bytes, nullptr, kRun | kCall},
    {"http_timeout", "--http-timeout", LimitUnit::kDuration, ParseDurationUs,
     "Time one HTTP request may take (default 30s)", kNoCallHelp, &Limits::http_timeout_us, nullptr,
     kRun | kCall},
    // The compile step (unset ones come from the environment, then the defaults).
    {"compile_timeout", "--compile-timeout", LimitUnit::kDuration, ParseDurationUs,
     "Wall and CPU time limit of compiling a module, e.g. 10m (default 5m, or "
     "$MOAT_COMPILE_TIMEOUT)",
     kNoCallHelp, nullptr, &CompileLimits::timeout_us, kRun | kCompile},
    {"compile_memory", "--compile-memory", LimitUnit::kSize, ParseSize,
     "Address space of each compiler process, e.g. 8G (default 4G, or $MOAT_COMPILE_MEMORY)",
     kNoCallHelp, nullptr, &CompileLimits::memory_bytes, kRun | kCompile},
};

constexpr auto ParserOf(LimitUnit u) {
  switch (u) {
    case LimitUnit::kCount: return ParseCount;
    case LimitUnit::kSize: return ParseSize;
    case LimitUnit::kDuration: return ParseDurationUs;
  }
  return ParseCount;
}

// Each entry: its parser is its unit's, its flag is its name spelled with dashes, and its
// value goes to exactly one place.
constexpr bool WellFormed(const LimitField& f) {
  if (f.parse != ParserOf(f.unit)) return false;
  if ((f.run == nullptr) == (f.compile == nullptr)) return false;
  if (f.flag.size() != f.name.size() + 2 || f.flag.substr(0, 2) != "--") return false;
  for (size_t i = 0; i < f.name.size(); ++i) {
    char want = f.name[i] == '_' ? '-' : f.name[i];
    if (f.flag[i + 2] != want) return false;
  }
  // Per-tool limits are per-call limits; compile limits are never a tool's.
  if ((f.uses & kTool) && f.run == nullptr) return false;
  return f.uses != 0 && !f.help.empty();
}

constexpr bool AllWellFormed() {
  for (const LimitField& f : kFields) {
    if (!WellFormed(f)) return false;
  }
  for (size_t i = 0; i < std::size(kFields); ++i) {
    for (size_t j = i + 1; j < std::size(kFields); ++j) {
      if (kFields[i].name == kFields[j].name) return false;
    }
  }
  return true;
}
static_assert(AllWellFormed(), "a limit field is malformed (see WellFormed)");

}  // namespace

std::span<const LimitField> LimitFields() { return kFields; }

const LimitField* FindLimitField(std::string_view name, unsigned uses) {
  for (const LimitField& f : kFields) {
    if (f.name == name && (f.uses & uses) == uses) return &f;
  }
  return nullptr;
}

Result<uint64_t> ParseLimit(const LimitField& f, std::string_view text, const std::string& where) {
  auto v = f.parse(text);
  if (!v) return MakeError(ErrorCode::kInvalidArgument, where + ": " + v.error().message);
  return *v;
}

}  // namespace moat
