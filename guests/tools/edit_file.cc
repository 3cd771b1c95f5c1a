// edit_file: replaces an exact piece of text in a file, written back atomically.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kMaxFileBytes = 16u << 20;
constexpr size_t kLinesShown = 5;

tk::Outcome EditFile(const json& j) {
  tk::Args args(j, {"path", "old_text", "new_text", "replace_all"});
  std::string arg = args.Str("path", true);
  std::string old_text = args.Str("old_text", true);
  std::string new_text = args.Str("new_text", true);
  bool replace_all = args.Bool("replace_all", false);
  if (!args.ok()) return args.Error();
  if (old_text.empty()) return tk::Fail("invalid_arguments", "old_text is empty");
  std::string path;
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &path, &bad)) return bad;

  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return tk::FromErrno(errno, path);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return tk::Fail("not_a_file", tk::Display(path) + " is not a regular file");
  }
  std::string text;
  int e = tk::ReadUpTo(fd, kMaxFileBytes + 1, &text);
  close(fd);
  if (e != 0) return tk::FromErrno(e, path);
  if (text.size() > kMaxFileBytes) {
    return tk::Fail("too_large", tk::Display(path) + " is larger than 16 MiB (" +
                                     std::to_string(st.st_size) +
                                     " bytes); edit_file needs it whole");
  }
  if (!tk::LooksLikeText(std::string_view(text).substr(0, 8192))) {
    return tk::Fail("binary_file", tk::Display(path) + " looks like a binary file (" +
                                       std::to_string(text.size()) + " bytes)");
  }

  std::vector<size_t> at;
  for (size_t pos = text.find(old_text); pos != std::string::npos;
       pos = text.find(old_text, pos + old_text.size())) {
    at.push_back(pos);
  }
  auto line_of = [&text](size_t pos) {
    return 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(pos), '\n');
  };
  if (at.empty()) {
    return tk::Fail("no_match", "old_text was not found in " + tk::Display(path) +
                                    " (it must match exactly, including whitespace)");
  }
  if (at.size() > 1 && !replace_all) {
    std::string lines;
    for (size_t i = 0; i < at.size() && i < kLinesShown; ++i) {
      lines += (i ? ", " : "") + std::to_string(line_of(at[i]));
    }
    if (at.size() > kLinesShown) lines += ", ...";
    return tk::Fail("ambiguous_match",
                    "old_text occurs " + std::to_string(at.size()) + " times in " +
                        tk::Display(path) + " (lines " + lines +
                        "); include more surrounding text to make it unique, or set "
                        "replace_all to true");
  }

  std::string result;
  result.reserve(text.size() + at.size() * new_text.size());
  size_t prev = 0;
  for (size_t pos : at) {
    result.append(text, prev, pos - prev);
    result.append(new_text);
    prev = pos + old_text.size();
  }
  result.append(text, prev, std::string::npos);
  int64_t first_line = line_of(at.front());
  text = std::string();
  if (result.size() > kMaxFileBytes) {
    return tk::Fail("too_large", "the edited file would exceed 16 MiB");
  }
  if (int we = tk::WriteAtomically(path, result)) return tk::FromErrno(we, path, true);
  return tk::Ok({{"path", tk::Display(path)},
                 {"replacements", at.size()},
                 {"first_line", first_line},
                 {"size", result.size()}});
}

}  // namespace

int main() { return tk::Main(&EditFile); }
