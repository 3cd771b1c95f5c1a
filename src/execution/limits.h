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

  uint32_t memory_pages() const {
    return static_cast<uint32_t>(std::min<uint64_t>(memory_bytes, kMaxMemory) >> 16);
  }

  // Checks every field against its bound; the message names the field.
  Status Validate() const;
};

}  // namespace moat
