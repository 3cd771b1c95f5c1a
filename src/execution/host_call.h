// How every host function runs: fuel for the call and the bytes it moves, and the body
// between rt::EnterHost and rt::LeaveHost (which checks the deadline and cancellation on
// the way out). Internal to the execution tier.
#pragma once

#include <cstdint>

#include "execution/host_context.h"
#include "execution/runtime.h"

namespace moat {

inline constexpr int64_t kHostCallFuel = 50;   // every host call
inline constexpr uint32_t kBytesPerFuel = 64;  // plus one unit per 64 bytes moved

inline void ChargeFuel(HostContext& h, uint64_t units) {
  if (int64_t* c = h.fuel_counter()) *c -= static_cast<int64_t>(units);
}

// Runs a host function body between EnterHost and LeaveHost. The body's C++ objects are
// destroyed before LeaveHost may unwind to the runtime. `fail` is returned when the body
// throws (the run then stops as an internal error).
template <class F>
uint32_t HostCall(void* host, uint32_t fail, F&& body) {
  HostContext* h = rt::EnterHost(host);
  uint32_t r = fail;
  try {
    ChargeFuel(*h, kHostCallFuel);
    r = body(*h);
  } catch (...) {
    h->stop = StopReason::kInternal;
    h->stop_message = "host function failed";
  }
  rt::LeaveHost(h);
  return r;
}

}  // namespace moat
