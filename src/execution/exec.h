// The execution contract between orchestration (tier 2) and execution (tier 3).
// Plain data: it can be serialised to cross a process or network boundary unchanged.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "execution/limits.h"
#include "execution/net/secret_store.h"
#include "execution/outcome.h"
#include "execution/preimage.h"

namespace moat {

struct Mount {
  std::string host_path;
  std::string guest_path;
  bool read_only = false;
};

// Cancels a run from any thread; checked at every fuel slice and inside host calls.
class CancelToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  const std::atomic<bool>* flag() const { return &cancelled_; }

 private:
  std::atomic<bool> cancelled_{false};
};

// Paths inside mounts that a guest can neither see nor create (shell-style patterns; a
// pattern without '/' matches any one path component, one with '/' matches consecutive
// components, e.g. ".git/config").
std::vector<std::string> DefaultHiddenPatterns();

// Paths inside writable mounts that a guest may read but never change: no write, create,
// truncate, delete, link or rename of a protected path, into it, or of a directory that
// contains one (same pattern syntax as hidden paths). Default: ".git", at any depth, so a
// tool cannot plant hooks or config that git later runs on the host.
std::vector<std::string> DefaultProtectedPatterns();

// Requests per minute for one tool across all its runs: a token bucket holding up to
// `per_minute` tokens, refilled continuously. Thread-safe; shared by the runs it governs.
class RateLimiter {
 public:
  explicit RateLimiter(uint32_t per_minute) : per_minute_(per_minute), tokens_(per_minute) {}
  // Takes one token at `now_ns` (CLOCK_MONOTONIC); false when none is left.
  bool TryTake(uint64_t now_ns);
  uint32_t per_minute() const { return per_minute_; }

 private:
  std::mutex mu_;
  uint32_t per_minute_;
  double tokens_;
  uint64_t last_ns_ = 0;
};

// What a run may reach on the network through moat.http_request (deny by default).
struct NetworkGrant {
  // Egress rules, each "scheme://host[:port][/path-prefix]", optionally preceded by a
  // comma-separated method list and a space ("GET,HEAD https://api.example.com/v1").
  // A request is allowed only when a rule of every set allows it: one set is what the
  // tool's manifest asks for, another what the caller's policy grants. No sets, or an
  // empty set, deny every request.
  std::vector<std::vector<std::string>> rule_sets;
  // Networks (CIDR) that are not public but may be reached anyway, e.g. "127.0.0.1/32".
  std::vector<std::string> networks;
  // Secrets the run may use as {{secret:NAME}}. Their values stay in the host; every
  // response, the run's output and its report are scanned for them and redacted.
  std::vector<net::Secret> secrets;
  // Shared by every run of one tool; null: no rate limit.
  std::shared_ptr<RateLimiter> rate;
  std::string ca_file;  // an extra CA bundle for https (tests); "" = the system's

  bool any() const { return !rule_sets.empty(); }
};

// How many untrusted paths a run's result lists (ExecResult::untrusted_reads).
inline constexpr size_t kMaxUntrustedReadsListed = 16;

struct ExecRequest {
  std::string module_sha256;                             // which compiled module to run
  std::vector<std::string> argv;                         // argv[0] is the program name
  std::vector<std::pair<std::string, std::string>> env;  // granted variables only
  std::vector<Mount> mounts;
  std::vector<std::string> hidden = DefaultHiddenPatterns();
  std::vector<std::string> protect = DefaultProtectedPatterns();
  // Paths inside mounts whose content comes from outside the workspace and the user (same
  // pattern syntax as hidden paths): a run may read them, and the result names those it
  // opened for reading (ExecResult::untrusted_reads). Nothing is refused for it.
  std::vector<std::string> untrusted;
  // Deterministic mode: clocks start at a fixed origin and advance with fuel, random_get
  // is a PRNG seeded with `seed`, so the same module and input give the same run.
  bool deterministic = false;
  uint64_t seed = 0;
  Limits limits;
  // Stdio: either the process's own fds (CLI), or bytes in and captured bytes out.
  bool inherit_stdio = false;
  std::string stdin_bytes;
  std::shared_ptr<CancelToken> cancel;
  NetworkGrant network;
  // Told before each change to a path in a mount (checkpoints for undo); null: nobody.
  std::shared_ptr<PreImageSink> preimages;
};

// Something the sandbox refused or cut, for the run report.
struct CapabilityEvent {
  std::string operation;  // e.g. "memory.grow", "fd_write", "path_open"
  std::string subject;    // what the guest asked for, as it asked
  std::string reason;
};

struct ExecResult {
  RunStatus status = RunStatus::kInternal;
  int exit_code = 0;         // the guest's proc_exit code (0 when _start returned)
  bool exited = false;       // true when the guest returned or called proc_exit
  std::string stdout_bytes;  // captured output (empty when stdio is inherited)
  std::string stderr_bytes;
  TrapKind trap = TrapKind::kNone;
  std::string message;  // trap message, or why the run was refused or stopped
  uint64_t fuel_used = 0;
  uint64_t peak_memory_bytes = 0;
  uint64_t wall_us = 0;
  std::vector<CapabilityEvent> denied;
  uint64_t fs_bytes_written = 0;  // to files in mounts
  uint64_t fs_files_created = 0;  // files, directories and links
  uint64_t http_requests = 0;     // moat.http_request calls that reached the network
  uint64_t http_bytes_sent = 0;
  uint64_t http_bytes_received = 0;
  // Files matching ExecRequest::untrusted the run opened for reading, as guest paths: the
  // first kMaxUntrustedReadsListed, in the order opened, each once; the count is of every
  // such open.
  std::vector<std::string> untrusted_reads;
  uint64_t untrusted_read_count = 0;
  std::string module_sha256;
  double compile_ms = 0;  // time spent compiling (0 on a cache hit)
  bool cache_hit = false;
};

}  // namespace moat
