// Loads moat-http.so beside the executable, once per process, and hands out the objects
// its entry points return (the backend for guests' requests, streaming POSTs for moat's
// own). The plugin is built from moat_net with its own copies of moat's code hidden
// (--exclude-libs), so it exports only those entry points.
#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <mutex>

#include "execution/net/http_backend.h"
#include "execution/net/http_stream.h"

namespace moat::net {

namespace {

// The plugin, opened once per process.
Result<void*> OpenPlugin() {
  static std::once_flag once;
  static Result<void*> handle = MakeError(ErrorCode::kInternal, "not loaded");
  std::call_once(once, [] {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
      handle = MakeError(ErrorCode::kIo, "cannot find the executable's folder");
      return;
    }
    std::string path(exe, static_cast<size_t>(n));
    path = path.substr(0, path.rfind('/') + 1) + kHttpPluginFile;
    void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) {
      const char* why = dlerror();
      handle = MakeError(ErrorCode::kIo, "cannot load " + path + ": " + (why ? why : "?"));
      return;
    }
    handle = dl;  // stays loaded for the life of the process
  });
  return handle;
}

// The object an entry point returns; the plugin owns it for the life of the process.
template <class T>
Result<std::shared_ptr<T>> Entry(const char* name) {
  auto dl = OpenPlugin();
  if (!dl) return dl.error();
  auto entry = reinterpret_cast<T* (*)()>(dlsym(*dl, name));
  T* object = entry ? entry() : nullptr;
  if (object == nullptr) {
    return MakeError(ErrorCode::kIo, std::string(kHttpPluginFile) + " has no usable " + name);
  }
  return std::shared_ptr<T>(object, [](T*) {});
}

}  // namespace

Result<std::shared_ptr<HttpBackend>> LoadHttpBackendPlugin() {
  return Entry<HttpBackend>(kHttpPluginEntry);
}

Result<std::shared_ptr<StreamingHttp>> LoadStreamingHttpPlugin() {
  return Entry<StreamingHttp>(kStreamPluginEntry);
}

}  // namespace moat::net
