// The host functions a guest may import, with their exact wasm signatures. The pipeline
// refuses any other import, and any of these with another signature, because the host
// implements each as a C function of exactly this type.
#pragma once

#include <span>
#include <string_view>

namespace moat {

struct HostImport {
  std::string_view module;
  std::string_view name;
  // Signature as "params:results" with i = i32, I = i64, e.g. "iiii:i", ":" for () -> ().
  std::string_view signature;
};

inline constexpr std::string_view kWasiModule = "wasi_snapshot_preview1";
inline constexpr std::string_view kMoatModule = "moat";
// Added by the fuel pass; a guest may not import it itself.
inline constexpr std::string_view kFuelExhaustedName = "fuel_exhausted";
// Export name of the fuel global added by the fuel pass.
inline constexpr std::string_view kFuelExportName = "moat_fuel";

std::span<const HostImport> AllowedHostImports();
const HostImport* FindHostImport(std::string_view module, std::string_view name);

}  // namespace moat
