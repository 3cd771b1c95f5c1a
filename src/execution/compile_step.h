// The compile step's processes. The translator (untrusted wasm bytes) and the C compiler
// (`cc`, which starts cc1, as and ld) each run under a small supervisor, the helper
// `moat-translator --supervise`, in a process group of their own: with address-space, CPU
// and file-size limits, killed as a whole group at the step's deadline, when the run is
// cancelled, or when moat itself dies. No process of the step outlives it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "execution/limits.h"

namespace moat {

// When one compile step must stop, and what to say when it does.
class CompileBudget {
 public:
  // A step starting now under `limits`; `run_timeout_us` (0: none) is the timeout of the
  // run waiting for it, whichever deadline comes first stops the step. `cancel` may be null.
  static CompileBudget Start(const CompileLimits& limits, uint64_t run_timeout_us,
                             const std::atomic<bool>* cancel);

  const CompileLimits& limits() const { return limits_; }
  uint64_t deadline_ns() const { return deadline_ns_; }
  bool cancelled() const { return cancel_ && cancel_->load(std::memory_order_relaxed); }
  // Cancelled or past the deadline.
  bool Stopped() const;
  // Why the step was stopped: the run's timeout or a cancel (ErrorCode::kLimit, for the
  // run to report as timeout or cancelled), or the compile time limit (kInvalidModule).
  Error StopError() const;
  // A process of the step ran into a limit (kInvalidModule naming the limit).
  Error MemoryError() const;
  Error CpuError() const;
  Error FileSizeError() const;
  // Resource limits for each process of the step (RLIMIT_CPU follows the compile time
  // limit: a process cannot use more CPU than wall time unless it is multithreaded).
  uint64_t cpu_seconds() const { return (limits_.timeout_us + 999'999) / 1'000'000; }

 private:
  CompileLimits limits_;
  uint64_t deadline_ns_ = 0;
  bool run_deadline_ = false;  // the run's timeout comes before the compile limit
  uint64_t run_timeout_us_ = 0;
  const std::atomic<bool>* cancel_ = nullptr;
};

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0]: the program's path
  std::vector<std::string> env;
  int stdin_fd = -1;          // -1: /dev/null
  int stdout_fd = -1;         // -1: /dev/null
  std::string stderr_path;    // "": /dev/null; else created (0600) or truncated
  std::string cwd = "/";      // where the program runs (and would dump core: it cannot)
  uint64_t memory_bytes = 0;  // RLIMIT_AS of the program; 0: none
  uint64_t cpu_seconds = 0;   // RLIMIT_CPU of the program and each process it starts
  uint64_t file_bytes = 0;    // RLIMIT_FSIZE
};

// How a supervised program ended.
struct ChildEnd {
  enum Kind {
    kExited,    // `code` is its exit status
    kSignaled,  // `code` is the signal that ended it
    kStopped,   // the budget stopped it (deadline or cancel); the group was killed
    kOverflow,  // it wrote more than the reader accepts; the group was killed
  };
  Kind kind = kExited;
  int code = 0;
};

class SupervisedChild {
 public:
  // Starts spec.argv under the supervisor, in a new process group.
  static Result<SupervisedChild> Start(const ChildSpec& spec);
  SupervisedChild(SupervisedChild&& other) noexcept;
  SupervisedChild& operator=(SupervisedChild&&) = delete;
  SupervisedChild(const SupervisedChild&) = delete;
  ~SupervisedChild();  // kills the group and reaps the supervisor if still running

  // Waits until the program ends or the budget stops it, appending what it writes to
  // `read_fd` (when >= 0) to *out, at most `max_out` bytes. Every process of the group is
  // gone when this returns.
  ChildEnd Wait(const CompileBudget& budget, int read_fd = -1, std::string* out = nullptr,
                size_t max_out = 0);

 private:
  explicit SupervisedChild(pid_t pid);
  void KillAndReap();
  pid_t pid_ = -1;  // the supervisor, leader of the group
  int pidfd_ = -1;
};

// Path of the helper binary: $MOAT_TRANSLATOR, else `moat-translator` beside the running
// executable; for a program inside the build tree (tests, benchmarks) without one beside
// it, the build tree's. Never a build path for a program elsewhere.
std::string HelperPath();

// The supervisor's whole job (`moat-translator --supervise MEM CPU FSIZE PARENT -- PROG
// ARGS...`): dies with its parent taking the group along, sets the limits, runs the
// program and exits with its status (128 + signal when a signal ended it).
int SupervisorMain(int argc, char** argv);

}  // namespace moat
