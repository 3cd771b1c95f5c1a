// A tool's self-description (docs/tools.md): what it is for, the JSON Schema of its
// arguments, the capabilities it needs and its default limits. It travels inside the
// module as the custom section `moat.manifest`, or beside a plain module as
// NAME.manifest.json.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "execution/limit_fields.h"
#include "orchestration/tools/json_schema.h"

namespace moat::tools {

inline constexpr std::string_view kManifestSection = "moat.manifest";
inline constexpr size_t kMaxManifestBytes = 256 * 1024;

enum class FsAccess { kNone, kRead, kWrite };
std::string_view FsAccessName(FsAccess a);

struct ToolCapabilities {
  FsAccess filesystem = FsAccess::kNone;
  std::vector<std::string> network;  // allowlist entries
  std::vector<std::string> secrets;  // names usable as {{secret:NAME}}
  std::vector<std::string> env;      // variable names the tool may receive
};

// Defaults for one call; unset means the engine's default.
struct ToolLimits {
  std::optional<uint64_t> fuel, memory_bytes, timeout_us, max_output_bytes;
};

struct ToolManifest {
  std::string name, version, description;
  nlohmann::json arguments;  // the JSON Schema, as written
  JsonSchema schema;         // compiled from `arguments`
  ToolCapabilities capabilities;
  ToolLimits limits;
};

// Shared by the JSON files of this tier (manifests, policies): a list of non-empty
// strings, and a limit as a number or text with a unit ("64M", "10s", "2e9"). Errors are
// kInvalidArgument naming `where`.
Result<std::vector<std::string>> StringList(const nlohmann::json& j, const std::string& where);
Result<uint64_t> LimitValue(const nlohmann::json& v, const std::string& where,
                            Result<uint64_t> (*parse)(std::string_view));
// Where a per-tool limit (a LimitField with kLimitToolField) is kept in ToolLimits; nullptr
// for any other field.
std::optional<uint64_t>* ToolLimitSlot(ToolLimits* l, const LimitField& f);
const std::optional<uint64_t>* ToolLimitSlot(const ToolLimits* l, const LimitField& f);
// One per-tool limit (a manifest's limits/KEY, a policy's tools/NAME/KEY) into its slot of
// `out`: a number in the field's own unit (fuel, bytes, microseconds) or text with a unit,
// as LimitValue reads it. Errors name `where`.
Result<uint64_t> ReadToolLimit(const LimitField& f, const nlohmann::json& v,
                               const std::string& where, ToolLimits* out);

// Parses and checks a manifest; every problem is kInvalidArgument naming the field.
Result<ToolManifest> ParseManifest(std::string_view json_text);
// The manifest as JSON, in the documented shape (limits as numbers: bytes, µs, fuel).
nlohmann::json ManifestJson(const ToolManifest& m);

// The payload of the first custom section called `name`, std::nullopt if there is none.
// Malformed module framing (bad magic, truncated or overlong sizes) is an error.
Result<std::optional<std::string>> FindCustomSection(std::span<const uint8_t> wasm,
                                                     std::string_view name);
// `wasm` with every custom section called `name` removed and one holding `payload`
// appended at the end.
Result<std::vector<uint8_t>> SetCustomSection(std::span<const uint8_t> wasm, std::string_view name,
                                              std::string_view payload);

}  // namespace moat::tools
