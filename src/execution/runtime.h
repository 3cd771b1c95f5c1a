// The runtime under generated code: wasm-rt.h implemented with thread-local trap state,
// guard-page and stack-exhaustion faults turned into traps, and fuel refills.
// Internal to the execution tier.
#pragma once

#include <cstdint>

#include "execution/host_context.h"

namespace moat::rt {

// Installs the fault handlers once per process. Safe to call from many threads.
void InitProcess();

// Whether freed linear memories are zeroed and kept for the next instance (the default:
// a process running many instances). A one-shot command turns it off, so the memory of
// its single run is simply unmapped instead of zeroed page by page just before exit.
void SetMemoryRecycling(bool on);

// Instantiates the module into fresh memory and runs _start, on this thread but on a
// private stack with a guard page, and frees the instance. Whatever the guest does, it
// returns with host.stop set (kNone when _start returned normally).
void RunInstance(const ModuleAbi& abi, HostContext& host);

// The same in steps, for instances kept alive between calls. Instantiate returns false
// when the run already stopped (host.stop says why); Destroy is always needed after it.
bool Instantiate(const ModuleAbi& abi, HostContext& host);
void Start(const ModuleAbi& abi, HostContext& host);
void Destroy(const ModuleAbi& abi, HostContext& host);

// Called by host functions that must end the run (proc_exit, output cap, timeout...).
// Never returns: unwinds to RunInstance. Only call with no live C++ objects that own
// resources in the calling frames.
[[noreturn]] void StopRun(StopReason reason);

// Host-call bracket: marks the thread as inside host code (a fault there is a real crash,
// never a guest trap) and ensures enough native stack remains for host work.
HostContext* EnterHost(void* host);
// Leaves host code; ends the run if a stop is pending, the deadline passed or the run was
// cancelled.
void LeaveHost(HostContext* host);

uint64_t MonotonicNs();

// Blocking host work: waits until fd is ready for `events` (POLLIN/POLLOUT), the run's
// deadline passes, or the run is cancelled. True when ready (or when poll failed, so
// the following read/write reports the error); false when the run must stop, and then
// WaitStopReason says why.
bool WaitFd(const HostContext& host, int fd, short events);
StopReason WaitStopReason(const HostContext& host);

// Defined beside the WASI host functions; calling it keeps them linked.
int WasiHostLinked();
int MoatHostLinked();

// Live-resource counters for leak tests.
struct RuntimeStats {
  int64_t live_memories;  // linear-memory reservations not yet freed
};
RuntimeStats Stats();

}  // namespace moat::rt
