#include "execution/runtime.h"

#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "execution/limits.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define MOAT_USE_UCONTEXT 1
#else
#define MOAT_USE_UCONTEXT 0
// moat_call_on_stack(arg, fn, stack_top): calls fn(arg) with the stack pointer at
// stack_top and returns on the original stack. Two instructions each way instead of
// ucontext's signal-mask system calls. rbp holds the old stack pointer across the call
// (callee-saved, so fn and a longjmp inside fn both leave it intact).
extern "C" void moat_call_on_stack(void* arg, void (*fn)(void*), void* stack_top);
asm(R"(
  .text
  .p2align 4
  .type moat_call_on_stack, @function
moat_call_on_stack:
  pushq %rbp
  movq %rsp, %rbp
  movq %rdx, %rsp
  callq *%rsi
  movq %rbp, %rsp
  popq %rbp
  retq
  .size moat_call_on_stack, .-moat_call_on_stack
)");
#endif

namespace moat::rt {

namespace {

constexpr uint64_t kPageSize = 65536;
// 4 GiB of index space plus 4 GiB of constant offset: every 32-bit address + offset the
// generated code can form lands inside this reservation, so bounds checks are free.
constexpr uint64_t kReservation = 8ull << 30;
constexpr uint32_t kMaxPages = 65536;
constexpr size_t kStackGuard = 256 << 10;
constexpr size_t kHostStackReserve = 256 << 10;
constexpr size_t kAltStackSize = 64 << 10;
constexpr int64_t kFuelSlice = 1 << 20;

std::atomic<int64_t> g_live_memories{0};

// The native stack wasm runs on: one per thread, mapped on first use, guard page below.
struct WasmStack {
  uint8_t* map = nullptr;
  size_t map_size = 0;
  uint8_t* lo = nullptr;  // lowest usable byte; [map, lo) is the guard
  size_t size = 0;
  ~WasmStack() {
    if (map) munmap(map, map_size);
  }
};

struct AltStack {
  void* mem = nullptr;
  ~AltStack() {
    if (!mem) return;
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    munmap(mem, kAltStackSize);
  }
};

enum class Phase : uint8_t { kInstantiate, kStart };

struct Frame {
  jmp_buf jmp;
  HostContext* host = nullptr;
  const ModuleAbi* abi = nullptr;
  Phase phase = Phase::kInstantiate;
  bool in_wasm = false;
  bool in_host = false;
#if MOAT_USE_UCONTEXT
  ucontext_t caller;
  ucontext_t callee;
#endif
};

thread_local Frame* tl_frame = nullptr;
thread_local WasmStack tl_stack;
thread_local AltStack tl_alt;

struct sigaction g_prev_segv, g_prev_bus;

[[noreturn]] void Unwind(Frame* f) {
  f->in_host = false;
  _longjmp(f->jmp, 1);
}

void Chain(int sig, siginfo_t* si, void* uc) {
  struct sigaction* prev = sig == SIGSEGV ? &g_prev_segv : &g_prev_bus;
  if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
    prev->sa_sigaction(sig, si, uc);
    return;
  }
  if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN && prev->sa_handler) {
    prev->sa_handler(sig);
    return;
  }
  // Restore the default action; returning re-executes the faulting instruction, which
  // now kills the process with the real signal.
  signal(sig, SIG_DFL);
}

void OnFault(int sig, siginfo_t* si, void* uc) {
  Frame* f = tl_frame;
  if (f && f->in_wasm && !f->in_host) {
    auto addr = reinterpret_cast<uintptr_t>(si->si_addr);
    auto base = reinterpret_cast<uintptr_t>(f->host->mem_base);
    if (f->host->mem_base && addr >= base && addr < base + kReservation) {
      f->host->stop = StopReason::kTrap;
      f->host->trap = TrapKind::kOutOfBounds;
      Unwind(f);
    }
    auto guard_lo = reinterpret_cast<uintptr_t>(tl_stack.map);
    auto guard_hi = reinterpret_cast<uintptr_t>(tl_stack.lo);
    if (addr >= guard_lo && addr < guard_hi) {
      f->host->stop = StopReason::kTrap;
      f->host->trap = TrapKind::kStackExhausted;
      Unwind(f);
    }
  }
  Chain(sig, si, uc);
}

bool EnsureThreadStacks() {
  if (!tl_stack.map) {
    size_t size = Limits::kNativeStackBytes;
    size_t total = size + kStackGuard;
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return false;
    if (mprotect(p, kStackGuard, PROT_NONE) != 0) {
      munmap(p, total);
      return false;
    }
    tl_stack.map = static_cast<uint8_t*>(p);
    tl_stack.map_size = total;
    tl_stack.lo = tl_stack.map + kStackGuard;
    tl_stack.size = size;
  }
  if (!tl_alt.mem) {
    stack_t cur{};
    if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
        cur.ss_size >= 32 * 1024) {
      return true;  // the thread already has a usable alternate stack
    }
    void* p =
        mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    stack_t ss{};
    ss.ss_sp = p;
    ss.ss_size = kAltStackSize;
    if (sigaltstack(&ss, nullptr) != 0) {
      munmap(p, kAltStackSize);
      return false;
    }
    tl_alt.mem = p;
  }
  return true;
}

void RunGuestPhase(Frame* f) {
  if (_setjmp(f->jmp) == 0) {
    f->in_wasm = true;
    if (f->phase == Phase::kInstantiate) {
      f->abi->instantiate(f->host->instance, f->host);
    } else {
      f->abi->start(f->host->instance);
    }
  }
  f->in_wasm = false;
}

#if MOAT_USE_UCONTEXT
// Sanitizer builds switch stacks with ucontext, which AddressSanitizer understands.
void Trampoline(unsigned lo, unsigned hi) {
  RunGuestPhase(reinterpret_cast<Frame*>((static_cast<uintptr_t>(hi) << 32) | lo));
  // Returning resumes f->caller through uc_link.
}

void CallOnWasmStack(Frame& f) {
  getcontext(&f.callee);
  f.callee.uc_stack.ss_sp = tl_stack.lo;
  f.callee.uc_stack.ss_size = tl_stack.size;
  f.callee.uc_link = &f.caller;
  auto bits = reinterpret_cast<uintptr_t>(&f);
  makecontext(&f.callee, reinterpret_cast<void (*)()>(Trampoline), 2,
              static_cast<unsigned>(bits & 0xffffffffu), static_cast<unsigned>(bits >> 32));
  swapcontext(&f.caller, &f.callee);
}
#else
void CallOnWasmStack(Frame& f) {
  // Stacks are 16-byte aligned at the call: the top of a page-aligned mapping is.
  moat_call_on_stack(&f, reinterpret_cast<void (*)(void*)>(RunGuestPhase),
                     tl_stack.lo + tl_stack.size);
}
#endif

// Runs one phase on the wasm stack; returns false if the run stopped.
bool RunPhase(Frame& f, Phase phase) {
  f.phase = phase;
  tl_frame = &f;
  CallOnWasmStack(f);
  tl_frame = nullptr;
#if MOAT_USE_UCONTEXT
  // AddressSanitizer cannot unpoison frames a trap longjmp'ed over on a stack it does not
  // fully know; clear the whole wasm stack's shadow so the next run starts clean.
  __asan_unpoison_memory_region(tl_stack.lo, tl_stack.size);
#endif
  return f.host->stop == StopReason::kNone;
}

TrapKind MapTrap(wasm_rt_trap_t code) {
  switch (code) {
    case WASM_RT_TRAP_OOB: return TrapKind::kOutOfBounds;
    case WASM_RT_TRAP_INT_OVERFLOW: return TrapKind::kIntegerOverflow;
    case WASM_RT_TRAP_DIV_BY_ZERO: return TrapKind::kDivideByZero;
    case WASM_RT_TRAP_INVALID_CONVERSION: return TrapKind::kInvalidConversion;
    case WASM_RT_TRAP_UNREACHABLE: return TrapKind::kUnreachable;
    case WASM_RT_TRAP_CALL_INDIRECT: return TrapKind::kIndirectCall;
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return TrapKind::kUncaughtException;
    case WASM_RT_TRAP_EXHAUSTION: return TrapKind::kStackExhausted;
    default: return TrapKind::kUnreachable;
  }
}

// Records why the run stops (the first reason wins). Returns normally, so the message's
// temporaries are destroyed before the caller unwinds in a separate statement.
void NoteStop(HostContext* h, StopReason reason, std::string message) {
  if (h->stop == StopReason::kNone) {
    h->stop = reason;
    h->stop_message = std::move(message);
  }
}

Frame* CurrentFrame() {
  Frame* f = tl_frame;
  if (!f) {
    fprintf(stderr, "moat: wasm runtime called outside a run\n");
    abort();
  }
  return f;
}

// Runtime helpers called by generated code (memory and table allocation and growth) run
// like host functions: with enough native stack guaranteed, and marked as host code so
// that a fault inside them (say, in malloc) is a crash, never a trap that would unwind
// out of a held lock.
Frame* EnterHelper() {
  Frame* f = CurrentFrame();
  auto* sp = static_cast<uint8_t*>(__builtin_frame_address(0));
  if (sp < tl_stack.lo + kHostStackReserve) {
    f->host->stop = StopReason::kTrap;
    f->host->trap = TrapKind::kStackExhausted;
    Unwind(f);
  }
  f->in_host = true;
  return f;
}

void LeaveHelper(Frame* f) { f->in_host = false; }

// Linear memory plus tables against the memory limit.
bool FitsMemoryLimit(const HostContext* h, uint64_t linear_bytes, uint64_t table_bytes) {
  return linear_bytes + table_bytes <= (uint64_t{h->memory_limit_pages} << 16);
}

void NotePeak(HostContext* h) {
  h->peak_memory_bytes = std::max(h->peak_memory_bytes, h->linear_bytes + h->table_bytes);
}

// Linear-memory reservations are reused. A first touch of a page costs microseconds (a
// fault), far more than clearing it, so a released memory is zeroed where the guest
// touched it (every resident page up to its final size: memories only grow) and kept,
// readable and writable up to that size. Acquire hands out a reservation that is all
// zeros with exactly [0, initial) accessible, as a fresh mapping would be, preferring one
// whose accessible size already matches so that no mprotect is needed. Big memories are
// unmapped instead of pooled.
class ReservationPool {
 public:
  static constexpr size_t kMaxEntries = 64;
  static constexpr uint64_t kMaxZeroBytes = 16ull << 20;  // larger memories are unmapped
  static constexpr uint64_t kMaxPooledBytes = 64ull << 20;

  // Returns a zeroed reservation with exactly [0, bytes) read-write, or nullptr.
  uint8_t* Acquire(uint64_t bytes) {
    Entry e{nullptr, 0};
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t pick = free_.size();
      for (size_t i = 0; i < free_.size(); ++i) {
        if (free_[i].rw == bytes) {
          pick = i;
          break;
        }
        pick = i;  // otherwise the most recent one
      }
      if (pick < free_.size()) {
        e = free_[pick];
        free_[pick] = free_.back();
        free_.pop_back();
        pooled_bytes_ -= e.rw;
      }
    }
    if (!e.base) {
      void* p = mmap(nullptr, kReservation, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
      if (p == MAP_FAILED) return nullptr;
      e.base = static_cast<uint8_t*>(p);
    }
    bool ok = true;
    if (e.rw > bytes) ok = mprotect(e.base + bytes, e.rw - bytes, PROT_NONE) == 0;
    if (e.rw < bytes) ok = mprotect(e.base + e.rw, bytes - e.rw, PROT_READ | PROT_WRITE) == 0;
    if (!ok) {
      munmap(e.base, kReservation);
      return nullptr;
    }
    return e.base;
  }

  // Takes back a reservation whose [0, size) is read-write (and possibly dirty). Zeroing
  // happens outside the lock, so a big release never stalls other threads' instances.
  void Release(uint8_t* base, uint64_t size) {
    bool keep = false;
    if (size <= kMaxZeroBytes && recycle_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.size() + pending_ < kMaxEntries && pooled_bytes_ + size <= kMaxPooledBytes) {
        pooled_bytes_ += size;  // reserve room now
        ++pending_;
        keep = true;
      }
    }
    if (!keep) {
      munmap(base, kReservation);
      return;
    }
    ZeroTouched(base, size);
    std::lock_guard<std::mutex> lock(mu_);
    --pending_;
    free_.push_back({base, size});
  }

  void SetRecycling(bool on) { recycle_.store(on, std::memory_order_relaxed); }

 private:
  // Zeroes [base, base + size) by clearing only the pages the guest touched: a page not
  // resident (mincore(2)) was never touched, or was swapped out, and is dropped with
  // MADV_DONTNEED instead, so it reads as zero. Touched pages stay resident, so the next
  // instance does not fault them in again; a call that used a few pages of a large memory
  // clears a few.
  static void ZeroTouched(uint8_t* base, uint64_t size) {
    static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    thread_local std::vector<unsigned char> resident;
    uint64_t pages = (size + page - 1) / page;
    resident.resize(pages);
    if (mincore(base, size, resident.data()) != 0) {
      memset(base, 0, size);
      return;
    }
    for (uint64_t i = 0; i < pages;) {
      bool in = resident[i] & 1;
      uint64_t j = i;
      while (j < pages && (resident[j] & 1) == in) ++j;
      uint8_t* from = base + i * page;
      uint64_t len = std::min(size, j * page) - i * page;
      // A page that is not resident may still hold the guest's bytes in swap: dropped, so
      // it reads as zero (a never-touched run costs the kernel a walk of empty tables).
      if (in || madvise(from, len, MADV_DONTNEED) != 0) memset(from, 0, len);
      i = j;
    }
  }
  struct Entry {
    uint8_t* base;
    uint64_t rw;  // [0, rw) is read-write and zero
  };
  std::atomic<bool> recycle_{true};
  std::mutex mu_;
  std::vector<Entry> free_;
  size_t pending_ = 0;         // releases being zeroed
  uint64_t pooled_bytes_ = 0;  // read-write bytes held by free_ and pending releases
};

ReservationPool& Pool() {
  static ReservationPool* pool = new ReservationPool();  // never destroyed: used until exit
  return *pool;
}

}  // namespace

void SetMemoryRecycling(bool on) { Pool().SetRecycling(on); }

void InitProcess() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_prev_segv);
    sigaction(SIGBUS, &sa, &g_prev_bus);
  });
}

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {
bool Prepare(HostContext& host) {
  InitProcess();
  if (tl_frame) {
    host.stop = StopReason::kInternal;
    host.stop_message = "nested wasm run on one thread";
    return false;
  }
  if (!EnsureThreadStacks()) {
    host.stop = StopReason::kInternal;
    host.stop_message = "cannot map the wasm stack";
    return false;
  }
  return true;
}
}  // namespace

bool Instantiate(const ModuleAbi& abi, HostContext& host) {
  if (!Prepare(host)) return false;
  void* inst = calloc(1, abi.instance_size());
  if (!inst) {
    host.stop = StopReason::kInternal;
    host.stop_message = "out of host memory";
    return false;
  }
  host.abi = &abi;
  host.instance = inst;
  Frame f;
  f.host = &host;
  f.abi = &abi;
  return RunPhase(f, Phase::kInstantiate);
}

void Start(const ModuleAbi& abi, HostContext& host) {
  if (!host.instance || host.stop != StopReason::kNone || !Prepare(host)) return;
  Frame f;
  f.host = &host;
  f.abi = &abi;
  RunPhase(f, Phase::kStart);
}

void Destroy(const ModuleAbi& abi, HostContext& host) {
  if (!host.instance) return;
  // Fuel is read before the instance (which holds the counter) is freed.
  uint64_t used = host.FuelUsed();
  abi.free_instance(host.instance);
  free(host.instance);
  host.instance = nullptr;
  host.mem_base = nullptr;
  host.fuel_granted = used;  // FuelUsed() stays valid with no instance
}

void RunInstance(const ModuleAbi& abi, HostContext& host) {
  if (Instantiate(abi, host)) Start(abi, host);
  Destroy(abi, host);
}

[[noreturn]] void StopRun(StopReason reason) {
  Frame* f = CurrentFrame();
  NoteStop(f->host, reason, {});
  Unwind(f);
}

HostContext* EnterHost(void* host) {
  Frame* f = tl_frame;
  f->in_host = true;
  auto* sp = static_cast<uint8_t*>(__builtin_frame_address(0));
  if (sp < tl_stack.lo + kHostStackReserve) {
    f->host->stop = StopReason::kTrap;
    f->host->trap = TrapKind::kStackExhausted;
    Unwind(f);
  }
  return static_cast<HostContext*>(host);
}

void LeaveHost(HostContext* host) {
  Frame* f = tl_frame;
  f->in_host = false;
  if (host->stop != StopReason::kNone) Unwind(f);
  const ExecRequest* req = host->request;
  if (req->cancel && req->cancel->cancelled()) StopRun(StopReason::kCancelled);
  if (MonotonicNs() >= host->deadline_ns) StopRun(StopReason::kTimeout);
}

bool WaitFd(const HostContext& host, int fd, short events) {
  for (;;) {
    if (host.request->cancel && host.request->cancel->cancelled()) return false;
    uint64_t now = MonotonicNs();
    if (now >= host.deadline_ns) return false;
    int ms = static_cast<int>(std::min<uint64_t>((host.deadline_ns - now) / 1'000'000 + 1, 50));
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, ms);
    if (r > 0 || (r < 0 && errno != EINTR)) return true;
  }
}

StopReason WaitStopReason(const HostContext& host) {
  bool cancelled = host.request->cancel && host.request->cancel->cancelled();
  return cancelled ? StopReason::kCancelled : StopReason::kTimeout;
}

RuntimeStats Stats() { return {g_live_memories.load()}; }

}  // namespace moat::rt

namespace moat {

uint64_t HostContext::FuelUsed() const {
  if (!instance || !abi->fuel) return fuel_granted;
  int64_t* c = fuel_counter();
  if (!c) return 0;
  return static_cast<uint64_t>(static_cast<int64_t>(fuel_granted) - *c);
}

}  // namespace moat

using moat::HostContext;
using moat::StopReason;
using moat::rt::tl_frame;

template <class Table, class Elem>
static uint32_t GrowTable(Table* t, uint32_t delta, Elem init) {
  moat::rt::Frame* f = moat::rt::EnterHelper();
  HostContext* h = f->host;
  uint32_t old = t->size;
  uint64_t want = static_cast<uint64_t>(old) + delta;
  uint64_t add_bytes = uint64_t{delta} * sizeof(Elem);
  uint32_t result = UINT32_MAX;
  if (delta == 0) {
    result = old;
  } else if (want > t->max_size) {
    // the module's own maximum: not a policy refusal
  } else if (h->table_elements + delta > moat::Limits::kMaxTableElements ||
             !moat::rt::FitsMemoryLimit(h, h->linear_bytes, h->table_bytes + add_bytes)) {
    h->grow_refused = true;
    h->Deny("table.grow", std::to_string(want) + " elements",
            "tables and linear memory would exceed the memory limit");
  } else if (auto* p = static_cast<Elem*>(realloc(t->data, want * sizeof(Elem)))) {
    for (uint64_t i = old; i < want; ++i) p[i] = init;
    t->data = p;
    t->size = static_cast<uint32_t>(want);
    h->table_elements += delta;
    h->table_bytes += add_bytes;
    moat::rt::NotePeak(h);
    result = old;
  }
  moat::rt::LeaveHelper(f);
  return result;
}

template <class Table, class Elem>
static void AllocateTable(Table* t, uint32_t elements, uint32_t max) {
  moat::rt::Frame* f = moat::rt::EnterHelper();
  HostContext* h = f->host;
  uint64_t bytes = uint64_t{elements} * sizeof(Elem);
  t->data = nullptr;
  t->size = 0;
  t->max_size = max;
  bool ok = h->table_elements + elements <= moat::Limits::kMaxTableElements &&
            moat::rt::FitsMemoryLimit(h, h->linear_bytes, h->table_bytes + bytes);
  if (ok && elements) {
    t->data = static_cast<Elem*>(calloc(elements, sizeof(Elem)));
    ok = t->data != nullptr;
  }
  if (!ok) {
    moat::rt::NoteStop(h, StopReason::kMemoryLimit,
                       "tables of " + std::to_string(h->table_elements + elements) +
                           " elements exceed the memory or table limit");
    moat::rt::Unwind(f);
  }
  t->size = elements;
  h->table_elements += elements;
  h->table_bytes += bytes;
  moat::rt::NotePeak(h);
  moat::rt::LeaveHelper(f);
}

// ---- wasm-rt.h, implemented for many threads ------------------------------------------

extern "C" {

void wasm_rt_init(void) { moat::rt::InitProcess(); }
bool wasm_rt_is_initialized(void) { return true; }
void wasm_rt_free(void) {}

void wasm_rt_trap(wasm_rt_trap_t code) {
  moat::rt::Frame* f = tl_frame;
  if (!f) {
    fprintf(stderr, "moat: wasm trap outside a run\n");
    abort();
  }
  f->host->stop = StopReason::kTrap;
  f->host->trap = moat::rt::MapTrap(code);
  moat::rt::Unwind(f);
}

const char* wasm_rt_strerror(wasm_rt_trap_t trap) {
  return moat::TrapKindMessage(moat::rt::MapTrap(trap)).data();
}

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  static std::mutex mu;
  static std::vector<std::vector<int>> types;
  std::vector<int> sig;
  sig.push_back(static_cast<int>(params));
  va_list ap;
  va_start(ap, results);
  for (uint32_t i = 0; i < params + results; ++i) sig.push_back(va_arg(ap, int));
  va_end(ap);
  std::lock_guard<std::mutex> lock(mu);
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] == sig) return static_cast<uint32_t>(i);
  }
  types.push_back(std::move(sig));
  return static_cast<uint32_t>(types.size() - 1);
}

void wasm_rt_allocate_memory(wasm_rt_memory_t* m, uint32_t initial, uint32_t max) {
  moat::rt::Frame* f = moat::rt::EnterHelper();
  HostContext* h = f->host;
  uint32_t module_max = std::min(max, moat::rt::kMaxPages);
  uint32_t limit = std::min(module_max, h->memory_limit_pages);  // <= 65535 pages
  uint64_t bytes = static_cast<uint64_t>(initial) * moat::rt::kPageSize;
  uint8_t* p = nullptr;
  if (initial > limit || !moat::rt::FitsMemoryLimit(h, bytes, h->table_bytes)) {
    moat::rt::NoteStop(h, StopReason::kMemoryLimit,
                       "module needs " + std::to_string(initial) +
                           " pages of memory; the limit is " +
                           std::to_string(h->memory_limit_pages));
  } else if (!(p = moat::rt::Pool().Acquire(bytes))) {
    moat::rt::NoteStop(h, StopReason::kMemoryLimit,
                       "cannot reserve address space for linear memory");
  }
  if (!p) moat::rt::Unwind(f);
  m->data = p;
  m->pages = initial;
  m->max_pages = limit;
  m->size = static_cast<uint32_t>(bytes);  // fits: at most 65535 pages
  h->mem_base = m->data;
  h->module_max_pages = module_max;
  h->linear_bytes = bytes;
  moat::rt::g_live_memories.fetch_add(1, std::memory_order_relaxed);
  moat::rt::NotePeak(h);
  moat::rt::LeaveHelper(f);
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t* m, uint32_t delta) {
  moat::rt::Frame* f = moat::rt::EnterHelper();
  HostContext* h = f->host;
  uint32_t old = m->pages;
  uint64_t want = static_cast<uint64_t>(old) + delta;
  uint64_t want_bytes = want * moat::rt::kPageSize;
  uint32_t result = UINT32_MAX;
  if (delta == 0) {
    result = old;
  } else if (want > h->module_max_pages) {
    // the module's own maximum: not a policy refusal
  } else if (want > m->max_pages || !moat::rt::FitsMemoryLimit(h, want_bytes, h->table_bytes)) {
    h->grow_refused = true;
    h->Deny("memory.grow", std::to_string(want) + " pages",
            "exceeds the memory limit of " + std::to_string(h->memory_limit_pages) + " pages");
  } else if (mprotect(m->data + uint64_t{old} * moat::rt::kPageSize,
                      uint64_t{delta} * moat::rt::kPageSize, PROT_READ | PROT_WRITE) == 0) {
    m->pages = static_cast<uint32_t>(want);
    m->size = static_cast<uint32_t>(want_bytes);  // fits: max_pages <= 65535
    h->linear_bytes = want_bytes;
    moat::rt::NotePeak(h);
    result = old;
  }
  moat::rt::LeaveHelper(f);
  return result;
}

void wasm_rt_free_memory(wasm_rt_memory_t* m) {
  if (!m->data) return;
  // Every page [0, pages) may be dirty: memories only grow.
  moat::rt::Pool().Release(m->data, uint64_t{m->pages} * moat::rt::kPageSize);
  m->data = nullptr;
  m->size = 0;
  m->pages = 0;
  moat::rt::g_live_memories.fetch_sub(1, std::memory_order_relaxed);
}

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t* t, uint32_t elements, uint32_t max) {
  AllocateTable<wasm_rt_funcref_table_t, wasm_rt_funcref_t>(t, elements, max);
}

void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t* t) {
  free(t->data);
  t->data = nullptr;
  t->size = 0;
  t->max_size = 0;
}

void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t* t, uint32_t elements,
                                      uint32_t max) {
  AllocateTable<wasm_rt_externref_table_t, wasm_rt_externref_t>(t, elements, max);
}

void wasm_rt_free_externref_table(wasm_rt_externref_table_t* t) {
  free(t->data);
  t->data = nullptr;
  t->size = 0;
  t->max_size = 0;
}

uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t* t, uint32_t delta,
                                    wasm_rt_funcref_t init) {
  return GrowTable(t, delta, init);
}

uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t* t, uint32_t delta,
                                      wasm_rt_externref_t init) {
  return GrowTable(t, delta, init);
}

// moat.fuel_exhausted: called by metered code when the counter goes negative. Refills
// one slice, and at every slice checks the deadline and cancellation.
void Z_moatZ_fuel_exhausted(void* host_ptr) {
  HostContext* h = moat::rt::EnterHost(host_ptr);
  int64_t* counter = h->fuel_counter();
  uint64_t used = static_cast<uint64_t>(static_cast<int64_t>(h->fuel_granted) - *counter);
  uint64_t limit = h->request->limits.fuel;
  if (used > limit) {
    h->stop = StopReason::kFuel;
  } else {
    int64_t slice = static_cast<int64_t>(std::min<uint64_t>(moat::rt::kFuelSlice, limit - used));
    h->fuel_granted = used + static_cast<uint64_t>(slice);
    *counter = slice;
  }
  moat::rt::LeaveHost(h);
}

}  // extern "C"
