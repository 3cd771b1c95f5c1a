// grep: lines matching a POSIX extended regular expression (or a fixed string) in a file
// or below a directory, with context, capped. musl's regexec (TRE) runs in time linear in
// the line for patterns without back-references, so no pattern can backtrack for ages.
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
};

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

void SearchFile(Search& s, const std::string& abs, const std::string& shown) {
  int fd = open(abs.c_str(), O_RDONLY);
  if (fd < 0) return;
  ++s.files_searched;
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
  } else {
    s.needle = pattern;
    if (s.ignore_case) {
      for (char& c : s.needle) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    }
  }
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
