// Hostile guests against every limit: each ends with the right status, and 1,000 rounds
// of all of them in one process leak no memory reservations, fds or threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "execution/runtime.h"
#include "test_util.h"

namespace moat {
namespace {

using test::RunGuest;

struct Hostile {
  const char* guest;
  RunStatus status;
  TrapKind trap;
  Limits limits;
};

Limits Small() {
  Limits l;
  l.fuel = 20'000'000;
  l.memory_bytes = 4 << 20;
  l.timeout_us = 5'000'000;
  l.max_output_bytes = 4096;
  return l;
}

std::vector<Hostile> HostileCases() {
  Limits s = Small();
  Limits room = s;  // for modules that need 16 MiB of memory up front
  room.memory_bytes = 64 << 20;
  return {
      {"infinite_loop", RunStatus::kFuelExhausted, TrapKind::kNone, s},
      {"start_section_loop", RunStatus::kFuelExhausted, TrapKind::kNone, s},
      {"deep_recursion", RunStatus::kTrap, TrapKind::kStackExhausted, s},
      {"infinite_recursion", RunStatus::kTrap, TrapKind::kOutOfBounds,
       s},  // shadow stack overflows memory
      {"memory_bomb", RunStatus::kMemoryLimit, TrapKind::kUnreachable, s},
      {"oob_load", RunStatus::kTrap, TrapKind::kOutOfBounds, s},
      {"oob_store", RunStatus::kTrap, TrapKind::kOutOfBounds, s},
      {"div_zero", RunStatus::kTrap, TrapKind::kDivideByZero, s},
      {"unreachable", RunStatus::kTrap, TrapKind::kUnreachable, s},
      {"output_flood", RunStatus::kOutputLimit, TrapKind::kNone, s},
      {"zero_writes", RunStatus::kFuelExhausted, TrapKind::kNone, s},
      {"bad_pointers", RunStatus::kOk, TrapKind::kNone, s},
      {"grow_beyond", RunStatus::kOk, TrapKind::kNone, s},
      {"fill_loop", RunStatus::kFuelExhausted, TrapKind::kNone, room},  // bulk ops pay by length
      {"huge_tables", RunStatus::kMemoryLimit, TrapKind::kNone, s},     // tables count as memory
      {"grow_table", RunStatus::kOk, TrapKind::kNone, s},               // table.grow refused: -1
      {"max_memory", RunStatus::kMemoryLimit, TrapKind::kNone, s},
  };
}

class HostileGuest : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileGuest, EndsWithTheRightStatus) {
  const Hostile& h = GetParam();
  ExecRequest req;
  req.limits = h.limits;
  ExecResult r = RunGuest(h.guest, req);
  EXPECT_EQ(RunStatusName(r.status), RunStatusName(h.status)) << r.message;
  EXPECT_EQ(TrapKindName(r.trap), TrapKindName(h.trap)) << r.message;
  if (h.status == RunStatus::kOk) {
    EXPECT_EQ(r.exit_code, 0) << "a host call accepted a bad pointer, or memory.grow succeeded";
  }
  if (h.status == RunStatus::kFuelExhausted) EXPECT_GT(r.fuel_used, h.limits.fuel);
  if (h.status == RunStatus::kOutputLimit) {
    EXPECT_EQ(r.stdout_bytes.size(), h.limits.max_output_bytes);  // cut exactly at the cap
  }
  EXPECT_LE(r.peak_memory_bytes, h.limits.memory_bytes);
}

INSTANTIATE_TEST_SUITE_P(Limits, HostileGuest, ::testing::ValuesIn(HostileCases()),
                         [](const auto& info) { return std::string(info.param.guest); });

TEST(Limits, GrowBeyondLimitIsADeniedEvent) {
  ExecRequest req;
  req.limits.memory_bytes = 64 << 20;
  ExecResult r = RunGuest("grow_beyond", req);
  ASSERT_EQ(r.status, RunStatus::kOk);
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.denied.size(), 1u);
  EXPECT_EQ(r.denied[0].operation, "memory.grow");
  // The same module with room to grow: memory.grow succeeds, exit code 1.
  req.limits.memory_bytes = 256 << 20;
  r = RunGuest("grow_beyond", req);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.denied.empty());
}

TEST(Limits, InitialMemoryOverLimitIsRefused) {
  ExecRequest req;
  req.limits.memory_bytes = 64 << 20;
  ExecResult r = RunGuest("big_initial_memory", req);
  EXPECT_EQ(r.status, RunStatus::kMemoryLimit);
  EXPECT_NE(r.message.find("initial memory"), std::string::npos);
  req.limits.memory_bytes = 128 << 20;
  EXPECT_EQ(RunGuest("big_initial_memory", req).status, RunStatus::kOk);
}

TEST(Limits, RecycledMemoryNeverLeaksBetweenInstances) {
  // Each run checks its memory is all zeros, then dirties 1 MiB. Interleave with other
  // modules so reservations of every size pass through the recycler.
  for (int i = 0; i < 20; ++i) {
    ExecResult r = RunGuest("dirty_memory");
    ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
    ASSERT_EQ(r.exit_code, 0) << "run " << i << " saw bytes of an earlier instance";
    if (i % 3 == 0) RunGuest("hello");
    if (i % 5 == 0) RunGuest("oob_store");  // a trapping instance's memory is recycled too
  }
}

TEST(Limits, FourGiBIsNeverGranted) {
  // 65536 pages would overflow wasm-rt's 32-bit size and escape the recycler's zeroing:
  // the largest limit is 65535 pages, so a module asking for 4 GiB is refused.
  ExecRequest req;
  req.limits.memory_bytes = Limits::kMaxMemory;
  ExecResult r = RunGuest("max_memory", req);
  EXPECT_EQ(r.status, RunStatus::kMemoryLimit) << r.message;
  req.limits.memory_bytes = 4ull << 30;
  EXPECT_EQ(RunGuest("max_memory", req).status, RunStatus::kDenied);  // over the bound
  EXPECT_EQ(RunGuest("dirty_memory").exit_code, 0);
}

TEST(Limits, RuntimeHelpersNeverRunOutOfStack) {
  // Recurse to just short of the stack's end, then make the runtime allocate (a refused
  // memory.grow records an event). Sweep the depth across the last stretch of stack with
  // a second thread alive, so malloc takes its locks: every run must end cleanly (exit 0
  // or a stack-exhaustion trap), never crash or hang inside the allocator.
  std::atomic<bool> stop{false};
  std::thread other([&] {
    while (!stop) {
      std::vector<int> v(1000);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  auto run = [](int depth) {
    ExecRequest req;
    req.limits.memory_bytes = 4 << 20;
    req.argv = {"r", std::to_string(depth)};
    return RunGuest("recurse_then_grow", req);
  };
  int lo = 1000, hi = 2'000'000;  // lo completes, hi traps
  ASSERT_EQ(run(lo).exit_code, 0);
  ASSERT_EQ(run(hi).trap, TrapKind::kStackExhausted);
  while (hi - lo > 1) {
    int mid = lo + (hi - lo) / 2;
    (run(mid).status == RunStatus::kOk ? lo : hi) = mid;
  }
  int bad = 0;
  for (int d = lo - 12000; d <= lo + 200; d += 7) {
    ExecResult r = run(d);
    bool clean = (r.status == RunStatus::kOk && r.exit_code == 0) ||
                 (r.status == RunStatus::kTrap && r.trap == TrapKind::kStackExhausted);
    if (!clean) ++bad;
  }
  stop = true;
  other.join();
  EXPECT_EQ(bad, 0);
}

TEST(Limits, InvalidLimitsAreRefusedBeforeRunning) {
  ExecRequest req;
  req.limits.fuel = 0;
  ExecResult r = RunGuest("hello", req);
  EXPECT_EQ(r.status, RunStatus::kDenied);
  EXPECT_NE(r.message.find("fuel"), std::string::npos);
}

int CountFds() { return test::CountDir("/proc/self/fd"); }
int CountThreads() { return test::CountDir("/proc/self/task"); }

TEST(Limits, ThousandRoundsLeakNothing) {
  auto cases = HostileCases();
  for (const Hostile& h : cases) test::LoadGuest(h.guest);  // compile outside the count
  // Warm up once so lazily created per-thread state exists before counting.
  for (const Hostile& h : cases) {
    ExecRequest req;
    req.limits = h.limits;
    RunGuest(h.guest, req);
  }
  int fds = CountFds();
  int threads = CountThreads();
  long vm_kb = test::StatusField("VmSize");
  int64_t memories = rt::Stats().live_memories;
  ASSERT_EQ(memories, 0);
  const int rounds = getenv("MOAT_QUICK") ? 100 : 1000;
  int runs = 0;
  for (int i = 0; i < rounds; ++i) {
    for (const Hostile& h : cases) {
      ExecRequest req;
      req.limits = h.limits;
      req.limits.fuel = 2'000'000;  // keep each round short
      ExecResult r = RunGuest(h.guest, req);
      ASSERT_NE(r.status, RunStatus::kInternal) << h.guest << ": " << r.message;
      ++runs;
    }
  }
  EXPECT_EQ(rt::Stats().live_memories, 0);
  EXPECT_EQ(CountFds(), fds);
  EXPECT_EQ(CountThreads(), threads);
  long vm_after = test::StatusField("VmSize");
  // One leaked 8 GiB reservation would show as +8,388,608 kB.
  EXPECT_LT(vm_after - vm_kb, 1 << 20) << "address space grew by " << (vm_after - vm_kb) << " kB";
  RecordProperty("runs", runs);
}

}  // namespace
}  // namespace moat
