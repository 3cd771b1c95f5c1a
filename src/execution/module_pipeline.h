// Module pipeline, front half: wasm bytes -> validated, fuel-metered module -> C source.
// Nothing here runs guest code or a compiler.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"

namespace moat {

class CompileBudget;

struct PipelineOptions {
  // Insert fuel metering. Off only for benchmarks that measure the metering overhead.
  bool meter_fuel = true;
};

// What the host needs to know about a module before instantiating it.
struct ModuleShape {
  bool has_memory = false;
  uint32_t initial_pages = 0;
  uint32_t max_pages = 65536;  // the module's own maximum (65536 = none declared)
};

struct TranslatedModule {
  std::string c_source;  // generated C plus moat's shim, includes "moat_module.h"
  std::string h_source;  // the generated header, to be written as moat_module.h
  ModuleShape shape;
};

// Version of everything this file does to a module; part of every cache key.
inline constexpr std::string_view kPipelineVersion = "moat-pipeline-11";

// Parses and validates the module, checks imports, features and the compile-cost caps
// (CompileLimits), and returns its shape. Errors are one line naming the problem
// (ErrorCode::kInvalidModule); a module past a cap is refused before anything is built
// from it.
Result<ModuleShape> ValidateWasm(std::span<const uint8_t> wasm);

// ValidateWasm, then the fuel pass, then wasm2c's C writer.
Result<TranslatedModule> TranslateWasm(std::span<const uint8_t> wasm,
                                       const PipelineOptions& options);

// TranslateWasm in a separate process, the `moat-translator` helper (found beside the
// running binary, via $MOAT_TRANSLATOR, or in the build tree), with the address space and
// CPU time of `budget`'s limits, stopped at its deadline or cancel (compile_step.h).
// libwabt (built with assertions) aborts on some malformed modules; that ends only the
// helper, and the module is refused (kInvalidModule).
Result<TranslatedModule> TranslateWasmIsolated(std::span<const uint8_t> wasm,
                                               const PipelineOptions& options,
                                               const CompileBudget& budget);

// The helper's whole job: wasm on stdin, a reply for TranslateWasmIsolated on stdout.
int TranslatorMain();

}  // namespace moat
