// The runtime: correct results, exact fuel on every run and thread, deadlines kept,
// cancellation from another thread, many instances of many modules at once.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "execution/runtime.h"
#include "test_util.h"

namespace moat {
namespace {

using test::RunGuest;

ExecRequest Args(std::vector<std::string> argv) {
  ExecRequest r;
  r.argv = std::move(argv);
  return r;
}

TEST(Runtime, HelloPrintsArgs) {
  ExecResult r = RunGuest("hello", Args({"hello.wasm", "a", "b c"}));
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.stdout_bytes, "hello from wasm a b c\n");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_GT(r.fuel_used, 0u);
  EXPECT_GT(r.peak_memory_bytes, 0u);
  EXPECT_EQ(r.module_sha256.size(), 64u);
}

TEST(Runtime, ArgsEnvStdinExit) {
  ExecRequest req = Args({"echo", "x", "--exit", "7"});
  req.env = {{"GREETING", "hi there"}};
  req.stdin_bytes = "piped input\n";
  ExecResult r = RunGuest("echo", req);
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.stdout_bytes.find("arg[1]=x\n"), std::string::npos);
  EXPECT_NE(r.stdout_bytes.find("GREETING=hi there\n"), std::string::npos);
  EXPECT_NE(r.stdout_bytes.find("HOME=(unset)\n"), std::string::npos) << "only granted env";
  EXPECT_NE(r.stdout_bytes.find("piped input\n"), std::string::npos);
  EXPECT_EQ(r.stderr_bytes, "to stderr\n");
}

TEST(Runtime, Sha256MatchesKnownDigest) {
  // 1 MiB of the guest's xorshift stream; digest computed by the native build of the
  // same source, which the benchmark also checks.
  ExecResult r = RunGuest("sha256", Args({"sha256", "1"}));
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  ASSERT_EQ(r.stdout_bytes.size(), 65u);
  FILE* p = popen((std::string(MOAT_GUEST_DIR) + "/../native_sha256 1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[128] = {};
  ASSERT_NE(fgets(buf, sizeof buf, p), nullptr);
  pclose(p);
  EXPECT_EQ(r.stdout_bytes, std::string(buf));
}

TEST(Runtime, FuelIsExactAndRepeatable) {
  ExecResult first = RunGuest("sha256", Args({"sha256", "1"}));
  ASSERT_EQ(first.status, RunStatus::kOk);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(RunGuest("sha256", Args({"sha256", "1"})).fuel_used, first.fuel_used);
  }
  // The budget boundary is exact: the used amount suffices, one less does not.
  ExecRequest req = Args({"sha256", "1"});
  req.limits.fuel = first.fuel_used;
  EXPECT_EQ(RunGuest("sha256", req).status, RunStatus::kOk);
  req.limits.fuel = first.fuel_used - 1;
  EXPECT_EQ(RunGuest("sha256", req).status, RunStatus::kFuelExhausted);
}

// Fuel is an upper bound on the instructions run, close to it: also for calls to small
// leaves that their callers pay for (guests/fuel_calls.wat), and through a table.
TEST(Runtime, FuelCoversCallsToSmallLeaves) {
  ExecResult r = RunGuest("fuel_calls");
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message;
  constexpr uint64_t kRun = 100'000 * (11 + 13) + 100'000 * (12 + 13);
  EXPECT_GE(r.fuel_used, kRun);
  EXPECT_LE(r.fuel_used, kRun + kRun / 50);
}

TEST(Runtime, FuelIsTheSameOnEveryThread) {
  ExecResult ref = RunGuest("sha256", Args({"sha256", "1"}));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        ExecResult r = RunGuest("sha256", Args({"sha256", "1"}));
        if (r.fuel_used != ref.fuel_used || r.stdout_bytes != ref.stdout_bytes) wrong++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Runtime, ManyModulesManyThreadsMixedWithTraps) {
  // 8 threads run good and trapping modules side by side: traps stay on their thread.
  test::LoadGuest("sha256");
  std::string expect = RunGuest("sha256", Args({"sha256", "1"})).stdout_bytes;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 12; ++i) {
        switch ((t + i) % 4) {
          case 0:
            if (RunGuest("sha256", Args({"sha256", "1"})).stdout_bytes != expect) wrong++;
            break;
          case 1:
            if (RunGuest("oob_load").trap != TrapKind::kOutOfBounds) wrong++;
            break;
          case 2:
            if (RunGuest("deep_recursion").trap != TrapKind::kStackExhausted) wrong++;
            break;
          case 3:
            if (RunGuest("div_zero").trap != TrapKind::kDivideByZero) wrong++;
            break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// The run must end within 10% + 20 ms of the deadline.
void ExpectTimeoutWithin(const std::string& guest, std::vector<std::string> argv, uint64_t ms) {
  ExecRequest req = Args(std::move(argv));
  req.limits.timeout_us = ms * 1000;
  ExecResult r = RunGuest(guest, req);
  EXPECT_EQ(r.status, RunStatus::kTimeout) << guest;
  EXPECT_GE(r.wall_us, ms * 1000) << guest;
  EXPECT_LE(r.wall_us, ms * 1100 + 20'000) << guest;
}

TEST(Runtime, TimeoutInComputeIsKept) { ExpectTimeoutWithin("infinite_loop", {"loop"}, 300); }
TEST(Runtime, TimeoutInBlockingHostCallIsKept) {
  ExpectTimeoutWithin("sleep", {"sleep", "10000"}, 250);
}
TEST(Runtime, TimeoutInStartSectionIsKept) {
  ExpectTimeoutWithin("start_section_loop", {"s"}, 200);
}

TEST(Runtime, TimeoutInBulkMemoryFillIsKept) { ExpectTimeoutWithin("fill_loop", {"fill"}, 300); }

TEST(Runtime, SleepShorterThanDeadlineCompletes) {
  ExecResult r = RunGuest("sleep", Args({"sleep", "30"}));
  EXPECT_EQ(r.status, RunStatus::kOk);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_GE(r.wall_us, 30'000u);
}

void ExpectCancelled(const std::string& guest, std::vector<std::string> argv) {
  ExecRequest req = Args(std::move(argv));
  req.cancel = std::make_shared<CancelToken>();
  auto token = req.cancel;
  test::LoadGuest(guest);
  std::thread canceller([token] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    token->Cancel();
  });
  ExecResult r = RunGuest(guest, req);
  canceller.join();
  EXPECT_EQ(r.status, RunStatus::kCancelled) << guest;
  EXPECT_LT(r.wall_us, 200'000u) << guest;
}

TEST(Runtime, CancelFromAnotherThreadStopsCompute) { ExpectCancelled("infinite_loop", {"l"}); }
TEST(Runtime, CancelFromAnotherThreadStopsSleep) { ExpectCancelled("sleep", {"s", "10000"}); }

TEST(Runtime, UnloadedDigestIsRefused) {
  ExecRequest req;
  req.module_sha256 = std::string(64, 'a');
  ExecResult r = test::SharedEngine().Run(req);
  EXPECT_EQ(r.status, RunStatus::kInvalidModule);
}

TEST(Runtime, ContractRunsByDigest) {
  ModuleHandle h = test::LoadGuest("hello");
  ExecRequest req;
  req.module_sha256 = h.sha256;
  ExecResult r = test::SharedEngine().Run(req);
  EXPECT_EQ(r.status, RunStatus::kOk);
  EXPECT_EQ(r.stdout_bytes, "hello from wasm\n");
}

TEST(Runtime, HostFaultOutsideWasmIsNotSwallowed) {
  // A fault in host code must kill the process, never become a guest trap.
  EXPECT_DEATH(
      {
        test::SharedEngine();
        volatile int* p = nullptr;
        *p = 1;
      },
      "");
}

}  // namespace
}  // namespace moat
