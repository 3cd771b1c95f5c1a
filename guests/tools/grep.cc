// grep: lines matching a POSIX extended regular expression (or a fixed string) in a file
// or below a directory, with context, capped. musl's regexec (TRE) runs in time linear in
// the line for patterns without back-references, so no pattern can backtrack for ages.
//
// Speed (bench/bench_grep.cc): TRE costs a call per line and tens of cycles per byte, so
// without context lines a file is read whole and searched for a literal that every match
// must contain (the fixed string, or one derived from the expression: RequiredLiteral);
// only the lines holding it go through the same line test as the streaming path. Results
// are the same either way.
#include <fcntl.h>
#include <regex.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <deque>

#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kSniffBytes = 8192;
constexpr size_t kMaxLineBytes = 1u << 20;   // longer lines are matched on their first MiB
constexpr size_t kMaxOutputText = 2u << 20;  // text bytes in the result, all matches
constexpr size_t kMaxNamesPerDir = 100000;
constexpr size_t kMaxFiles = 100000;
constexpr size_t kWholeFileBytes = 16u << 20;  // read whole (and prefiltered) up to this

struct Search {
  bool use_regex = true;
  bool ignore_case = false;
  regex_t re;
  std::string needle;  // fixed-string mode (lowercased when ignore_case)
  std::string glob;
  size_t context = 0;
  size_t max_matches = 100;
  size_t max_line = 500;
  json matches = json::array();
  size_t text_bytes = 0;
  size_t files_searched = 0;
  size_t binary_skipped = 0;
  bool truncated = false;
  bool stop = false;  // a cap was reached: the search ends
  // The prefilter: every matching line contains `literal` (in the ASCII-lowercased text
  // when `lower`); empty when none is known.
  std::string literal;
  bool lower = false;
  std::string data, lowered, line;  // buffers reused from file to file
};

// The index of the ']' closing the bracket expression opening at p[i], or npos.
size_t BracketEnd(const std::string& p, size_t i) {
  size_t k = i + 1;
  if (k < p.size() && p[k] == '^') ++k;
  if (k < p.size() && p[k] == ']') ++k;
  while (k < p.size() && p[k] != ']') {
    if (p[k] == '[' && k + 1 < p.size() &&
        (p[k + 1] == ':' || p[k + 1] == '=' || p[k + 1] == '.')) {
      size_t end = p.find(std::string(1, p[k + 1]) + "]", k + 2);
      if (end == std::string::npos) return end;
      k = end + 2;
    } else {
      ++k;
    }
  }
  return k < p.size() ? k : std::string::npos;
}

// The longest byte string every match of the ERE must contain, or "" when none is known.
// Conservative: groups, brackets, '.', anchors and escapes of letters end a run; a
// top-level '|' or anything unexpected gives up. With `icase` the literal is lowercased
// and stops at letters a case-insensitive match might meet as other characters (i, k, s:
// U+0130, U+0131, U+017F, U+212A).
std::string RequiredLiteral(const std::string& p, bool icase) {
  std::string best, run;
  auto flush = [&] {
    if (run.size() > best.size()) best = run;
    run.clear();
  };
  // Skips quantifiers at `i`; returns how many and the minimum of the first one.
  auto quantifiers = [&p](size_t* i, long* first_min) {
    int n = 0;
    while (*i < p.size()) {
      char q = p[*i];
      long min = -1;
      if (q == '*' || q == '?') {
        min = 0;
        ++*i;
      } else if (q == '+') {
        min = 1;
        ++*i;
      } else if (q == '{') {
        size_t close = p.find('}', *i);
        if (close == std::string::npos || close == *i + 1 ||
            !isdigit(static_cast<unsigned char>(p[*i + 1]))) {
          return -1;
        }
        min = strtol(p.c_str() + *i + 1, nullptr, 10);
        *i = close + 1;
      } else {
        break;
      }
      if (n++ == 0) *first_min = min;
    }
    return n;
  };
  size_t i = 0;
  while (i < p.size()) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    std::string atom;
    if (c == '|' || c == ')' || c == '*' || c == '+' || c == '?' || c == '{') return "";
    if (c == '(' || c == '[' || c == '.' || c == '^' || c == '$' ||
        (c == '\\' && i + 1 < p.size() && !ispunct(static_cast<unsigned char>(p[i + 1])))) {
      // Not a literal: skip it whole.
      if (c == '(') {
        int depth = 0;
        for (; i < p.size(); ++i) {
          if (p[i] == '\\') {
            ++i;
          } else if (p[i] == '[') {
            i = BracketEnd(p, i);
            if (i == std::string::npos) return "";
          } else if (p[i] == '(') {
            ++depth;
          } else if (p[i] == ')' && --depth == 0) {
            break;
          }
        }
        if (i >= p.size()) return "";
        ++i;
      } else if (c == '[') {
        i = BracketEnd(p, i);
        if (i == std::string::npos) return "";
        ++i;
      } else {
        i += c == '\\' ? 2 : 1;
      }
      flush();
      long min = 0;
      if (quantifiers(&i, &min) < 0) return "";
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= p.size()) return "";
      atom = p.substr(i + 1, 1);
      i += 2;
    } else {
      size_t len = 1;
      while (i + len < p.size() && c >= 0xC0 &&
             (static_cast<unsigned char>(p[i + len]) & 0xC0) == 0x80) {
        ++len;
      }
      atom = p.substr(i, len);
      i += len;
    }
    long min = 0;
    int n = quantifiers(&i, &min);
    if (n < 0) return "";
    bool letter_risk = false;
    if (icase) {
      for (char& a : atom) {
        a = static_cast<char>(tolower(static_cast<unsigned char>(a)));
        if (a == 'i' || a == 'k' || a == 's' || (a & 0x80)) letter_risk = true;
      }
    }
    if (letter_risk) {
      flush();
      continue;
    }
    if (n == 0) {
      run += atom;
    } else if (n == 1 && min >= 1) {
      run += atom;  // at least once: required here, but what follows may be more of it
      flush();
    } else {
      flush();
    }
  }
  flush();
  return best;
}

bool Matches(Search& s, std::string& line) {
  if (s.use_regex) return regexec(&s.re, line.c_str(), 0, nullptr, 0) == 0;
  if (!s.ignore_case) return line.find(s.needle) != std::string::npos;
  std::string lower(line);
  for (char& c : lower) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return lower.find(s.needle) != std::string::npos;
}

std::string Shown(Search& s, const std::string& line, bool* cut) {
  size_t n = tk::Utf8Prefix(line, s.max_line);
  *cut = n < line.size();
  s.text_bytes += n;
  return line.substr(0, n);
}

// Called with one more match in hand: true when it does not fit.
bool Full(Search& s) {
  if (s.matches.size() >= s.max_matches || s.text_bytes >= kMaxOutputText) {
    s.truncated = s.stop = true;
  }
  return s.stop;
}

// Reads lines of `fd`; each line without its '\n' and at most kMaxLineBytes long.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd), buf_(65536, '\0') {}
  // The first chunk, to sniff for binary content; consumed later by Next.
  bool Fill() { return Refill(); }
  std::string_view Peek() const { return std::string_view(buf_).substr(pos_, end_ - pos_); }
  bool Next(std::string* line) {
    line->clear();
    bool any = false;
    for (;;) {
      if (pos_ == end_ && !Refill()) return any;
      any = true;
      const char* start = buf_.data() + pos_;
      const char* nl = static_cast<const char*>(memchr(start, '\n', end_ - pos_));
      size_t seg = nl ? static_cast<size_t>(nl - start) : end_ - pos_;
      if (line->size() < kMaxLineBytes) {
        line->append(start, std::min(seg, kMaxLineBytes - line->size()));
      }
      pos_ += seg;
      if (nl) {
        ++pos_;
        if (!line->empty() && line->back() == '\r') line->pop_back();
        return true;
      }
    }
  }

 private:
  bool Refill() {
    if (eof_) return false;
    for (;;) {
      ssize_t n = read(fd_, buf_.data(), buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        return false;
      }
      pos_ = 0;
      end_ = static_cast<size_t>(n);
      return true;
    }
  }
  int fd_;
  std::string buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
};

// Newlines in [p, end), eight bytes at a time.
size_t CountNewlines(const char* p, const char* end) {
  size_t n = 0;
  for (; p < end && (reinterpret_cast<uintptr_t>(p) & 7) != 0; ++p) n += *p == '\n';
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  for (; end - p >= 8; p += 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    x ^= kOnes * '\n';                         // a newline is now a zero byte
    uint64_t t = ((x & ~kHigh) + ~kHigh) | x;  // high bit clear exactly for zero bytes
    n += static_cast<size_t>(__builtin_popcountll(~t & kHigh));
  }
  for (; p < end; ++p) n += *p == '\n';
  return n;
}

// Records a matching line (the match count was checked by the caller).
void Record(Search& s, const std::string& shown, uint64_t number, const std::string& line) {
  bool cut = false;
  json m = {{"file", shown}, {"line", number}, {"text", Shown(s, line, &cut)}};
  if (cut) m["line_truncated"] = true;
  s.matches.push_back(std::move(m));
}

// Without context lines: the file whole in memory, candidate lines found by the literal
// prefilter, each tested as the streaming path would (same line bytes, same Matches).
// Returns false when the file turns out larger than `size` (nothing recorded).
bool SearchWhole(Search& s, int fd, size_t size, const std::string& shown) {
  std::string& d = s.data;
  d.resize(size + 1);  // one more byte tells that the file grew
  size_t n = 0;
  while (n < d.size()) {
    ssize_t got = read(fd, d.data() + n, d.size() - n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += static_cast<size_t>(got);
  }
  if (n > size) return false;
  d.resize(n);
  if (n > 0 && !tk::LooksLikeText(std::string_view(d).substr(0, kSniffBytes))) {
    ++s.binary_skipped;
    return true;
  }
  const char* hay = d.data();
  if (s.lower && !s.literal.empty()) {
    s.lowered.resize(n);
    for (size_t i = 0; i < n; ++i) {  // tolower of the C locale: ASCII only
      char c = d[i];
      s.lowered[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
    }
    hay = s.lowered.data();
  }
  const char* base = d.data();
  size_t counted_at = 0, counted = 0;  // newlines in d[0, counted_at)
  size_t pos = 0;
  while (pos < n) {
    size_t start = pos;
    if (!s.literal.empty()) {
      const void* hit = memmem(hay + pos, n - pos, s.literal.data(), s.literal.size());
      if (!hit) break;
      size_t at = static_cast<size_t>(static_cast<const char*>(hit) - hay);
      start = at;
      while (start > pos && base[start - 1] != '\n') --start;
    }
    const char* nl = static_cast<const char*>(memchr(base + start, '\n', n - start));
    size_t stop = nl ? static_cast<size_t>(nl - base) : n;
    // The line as LineReader gives it: at most kMaxLineBytes, a '\r' before '\n' dropped.
    size_t len = std::min(stop - start, kMaxLineBytes);
    if (nl && len > 0 && base[start + len - 1] == '\r') --len;
    s.line.assign(base + start, len);
    if (Matches(s, s.line)) {
      if (Full(s)) break;
      counted += CountNewlines(base + counted_at, base + start);
      counted_at = start;
      Record(s, shown, counted + 1, s.line);
    }
    pos = nl ? stop + 1 : n;
  }
  return true;
}

void SearchFile(Search& s, const std::string& abs, const std::string& shown) {
  int fd = open(abs.c_str(), O_RDONLY);
  if (fd < 0) return;
  ++s.files_searched;
  struct stat st;
  if (s.context == 0 && fstat(fd, &st) == 0 && st.st_size <= static_cast<off_t>(kWholeFileBytes)) {
    bool done = SearchWhole(s, fd, static_cast<size_t>(st.st_size), shown);
    if (done || lseek(fd, 0, SEEK_SET) != 0) {
      close(fd);
      return;
    }
  }
  LineReader r(fd);
  if (r.Fill() && !tk::LooksLikeText(r.Peek().substr(0, kSniffBytes))) {
    ++s.binary_skipped;
    close(fd);
    return;
  }
  std::deque<std::string> before;
  json* open_match = nullptr;  // the last match, still collecting "after" lines
  size_t after_left = 0;
  std::string line;
  uint64_t number = 0;
  while (r.Next(&line)) {
    ++number;
    bool cut = false;
    if (Matches(s, line)) {
      if (Full(s)) break;
      json m = {{"file", shown}, {"line", number}, {"text", Shown(s, line, &cut)}};
      if (cut) m["line_truncated"] = true;
      if (s.context > 0) {
        json b = json::array();
        for (auto& l : before) b.push_back(Shown(s, l, &cut));
        m["before"] = std::move(b);
        m["after"] = json::array();
      }
      s.matches.push_back(std::move(m));
      open_match = &s.matches.back();
      after_left = s.context;
    } else if (open_match && after_left > 0) {
      (*open_match)["after"].push_back(Shown(s, line, &cut));
      --after_left;
    }
    if (s.context > 0) {
      if (line.size() > s.max_line) line.resize(s.max_line + 4);  // Shown cuts it again
      before.push_back(line);
      if (before.size() > s.context) before.pop_front();
    }
  }
  close(fd);
}

void Walk(Search& s, const std::string& abs, const std::string& rel) {
  std::vector<std::string> names;
  bool capped = false;
  if (tk::ListNames(abs, kMaxNamesPerDir, &names, &capped) != 0) return;
  if (capped) s.truncated = true;
  for (const auto& name : names) {
    if (s.stop) return;
    if (s.files_searched >= kMaxFiles) {
      s.truncated = s.stop = true;
      return;
    }
    if (name[0] == '.') continue;  // dotfiles and dot directories (.git, ...)
    std::string child = tk::JoinPath(abs, name);
    std::string child_rel = tk::JoinPath(rel, name);
    struct stat st;
    if (tk::Lstat(child, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      Walk(s, child, child_rel);
    } else if (S_ISREG(st.st_mode)) {
      if (!s.glob.empty()) {
        bool with_dirs = s.glob.find('/') != std::string::npos;
        if (!tk::GlobMatch(s.glob, with_dirs ? child_rel : name)) continue;
      }
      SearchFile(s, child, tk::Display(child));
    }
  }
}

tk::Outcome Grep(const json& j) {
  tk::Args args(j, {"pattern", "path", "glob", "regex", "ignore_case", "context_lines",
                    "max_matches", "max_line_bytes"});
  std::string pattern = args.Str("pattern", true);
  std::string arg = args.Str("path", false, ".");
  Search s;
  s.glob = args.Str("glob", false);
  s.use_regex = args.Bool("regex", true);
  s.ignore_case = args.Bool("ignore_case", false);
  s.context = static_cast<size_t>(args.Int("context_lines", 0, 0, 10));
  s.max_matches = static_cast<size_t>(args.Int("max_matches", 100, 1, 1000));
  s.max_line = static_cast<size_t>(args.Int("max_line_bytes", 500, 16, 4096));
  if (!args.ok()) return args.Error();
  if (pattern.empty()) return tk::Fail("invalid_pattern", "the pattern is empty");
  if (pattern.find('\0') != std::string::npos) {
    return tk::Fail("invalid_pattern", "the pattern contains a NUL character");
  }
  if (pattern.size() > 4096) return tk::Fail("invalid_pattern", "the pattern is over 4 KiB");
  std::string path;
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &path, &bad)) return bad;

  if (s.use_regex) {
    int flags = REG_EXTENDED | REG_NOSUB | (s.ignore_case ? REG_ICASE : 0);
    if (int rc = regcomp(&s.re, pattern.c_str(), flags)) {
      char msg[256];
      regerror(rc, &s.re, msg, sizeof msg);
      return tk::Fail("invalid_pattern", "invalid regular expression: " + std::string(msg));
    }
    s.literal = RequiredLiteral(pattern, s.ignore_case);
  } else {
    s.needle = pattern;
    if (s.ignore_case) {
      for (char& c : s.needle) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    }
    s.literal = s.needle;
  }
  s.lower = s.ignore_case;
  struct stat st;
  int e = tk::Stat(path, &st);
  tk::Outcome out;
  if (e != 0) {
    out = tk::FromErrno(e, path);
  } else if (S_ISDIR(st.st_mode)) {
    Walk(s, path, "");
  } else if (S_ISREG(st.st_mode)) {
    SearchFile(s, path, tk::Display(path));
  } else {
    out = tk::Fail("not_a_file", tk::Display(path) + " is neither a file nor a directory");
  }
  if (s.use_regex) regfree(&s.re);
  if (!out.ok) return out;
  size_t count = s.matches.size();
  return tk::Ok({{"matches", std::move(s.matches)},
                 {"count", count},
                 {"truncated", s.truncated},
                 {"files_searched", s.files_searched},
                 {"binary_files_skipped", s.binary_skipped}});
}

}  // namespace

int main() { return tk::Main(&Grep); }
