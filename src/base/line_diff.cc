// Shortest edit scripts between two line sequences by Myers' O(ND) search, in its
// linear-space form (find a point on a shortest path from both ends, then recurse on the two
// halves), and their printing as unified-diff hunks. Lines are interned to integers first, and
// the common head and tail are set aside before any search, so a small edit in a large file
// costs a scan of its bytes and little more.
#include "base/line_diff.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <vector>

#include "base/utf8.h"

namespace moat {
namespace {

constexpr size_t kBinaryProbeBytes = 8192;

// Each line keeps its '\n', so a last line without one differs from the same text with one.
std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    const void* nl = memchr(text.data() + start, '\n', text.size() - start);
    size_t end = nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - text.data()) + 1
                               : text.size();
    lines.push_back(text.substr(start, end - start));
    start = end;
  }
  return lines;
}

// Marks the lines of `a` a shortest edit script deletes and the lines of `b` it inserts. The
// edit graph has a point (x, y) for every pair of prefixes a[0..x), b[0..y); diagonal k holds
// the points with x - y == k. Both directions keep, per diagonal, the furthest x reached with
// the current number of edits: forward the largest, backward the smallest.
class EditSearch {
 public:
  EditSearch(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b, size_t budget,
             std::vector<bool>* deleted, std::vector<bool>* inserted)
      : a_(a), b_(b), budget_(budget), deleted_(*deleted), inserted_(*inserted) {
    forward_.resize(a.size() + b.size() + 3);
    backward_.resize(a.size() + b.size() + 3);
  }

  // False when the search would pass the budget; the marks are then incomplete.
  bool Run() { return Compare(0, Index(a_.size()), 0, Index(b_.size())); }

 private:
  using Index = ptrdiff_t;
  static constexpr Index kUnreachedForward = -1;
  static constexpr Index kUnreachedBackward = std::numeric_limits<Index>::max();

  bool Spend(size_t steps) {
    work_ += steps;
    return work_ <= budget_;
  }

  // The box a[x0..x1) by b[y0..y1).
  bool Compare(Index x0, Index x1, Index y0, Index y1) {
    Index head = 0, tail = 0;
    while (x0 + head < x1 && y0 + head < y1 && a_[x0 + head] == b_[y0 + head]) ++head;
    x0 += head;
    y0 += head;
    while (x1 - tail > x0 && y1 - tail > y0 && a_[x1 - tail - 1] == b_[y1 - tail - 1]) ++tail;
    x1 -= tail;
    y1 -= tail;
    if (!Spend(static_cast<size_t>(head + tail) + 1)) return false;
    if (x0 == x1 || y0 == y1) {
      for (Index x = x0; x < x1; ++x) deleted_[x] = true;
      for (Index y = y0; y < y1; ++y) inserted_[y] = true;
      return true;
    }
    Index xm = 0, ym = 0;
    if (!MiddlePoint(x0, x1, y0, y1, &xm, &ym)) return false;
    return Compare(x0, xm, y0, ym) && Compare(xm, x1, ym, y1);
  }

  // Finds a point of a shortest path through a box whose first and last lines differ on both
  // sides (so the point is neither corner and both halves are smaller).
  bool MiddlePoint(Index x0, Index x1, Index y0, Index y1, Index* xm, Index* ym) {
    const Index n = x1 - x0, m = y1 - y0, delta = n - m;
    const bool odd = (delta & 1) != 0;
    auto same = [&](Index x, Index y) { return a_[x0 + x] == b_[y0 + y]; };
    // Diagonals -m..n live at slots 1..n+m+1; one spare slot each side stays unreached.
    Index* fwd = forward_.data() + m + 1;
    Index* bwd = backward_.data() + m + 1;
    std::fill(fwd - m - 1, fwd + n + 2, kUnreachedForward);
    std::fill(bwd - m - 1, bwd + n + 2, kUnreachedBackward);
    if (!Spend(static_cast<size_t>(n + m) + 3)) return false;

    for (Index d = 0;; ++d) {
      size_t steps = 0;
      // Forward: diagonals -d..d (same parity as d) inside the box.
      Index lo = std::max(-d, -m), hi = std::min(d, n);
      if (((lo - d) & 1) != 0) ++lo;
      if (((hi - d) & 1) != 0) --hi;
      for (Index k = lo; k <= hi; k += 2) {
        Index x;
        if (d == 0) {
          x = 0;
        } else {
          x = kUnreachedForward;
          if (Index from = fwd[k - 1]; from != kUnreachedForward) {
            x = std::min(from + 1, n);  // one line of a deleted (at the right edge: stay there)
          }
          if (Index from = fwd[k + 1]; from != kUnreachedForward) {
            // One line of b inserted; from the bottom edge, the bottom point of diagonal k.
            x = std::max(x, from - (k + 1) < m ? from : from - 1);
          }
        }
        Index y = x - k;
        Index start = x;
        while (x < n && y < m && same(x, y)) ++x, ++y;
        steps += static_cast<size_t>(x - start) + 1;
        fwd[k] = x;
        if (odd && bwd[k] <= x) {  // met the backward search of d - 1 edits
          *xm = x0 + x;
          *ym = y0 + y;
          return Spend(steps);
        }
      }
      // Backward: diagonals delta-d..delta+d (same parity as delta + d) inside the box.
      lo = std::max(delta - d, -m);
      hi = std::min(delta + d, n);
      if (((lo - delta - d) & 1) != 0) ++lo;
      if (((hi - delta - d) & 1) != 0) --hi;
      for (Index k = lo; k <= hi; k += 2) {
        Index x;
        if (d == 0) {
          x = n;
        } else {
          x = kUnreachedBackward;
          if (Index from = bwd[k + 1]; from != kUnreachedBackward) {
            x = std::max(from - 1, Index{0});  // one line of a deleted (at the left edge: stay)
          }
          if (Index from = bwd[k - 1]; from != kUnreachedBackward) {
            // One line of b inserted; from the top edge, the top point of diagonal k.
            x = std::min(x, from - (k - 1) > 0 ? from : from + 1);
          }
        }
        Index y = x - k;
        Index start = x;
        while (x > 0 && y > 0 && same(x - 1, y - 1)) --x, --y;
        steps += static_cast<size_t>(start - x) + 1;
        bwd[k] = x;
        if (!odd && fwd[k] >= x) {  // met the forward search of d edits
          *xm = x0 + fwd[k];
          *ym = y0 + fwd[k] - k;
          return Spend(steps);
        }
      }
      if (!Spend(steps)) return false;
    }
  }

  const std::vector<uint32_t>& a_;
  const std::vector<uint32_t>& b_;
  size_t budget_;
  size_t work_ = 0;
  std::vector<bool>& deleted_;
  std::vector<bool>& inserted_;
  std::vector<Index> forward_, backward_;
};

// A run of deleted lines of a and inserted lines of b between two unchanged lines.
struct Change {
  size_t a = 0, a_len = 0, b = 0, b_len = 0;
};

std::vector<Change> Changes(const std::vector<bool>& deleted, const std::vector<bool>& inserted) {
  std::vector<Change> changes;
  size_t i = 0, j = 0;
  const size_t n = deleted.size(), m = inserted.size();
  while (i < n || j < m) {
    if (i < n && j < m && !deleted[i] && !inserted[j]) {
      ++i;
      ++j;
      continue;
    }
    Change c{i, 0, j, 0};
    while (i < n && deleted[i]) ++i;
    while (j < m && inserted[j]) ++j;
    c.a_len = i - c.a;
    c.b_len = j - c.b;
    if (c.a_len == 0 && c.b_len == 0) break;  // unchanged lines left on one side only: none
    changes.push_back(c);
  }
  return changes;
}

// "l,s" as diff(1) prints it: an empty range names the line before it, a one-line range
// has no count.
void AppendRange(std::string* out, size_t start, size_t len) {
  if (len == 0) {
    *out += std::to_string(start) + ",0";
  } else if (len == 1) {
    *out += std::to_string(start + 1);
  } else {
    *out += std::to_string(start + 1) + "," + std::to_string(len);
  }
}

void AppendLine(std::string* out, char mark, std::string_view line) {
  out->push_back(mark);
  out->append(line);
  if (line.empty() || line.back() != '\n') out->append("\n\\ No newline at end of file\n");
}

std::string Format(const std::vector<std::string_view>& la, const std::vector<std::string_view>& lb,
                   const std::vector<Change>& changes, size_t context, std::string_view a_name,
                   std::string_view b_name) {
  std::string out;
  out.append("--- ").append(a_name).append("\n+++ ").append(b_name).append("\n");
  for (size_t h = 0; h < changes.size();) {
    size_t e = h + 1;
    // Merge while the unchanged lines between two changes are no more than both contexts.
    while (e < changes.size() &&
           changes[e].a - (changes[e - 1].a + changes[e - 1].a_len) <= 2 * context) {
      ++e;
    }
    const Change& first = changes[h];
    const Change& last = changes[e - 1];
    size_t before = std::min(context, first.a);
    size_t a_lo = first.a - before, b_lo = first.b - before;
    size_t after = std::min(context, la.size() - (last.a + last.a_len));
    size_t a_hi = last.a + last.a_len + after, b_hi = last.b + last.b_len + after;
    out += "@@ -";
    AppendRange(&out, a_lo, a_hi - a_lo);
    out += " +";
    AppendRange(&out, b_lo, b_hi - b_lo);
    out += " @@\n";
    size_t cur = a_lo;
    for (size_t c = h; c < e; ++c) {
      const Change& change = changes[c];
      for (; cur < change.a; ++cur) AppendLine(&out, ' ', la[cur]);
      for (size_t i = 0; i < change.a_len; ++i) AppendLine(&out, '-', la[change.a + i]);
      for (size_t j = 0; j < change.b_len; ++j) AppendLine(&out, '+', lb[change.b + j]);
      cur = change.a + change.a_len;
    }
    for (; cur < a_hi; ++cur) AppendLine(&out, ' ', la[cur]);
    h = e;
  }
  return out;
}

// Marks the edits between la[head, head + n) and lb[head, head + m), n and m being the sizes of
// `deleted` and `inserted`; false when the search would pass `budget`.
bool SearchEdits(const std::vector<std::string_view>& la, const std::vector<std::string_view>& lb,
                 size_t head, size_t budget, std::vector<bool>* deleted,
                 std::vector<bool>* inserted) {
  const size_t n = deleted->size(), m = inserted->size();
  // A first search step costs n + m, so a region that large is replaced without interning it.
  if (n + m > budget || n + m > std::numeric_limits<uint32_t>::max()) return false;
  // Lines as integers: equal lines get equal numbers.
  std::unordered_map<std::string_view, uint32_t> ids;
  ids.reserve(n + m);
  auto intern = [&](std::string_view line) {
    return ids.try_emplace(line, static_cast<uint32_t>(ids.size())).first->second;
  };
  std::vector<uint32_t> ia(n), ib(m);
  for (size_t i = 0; i < n; ++i) ia[i] = intern(la[head + i]);
  for (size_t j = 0; j < m; ++j) ib[j] = intern(lb[head + j]);
  return EditSearch(ia, ib, budget, deleted, inserted).Run();
}

}  // namespace

bool LooksBinary(std::string_view bytes) {
  std::string_view probe = bytes.substr(0, kBinaryProbeBytes);
  if (!probe.empty() && memchr(probe.data(), '\0', probe.size()) != nullptr) return true;
  return !IsUtf8(bytes);
}

std::string UnifiedDiff(std::string_view a, std::string_view b, std::string_view a_name,
                        std::string_view b_name, const DiffOptions& options) {
  if (a == b) return "";
  std::vector<std::string_view> la = SplitLines(a), lb = SplitLines(b);
  size_t head = 0;
  while (head < la.size() && head < lb.size() && la[head] == lb[head]) ++head;
  size_t tail = 0;
  while (tail < la.size() - head && tail < lb.size() - head &&
         la[la.size() - 1 - tail] == lb[lb.size() - 1 - tail]) {
    ++tail;
  }
  const size_t n = la.size() - head - tail, m = lb.size() - head - tail;

  std::vector<bool> deleted(n), inserted(m);
  if (!SearchEdits(la, lb, head, options.max_work, &deleted, &inserted)) {
    deleted.assign(n, true);  // every line of the changed region replaced
    inserted.assign(m, true);
  }
  std::vector<Change> changes = Changes(deleted, inserted);
  for (Change& c : changes) {
    c.a += head;
    c.b += head;
  }
  size_t context = options.context > 0 ? static_cast<size_t>(options.context) : 0;
  return Format(la, lb, changes, context, a_name, b_name);
}

}  // namespace moat
