// Every resource limit of a run, in one place: each has a default and an upper bound.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "base/result.h"

namespace moat {

struct Limits {
  // Fuel units (about one per wasm instruction; see docs/architecture.md).
  uint64_t fuel = kDefaultFuel;
  // Linear memory cap in bytes (rounded down to 64 KiB pages).
  uint64_t memory_bytes = kDefaultMemory;
  // Wall-clock budget in microseconds.
  uint64_t timeout_us = kDefaultTimeoutUs;
  // Cap on stdout + stderr bytes together.
  uint64_t max_output_bytes = kDefaultMaxOutput;
  // Filesystem quotas of a run (inside mounts): bytes written to files (including growth
  // by set_size and allocate), files, directories and links created, and fds open at once.
  uint64_t max_write_bytes = kDefaultMaxWrite;
  uint64_t max_files_created = kDefaultMaxFilesCreated;
  uint64_t max_open_fds = kDefaultMaxOpenFds;
  // Network (moat.http_request): requests per run, bytes of one request (URL, headers and
  // body) and of all requests of the run, of one response body and of all response bodies
  // of the run, and the time one request may take (never past the run's deadline). The rate of
  // requests per tool across runs is the caller's (see NetworkGrant::rate).
  uint64_t max_http_requests = kDefaultMaxHttpRequests;
  uint64_t max_http_request_bytes = kDefaultMaxHttpRequestBytes;
  uint64_t max_http_sent_bytes = kDefaultMaxHttpSentBytes;
  uint64_t max_http_response_bytes = kDefaultMaxHttpResponseBytes;
  uint64_t max_http_total_bytes = kDefaultMaxHttpTotalBytes;
  uint64_t http_timeout_us = kDefaultHttpTimeoutUs;

  static constexpr uint64_t kDefaultFuel = 10'000'000'000ull;     // 1e10
  static constexpr uint64_t kMaxFuel = 1'000'000'000'000'000ull;  // 1e15
  static constexpr uint64_t kDefaultMemory = 256ull << 20;        // 256 MiB
  // 65535 pages: 4 GiB would not fit wasm-rt's 32-bit memory size field.
  static constexpr uint64_t kMaxMemory = 65535ull << 16;               // 4 GiB - 64 KiB
  static constexpr uint64_t kDefaultTimeoutUs = 30'000'000ull;         // 30 s
  static constexpr uint64_t kMaxTimeoutUs = 24ull * 3600 * 1'000'000;  // 24 h
  static constexpr uint64_t kDefaultMaxOutput = 16ull << 20;           // 16 MiB
  static constexpr uint64_t kMaxOutput = 1ull << 30;                   // 1 GiB
  static constexpr uint64_t kDefaultMaxWrite = 1ull << 30;             // 1 GiB
  static constexpr uint64_t kMaxWrite = 1ull << 40;                    // 1 TiB
  static constexpr uint64_t kDefaultMaxFilesCreated = 100'000;
  static constexpr uint64_t kMaxFilesCreated = 10'000'000;
  static constexpr uint64_t kDefaultMaxOpenFds = 512;
  static constexpr uint64_t kMaxOpenFds = 16'384;
  static constexpr uint64_t kDefaultMaxHttpRequests = 100;
  static constexpr uint64_t kMaxHttpRequests = 100'000;
  static constexpr uint64_t kDefaultMaxHttpRequestBytes = 1ull << 20;   // 1 MiB
  static constexpr uint64_t kMaxHttpRequestBytes = 256ull << 20;        // 256 MiB
  static constexpr uint64_t kDefaultMaxHttpSentBytes = 16ull << 20;     // 16 MiB
  static constexpr uint64_t kMaxHttpSentBytes = 16ull << 30;            // 16 GiB
  static constexpr uint64_t kDefaultMaxHttpResponseBytes = 8ull << 20;  // 8 MiB
  static constexpr uint64_t kMaxHttpResponseBytes = 1ull << 30;         // 1 GiB
  static constexpr uint64_t kDefaultMaxHttpTotalBytes = 64ull << 20;    // 64 MiB
  static constexpr uint64_t kMaxHttpTotalBytes = 16ull << 30;           // 16 GiB
  static constexpr uint64_t kDefaultHttpTimeoutUs = 30'000'000ull;      // 30 s
  // Responses a guest holds open at once, and the most one read hands it.
  static constexpr uint32_t kMaxOpenHttpResponses = 16;
  static constexpr uint32_t kMaxHttpChunkBytes = 1u << 20;

  // Fixed engine limits (not configurable per run).
  static constexpr uint64_t kMaxModuleBytes = 256ull << 20;  // .wasm file size
  static constexpr uint32_t kMaxTableElements = 10'000'000;  // all tables of an instance
  static constexpr uint64_t kNativeStackBytes = 8ull << 20;  // stack wasm runs on
  static constexpr uint64_t kMaxArgsEnvBytes = 1ull << 20;   // argv + environ, total
  // Host memory a run's directory listings (fd_readdir snapshots) hold at once, all fds
  // together; past it fd_readdir answers ENOMEM until a listing is read out or closed.
  static constexpr uint64_t kMaxListingBytes = 32ull << 20;  // 32 MiB
  // Entries a directory rename looks at to check that it moves no protected path and
  // changes no path's hiddenness; a larger directory cannot be renamed (EPERM).
  static constexpr uint64_t kMaxRenameScanEntries = 100'000;

  uint32_t memory_pages() const {
    return static_cast<uint32_t>(std::min<uint64_t>(memory_bytes, kMaxMemory) >> 16);
  }

  // Checks every field against its bound; the message names the field.
  Status Validate() const;
};

// What making native code of one module may cost. The C compiler's time and memory grow
// faster than linearly with one function's locals and size (one function of 20,000 locals
// and 400 KB: 49 s and 5.4 GB of `cc`), so the pipeline refuses a module past a shape cap
// (invalid_module naming it) before anything is translated or compiled, and the compile
// step (translator, then `cc` and every process it starts) runs under resource limits.
struct CompileLimits {
  // Wall time of the whole compile step (waiting for another process compiling the same
  // module, translating, compiling); also the CPU time of each of its processes.
  uint64_t timeout_us = kDefaultTimeoutUs;
  // Address space of each process of the compile step.
  uint64_t memory_bytes = kDefaultMemory;

  // Measured (2 cores, gcc 12): sqlshell.wasm (SQLite, 1.1 MB) 42 s at 0.95 GB, the js
  // tool (QuickJS) 33 s at 0.85 GB; SQLite built with -O0 (2.3 MB) 39 s at 1.6 GB.
  static constexpr uint64_t kDefaultTimeoutUs = 300'000'000ull;        // 5 min
  static constexpr uint64_t kMinTimeoutUs = 1'000'000ull;              // 1 s
  static constexpr uint64_t kMaxTimeoutUs = 24ull * 3600 * 1'000'000;  // 24 h
  static constexpr uint64_t kDefaultMemory = 4ull << 30;               // 4 GiB
  static constexpr uint64_t kMinMemory = 1ull << 30;                   // 1 GiB
  static constexpr uint64_t kMaxMemory = 1ull << 40;                   // 1 TiB
  // Largest file a process of the compile step may write (a disk-filling backstop).
  static constexpr uint64_t kMaxFileBytes = 4ull << 30;  // 4 GiB

  // Shape caps (fixed), with what the largest real guests need: sqlshell.wasm and the
  // sql tool (SQLite), the js tool (QuickJS), SQLite built with -O0, Rust test programs.
  static constexpr uint64_t kMaxFunctions = 200'000;      // defined; SQLite -O0: 2,404
  static constexpr uint64_t kMaxImports = 1'000;          // WASI test programs: 32
  static constexpr uint64_t kMaxExports = 100'000;        // Rust: 5
  static constexpr uint64_t kMaxTypes = 100'000;          // QuickJS: 106
  static constexpr uint64_t kMaxGlobals = 100'000;        // Rust: 3
  static constexpr uint64_t kMaxParams = 1'000;           // parameters, and results, of a type
  static constexpr uint64_t kMaxFunctionLocals = 16'384;  // SQLite -O0: 9,844
  static constexpr uint64_t kMaxFunctionBodyBytes = 1ull << 20;  // Rust: 108 KB
  static constexpr uint64_t kMaxFunctionCost = 1ull << 32;       // locals x body bytes
  static constexpr uint64_t kMaxNestingDepth = 1'024;            // blocks; SQLite -O0: 315
  static constexpr uint64_t kMaxBrTableTargets = 65'536;         // SQLite: 348
  // Data segments become C initializers: 32 MiB took 118 s at 4.5 GB of `cc`.
  static constexpr uint64_t kMaxDataBytes = 16ull << 20;      // all segments; QuickJS: 99 KB
  static constexpr uint64_t kMaxElemEntries = 1'000'000;      // all segments; QuickJS: 411
  static constexpr uint64_t kMaxCSourceBytes = 256ull << 20;  // generated C; SQLite: 21 MB

  // Checks every field against its bound; the message names the flag.
  Status Validate() const;
};

}  // namespace moat
