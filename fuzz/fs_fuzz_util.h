// What the filesystem fuzzers share: writing a file, a snapshot of a tree (paths to
// contents, link texts and folders), and the input reader that builds hostile paths.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace moat::fuzz {

namespace fs = std::filesystem;

inline void Put(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

inline std::map<std::string, std::string> Snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    std::string key = p.lexically_relative(root).string();
    auto st = it->symlink_status();
    if (fs::is_symlink(st)) {
      m[key] = "-> " + fs::read_symlink(p).string();
    } else if (fs::is_regular_file(st)) {
      std::ifstream f(p, std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      m[key] = ss.str();
    } else {
      m[key] = "<dir>";
    }
  }
  return m;
}

inline const char* kPieces[] = {
    "..",  ".",       "file",   "sub", "deep", "f",  "abs", "up", "in", "loop", ".env", "envlink",
    "new", "outside", "canary", "",    "x",    "ro", "r",   "rd", "/",  "//",   "\xff", "a.pem"};

struct Input {
  const uint8_t* p;
  size_t n;
  uint8_t Byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::string Path() {
    std::string s;
    int parts = Byte() % 6;
    if (Byte() % 8 == 0) s = "/";
    for (int i = 0; i < parts; ++i) {
      if (i) s += '/';
      s += kPieces[Byte() % (sizeof kPieces / sizeof kPieces[0])];
    }
    if (Byte() % 5 == 0) s += '/';
    return s;
  }
};

}  // namespace moat::fuzz
