// apply_patch: applies a unified diff (as `diff -u` and `git diff` write it) to the
// workspace, all or nothing.
//
// 1. Parse the whole patch: file sections (`--- OLD` / `+++ NEW`), hunks
//    (`@@ -l,s +l,s @@`), their lines, `\ No newline at end of file`. Any malformation is
//    invalid_arguments naming the patch line.
// 2. Apply every hunk to every file in memory. A hunk matches exactly at its stated line,
//    or at the nearest line within kMaxOffset lines of it (the offset found by earlier
//    hunks of the file carries over, as in GNU patch); `fuzz` > 0 lets up to that many
//    context lines at either end of a hunk go unmatched. A hunk that matches nowhere is
//    patch_failed and nothing is written.
// 3. Write: every new content first goes to a temporary file beside its target (this is
//    where quotas bite; on failure the temporaries go and the workspace is as before);
//    then renames only: each replaced or deleted original moves to a hidden backup, each
//    temporary to its target, and a failed rename undoes the renames before it. The
//    backups are removed last.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kMaxFileBytes = 16u << 20;   // per file, as edit_file
constexpr size_t kMaxTotalBytes = 64u << 20;  // all files of a patch, old and new
constexpr size_t kMaxFiles = 1000;
constexpr int64_t kMaxOffset = 200;  // lines a hunk may move from its stated position
constexpr size_t kShownBytes = 80;   // of a line quoted in a message

// --- The parsed patch ----------------------------------------------------------------------

struct HunkLine {
  char kind;  // ' ', '-' or '+'
  std::string_view text;
  bool no_eol = false;  // followed by "\ No newline at end of file"
};

struct Hunk {
  int64_t old_start = 0, old_count = 1, new_start = 0, new_count = 1;
  size_t patch_line = 0;
  std::vector<HunkLine> lines;
};

struct Section {
  std::string old_name, new_name;             // as written, quotes and timestamps removed
  bool old_epoch = false, new_epoch = false;  // `diff -N`: the timestamp of a missing file
  size_t patch_line = 0;
  std::vector<Hunk> hunks;
};

std::string Quote(std::string_view s) {
  size_t n = tk::Utf8Prefix(s, kShownBytes);
  std::string out = "'" + std::string(s.substr(0, n));
  if (n < s.size()) out += "...";
  return out + "'";
}

class Parser {
 public:
  explicit Parser(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
      size_t j = text.find('\n', i);
      if (j == std::string_view::npos) j = text.size();
      lines_.push_back(text.substr(i, j - i));
      i = j + 1;
    }
  }

  // On failure returns false with the message in *error.
  bool Parse(std::vector<Section>* out, std::string* error) {
    size_t i = 0;
    while (i < lines_.size()) {
      std::string_view l = lines_[i];
      if (StartsWith(l, "--- ") && i + 1 < lines_.size() && StartsWith(lines_[i + 1], "+++ ")) {
        Section s;
        s.patch_line = i + 1;
        if (!Name(l.substr(4), &s.old_name, &s.old_epoch, i, error) ||
            !Name(lines_[i + 1].substr(4), &s.new_name, &s.new_epoch, i + 1, error)) {
          return false;
        }
        i += 2;
        for (;;) {
          // Blank lines between hunks are tolerated.
          size_t k = i;
          while (k < lines_.size() && (lines_[k].empty() || lines_[k] == "\r")) ++k;
          if (k >= lines_.size() || !StartsWith(lines_[k], "@@")) break;
          i = k;
          Hunk h;
          if (!ParseHunk(&i, &h, error)) return false;
          s.hunks.push_back(std::move(h));
        }
        if (s.hunks.empty()) {
          return Problem(s.patch_line, "the file header has no hunks (expected '@@ -l,s +l,s @@')",
                         error);
        }
        if (out->size() >= kMaxFiles) {
          return Problem(s.patch_line, "more than 1000 files in one patch", error);
        }
        out->push_back(std::move(s));
        continue;
      }
      if (StartsWith(l, "--- ")) {
        return Problem(i + 1, "the '--- ' header is not followed by a '+++ ' header", error);
      }
      if (StartsWith(l, "+++ ")) {
        return Problem(i + 1, "a '+++ ' header without the '--- ' header before it", error);
      }
      if (StartsWith(l, "@@")) return Problem(i + 1, "a hunk before any file header", error);
      if (StartsWith(l, "rename from ") || StartsWith(l, "copy from ")) {
        return Problem(i + 1,
                       "renames and copies are not supported (use the move tool, then a patch "
                       "of the contents)",
                       error);
      }
      if (StartsWith(l, "GIT binary patch") ||
          (StartsWith(l, "Binary files ") && l.find(" differ") != std::string_view::npos)) {
        return Problem(i + 1, "binary patches are not supported", error);
      }
      ++i;  // anything else between sections: "diff --git", "index ...", mail text, ...
    }
    if (out->empty()) {
      *error = "no file headers ('--- OLD' then '+++ NEW') in the patch";
      return false;
    }
    return true;
  }

 private:
  static bool StartsWith(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
  }
  static bool Problem(size_t line, const std::string& what, std::string* error) {
    *error = "patch line " + std::to_string(line) + ": " + what;
    return false;
  }

  // "NAME[\tTIMESTAMP]" or a C-quoted "\"NAME\""; a trailing '\r' is not part of it.
  bool Name(std::string_view rest, std::string* name, bool* epoch, size_t i, std::string* error) {
    if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
    name->clear();
    std::string_view after;
    if (!rest.empty() && rest[0] == '"') {
      size_t k = 1;
      for (; k < rest.size() && rest[k] != '"'; ++k) {
        char c = rest[k];
        if (c != '\\') {
          name->push_back(c);
          continue;
        }
        if (++k >= rest.size()) break;
        c = rest[k];
        if (c >= '0' && c <= '7') {
          int v = 0;
          for (int d = 0; d < 3 && k < rest.size() && rest[k] >= '0' && rest[k] <= '7'; ++d) {
            v = v * 8 + (rest[k++] - '0');
          }
          --k;
          name->push_back(static_cast<char>(v));
        } else {
          const char* from = "ntr\"\\abfv";
          const char* to = "\n\t\r\"\\\a\b\f\v";
          const char* p = strchr(from, c);
          if (!p || c == '\0') return Problem(i + 1, "bad escape in a quoted file name", error);
          name->push_back(to[p - from]);
        }
      }
      if (k >= rest.size()) return Problem(i + 1, "unterminated quoted file name", error);
      after = rest.substr(k + 1);
    } else {
      size_t tab = rest.find('\t');
      *name = std::string(rest.substr(0, tab));
      if (tab != std::string_view::npos) after = rest.substr(tab);
      // Without a tab, `diff` may still have put a timestamp after spaces; git never does.
      while (!name->empty() && name->back() == ' ') name->pop_back();
    }
    while (!after.empty() && (after[0] == '\t' || after[0] == ' ')) after.remove_prefix(1);
    *epoch = StartsWith(after, "1970-01-01 ") || StartsWith(after, "1969-12-31 ");
    if (name->empty()) return Problem(i + 1, "empty file name in the header", error);
    if (name->find('\0') != std::string::npos) {
      return Problem(i + 1, "a file name with a NUL character", error);
    }
    return true;
  }

  // "l" or "l,s" → start and count; false when malformed.
  static bool Range(std::string_view s, int64_t* start, int64_t* count) {
    auto number = [](std::string_view d, int64_t* v) {
      if (d.empty() || d.size() > 9) return false;
      *v = 0;
      for (char c : d) {
        if (c < '0' || c > '9') return false;
        *v = *v * 10 + (c - '0');
      }
      return true;
    };
    size_t comma = s.find(',');
    if (comma == std::string_view::npos) {
      *count = 1;
      return number(s, start);
    }
    return number(s.substr(0, comma), start) && number(s.substr(comma + 1), count);
  }

  bool ParseHunk(size_t* at, Hunk* h, std::string* error) {
    size_t i = *at;
    std::string_view l = lines_[i];
    h->patch_line = i + 1;
    // "@@ -l[,s] +l[,s] @@[ section heading]"
    bool ok = StartsWith(l, "@@ -");
    size_t space = ok ? l.find(' ', 4) : std::string_view::npos;
    ok = ok && space != std::string_view::npos &&
         Range(l.substr(4, space - 4), &h->old_start, &h->old_count);
    size_t plus_end = ok ? l.find(' ', space + 1) : std::string_view::npos;
    ok = ok && l.size() > space + 1 && l[space + 1] == '+' && plus_end != std::string_view::npos &&
         Range(l.substr(space + 2, plus_end - space - 2), &h->new_start, &h->new_count) &&
         l.substr(plus_end + 1, 2) == "@@";
    if (!ok) {
      return Problem(i + 1, "bad hunk header " + Quote(l) + " (expected '@@ -l,s +l,s @@')", error);
    }
    if (h->old_count > 0 && h->old_start == 0) {
      return Problem(i + 1, "a hunk that removes or keeps lines cannot start at line 0", error);
    }
    int64_t old_left = h->old_count, new_left = h->new_count;
    ++i;
    auto counts = [&] {
      return "the header at line " + std::to_string(h->patch_line) + " counts " +
             std::to_string(h->old_count) + " old and " + std::to_string(h->new_count) +
             " new lines";
    };
    while (old_left > 0 || new_left > 0) {
      if (i >= lines_.size()) {
        return Problem(lines_.size(),
                       "the hunk is truncated: " + std::to_string(old_left) + " old and " +
                           std::to_string(new_left) + " new lines missing (" + counts() + ")",
                       error);
      }
      l = lines_[i];
      // An empty line is an empty context line whose leading space got lost.
      char kind = l.empty() ? ' ' : l[0];
      std::string_view text = l.empty() ? l : l.substr(1);
      if (kind == '\\') {
        if (h->lines.empty()) {
          return Problem(i + 1, "'\\ No newline at end of file' before any line", error);
        }
        h->lines.back().no_eol = true;
        ++i;
        continue;
      }
      bool next_file =
          StartsWith(l, "--- ") && i + 1 < lines_.size() && StartsWith(lines_[i + 1], "+++ ");
      if ((kind != ' ' && kind != '-' && kind != '+') || next_file) {
        return Problem(i + 1,
                       "unexpected " + Quote(l) +
                           " inside a hunk (lines start with ' ', '-' or '+'): the hunk ends "
                           "early; " +
                           counts(),
                       error);
      }
      if ((kind != '+' && old_left == 0) || (kind != '-' && new_left == 0)) {
        return Problem(i + 1,
                       "more " + std::string(kind == '+' ? "new" : "old") +
                           " lines than the hunk header says: " + counts(),
                       error);
      }
      if (kind != '+') --old_left;
      if (kind != '-') --new_left;
      h->lines.push_back(HunkLine{kind, text});
      ++i;
    }
    if (i < lines_.size() && StartsWith(lines_[i], "\\")) {
      h->lines.back().no_eol = true;
      ++i;
    }
    // A line that still looks like part of the hunk means the counts are wrong. ("-- " is
    // the signature separator of `git format-patch` mail.)
    if (i < lines_.size()) {
      std::string_view next = lines_[i];
      bool header =
          StartsWith(next, "--- ") && i + 1 < lines_.size() && StartsWith(lines_[i + 1], "+++ ");
      if (!header && next != "-- " && !next.empty() &&
          (next[0] == ' ' || next[0] == '-' || next[0] == '+')) {
        return Problem(i + 1, "more lines than the hunk header says: " + counts(), error);
      }
    }
    *at = i;
    return true;
  }

  std::vector<std::string_view> lines_;
};

// --- Files in memory -----------------------------------------------------------------------

struct Line {
  std::string text;  // without the '\n'
  bool eol = true;
};

std::vector<Line> SplitLines(std::string_view s) {
  std::vector<Line> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find('\n', i);
    if (j == std::string_view::npos) {
      out.push_back(Line{std::string(s.substr(i)), false});
      break;
    }
    out.push_back(Line{std::string(s.substr(i, j - i)), true});
    i = j + 1;
  }
  return out;
}

std::string JoinLines(const std::vector<Line>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l.text;
    if (l.eol) out.push_back('\n');
  }
  return out;
}

struct FileState {
  std::string path;  // absolute guest path
  bool existed = false;
  std::string original;
  bool exists = false;
  std::string current;
  // What the result says.
  size_t hunks = 0, added = 0, removed = 0;
  json offsets = json::array();
  json fuzzed = json::array();  // hunk numbers that needed fuzz
};

enum class Op { kModify, kCreate, kDelete };

// Strips `n` leading components; false when there are not that many.
bool Strip(std::string* name, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    size_t slash = name->find('/');
    if (slash == std::string::npos) return false;
    size_t next = name->find_first_not_of('/', slash);
    if (next == std::string::npos) return false;
    name->erase(0, next);
  }
  return true;
}

// Loads a file for patching (once per patch); the state says whether it exists.
tk::Outcome Load(const std::string& path, FileState* f, size_t* total) {
  f->path = path;
  struct stat st;
  int e = tk::Lstat(path, &st);
  if (e == ENOENT) return tk::Ok(nullptr);
  if (e != 0) return tk::FromErrno(e, path);
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return tk::FromErrno(errno, path);
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return tk::Fail("not_a_file", tk::Display(path) + " is not a regular file");
  }
  e = tk::ReadUpTo(fd, kMaxFileBytes + 1, &f->original);
  close(fd);
  if (e != 0) return tk::FromErrno(e, path);
  if (f->original.size() > kMaxFileBytes) {
    return tk::Fail("too_large", tk::Display(path) + " is larger than 16 MiB");
  }
  *total += f->original.size();
  if (*total > kMaxTotalBytes) {
    return tk::Fail("too_large", "the files of the patch exceed 64 MiB together");
  }
  if (!tk::LooksLikeText(std::string_view(f->original).substr(0, 8192))) {
    return tk::Fail("binary_file", tk::Display(path) + " looks like a binary file");
  }
  f->existed = f->exists = true;
  f->current = f->original;
  return tk::Ok(nullptr);
}

// Applies the hunks of one section to `f->current`.
tk::Outcome ApplySection(const Section& s, Op op, int64_t fuzz, FileState* f) {
  const std::string shown = tk::Display(f->path);
  std::vector<Line> lines = SplitLines(f->current);
  // Patches written for LF lines still apply to a CRLF file (a model rarely keeps the
  // '\r's): when every line of the file ends in "\r\n" and no line of the patch ends in
  // '\r', lines compare without their '\r' and added lines get one.
  bool crlf = !lines.empty() && std::all_of(lines.begin(), lines.end(), [](const Line& l) {
    return !l.eol || (!l.text.empty() && l.text.back() == '\r');
  });
  for (const auto& h : s.hunks) {
    for (const auto& hl : h.lines) {
      if (!hl.text.empty() && hl.text.back() == '\r') crlf = false;
    }
  }
  auto same = [crlf](const Line& file, const HunkLine& hl) {
    std::string_view t = file.text;
    if (crlf && file.eol && !t.empty() && t.back() == '\r') t.remove_suffix(1);
    return t == hl.text && file.eol == !hl.no_eol;
  };

  std::vector<Line> out;
  size_t cursor = 0;    // lines before it are already in `out`
  int64_t carried = 0;  // offset of the previous hunk
  for (size_t hi = 0; hi < s.hunks.size(); ++hi) {
    const Hunk& h = s.hunks[hi];
    std::vector<const HunkLine*> old_side;
    for (const auto& hl : h.lines) {
      if (hl.kind != '+') old_side.push_back(&hl);
    }
    // Where the old lines start, 0-based: a hunk without old lines inserts after line l.
    int64_t expected = h.old_count == 0 ? h.old_start : h.old_start - 1;
    auto matches_at = [&](int64_t pos, size_t lead, size_t trail) {
      if (pos < static_cast<int64_t>(cursor)) return false;
      size_t n = old_side.size() - lead - trail;
      if (static_cast<size_t>(pos) + n > lines.size()) return false;
      for (size_t k = 0; k < n; ++k) {
        if (!same(lines[pos + k], *old_side[lead + k])) return false;
      }
      return true;
    };
    // Context lines at each end, which fuzz may leave unmatched.
    size_t lead_ctx = 0, trail_ctx = 0;
    while (lead_ctx < h.lines.size() && h.lines[lead_ctx].kind == ' ') ++lead_ctx;
    while (trail_ctx < h.lines.size() && h.lines[h.lines.size() - 1 - trail_ctx].kind == ' ') {
      ++trail_ctx;
    }
    int64_t found = -1;
    size_t lead = 0, trail = 0;
    for (int64_t f_level = 0; f_level <= fuzz && found < 0; ++f_level) {
      lead = std::min<size_t>(lead_ctx, static_cast<size_t>(f_level));
      trail = std::min<size_t>(trail_ctx, static_cast<size_t>(f_level));
      if (lead + trail > old_side.size()) break;
      if (f_level > 0 && lead == 0 && trail == 0) break;
      int64_t center = expected + carried;
      for (int64_t d = 0; d <= kMaxOffset && found < 0; ++d) {
        for (int64_t pos : {center + d, center - d}) {
          if (d == 0 && pos != center) continue;
          if (old_side.empty() && d > 0) break;  // a pure insertion goes where it says
          if (matches_at(pos + static_cast<int64_t>(lead), lead, trail)) {
            found = pos;
            break;
          }
        }
      }
    }
    if (found < 0) {
      // Name the first line that differs at the stated position.
      std::string detail;
      int64_t at = std::max<int64_t>(expected, 0);
      for (size_t k = 0; k < old_side.size(); ++k) {
        size_t fl = static_cast<size_t>(at) + k;
        if (fl < lines.size() && same(lines[fl], *old_side[k])) continue;
        std::string want = Quote(old_side[k]->text);
        if (old_side[k]->no_eol) want += " (without a newline at the end of the file)";
        std::string got = "the end of the file";
        if (fl < lines.size()) {
          std::string_view t = lines[fl].text;
          if (crlf && lines[fl].eol && !t.empty() && t.back() == '\r') t.remove_suffix(1);
          got = Quote(t) + " at line " + std::to_string(fl + 1);
          if (!lines[fl].eol)
            got += " (without a newline at the end of the file)";
          else if (t == old_side[k]->text)
            got += " (followed by a newline)";
        }
        detail = "expected " + want + " found " + got;
        break;
      }
      if (detail.empty()) detail = "it overlaps the hunk before it";
      if (old_side.empty()) {
        detail = "the file has only " + std::to_string(lines.size()) + " lines";
      }
      return tk::Fail("patch_failed",
                      shown + ": hunk " + std::to_string(hi + 1) + " (line " +
                          std::to_string(h.old_start) + ") does not match: " + detail +
                          (old_side.empty() ? ""
                                            : "; no match within " + std::to_string(kMaxOffset) +
                                                  " lines either") +
                          (fuzz == 0 ? "" : " (with fuzz " + std::to_string(fuzz) + ")"));
    }
    // Copy up to the match, then the hunk's new side. Unmatched (fuzzed) context lines
    // keep the file's text, as do matched context lines (byte for byte, '\r' included).
    for (int64_t k = static_cast<int64_t>(cursor); k < found; ++k) out.push_back(lines[k]);
    int64_t file_pos = found;
    size_t old_index = 0;
    for (const auto& hl : h.lines) {
      if (hl.kind == '+') {
        Line l{std::string(hl.text), !hl.no_eol};
        if (crlf && l.eol) l.text.push_back('\r');
        out.push_back(std::move(l));
        ++f->added;
        continue;
      }
      bool outside_match = old_index < lead || old_index >= old_side.size() - trail;
      ++old_index;
      // Fuzzed context before the previous hunk's end or past the end of the file.
      bool absent =
          file_pos < static_cast<int64_t>(cursor) || file_pos >= static_cast<int64_t>(lines.size());
      if (!(outside_match && absent)) {
        if (hl.kind == ' ')
          out.push_back(lines[file_pos]);
        else
          ++f->removed;
      }
      ++file_pos;
    }
    cursor = static_cast<size_t>(
        std::clamp<int64_t>(file_pos, cursor, static_cast<int64_t>(lines.size())));
    carried = found - expected;
    f->offsets.push_back(carried);
    if (lead + trail > 0) f->fuzzed.push_back(hi + 1);
    ++f->hunks;
  }
  for (size_t k = cursor; k < lines.size(); ++k) out.push_back(lines[k]);
  for (size_t k = 0; k + 1 < out.size(); ++k) {
    if (!out[k].eol) {
      return tk::Fail("patch_failed", shown + ": the patch leaves line " + std::to_string(k + 1) +
                                          " without a newline in the middle of the file");
    }
  }
  if (op == Op::kDelete && !out.empty()) {
    return tk::Fail("patch_failed", shown + ": the patch deletes the file, but " +
                                        std::to_string(out.size()) +
                                        " of its lines are not in the patch");
  }
  f->current = JoinLines(out);
  f->exists = op != Op::kDelete;
  if (f->current.size() > kMaxFileBytes) {
    return tk::Fail("too_large", shown + ": the patched file would exceed 16 MiB");
  }
  return tk::Ok(nullptr);
}

// --- Writing ---------------------------------------------------------------------------------

// What the commit did so far, to undo it.
struct Commit {
  struct Step {
    const FileState* file;
    std::string tmp;     // new content, waiting beside the file
    std::string backup;  // where the original went
    bool renamed_original = false, placed = false;
  };
  std::vector<Step> steps;
  std::vector<std::string> made_dirs;  // in creation order

  void Undo() {
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
      if (it->placed && !it->file->existed) unlink(it->file->path.c_str());
      if (it->renamed_original) rename(it->backup.c_str(), it->file->path.c_str());
      if (!it->tmp.empty() && !it->placed) unlink(it->tmp.c_str());
    }
    for (auto it = made_dirs.rbegin(); it != made_dirs.rend(); ++it) rmdir(it->c_str());
  }
};

// mkdir -p below the first existing ancestor, recording what it made.
int MakeParents(const std::string& dir, Commit* c, std::string* failed) {
  struct stat st;
  int e = tk::Stat(dir, &st);
  *failed = dir;
  if (e == 0) return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  if (e != ENOENT || tk::IsMountRoot(dir)) return e;
  if (int pe = MakeParents(tk::Parent(dir), c, failed)) return pe;
  *failed = dir;
  if (mkdir(dir.c_str(), 0755) != 0) return errno;
  c->made_dirs.push_back(dir);
  return 0;
}

tk::Outcome Write(const std::vector<FileState*>& files) {
  Commit c;
  // Phase 1: every new content in a temporary file. Quotas run out here, if anywhere.
  for (const FileState* f : files) {
    Commit::Step step{f, "", "", false, false};
    if (f->exists) {
      std::string failed;
      if (!f->existed) {
        if (int e = MakeParents(tk::Parent(f->path), &c, &failed)) {
          c.Undo();
          return tk::FromErrno(e, failed, true);
        }
      }
      if (int e = tk::WriteTemporary(f->path, f->current, &step.tmp)) {
        c.Undo();
        return tk::FromErrno(e, f->path, true);
      }
    }
    c.steps.push_back(std::move(step));
  }
  // Phase 2: renames only; any failure undoes the ones before.
  for (auto& step : c.steps) {
    const FileState* f = step.file;
    int e = 0;
    if (f->existed) {
      step.backup = tk::SiblingName(f->path, "orig");
      if (rename(f->path.c_str(), step.backup.c_str()) != 0)
        e = errno;
      else
        step.renamed_original = true;
    }
    if (e == 0 && f->exists) {
      if (rename(step.tmp.c_str(), f->path.c_str()) != 0)
        e = errno;
      else
        step.placed = true;
    }
    if (e != 0) {
      c.Undo();
      return tk::FromErrno(e, f->path, true);
    }
  }
  // Phase 3: the originals are no longer needed.
  for (auto& step : c.steps) {
    if (step.renamed_original) unlink(step.backup.c_str());
  }
  return tk::Ok(nullptr);
}

// --- The tool --------------------------------------------------------------------------------

tk::Outcome ApplyPatch(const json& j) {
  tk::Args args(j, {"patch", "strip", "dry_run", "fuzz"});
  std::string patch = args.Str("patch", true);
  int64_t strip = args.Int("strip", -1, 0, 32);
  bool dry_run = args.Bool("dry_run", false);
  int64_t fuzz = args.Int("fuzz", 0, 0, 3);
  if (!args.ok()) return args.Error();

  std::vector<Section> sections;
  std::string error;
  if (!Parser(patch).Parse(&sections, &error)) return tk::Fail("invalid_arguments", error);

  std::map<std::string, FileState> states;
  std::vector<FileState*> order;  // first appearance
  size_t total = 0;
  for (const auto& s : sections) {
    bool old_null = s.old_name == "/dev/null", new_null = s.new_name == "/dev/null";
    if (old_null && new_null) {
      return tk::Fail("invalid_arguments",
                      "patch line " + std::to_string(s.patch_line) + ": both names are /dev/null");
    }
    std::string old_name = s.old_name, new_name = s.new_name;
    int64_t n = strip;
    if (n < 0) {  // auto: git's a/ and b/ prefixes
      bool a = old_null || old_name.rfind("a/", 0) == 0;
      bool b = new_null || new_name.rfind("b/", 0) == 0;
      n = a && b ? 1 : 0;
    }
    for (std::string* name : {&old_name, &new_name}) {
      if (*name == "/dev/null") continue;
      if (!Strip(name, n)) {
        return tk::Fail("invalid_arguments", "patch line " + std::to_string(s.patch_line) +
                                                 ": cannot strip " + std::to_string(n) +
                                                 " components from " + Quote(*name));
      }
      if ((*name)[0] == '/') {
        return tk::Fail("outside_workspace", *name +
                                                 ": absolute paths are refused in a patch "
                                                 "(paths are relative to the workspace)");
      }
    }
    Op op = Op::kModify;
    const auto& h0 = s.hunks.front();
    if (old_null || (s.old_epoch && s.hunks.size() == 1 && h0.old_count == 0)) op = Op::kCreate;
    if (new_null || (s.new_epoch && s.hunks.size() == 1 && h0.new_count == 0)) op = Op::kDelete;

    // Which file: a created file has only the new name, a deleted one the old; otherwise
    // the new name unless only the old one exists.
    std::string chosen = op == Op::kDelete ? old_name : new_name;
    std::string path;
    tk::Outcome bad;
    if (op == Op::kModify && old_name != new_name) {
      std::string new_abs, old_abs;
      struct stat st;
      if (tk::ResolveArg(new_name, &new_abs, &bad) && tk::ResolveArg(old_name, &old_abs, &bad) &&
          states.count(new_abs) == 0 && tk::Lstat(new_abs, &st) == ENOENT &&
          (states.count(old_abs) || tk::Lstat(old_abs, &st) == 0)) {
        chosen = old_name;
      }
    }
    if (!tk::ResolveArg(chosen, &path, &bad)) return bad;
    if (tk::IsMountRoot(path)) {
      return tk::Fail("not_a_file", tk::Display(path) + " is a directory");
    }

    auto it = states.find(path);
    if (it == states.end()) {
      FileState f;
      tk::Outcome loaded = Load(path, &f, &total);
      if (!loaded.ok) return loaded;
      it = states.emplace(path, std::move(f)).first;
      order.push_back(&it->second);
    }
    FileState& f = it->second;
    if (op == Op::kCreate && f.exists) {
      return tk::Fail("exists",
                      tk::Display(path) + ": the patch creates it, but it already exists");
    }
    if (op != Op::kCreate && !f.exists) {
      return tk::Fail("not_found", tk::Display(path) + ": no such file (the patch " +
                                       (op == Op::kDelete ? "deletes" : "modifies") + " it)");
    }
    tk::Outcome applied = ApplySection(s, op, fuzz, &f);
    if (!applied.ok) return applied;
    total += f.current.size();
    if (total > kMaxTotalBytes) {
      return tk::Fail("too_large", "the files of the patch exceed 64 MiB together");
    }
  }

  std::vector<FileState*> changed;
  for (FileState* f : order) {
    if (f->existed != f->exists || f->original != f->current) changed.push_back(f);
  }
  if (!dry_run) {
    tk::Outcome written = Write(changed);
    if (!written.ok) return written;
  }
  json files = json::array();
  for (FileState* f : order) {
    const char* status = !f->existed  ? (f->exists ? "created" : "unchanged")
                         : !f->exists ? "deleted"
                                      : "modified";
    json e = {{"path", tk::Display(f->path)},
              {"status", status},
              {"hunks", f->hunks},
              {"added", f->added},
              {"removed", f->removed},
              {"offsets", f->offsets}};
    if (!f->fuzzed.empty()) e["fuzzed_hunks"] = f->fuzzed;
    files.push_back(std::move(e));
  }
  json content = {{"files", std::move(files)}};
  if (dry_run) content["dry_run"] = true;
  return tk::Ok(std::move(content));
}

}  // namespace

int main() { return tk::Main(&ApplyPatch); }
