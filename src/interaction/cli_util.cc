#include "interaction/cli_util.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

namespace moat {

int Usage(const std::string& msg) {
  fprintf(stderr, "moat: %s\n", msg.c_str());
  return kUsageError;
}

// HOST[::GUEST][:ro], as the wasmtime CLI spells it.
Result<Mount> ParseDir(std::string spec) {
  Mount m;
  if (spec.size() > 3 && spec.compare(spec.size() - 3, 3, ":ro") == 0) {
    m.read_only = true;
    spec.resize(spec.size() - 3);
  }
  size_t sep = spec.find("::");
  if (sep == std::string::npos) {
    m.host_path = m.guest_path = spec;
  } else {
    m.host_path = spec.substr(0, sep);
    m.guest_path = spec.substr(sep + 2);
  }
  if (m.host_path.empty() || m.guest_path.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--dir needs HOST[::GUEST][:ro], got '" + spec + "'");
  }
  struct stat st {};
  if (stat(m.host_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--dir: '" + m.host_path + "' is not a directory");
  }
  return m;
}

Status ParseEnv(const std::vector<std::string>& specs,
                std::vector<std::pair<std::string, std::string>>* out) {
  for (const std::string& e : specs) {
    size_t eq = e.find('=');
    std::string key = e.substr(0, eq);
    if (key.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--env needs KEY=VALUE or KEY, got '" + e + "'");
    }
    if (eq == std::string::npos) {
      const char* v = getenv(key.c_str());
      if (v) out->emplace_back(key, v);
    } else {
      out->emplace_back(key, e.substr(eq + 1));
    }
  }
  return OkStatus();
}

}  // namespace moat
