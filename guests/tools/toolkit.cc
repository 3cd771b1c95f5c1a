#include "toolkit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>
#include <wasi/api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

namespace tk {
namespace {

constexpr size_t kMaxArgsBytes = 32u << 20;  // stdin cap
constexpr int kMaxArgsDepth = 32;            // arguments are flat objects

std::string g_cwd = "/";

// Builds an nlohmann::json from RapidJSON's SAX events. RapidJSON's reader runs iteratively
// (no recursion, whatever the nesting) and costs a few instructions per byte of a string
// in wasm, where nlohmann's lexer costs about 200 (it keeps every character twice, for its
// error messages); a 3 MB `sql` argument took 50 ms to read before. The tree stays
// nlohmann's, which the tools use. Semantics match the host's nlohmann parse (which has
// already checked the text when the registry runs the tool): strict RFC 8259, UTF-8
// checked, a repeated key keeps its last value, integers beyond 64 bits become doubles.
class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
 public:
  explicit TreeBuilder(int max_depth) : max_depth_(max_depth) {}

  bool Null() { return Put(nullptr); }
  bool Bool(bool b) { return Put(b); }
  bool Int(int i) { return Put(static_cast<int64_t>(i)); }
  bool Uint(unsigned u) { return Put(static_cast<uint64_t>(u)); }
  bool Int64(int64_t i) { return Put(i); }
  bool Uint64(uint64_t u) { return Put(u); }
  bool Double(double d) { return Put(d); }
  bool String(const char* s, rapidjson::SizeType n, bool) { return Put(std::string(s, n)); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    key_.assign(s, n);
    return true;
  }
  bool StartObject() { return Open(json::object()); }
  bool StartArray() { return Open(json::array()); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

  json& root() { return root_; }
  bool too_deep() const { return too_deep_; }

 private:
  // Stores a value where it belongs and returns it: the root, the end of the open array,
  // or the open object under the last key. Containers on the stack are never moved while
  // open: an array only grows by its last element, which is the one being filled.
  json* Place(json value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& top = *open_.back();
    if (top.is_array()) {
      top.push_back(std::move(value));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(value);
    return &slot;
  }
  bool Put(json value) {
    Place(std::move(value));
    return true;
  }
  bool Open(json container) {
    if (static_cast<int>(open_.size()) >= max_depth_) {
      too_deep_ = true;
      return false;
    }
    open_.push_back(Place(std::move(container)));
    return true;
  }
  bool Close() {
    open_.pop_back();
    return true;
  }

  int max_depth_;
  bool too_deep_ = false;
  json root_;
  std::vector<json*> open_;
  std::string key_;
};

// Parses the argument text (in place: strings are unescaped within it, so no byte goes
// through a growing buffer one call at a time): the object, or a message for the tool's
// invalid_arguments.
std::optional<json> ParseArgs(std::string& text, std::string* problem) {
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseFullPrecisionFlag |
                              rapidjson::kParseStopWhenDoneFlag;
  rapidjson::InsituStringStream bytes(text.data());
  TreeBuilder builder(kMaxArgsDepth);
  rapidjson::Reader reader;
  rapidjson::ParseResult r = reader.Parse<kFlags>(bytes, builder);
  size_t end = r ? bytes.Tell() : r.Offset();
  // The reader takes a NUL byte for the end of the text; anything after the value other
  // than JSON whitespace is an error too.
  if (r) {
    end = text.find_first_not_of(" \t\r\n", end);
    if (end == std::string::npos) {
      if (!builder.root().is_object()) {
        *problem = "the arguments must be a JSON object";
        return std::nullopt;
      }
      return std::move(builder.root());
    }
  }
  if (builder.too_deep()) {
    *problem = "the arguments are nested too deeply (more than " +
               std::to_string(kMaxArgsDepth) + " levels)";
  } else {
    *problem = std::string("the arguments are not valid JSON: ") +
               (r ? "unexpected text after the value" : rapidjson::GetParseError_En(r.Code())) +
               " (at byte " + std::to_string(end) + ")";
  }
  return std::nullopt;
}

// Text from files may be invalid UTF-8: replaced (U+FFFD), never an abort.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

// --- Args --------------------------------------------------------------------------------

Args::Args(const json& object, std::vector<std::string> known) : object_(object) {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
      Problem("unknown argument \"" + it.key() + "\"");
    }
  }
}

void Args::Problem(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

const json* Args::Find(const char* key) {
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string Args::Str(const char* key, bool required, std::string fallback) {
  const json* v = Find(key);
  if (!v) {
    if (required) Problem(std::string("missing argument \"") + key + "\"");
    return fallback;
  }
  if (!v->is_string()) {
    Problem(std::string("argument \"") + key + "\" must be a string");
    return fallback;
  }
  return v->get_ref<const std::string&>();
}

bool Args::Bool(const char* key, bool fallback) {
  const json* v = Find(key);
  if (!v) return fallback;
  if (!v->is_boolean()) {
    Problem(std::string("argument \"") + key + "\" must be true or false");
    return fallback;
  }
  return v->get<bool>();
}

int64_t Args::Int(const char* key, int64_t fallback, int64_t min, int64_t max) {
  const json* v = Find(key);
  if (!v) return fallback;
  int64_t n = 0;
  if (v->is_number_unsigned()) {
    n = v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
            ? INT64_MAX
            : static_cast<int64_t>(v->get<uint64_t>());
  } else if (v->is_number_integer()) {
    n = v->get<int64_t>();
  } else if (v->is_number_float() && v->get<double>() >= -9e18 && v->get<double>() <= 9e18 &&
             v->get<double>() == static_cast<double>(static_cast<int64_t>(v->get<double>()))) {
    n = static_cast<int64_t>(v->get<double>());  // 10.0 is an integer in JSON Schema
  } else {
    Problem(std::string("argument \"") + key + "\" must be an integer");
    return fallback;
  }
  if (n < min || n > max) {
    Problem(std::string("argument \"") + key + "\" must be between " + std::to_string(min) +
            " and " + std::to_string(max));
    return fallback;
  }
  return n;
}

// --- Main --------------------------------------------------------------------------------

int Main(Outcome (*tool)(const json& args)) {
  std::string input;
  int err = ReadUpTo(0, kMaxArgsBytes + 1, &input);
  Outcome out;
  if (err != 0) {
    out = Fail("io_error", std::string("cannot read the arguments: ") + strerror(err));
  } else if (input.size() > kMaxArgsBytes) {
    out = Fail("invalid_arguments", "the arguments exceed 32 MiB");
  } else {
    std::string problem;
    std::optional<json> args = ParseArgs(input, &problem);
    input = std::string();
    if (!args) {
      out = Fail("invalid_arguments", problem);
    } else {
      struct stat st;
      if (Stat("/workspace", &st) == 0 && S_ISDIR(st.st_mode) && chdir("/workspace") == 0) {
        g_cwd = "/workspace";
      } else if (!Mounts().empty()) {
        g_cwd = Mounts().front();
        if (chdir(g_cwd.c_str()) != 0) g_cwd = "/";
      }
      out = tool(*args);
    }
  }
  // {"ok":...} first, as docs/tools.md shows it (json objects sort their keys).
  std::string line;
  if (out.ok) {
    line = "{\"ok\":true,\"content\":" + Dump(out.content) + "}\n";
  } else {
    json error = {{"code", out.code}, {"message", out.message}};
    line = "{\"ok\":false,\"error\":" + Dump(error) + "}\n";
  }
  WriteAll(1, line);
  return 0;
}

// --- Paths -------------------------------------------------------------------------------

std::string Absolute(std::string_view path) {
  std::vector<std::string_view> parts;
  auto add = [&parts](std::string_view p) {
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      std::string_view part = p.substr(i, j - i);
      if (part.empty() || part == ".") {
      } else if (part == "..") {
        if (!parts.empty()) parts.pop_back();
      } else {
        parts.push_back(part);
      }
      i = j + 1;
    }
  };
  if (path.empty() || path[0] != '/') add(g_cwd);
  add(path);
  std::string out;
  for (auto p : parts) {
    out.push_back('/');
    out.append(p);
  }
  return out.empty() ? "/" : out;
}

std::string Display(const std::string& absolute) {
  if (absolute == g_cwd) return ".";
  if (g_cwd == "/") return absolute;
  if (absolute.size() > g_cwd.size() && absolute.compare(0, g_cwd.size(), g_cwd) == 0 &&
      absolute[g_cwd.size()] == '/') {
    return absolute.substr(g_cwd.size() + 1);
  }
  return absolute;
}

const std::vector<std::string>& Mounts() {
  static const std::vector<std::string> mounts = [] {
    std::vector<std::string> m;
    for (__wasi_fd_t fd = 3; fd < 1024; ++fd) {
      __wasi_prestat_t ps;
      if (__wasi_fd_prestat_get(fd, &ps) != 0) break;
      if (ps.tag != __WASI_PREOPENTYPE_DIR) continue;
      std::string name(ps.u.dir.pr_name_len, '\0');
      if (__wasi_fd_prestat_dir_name(fd, reinterpret_cast<uint8_t*>(name.data()), name.size()) !=
          0) {
        continue;
      }
      while (!name.empty() && name.back() == '\0') name.pop_back();
      std::string abs = "/";
      for (char c : name) abs.push_back(c);
      // Lexical fold without the working directory.
      std::string folded;
      std::vector<std::string> parts;
      size_t i = 0;
      while (i <= abs.size()) {
        size_t j = abs.find('/', i);
        if (j == std::string::npos) j = abs.size();
        std::string part = abs.substr(i, j - i);
        if (part == "..") {
          if (!parts.empty()) parts.pop_back();
        } else if (!part.empty() && part != ".") {
          parts.push_back(part);
        }
        i = j + 1;
      }
      for (auto& p : parts) folded += "/" + p;
      m.push_back(folded.empty() ? "/" : folded);
    }
    return m;
  }();
  return mounts;
}

bool IsMountRoot(const std::string& absolute) {
  for (const auto& m : Mounts()) {
    if (m == absolute) return true;
  }
  return absolute == "/";
}

bool InsideAMount(const std::string& absolute) {
  for (const auto& m : Mounts()) {
    if (m == "/" || absolute == m ||
        (absolute.size() > m.size() && absolute.compare(0, m.size(), m) == 0 &&
         absolute[m.size()] == '/')) {
      return true;
    }
  }
  return false;
}

bool ResolveArg(const std::string& arg, std::string* absolute, Outcome* out) {
  if (arg.empty()) {
    *out = Fail("invalid_arguments", "the path is empty");
    return false;
  }
  if (arg.find('\0') != std::string::npos) {
    *out = Fail("invalid_arguments", "the path contains a NUL character");
    return false;
  }
  if (arg.size() > 4096) {
    *out = Fail("invalid_arguments", "the path is longer than 4096 bytes");
    return false;
  }
  *absolute = Absolute(arg);
  if (!InsideAMount(*absolute)) {
    *out = Fail("outside_workspace", *absolute + " is outside the workspace");
    return false;
  }
  return true;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string Parent(const std::string& absolute) {
  size_t slash = absolute.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return absolute.substr(0, slash);
}

std::string BaseName(const std::string& absolute) {
  size_t slash = absolute.rfind('/');
  return slash == std::string::npos ? absolute : absolute.substr(slash + 1);
}

// --- Errors ------------------------------------------------------------------------------

Outcome FromErrno(int err, const std::string& absolute, bool writing) {
  std::string p = Display(absolute);
  switch (err) {
    case ENOENT: return Fail("not_found", p + ": no such file or directory");
    case ENOTDIR:
      return Fail("not_a_directory", p + ": a component of the path is not a directory");
    case EISDIR: return Fail("not_a_file", p + " is a directory");
    case EEXIST: return Fail("exists", p + " already exists");
    case ENOTEMPTY: return Fail("exists", p + " is a directory that is not empty");
    case ENOTCAPABLE: return Fail("outside_workspace", p + " is outside the workspace");
    case EPERM:
    case EACCES:
    case EROFS: {
      // In the sandbox an escaping path (a symlink pointing out) is EPERM too; a read never
      // meets a read-only refusal, and for a write the path itself tells.
      struct stat st;
      bool escapes = err == EPERM && (!writing || Stat(absolute, &st) == EPERM ||
                                      Stat(Parent(absolute), &st) == EPERM);
      if (escapes) return Fail("outside_workspace", p + " leads outside the workspace");
      if (err == EROFS || (writing && err == EPERM)) {
        return Fail("permission_denied",
                    p + ": permission denied (read-only mount or a protected path)");
      }
      return Fail("permission_denied", p + ": permission denied");
    }
    case EDQUOT:
    case ENOSPC:
    case EFBIG: return Fail("limit", p + ": write quota exceeded (" + strerror(err) + ")");
    case EMFILE:
    case ENFILE: return Fail("limit", p + ": too many open files");
    case ENAMETOOLONG: return Fail("invalid_arguments", p + ": name too long");
    case ELOOP: return Fail("io_error", p + ": too many levels of symbolic links");
    case EXDEV: return Fail("permission_denied", p + ": cannot move between different mounts");
    case EINVAL: return Fail("invalid_arguments", p + ": invalid operation on this path");
    default: break;
  }
  return Fail("io_error", p + ": " + strerror(err));
}

// --- Files -------------------------------------------------------------------------------

int Lstat(const std::string& path, struct stat* st) {
  return lstat(path.c_str(), st) == 0 ? 0 : errno;
}

int Stat(const std::string& path, struct stat* st) {
  return stat(path.c_str(), st) == 0 ? 0 : errno;
}

const char* TypeName(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return "file";
  if (S_ISDIR(st.st_mode)) return "dir";
  if (S_ISLNK(st.st_mode)) return "symlink";
  return "other";
}

int ReadUpTo(int fd, size_t cap, std::string* out) {
  std::string buf(65536, '\0');  // not on the (small) wasm stack
  while (out->size() < cap) {
    size_t want = std::min(buf.size(), cap - out->size());
    ssize_t n = read(fd, buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    out->append(buf.data(), static_cast<size_t>(n));
  }
  return 0;
}

int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

bool LooksLikeText(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (int k = 1; k < len; ++k) {
      if (i + k >= s.size()) return true;  // cut by the end of the sample
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

size_t Utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  // Back off continuation bytes so the cut lands on a sequence start.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80 && max - n < 4) --n;
  return n;
}

namespace {

std::string SiblingCandidate(const std::string& path, const char* tag) {
  static uint32_t fallback = 0;
  uint32_t nonce = 0;
  if (getentropy(&nonce, sizeof nonce) != 0) nonce = ++fallback * 0x9E3779B9u;
  char suffix[16];
  snprintf(suffix, sizeof suffix, "%08x", nonce);
  return JoinPath(Parent(path), "." + BaseName(path) + ".moat-" + tag + "-" + suffix);
}

}  // namespace

std::string SiblingName(const std::string& path, const char* tag) {
  std::string name;
  struct stat st;
  for (int attempt = 0; attempt < 8; ++attempt) {
    name = SiblingCandidate(path, tag);
    if (Lstat(name, &st) == ENOENT) break;
  }
  return name;
}

int WriteTemporary(const std::string& path, std::string_view data, std::string* tmp) {
  int fd = -1;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    *tmp = SiblingCandidate(path, "tmp");
    fd = open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && errno != EEXIST) return errno;
  }
  if (fd < 0) return EEXIST;
  int err = WriteAll(fd, data);
  if (close(fd) != 0 && err == 0) err = errno;
  if (err != 0) unlink(tmp->c_str());
  return err;
}

int WriteAtomically(const std::string& path, std::string_view data) {
  std::string tmp;
  if (int err = WriteTemporary(path, data, &tmp)) return err;
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return err;
  }
  return 0;
}

int ListNames(const std::string& dir, size_t cap, std::vector<std::string>* names, bool* capped) {
  DIR* d = opendir(dir.c_str());
  if (!d) return errno;
  errno = 0;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (names->size() >= cap) {
      *capped = true;
      break;
    }
    names->emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names->begin(), names->end());
  return 0;
}

// mkdir -p of `dir` (absolute); returns errno or 0, and the path that failed.
int MakeDirs(const std::string& dir, std::string* failed) {
  struct stat st;
  int e = Stat(dir, &st);
  if (e == 0) {
    *failed = dir;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  }
  if (e != ENOENT) {
    *failed = dir;
    return e;
  }
  if (IsMountRoot(dir)) {
    *failed = dir;
    return e;
  }
  if (int pe = MakeDirs(Parent(dir), failed)) return pe;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *failed = dir;
    return errno;
  }
  return 0;
}

// --- Patterns ----------------------------------------------------------------------------

bool HasWildcard(std::string_view segment) {
  return segment.find_first_of("*?[\\") != std::string_view::npos;
}

namespace {

std::vector<std::string> Split(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find('/', i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool MatchSegments(const std::vector<std::string>& pat, size_t pi,
                   const std::vector<std::string>& path, size_t si, int budget) {
  if (budget <= 0) return false;
  while (pi < pat.size()) {
    if (pat[pi] == "**") {
      // Zero or more components, none of them hidden by a leading dot.
      for (size_t k = si; k <= path.size(); ++k) {
        if (MatchSegments(pat, pi + 1, path, k, budget - 1)) return true;
        if (k < path.size() && path[k][0] == '.') return false;
      }
      return false;
    }
    if (si >= path.size()) return false;
    if (fnmatch(pat[pi].c_str(), path[si].c_str(), FNM_PERIOD) != 0) return false;
    ++pi;
    ++si;
  }
  return si == path.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view path) {
  std::vector<std::string> pat = Split(pattern);
  // Collapse runs of "**" (they match the same paths).
  std::vector<std::string> folded;
  for (auto& p : pat) {
    if (p == "**" && !folded.empty() && folded.back() == "**") continue;
    folded.push_back(p);
  }
  return MatchSegments(folded, 0, Split(path), 0, 4096);
}

}  // namespace tk
