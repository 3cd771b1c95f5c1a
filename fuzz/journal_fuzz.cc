// Fuzzes the checkpoint journal reader (src/orchestration/undo/checkpoints.cc): the input
// is a session's journal.jsonl, beside a small data.pack. ReadJournal must refuse or
// return calls whose every path is relative and clean and whose every file pre-image
// either reads back from the pack within bounds or is refused.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "orchestration/undo/checkpoints.h"

namespace {

const std::string& Dir() {
  static const std::string dir = [] {
    std::string d = "/dev/shm/moat-journal-fuzz-" + std::to_string(getpid());
    mkdir(d.c_str(), 0700);
    mkdir((d + "/blobs").c_str(), 0700);
    int fd = open((d + "/data.pack").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      if (write(fd, "0123456789abcdef", 16) != 16) abort();
      close(fd);
    }
    return d;
  }();
  return dir;
}

bool CleanRel(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string c = p.substr(start, end - start);
    if (c.empty() || c == "." || c == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = Dir();
  std::string path = dir + "/journal.jsonl";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) abort();
  if (size > 0 && write(fd, data, size) != static_cast<ssize_t>(size)) abort();
  close(fd);
  auto calls = moat::undo::ReadJournal(dir);
  if (!calls.ok()) return 0;
  for (const auto& c : *calls) {
    for (const auto& ch : c.changes) {
      if (!CleanRel(ch.path) || ch.root.empty() || ch.root[0] != '/') {
        fprintf(stderr, "journal accepted an unclean path: %s %s\n", ch.root.c_str(),
                ch.path.c_str());
        abort();
      }
      if (ch.before.kind == moat::undo::PathState::Kind::kFile) {
        if (ch.before.blob.find('/') != std::string::npos ||
            ch.before.blob.find("..") != std::string::npos) {
          fprintf(stderr, "journal accepted a blob name with a path in it\n");
          abort();
        }
        auto bytes = moat::undo::ReadPreImage(dir, ch.before, 1 << 20);
        if (bytes.ok() && bytes->size() != ch.before.size) abort();
        if (bytes.ok() && ch.before.packed && ch.before.at + ch.before.size > 16) abort();
      }
    }
  }
  return 0;
}
