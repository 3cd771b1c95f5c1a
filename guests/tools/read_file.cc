// read_file: a range of lines of a text file, streamed, under a byte cap.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kSniffBytes = 8192;
// Lines are counted to the end of the file up to this many bytes; past it the total is
// unknown (null) rather than a minute of scanning.
constexpr uint64_t kMaxScanBytes = 1ull << 30;

tk::Outcome ReadFile(const json& j) {
  tk::Args args(j, {"path", "offset_line", "limit_lines", "max_bytes"});
  std::string arg = args.Str("path", true);
  int64_t offset = args.Int("offset_line", 1, 1, INT64_MAX);
  int64_t limit = args.Int("limit_lines", 2000, 1, 1000000);
  int64_t max_bytes = args.Int("max_bytes", 256 << 10, 1, 1 << 20);
  if (!args.ok()) return args.Error();
  std::string path;
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &path, &bad)) return bad;

  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return tk::FromErrno(errno, path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return tk::FromErrno(e, path);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return tk::Fail("not_a_file", tk::Display(path) + " is a directory (use list_dir)");
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return tk::Fail("not_a_file", tk::Display(path) + " is not a regular file");
  }

  // Stream the file: collect lines [offset, offset + limit) up to max_bytes, count all.
  const uint64_t first = static_cast<uint64_t>(offset);
  const uint64_t last = first + static_cast<uint64_t>(limit) - 1;
  std::string content;
  uint64_t line = 1;        // the line the next byte belongs to
  uint64_t end_line = 0;    // last line (partly) included
  bool cut = false;         // stopped by max_bytes
  bool more_lines = false;  // lines past the range exist
  bool line_open = false;   // bytes seen since the last newline
  uint64_t scanned = 0;
  bool sniffed = false;
  std::string buf(65536, '\0');
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return tk::FromErrno(e, path);
    }
    if (n == 0) break;
    std::string_view chunk(buf.data(), static_cast<size_t>(n));
    if (!sniffed) {
      sniffed = true;
      if (!tk::LooksLikeText(chunk.substr(0, kSniffBytes))) {
        close(fd);
        return tk::Fail("binary_file", tk::Display(path) + " looks like a binary file (" +
                                           std::to_string(st.st_size) + " bytes)");
      }
    }
    scanned += chunk.size();
    while (!chunk.empty()) {
      const char* nl = static_cast<const char*>(memchr(chunk.data(), '\n', chunk.size()));
      size_t seg = nl ? static_cast<size_t>(nl - chunk.data()) + 1 : chunk.size();
      if (line >= first && line <= last && !cut) {
        size_t room = static_cast<size_t>(max_bytes) - content.size();
        if (seg <= room) {
          content.append(chunk.data(), seg);
        } else {
          content.append(chunk.data(), tk::Utf8Prefix(chunk.substr(0, seg), room));
          cut = true;
        }
        end_line = line;
      } else if (line > last) {
        more_lines = true;
      }
      line_open = nl == nullptr;
      if (nl) ++line;
      chunk.remove_prefix(seg);
    }
    if (scanned >= kMaxScanBytes && (cut || line > last)) break;
  }
  bool at_eof = scanned >= static_cast<uint64_t>(st.st_size);
  close(fd);
  uint64_t total = line_open ? line : line - 1;  // a last line without '\n' still counts
  json out = {{"path", tk::Display(path)},
              {"content", content},
              {"start_line", first},
              {"end_line", end_line},
              {"total_lines", at_eof ? json(total) : json(nullptr)},
              {"truncated", cut || more_lines || !at_eof},
              {"size", static_cast<uint64_t>(st.st_size)}};
  return tk::Ok(out);
}

}  // namespace

int main() { return tk::Main(&ReadFile); }
