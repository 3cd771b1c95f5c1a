// UnifiedDiff and LooksBinary (src/base/line_diff.h): every diff, applied to the old text by
// a strict patcher, gives the new text; hunks, context and the no-newline marker read as
// diff(1) -u prints them; huge unlike texts fall back to a whole replacement in bounded time.
#include "base/line_diff.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace moat {
namespace {

// Lines with their '\n' (the last one may lack it).
std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    lines.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return lines;
}

// "l,s" or "l" of a hunk header -> first line index (0-based) and count.
bool ParseRange(const std::string& text, size_t* first, size_t* count) {
  size_t comma = text.find(',');
  size_t start = std::stoul(text.substr(0, comma));
  *count = comma == std::string::npos ? 1 : std::stoul(text.substr(comma + 1));
  if (*count == 0) {
    *first = start;
  } else {
    if (start == 0) return false;
    *first = start - 1;
  }
  return true;
}

struct Applied {
  bool ok = false;
  std::string text, error;
};

// Applies a unified diff to `a`, checking hunk order, every header count and position, and
// every context and deleted line against `a`: a diff that does not turn `a` into its target
// fails here rather than giving some text.
Applied Apply(std::string_view a, std::string_view diff) {
  Applied r;
  if (diff.empty()) {
    r.ok = true;
    r.text = std::string(a);
    return r;
  }
  if (diff.back() != '\n') return {false, "", "diff does not end with a newline"};
  std::vector<std::string> old_lines = Lines(a), rec = Lines(diff);
  if (rec.size() < 3 || rec[0].rfind("--- ", 0) != 0 || rec[1].rfind("+++ ", 0) != 0) {
    return {false, "", "no file-name lines"};
  }
  size_t pos = 0, out_lines = 0, i = 2;
  while (i < rec.size()) {
    const std::string& h = rec[i++];
    if (h.rfind("@@ -", 0) != 0 || h.size() < 9 || h.substr(h.size() - 4) != " @@\n") {
      return {false, "", "bad hunk header: " + h};
    }
    std::string body = h.substr(4, h.size() - 8);
    size_t plus = body.find(" +");
    if (plus == std::string::npos) return {false, "", "bad hunk header: " + h};
    size_t old_first, old_count, new_first, new_count;
    if (!ParseRange(body.substr(0, plus), &old_first, &old_count) ||
        !ParseRange(body.substr(plus + 2), &new_first, &new_count)) {
      return {false, "", "bad range: " + h};
    }
    if (old_first < pos || old_first + old_count > old_lines.size()) {
      return {false, "", "hunk out of order or past the end: " + h};
    }
    for (; pos < old_first; ++pos, ++out_lines) r.text += old_lines[pos];
    if (new_first != out_lines) return {false, "", "new-side start does not match: " + h};
    std::vector<std::string> old_side, new_side;
    bool last_old = false, last_new = false;
    for (; i < rec.size() && rec[i].rfind("@@", 0) != 0; ++i) {
      const std::string& line = rec[i];
      char mark = line[0];
      std::string text = line.substr(1);
      if (mark == '\\') {
        if (line != "\\ No newline at end of file\n" || (!last_old && !last_new)) {
          return {false, "", "misplaced marker"};
        }
        if (last_old) old_side.back().pop_back();
        if (last_new) new_side.back().pop_back();
        last_old = last_new = false;
        continue;
      }
      if (mark != ' ' && mark != '-' && mark != '+') return {false, "", "bad line: " + line};
      last_old = mark != '+';
      last_new = mark != '-';
      if (last_old) old_side.push_back(text);
      if (last_new) new_side.push_back(text);
    }
    if (old_side.size() != old_count || new_side.size() != new_count) {
      return {false, "", "hunk counts do not match its lines: " + h};
    }
    for (size_t k = 0; k < old_count; ++k) {
      if (old_lines[pos + k] != old_side[k]) return {false, "", "context or deletion differs"};
    }
    pos += old_count;
    for (const std::string& line : new_side) r.text += line;
    out_lines += new_count;
  }
  for (; pos < old_lines.size(); ++pos) r.text += old_lines[pos];
  r.ok = true;
  return r;
}

void ExpectApplies(std::string_view a, std::string_view b, std::string_view diff) {
  Applied applied = Apply(a, diff);
  ASSERT_TRUE(applied.ok) << applied.error << "\n" << diff;
  EXPECT_EQ(applied.text, b) << diff;
}

size_t CountMarked(std::string_view diff, char mark) {
  size_t count = 0;
  std::vector<std::string> rec = Lines(diff);
  for (size_t i = 2; i < rec.size(); ++i) count += rec[i][0] == mark;
  return count;
}

std::string Numbered(const char* prefix, int from, int to) {
  std::string text;
  for (int i = from; i < to; ++i) text += prefix + std::to_string(i) + "\n";
  return text;
}

// diff(1) -U context on the two texts, without its two file-name lines.
std::string SystemDiff(const std::string& a, const std::string& b, int context) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("moat-line-diff-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "a", std::ios::binary) << a;
  std::ofstream(dir / "b", std::ios::binary) << b;
  std::string cmd = "diff -a -U" + std::to_string(context) + " '" + (dir / "a").string() + "' '" +
                    (dir / "b").string() + "'";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::filesystem::remove_all(dir);
  for (int skip = 0; skip < 2 && !out.empty(); ++skip) out.erase(0, out.find('\n') + 1);
  return out;
}

std::string WithoutNames(const std::string& diff) {
  std::string out = diff;
  for (int skip = 0; skip < 2 && !out.empty(); ++skip) out.erase(0, out.find('\n') + 1);
  return out;
}

TEST(UnifiedDiff, EqualTextsGiveNothing) {
  EXPECT_EQ(UnifiedDiff("", "", "a", "b"), "");
  EXPECT_EQ(UnifiedDiff("x\ny\n", "x\ny\n", "a", "b"), "");
  EXPECT_EQ(UnifiedDiff("no newline", "no newline", "a", "b"), "");
  std::string big = Numbered("line ", 0, 10000);
  EXPECT_EQ(UnifiedDiff(big, big, "a", "b"), "");
}

TEST(UnifiedDiff, EmptyAgainstText) {
  EXPECT_EQ(UnifiedDiff("", "x\ny\n", "old", "new"), "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+x\n+y\n");
  EXPECT_EQ(UnifiedDiff("x\ny\n", "", "old", "new"), "--- old\n+++ new\n@@ -1,2 +0,0 @@\n-x\n-y\n");
  EXPECT_EQ(UnifiedDiff("", "x", "a", "b"),
            "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n\\ No newline at end of file\n");
  EXPECT_EQ(UnifiedDiff("\n", "", "a", "b"), "--- a\n+++ b\n@@ -1 +0,0 @@\n-\n");
}

TEST(UnifiedDiff, MissingLastNewlineIsMarked) {
  EXPECT_EQ(UnifiedDiff("a\nb", "a\nc", "a", "b"),
            "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n"
            "+c\n\\ No newline at end of file\n");
  // The same text with and without the last newline differs in that line only.
  EXPECT_EQ(UnifiedDiff("a\nb", "a\nb\n", "a", "b"),
            "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
  EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb", "a", "b"),
            "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file\n");
  // An unchanged last line without a newline is context, marked once.
  EXPECT_EQ(UnifiedDiff("x\nz", "y\nz", "a", "b"),
            "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-x\n+y\n z\n\\ No newline at end of file\n");
}

TEST(UnifiedDiff, CrlfLinesAreComparedWhole) {
  EXPECT_EQ(UnifiedDiff("a\r\nb\r\n", "a\nb\r\n", "a", "b"),
            "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-a\r\n+a\n b\r\n");
  EXPECT_EQ(UnifiedDiff("a\r\n", "a\r\n\r\n", "a", "b"),
            "--- a\n+++ b\n@@ -1 +1,2 @@\n a\r\n+\r\n");
  // A lone '\r' does not end a line.
  EXPECT_EQ(UnifiedDiff("a\rb\n", "a\rc\n", "a", "b"), "--- a\n+++ b\n@@ -1 +1 @@\n-a\rb\n+a\rc\n");
}

TEST(UnifiedDiff, InvalidUtf8IsDiffedAsBytes) {
  std::string a = "ok\n\xff\xfe bad\n\xc3(\n", b = "ok\n\xff\xfd bad\n\xc3(\n";
  EXPECT_EQ(UnifiedDiff(a, b, "a", "b"),
            "--- a\n+++ b\n@@ -1,3 +1,3 @@\n ok\n-\xff\xfe bad\n+\xff\xfd bad\n \xc3(\n");
  EXPECT_EQ(UnifiedDiff(std::string("a\0b\n", 4), std::string("a\0c\n", 4), "a", "b"),
            std::string("--- a\n+++ b\n@@ -1 +1 @@\n-a\0b\n+a\0c\n", 34));
}

TEST(UnifiedDiff, OneChangeAtStartMiddleEnd) {
  std::string a = Numbered("l", 1, 21);
  std::string start = a, middle = a, end = a;
  start.replace(0, 3, "L1\n");
  middle.replace(middle.find("l10\n"), 4, "L10\n");
  end.replace(end.find("l20\n"), 4, "L20\n");
  EXPECT_EQ(UnifiedDiff(a, start, "a", "b"),
            "--- a\n+++ b\n@@ -1,4 +1,4 @@\n-l1\n+L1\n l2\n l3\n l4\n");
  EXPECT_EQ(UnifiedDiff(a, middle, "a", "b"),
            "--- a\n+++ b\n@@ -7,7 +7,7 @@\n l7\n l8\n l9\n-l10\n+L10\n l11\n l12\n l13\n");
  EXPECT_EQ(UnifiedDiff(a, end, "a", "b"),
            "--- a\n+++ b\n@@ -17,4 +17,4 @@\n l17\n l18\n l19\n-l20\n+L20\n");
}

// Changes at lines 2 and `second` of a 30-line text.
std::string TwoChanges(int second) {
  std::string text;
  for (int i = 1; i <= 30; ++i) {
    text += (i == 2 || i == second ? "X" : "l") + std::to_string(i) + "\n";
  }
  return text;
}

TEST(UnifiedDiff, HunksMergeWhenContextsTouch) {
  std::string a = Numbered("l", 1, 31);
  // Six unchanged lines between the changes: both contexts cover them, one hunk.
  std::string merged = UnifiedDiff(a, TwoChanges(9), "a", "b");
  EXPECT_EQ(WithoutNames(merged),
            "@@ -1,12 +1,12 @@\n l1\n-l2\n+X2\n l3\n l4\n l5\n l6\n l7\n l8\n-l9\n+X9\n"
            " l10\n l11\n l12\n");
  // Seven: the contexts leave a line between them, two hunks.
  std::string split = UnifiedDiff(a, TwoChanges(10), "a", "b");
  EXPECT_EQ(WithoutNames(split),
            "@@ -1,5 +1,5 @@\n l1\n-l2\n+X2\n l3\n l4\n l5\n"
            "@@ -7,7 +7,7 @@\n l7\n l8\n l9\n-l10\n+X10\n l11\n l12\n l13\n");
}

TEST(UnifiedDiff, ZeroContext) {
  std::string a = Numbered("l", 1, 11);
  std::string b = a;
  b.replace(b.find("l5\n"), 3, "X5\n");
  b.insert(b.find("l8\n") + 3, "new\nnew2\n");
  b.erase(b.find("l10\n"), 4);
  DiffOptions zero{.context = 0};
  EXPECT_EQ(WithoutNames(UnifiedDiff(a, b, "a", "b", zero)),
            "@@ -5 +5 @@\n-l5\n+X5\n@@ -8,0 +9,2 @@\n+new\n+new2\n@@ -10 +11,0 @@\n-l10\n");
  DiffOptions negative{.context = -4};
  EXPECT_EQ(UnifiedDiff(a, b, "a", "b", negative), UnifiedDiff(a, b, "a", "b", zero));
  // Adjacent changes with no unchanged line between them stay one hunk.
  EXPECT_EQ(WithoutNames(UnifiedDiff("a\nb\n", "c\nd\n", "a", "b", zero)),
            "@@ -1,2 +1,2 @@\n-a\n-b\n+c\n+d\n");
}

TEST(UnifiedDiff, AgreesWithDiffUtility) {
  struct Case {
    std::string a, b;
    int context;
  };
  std::string lines = Numbered("l", 1, 31);
  std::string block = lines;
  block.replace(block.find("l14\n"), 12, "n1\nn2\n");  // l14..l16 -> two new lines
  block += "tail\n";
  std::vector<Case> cases = {
      {"", "x\ny\n", 3},
      {"x\ny\n", "", 3},
      {"a\nb", "a\nc", 3},
      {"a\nb\n", "a\nb", 3},
      {"a\r\nb\r\nc\r\n", "a\nb\r\nc\r\n", 3},
      {"ok\n\xff\xfe\n\xc3(\n", "ok\n\xff\xfd\n\xc3(\n", 3},
      {lines, TwoChanges(9), 3},
      {lines, TwoChanges(10), 3},
      {lines, TwoChanges(10), 0},
      {lines, TwoChanges(10), 1},
      {lines, block, 3},
      {lines, block, 0},
      {lines, block, 7},
  };
  for (const Case& c : cases) {
    std::string ours = UnifiedDiff(c.a, c.b, "a", "b", {.context = c.context});
    std::string theirs = SystemDiff(c.a, c.b, c.context);
    ASSERT_FALSE(theirs.empty()) << "diff(1) gave nothing for:\n" << c.a << "\n---\n" << c.b;
    EXPECT_EQ(WithoutNames(ours), theirs) << "context " << c.context;
  }
}

TEST(UnifiedDiff, RandomTextsApplyAndAreShortest) {
  std::mt19937 rng(20251208);
  const std::vector<std::string> pool = {"a\n", "b\n",  "c\n",   "d\n",
                                         "\n",  "\r\n", "a\r\n", "\xff\n"};
  auto random_text = [&](size_t max_lines) {
    std::string text;
    size_t count = rng() % (max_lines + 1);
    for (size_t i = 0; i < count; ++i) text += pool[rng() % pool.size()];
    if (rng() % 4 == 0) text += rng() % 2 ? "a" : "b";  // a last line without '\n'
    return text;
  };
  auto mutate = [&](const std::string& text) {
    std::vector<std::string> lines = Lines(text);
    for (int edits = rng() % 4; edits > 0; --edits) {
      size_t at = lines.empty() ? 0 : rng() % (lines.size() + 1);
      std::string line = pool[rng() % pool.size()];
      switch (rng() % 3) {
        case 0: lines.insert(lines.begin() + at, line); break;
        case 1:
          if (at < lines.size()) lines.erase(lines.begin() + at);
          break;
        default:
          if (at < lines.size()) lines[at] = line;
          break;
      }
    }
    std::string out;
    for (const std::string& line : lines) out += line.back() == '\n' ? line : line + "\n";
    if (rng() % 4 == 0) out += "b";
    return out;
  };
  size_t fallbacks = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string a = random_text(12);
    std::string b = rng() % 2 ? mutate(a) : random_text(12);
    DiffOptions options{.context = static_cast<int>(rng() % 5)};
    bool tight = round % 5 == 0;
    if (tight) options.max_work = rng() % 40;
    std::string diff = UnifiedDiff(a, b, "a", "b", options);
    ASSERT_EQ(diff.empty(), a == b) << a << "\n---\n" << b;
    ExpectApplies(a, b, diff);
    if (HasFatalFailure()) return;
    // The edit count of a shortest script: lines of both minus twice their longest common
    // subsequence.
    std::vector<std::string> la = Lines(a), lb = Lines(b);
    std::vector<std::vector<size_t>> lcs(la.size() + 1, std::vector<size_t>(lb.size() + 1));
    for (size_t i = la.size(); i-- > 0;) {
      for (size_t j = lb.size(); j-- > 0;) {
        lcs[i][j] = la[i] == lb[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    size_t shortest = la.size() + lb.size() - 2 * lcs[0][0];
    size_t edits = CountMarked(diff, '-') + CountMarked(diff, '+');
    if (tight) {
      EXPECT_GE(edits, shortest);
      fallbacks += edits > shortest;
    } else {
      EXPECT_EQ(edits, shortest) << a << "\n---\n" << b << "\n" << diff;
    }
  }
  EXPECT_GT(fallbacks, 0u);  // the tight budgets did cut some searches short
}

// Longer texts over few distinct lines: deep searches with many equally short scripts.
TEST(UnifiedDiff, LongerRandomTextsAreShortest) {
  std::mt19937 rng(4242);
  for (int round = 0; round < 300; ++round) {
    size_t alphabet = 2 + rng() % 4;
    auto random_text = [&](size_t lines) {
      std::string text;
      for (size_t i = 0; i < lines; ++i)
        text += std::string(1, static_cast<char>('a' + rng() % alphabet)) + "\n";
      return text;
    };
    std::string a = random_text(rng() % 150), b = random_text(rng() % 150);
    std::string diff = UnifiedDiff(a, b, "a", "b", {.max_work = size_t{1} << 40});
    ExpectApplies(a, b, diff);
    if (HasFatalFailure()) return;
    std::vector<std::string> la = Lines(a), lb = Lines(b);
    std::vector<std::vector<size_t>> lcs(la.size() + 1, std::vector<size_t>(lb.size() + 1));
    for (size_t i = la.size(); i-- > 0;) {
      for (size_t j = lb.size(); j-- > 0;) {
        lcs[i][j] = la[i] == lb[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    EXPECT_EQ(CountMarked(diff, '-') + CountMarked(diff, '+'),
              la.size() + lb.size() - 2 * lcs[0][0]);
  }
}

TEST(UnifiedDiff, SmallEditInLargeFileIsFast) {
  std::string a;
  for (int i = 0; i < 10000; ++i)
    a += "    value_" + std::to_string(i) + " = compute(" + std::to_string(i) + ");\n";
  std::string b = a;
  b.replace(b.find("value_5000 "), 10, "VALUE_5000");
  auto start = std::chrono::steady_clock::now();
  std::string diff = UnifiedDiff(a, b, "a", "b");
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("ms", std::to_string(ms));
  printf("10,000-line file, one line changed: %.3f ms\n", ms);
  EXPECT_EQ(WithoutNames(diff).substr(0, 22), "@@ -4998,7 +4998,7 @@\n");
  EXPECT_EQ(CountMarked(diff, '-'), 1u);
  EXPECT_EQ(CountMarked(diff, '+'), 1u);
  ExpectApplies(a, b, diff);
  EXPECT_LT(ms, 100.0);  // generous for sanitizer builds; an unstripped search takes far longer
}

TEST(UnifiedDiff, HugeUnlikeTextsFallBackToReplacement) {
  std::string a = Numbered("old ", 0, 50000), b = Numbered("new ", 0, 50000);
  auto start = std::chrono::steady_clock::now();
  std::string diff = UnifiedDiff(a, b, "a", "b");
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  printf("50,000 unlike lines each side: %.1f ms\n", ms);
  EXPECT_EQ(CountMarked(diff, '-'), 50000u);
  EXPECT_EQ(CountMarked(diff, '+'), 50000u);
  ExpectApplies(a, b, diff);
  EXPECT_LT(ms, 5000.0);

  // Every other line changed: the shortest script keeps 25,000 lines, but finding it passes
  // the budget, so the whole region is replaced.
  std::string c;
  for (int i = 0; i < 50000; ++i) c += (i % 2 ? "new " : "old ") + std::to_string(i) + "\n";
  diff = UnifiedDiff(a, c, "a", "b");
  EXPECT_EQ(CountMarked(diff, '-'), 49999u);  // the first line is common to both
  EXPECT_EQ(CountMarked(diff, '+'), 49999u);
  ExpectApplies(a, c, diff);
}

TEST(UnifiedDiff, WorkBudgetDecidesBetweenSearchAndReplacement) {
  std::string a = Numbered("l", 0, 2000), b;
  for (int i = 0; i < 2000; ++i) b += (i % 2 ? "x" : "l") + std::to_string(i) + "\n";
  std::string searched = UnifiedDiff(a, b, "a", "b", {.max_work = 100'000'000});
  std::string replaced = UnifiedDiff(a, b, "a", "b", {.max_work = 1000});
  EXPECT_EQ(CountMarked(searched, '-'), 1000u);
  EXPECT_EQ(CountMarked(searched, ' '), 1000u);  // the 1,000 even lines
  EXPECT_EQ(CountMarked(replaced, '-'), 1999u);
  EXPECT_EQ(CountMarked(replaced, ' '), 1u);
  ExpectApplies(a, b, searched);
  ExpectApplies(a, b, replaced);
}

TEST(UnifiedDiff, MegabyteOfBinaryIsDiffedAsLines) {
  std::mt19937 rng(7);
  std::string a(1 << 20, '\0');
  for (char& c : a) {
    unsigned r = rng() % 64;
    c = r == 0 ? '\n' : r == 1 ? '\0' : static_cast<char>(rng());
  }
  std::string b = a;
  for (int i = 0; i < 20; ++i) b[rng() % b.size()] ^= 0x5a;
  b.erase(1000, 5000);
  EXPECT_TRUE(LooksBinary(a));
  auto start = std::chrono::steady_clock::now();
  std::string diff = UnifiedDiff(a, b, "a", "b");
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  printf("1 MiB binary-ish, scattered edits: %.1f ms\n", ms);
  ExpectApplies(a, b, diff);
  EXPECT_LT(ms, 5000.0);
}

TEST(LooksBinary, NulInProbeOrInvalidUtf8) {
  EXPECT_FALSE(LooksBinary(""));
  EXPECT_FALSE(LooksBinary("plain text\ncaf\xC3\xA9\r\n\t\x1b[0m"));
  EXPECT_TRUE(LooksBinary(std::string("\0", 1)));
  EXPECT_TRUE(LooksBinary(std::string("text\0more", 9)));
  EXPECT_TRUE(LooksBinary("caf\xE9"));       // Latin-1
  EXPECT_TRUE(LooksBinary("cut \xE2\x82"));  // a character cut short at the end
  std::string late_nul(8192, 'a');
  late_nul += '\0';  // past the probe, and a NUL is well-formed UTF-8
  EXPECT_FALSE(LooksBinary(late_nul));
  std::string edge(8191, 'a');
  edge += '\0';
  EXPECT_TRUE(LooksBinary(edge));
  std::string late_bad(100000, 'a');
  late_bad += "\xff";
  EXPECT_TRUE(LooksBinary(late_bad));
}

}  // namespace
}  // namespace moat
