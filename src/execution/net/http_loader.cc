// Loads the libcurl backend from moat-http.so beside the executable, once per process.
// The plugin is built from moat_net with its own copies of moat's code hidden
// (--exclude-libs), so it exports one symbol: kHttpPluginEntry.
#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <mutex>

#include "execution/net/http_backend.h"

namespace moat::net {

Result<std::shared_ptr<HttpBackend>> LoadHttpBackendPlugin() {
  static std::once_flag once;
  static Result<std::shared_ptr<HttpBackend>> loaded =
      MakeError(ErrorCode::kInternal, "not loaded");
  std::call_once(once, [] {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
      loaded = MakeError(ErrorCode::kIo, "cannot find the executable's folder");
      return;
    }
    std::string path(exe, static_cast<size_t>(n));
    path = path.substr(0, path.rfind('/') + 1) + kHttpPluginFile;
    void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) {
      const char* why = dlerror();
      loaded = MakeError(ErrorCode::kIo, "cannot load " + path + ": " + (why ? why : "?"));
      return;
    }
    auto entry = reinterpret_cast<HttpPluginEntry>(dlsym(dl, kHttpPluginEntry));
    HttpBackend* backend = entry ? entry() : nullptr;
    if (backend == nullptr) {
      loaded = MakeError(ErrorCode::kIo, path + " has no usable " + kHttpPluginEntry);
      return;
    }
    // The plugin stays loaded and owns the backend for the life of the process.
    loaded = std::shared_ptr<HttpBackend>(backend, [](HttpBackend*) {});
  });
  return loaded;
}

}  // namespace moat::net
