// Per-run host state, reached by every host function through the opaque instance pointer
// the generated code passes to its imports. Internal to the execution tier.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "execution/exec.h"
#include "execution/guest_memory.h"
#include "execution/wasi_fs.h"
#include "wasm-rt.h"

namespace moat {

// The C entry points of a compiled module (moat's shim in the generated C).
struct ModuleAbi {
  unsigned long (*instance_size)() = nullptr;
  void (*instantiate)(void* inst, void* host) = nullptr;
  void (*free_instance)(void* inst) = nullptr;
  void (*start)(void* inst) = nullptr;
  wasm_rt_memory_t* (*memory)(void* inst) = nullptr;
  long long* (*fuel)(void* inst) = nullptr;
};

// Why a run stopped before the guest returned.
enum class StopReason : uint8_t {
  kNone,
  kTrap,
  kExit,
  kFuel,
  kTimeout,
  kCancelled,
  kOutputLimit,
  kMemoryLimit,
  kInternal,
};

struct HostContext;

namespace net {
class HttpBackend;
}

// A run's network state (moat.http_request), made on its first request.
struct HttpState {
  // A response the guest reads in chunks: 0 body, 1 headers ("name: value\r\n" lines),
  // 2 the final URL; each part with its read position.
  struct Response {
    std::string parts[3];
    size_t pos[3] = {0, 0, 0};
  };
  std::shared_ptr<net::HttpBackend> backend;
  std::map<uint32_t, Response> open;  // by handle
  uint32_t next_handle = 1;
  std::string last_error;  // of the last failed call, for moat.http_error
  uint64_t requests = 0;
  uint64_t bytes_sent = 0;  // URL, headers and body of every request made
  uint64_t bytes_received = 0;
};

// Where guest output goes.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // Writes all of data, or stops early when the run's deadline passes or it is
  // cancelled: a reader that never drains a pipe must not hold a run past its deadline.
  // Returns false when it stopped early.
  virtual bool Write(const uint8_t* data, size_t size, const HostContext& host) = 0;
};

struct HostContext {
  // Set by the runtime before instantiation.
  const ModuleAbi* abi = nullptr;
  void* instance = nullptr;

  // Configuration of this run.
  const ExecRequest* request = nullptr;
  uint64_t deadline_ns = 0;  // CLOCK_MONOTONIC
  uint32_t memory_limit_pages = 0;
  OutputSink* out = nullptr;
  OutputSink* err = nullptr;
  // Flat, NUL-terminated argv and environ blocks (built once per run).
  std::string args_block, env_block;
  std::vector<uint32_t> args_offsets, env_offsets;
  size_t stdin_pos = 0;
  // The guest's fd table: stdio, mounts and what it opened.
  std::unique_ptr<wasi::Fs> fs;
  // Deterministic mode: PRNG state and time slept so far on the virtual clock.
  uint64_t rng_state = 0;
  uint64_t virtual_sleep_ns = 0;
  // The engine's network backend (may be null: loaded on first use) and the run's state.
  std::shared_ptr<net::HttpBackend> http_backend;
  std::unique_ptr<HttpState> http;

  // The instance's linear memory reservation (a fault inside it is a guest trap) and the
  // module's own page maximum (to tell a policy refusal from the module's own limit).
  uint8_t* mem_base = nullptr;
  uint32_t module_max_pages = 65536;
  // Host memory the instance holds: linear memory and tables share the memory limit.
  uint64_t linear_bytes = 0;
  uint64_t table_bytes = 0;
  uint64_t table_elements = 0;

  // Accounting.
  uint64_t fuel_granted = 0;  // total fuel handed to the guest so far
  uint64_t output_used = 0;
  uint64_t peak_memory_bytes = 0;
  bool grow_refused = false;

  // How the run stopped.
  StopReason stop = StopReason::kNone;
  TrapKind trap = TrapKind::kNone;
  uint32_t exit_code = 0;
  std::string stop_message;
  std::vector<CapabilityEvent> events;

  GuestMemory memory() const { return GuestMemory(abi->memory(instance)); }
  int64_t* fuel_counter() const { return reinterpret_cast<int64_t*>(abi->fuel(instance)); }

  // Fuel consumed so far (exact: the same module and input give the same number).
  uint64_t FuelUsed() const;
  void Deny(std::string op, std::string subject, std::string reason) {
    if (events.size() < 256)
      events.push_back({std::move(op), std::move(subject), std::move(reason)});
  }
};

}  // namespace moat
