#include <gtest/gtest.h>

#include "base/units.h"
#include "execution/limits.h"

namespace moat {
namespace {

TEST(Units, Sizes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64M"), 64ull << 20);
  EXPECT_EQ(*ParseSize("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseSize("1g"), 1ull << 30);
  EXPECT_EQ(*ParseSize("1.5K"), 1536u);
  for (const char* bad : {"", "M", "-1", "12Q", "1e9", "0x10", "99999999999999999999999T"}) {
    EXPECT_FALSE(ParseSize(bad).ok()) << bad;
  }
}

TEST(Units, Durations) {
  EXPECT_EQ(*ParseDurationUs("5s"), 5'000'000u);
  EXPECT_EQ(*ParseDurationUs("250ms"), 250'000u);
  EXPECT_EQ(*ParseDurationUs("2"), 2'000'000u);
  EXPECT_EQ(*ParseDurationUs("1.5s"), 1'500'000u);
  EXPECT_EQ(*ParseDurationUs("2m"), 120'000'000u);
  for (const char* bad : {"", "s", "5 s", "5x", "-3s"}) {
    EXPECT_FALSE(ParseDurationUs(bad).ok()) << bad;
  }
}

TEST(Units, Counts) {
  EXPECT_EQ(*ParseCount("1000"), 1000u);
  EXPECT_EQ(*ParseCount("10M"), 10'000'000u);
  EXPECT_EQ(*ParseCount("2G"), 2'000'000'000u);
  EXPECT_EQ(*ParseCount("1e9"), 1'000'000'000u);
  EXPECT_EQ(*ParseCount("2.5e10"), 25'000'000'000u);
  for (const char* bad : {"ten", "1e", "1e19", "1e999", "1ee9", "e9", "1e-3"}) {
    EXPECT_FALSE(ParseCount(bad).ok()) << bad;
  }
}

TEST(LimitsBounds, EachFieldHasABound) {
  Limits l;
  EXPECT_TRUE(l.Validate().ok());
  Limits f = l;
  f.fuel = 0;
  EXPECT_FALSE(f.Validate().ok());
  f.fuel = Limits::kMaxFuel + 1;
  EXPECT_FALSE(f.Validate().ok());
  Limits m = l;
  m.memory_bytes = Limits::kMaxMemory + 1;
  EXPECT_FALSE(m.Validate().ok());
  m.memory_bytes = 1000;  // less than one page
  EXPECT_FALSE(m.Validate().ok());
  Limits t = l;
  t.timeout_us = Limits::kMaxTimeoutUs + 1;
  EXPECT_FALSE(t.Validate().ok());
  Limits o = l;
  o.max_output_bytes = Limits::kMaxOutput + 1;
  EXPECT_FALSE(o.Validate().ok());
  auto s = o.Validate();
  EXPECT_NE(s.error().message.find("max-output"), std::string::npos);
}

}  // namespace
}  // namespace moat
