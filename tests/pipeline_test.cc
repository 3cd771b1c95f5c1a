// The front half of the pipeline against hostile bytes: every refusal is one clear line.
#include <gtest/gtest.h>

#include <random>

#include "execution/module_pipeline.h"
#include "test_util.h"

namespace moat {
namespace {

using test::GuestBytes;

struct Refusal {
  const char* guest;
  const char* expected;  // substring of the one-line reason
};

class RefusedModules : public ::testing::TestWithParam<Refusal> {};

TEST_P(RefusedModules, NamesTheProblem) {
  const Refusal& c = GetParam();
  auto bytes = GuestBytes(c.guest);
  ASSERT_FALSE(bytes.empty());
  auto r = ValidateWasm(bytes);
  ASSERT_FALSE(r.ok()) << c.guest;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidModule);
  EXPECT_NE(r.error().message.find(c.expected), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "one line";
}

INSTANTIATE_TEST_SUITE_P(
    Pipeline, RefusedModules,
    ::testing::Values(Refusal{"uses_simd", "SIMD"}, Refusal{"uses_threads", "threads"},
                      Refusal{"uses_tail_call", "tail calls"}, Refusal{"uses_memory64", "memory64"},
                      Refusal{"uses_multi_memory", "multi-memory"},
                      Refusal{"uses_call_ref", "typed function references"},
                      Refusal{"unknown_import", "unknown import 'env.system'"},
                      Refusal{"wrong_signature", "has signature (I:i), expected (iiii:i)"},
                      Refusal{"reserved_import", "reserved"}, Refusal{"no_start", "_start"}),
    [](const auto& info) { return std::string(info.param.guest); });

// ref.func stored into a funcref table (table.set, table.grow, table.fill) is WebAssembly
// 2.0 and valid; it was refused as a typed-reference type mismatch. Through the real binary.
TEST(Pipeline, RefFuncIntoAFuncrefTableIsValidAndRuns) {
  ASSERT_TRUE(ValidateWasm(GuestBytes("ref_func_table")).ok());
  test::CliResult r = test::Cli("run " + test::Guest("ref_func_table"));
  EXPECT_EQ(r.status, 46) << r.err;  // 40 + 2 + 3 through the table, plus table.grow's 1
  EXPECT_EQ(r.err.find("moat:"), std::string::npos) << r.err;  // no error (a sanitizer may warn)
}

// Host functions reached through a table (an element segment, table.set of a ref.func)
// and called by call_indirect get their context: the run was a crash (SIGSEGV, or a double
// free after exiting 0).
TEST(Pipeline, HostFunctionsCalledThroughATable) {
  test::CliResult r = test::Cli("run " + test::Guest("import_through_table"));
  EXPECT_EQ(r.status, 17) << r.err;
  EXPECT_EQ(r.out, "ok\nok\n");
  EXPECT_EQ(r.err.find("moat:"), std::string::npos) << r.err;  // no error (a sanitizer may warn)
}

// ref.func in a module without a table ran into "naming pass failed" (internal).
TEST(Pipeline, RefFuncWithoutATable) {
  test::CliResult r = test::Cli("run " + test::Guest("ref_func_without_table"));
  EXPECT_EQ(r.status, 5) << r.err;
}

TEST(Pipeline, RefusesNonWasm) {
  std::vector<uint8_t> empty;
  EXPECT_NE(ValidateWasm(empty).error().message.find("too short"), std::string::npos);
  std::string text = "#!/bin/sh\necho not wasm\n";
  std::vector<uint8_t> t(text.begin(), text.end());
  EXPECT_NE(ValidateWasm(t).error().message.find("bad magic"), std::string::npos);
  std::vector<uint8_t> component = {0, 'a', 's', 'm', 0x0d, 0, 1, 0};
  EXPECT_NE(ValidateWasm(component).error().message.find("version"), std::string::npos);
}

TEST(Pipeline, HostileNamesArePrintedSafely) {
  // An import whose module name holds a newline, an escape sequence and a NUL.
  const uint8_t wasm[] = {0, 'a', 's',  'm',  1,   0, 0, 0, 1, 4, 1, 0x60, 0, 0,  // type: () -> ()
                          2, 11,  1,                                              // import section
                          5, 'a', '\n', 0x1b, '[', 0,  // module "a\n\x1b[\0"
                          1, 'f', 0,    0};            // "f": func type 0
  auto r = ValidateWasm(std::span<const uint8_t>(wasm, sizeof wasm));
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.error().message;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
  EXPECT_NE(msg.find("a\\x0a\\x1b[\\x00.f"), std::string::npos) << msg;
}

TEST(Pipeline, EveryTruncationIsRefused) {
  auto bytes = GuestBytes("hello");
  ASSERT_GT(bytes.size(), 1000u);
  size_t step = std::max<size_t>(1, bytes.size() / 400);
  for (size_t len = 0; len < bytes.size(); len += step) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(len));
    auto r = ValidateWasm(cut);
    ASSERT_FALSE(r.ok()) << "truncated to " << len;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidModule);
  }
}

TEST(Pipeline, MutatedBytesNeverCrash) {
  auto bytes = GuestBytes("hello");
  std::mt19937 rng(12345);
  int refused = 0, accepted = 0;
  for (int i = 0; i < 400; ++i) {
    auto m = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) m[8 + rng() % (m.size() - 8)] = static_cast<uint8_t>(rng());
    auto r = ValidateWasm(m);
    if (r.ok()) {
      ++accepted;
      EXPECT_TRUE(TranslateWasm(m, {}).ok());  // accepted means translatable
    } else {
      ++refused;
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidModule);
    }
  }
  EXPECT_GT(refused, 0);
  RecordProperty("accepted", accepted);
}

TEST(Pipeline, FuelPassKeepsModulesValid) {
  for (const char* g : {"hello", "sha256", "echo", "sleep", "bad_pointers", "start_section_loop",
                        "deep_recursion", "memory_bomb"}) {
    auto bytes = GuestBytes(g);
    auto metered = TranslateWasm(bytes, {});
    ASSERT_TRUE(metered.ok()) << g << ": " << metered.error().message;
    EXPECT_NE(metered->c_source.find("moat_fuel"), std::string::npos) << g;
    EXPECT_NE(metered->c_source.find("Z_moatZ_fuel_exhausted"), std::string::npos) << g;
    PipelineOptions off;
    off.meter_fuel = false;
    auto plain = TranslateWasm(bytes, off);
    ASSERT_TRUE(plain.ok()) << g;
    EXPECT_EQ(plain->c_source.find("Z_moatZ_fuel_exhausted"), std::string::npos) << g;
  }
}

TEST(Pipeline, ShapeReportsMemory) {
  auto s = ValidateWasm(GuestBytes("big_initial_memory"));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->has_memory);
  EXPECT_EQ(s->initial_pages, 2000u);
}

}  // namespace
}  // namespace moat
