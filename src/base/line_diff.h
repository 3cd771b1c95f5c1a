// Line diffs of two file contents, printed in the unified format of `diff -u`, so what a run
// changed in a file reads (and applies) like any patch.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace moat {

// True when `bytes` should be shown as binary (a NUL byte in the first 8 KiB, or not UTF-8).
bool LooksBinary(std::string_view bytes);

struct DiffOptions {
  int context = 3;  // unchanged lines shown around each change (a negative value counts as 0)
  // Steps the edit search may take before the diff falls back to replacing every line.
  size_t max_work = 20'000'000;
};

// A unified diff of two texts ("--- a_name\n+++ b_name\n@@ -l,s +l,s @@\n..."), "" when the
// texts are equal. Lines are compared whole, as bytes; a last line without '\n' is marked with
// "\ No newline at end of file" as diff(1) does. When the edit search would pass
// `options.max_work` steps (two huge, very different texts), the changed region falls back to
// replacing every line (still a correct diff, not a shortest one). Hunks merge when their
// contexts touch. Callers escape the result before showing it on a terminal.
std::string UnifiedDiff(std::string_view a, std::string_view b, std::string_view a_name,
                        std::string_view b_name, const DiffOptions& options = {});

}  // namespace moat
