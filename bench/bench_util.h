// What the benchmarks share: clocks, percentiles, PASS/MISS lines against a target, and
// dying with the benchmark's name.
#pragma once

#include <errno.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace moat::bench {

using Clock = std::chrono::steady_clock;

inline double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }
inline double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The p-quantile (0..1) of `v`, by nearest rank below.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

// Targets missed so far; main() prints the verdict from it.
inline int g_misses = 0;

// One target line: "what  PASS|MISS  (detail)".
inline void Check(const char* what, bool ok, const std::string& detail) {
  printf("  %-58s %s  (%s)\n", what, ok ? "PASS" : "MISS", detail.c_str());
  if (!ok) ++g_misses;
}

[[noreturn]] inline void Die(const std::string& what) {
  fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  exit(1);
}

}  // namespace moat::bench
