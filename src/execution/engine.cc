#include "execution/engine.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <set>
#include <thread>

#include "base/fs.h"
#include "base/sha256.h"
#include "base/terminal_text.h"
#include "base/units.h"
#include "execution/compile_step.h"
#include "execution/host_context.h"
#include "execution/runtime.h"

namespace moat {

class CompiledModule {
 public:
  CompiledModule(void* dl, ModuleAbi abi) : dl_(dl), abi_(abi) {}
  // Loaded modules stay mapped for the life of the process: instances on other threads
  // may still reference their code, and a dlclose would buy nothing but risk.
  ~CompiledModule() = default;
  const ModuleAbi& abi() const { return abi_; }

 private:
  void* dl_;
  ModuleAbi abi_;
};

namespace {

// Prints "compiling X ... 2.4s" on a terminal once a compile has taken over a second.
class Progress {
 public:
  // The label is a file name, which may hold any bytes: shown escaped.
  Progress(bool enabled, const std::string& label) : label_(TerminalSafe(label)) {
    if (enabled && isatty(2)) thread_ = std::thread([this] { Loop(); });
  }
  ~Progress() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Phase(const char* phase) {
    std::lock_guard<std::mutex> l(mu_);
    phase_ = phase;
  }

 private:
  void Loop() {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, std::chrono::seconds(1), [this] { return done_; })) return;
    bool printed = false;
    while (!done_) {
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      fprintf(stderr, "\r\033[Kmoat: %s %s ... %.1fs", phase_, label_.c_str(), s);
      fflush(stderr);
      printed = true;
      cv_.wait_for(l, std::chrono::milliseconds(200), [this] { return done_; });
    }
    if (printed) fprintf(stderr, "\r\033[K");
  }

  std::string label_;
  const char* phase_ = "translating";
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

template <class T>
bool Sym(void* dl, const char* name, T* out) {
  *out = reinterpret_cast<T>(dlsym(dl, name));
  return *out != nullptr;
}

// Device and inode of the file mapped at `base`, from /proc/self/maps.
bool MappedFileId(const void* base, uint64_t* dev, uint64_t* ino) {
  FILE* f = fopen("/proc/self/maps", "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  auto want = reinterpret_cast<uintptr_t>(base);
  while (fgets(line, sizeof line, f)) {
    unsigned long long lo = 0, hi = 0, off = 0, inode = 0;
    unsigned major_no = 0, minor_no = 0;
    char perms[8];
    if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms, &off, &major_no, &minor_no,
               &inode) == 7 &&
        want >= lo && want < hi) {
      *dev = makedev(major_no, minor_no);
      *ino = inode;
      found = true;
      break;
    }
  }
  fclose(f);
  return found;
}

Result<ModuleHandle> OpenObject(const VerifiedObject& obj, const std::string& sha) {
  const std::string& path = obj.path;
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!dl)
    return MakeError(ErrorCode::kInternal,
                     std::string("cannot load compiled module: ") + dlerror());
  // The loader opened the path again: confirm it mapped the very file whose digest was
  // checked, not one swapped in between. (If this process already had the path loaded,
  // dlopen returns that earlier mapping, which passed this same check when it was loaded;
  // objects are named by their digest, so it has the same content.)
  static std::mutex verified_mu;
  static std::set<std::pair<uint64_t, uint64_t>> verified;  // (dev, ino) mapped and checked
  Dl_info info{};
  uint64_t dev = 0, ino = 0;
  void* probe = dlsym(dl, "moat_abi_version");
  bool same = probe && dladdr(probe, &info) && MappedFileId(info.dli_fbase, &dev, &ino);
  {
    std::lock_guard<std::mutex> lock(verified_mu);
    same = same && ((dev == obj.dev && ino == obj.ino) || verified.count({dev, ino}) > 0);
    if (same) verified.insert({dev, ino});
  }
  if (!same) {
    dlclose(dl);
    return MakeError(ErrorCode::kInternal,
                     "compiled module changed on disk while it was being loaded: " + path);
  }
  ModuleAbi abi;
  unsigned (*version)() = nullptr;
  void (*init)() = nullptr;
  void (*shape)(unsigned*, unsigned*, unsigned*) = nullptr;
  bool ok = Sym(dl, "moat_abi_version", &version) && Sym(dl, "moat_init_module", &init) &&
            Sym(dl, "moat_shape", &shape) && Sym(dl, "moat_instance_size", &abi.instance_size) &&
            Sym(dl, "moat_instantiate", &abi.instantiate) &&
            Sym(dl, "moat_free", &abi.free_instance) && Sym(dl, "moat_start", &abi.start) &&
            Sym(dl, "moat_memory", &abi.memory) && Sym(dl, "moat_fuel", &abi.fuel);
  if (!ok || version() != 1) {
    dlclose(dl);
    return MakeError(ErrorCode::kInternal, "compiled module has a foreign ABI: " + path);
  }
  init();  // module-level statics (function types), once, before any thread runs it
  ModuleHandle h;
  unsigned has_memory = 0, initial = 0, max = 0;
  shape(&has_memory, &initial, &max);
  h.shape.has_memory = has_memory != 0;
  h.shape.initial_pages = initial;
  h.shape.max_pages = max;
  h.sha256 = sha;
  h.module = std::make_shared<CompiledModule>(dl, abi);
  return h;
}

class CaptureSink : public OutputSink {
 public:
  explicit CaptureSink(std::string* out) : out_(out) {}
  bool Write(const uint8_t* data, size_t size, const HostContext&) override {
    out_->append(reinterpret_cast<const char*>(data), size);
    return true;
  }

 private:
  std::string* out_;
};

// The process's own stdout/stderr. Waits for room with poll() and writes at most
// PIPE_BUF bytes once the fd is writable (a pipe then has room for them), so a blocked
// reader delays the guest only until its deadline.
class FdSink : public OutputSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {
    // A regular file or /dev/null never makes a writer wait, so the poll (about two
    // thirds of a one-byte write's cost) is skipped for them. Pipes, sockets and
    // terminals can block and are always polled against the deadline.
    struct stat st {};
    if (fstat(fd, &st) == 0) {
      never_blocks_ = S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
    }
  }
  bool Write(const uint8_t* data, size_t size, const HostContext& h) override {
    while (size > 0) {
      if (!never_blocks_ && !rt::WaitFd(h, fd_, POLLOUT)) return false;
      ssize_t n = write(fd_, data, std::min<size_t>(size, PIPE_BUF));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return true;  // a closed pipe or full disk drops output; the run goes on
      }
      data += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }

 private:
  int fd_;
  bool never_blocks_ = false;
};

void BuildBlock(const std::vector<std::string>& items, std::string* block,
                std::vector<uint32_t>* offsets) {
  for (const std::string& s : items) {
    offsets->push_back(static_cast<uint32_t>(block->size()));
    block->append(s);
    block->push_back('\0');
  }
}

}  // namespace

Engine::Engine(EngineOptions options, CompileLimits compile_limits, CompileCache cache,
               CCompiler cc)
    : options_(std::move(options)),
      compile_limits_(compile_limits),
      cache_(std::move(cache)),
      cc_(std::move(cc)) {
  std::string cfg = std::string(kPipelineVersion) + "|" + cc_.identity() +
                    "|meter=" + (options_.meter_fuel ? "1" : "0");
  std::vector<std::string> own = options_.own_paths;
  own.push_back(cache_.dir());
  for (const std::string& d : {UserConfigDir(), UserStateDir()}) {
    if (!d.empty()) own.push_back(d);
  }
  for (const char* var : {"MOAT_SECRETS_FILE", "MOAT_CONFIG", "MOAT_CACHE_DIR"}) {
    if (const char* v = getenv(var); v != nullptr && *v != '\0') own.push_back(v);
  }
  own_paths_ = wasi::RealSealedPaths(own);  // once: each run only compares strings
  config_tag_ =
      ToHex(Sha256({reinterpret_cast<const uint8_t*>(cfg.data()), cfg.size()})).substr(0, 16);
}

Engine::~Engine() = default;

namespace {

// The compile limits: the options' values, else the environment's, else the defaults.
Result<CompileLimits> ResolveCompileLimits(const EngineOptions& o) {
  CompileLimits l;
  if (o.compile_timeout_us) {
    l.timeout_us = *o.compile_timeout_us;
  } else if (const char* v = getenv("MOAT_COMPILE_TIMEOUT"); v && *v) {
    auto us = ParseDurationUs(v);
    if (!us)
      return MakeError(ErrorCode::kInvalidArgument, "MOAT_COMPILE_TIMEOUT: " + us.error().message);
    l.timeout_us = *us;
  }
  if (o.compile_memory_bytes) {
    l.memory_bytes = *o.compile_memory_bytes;
  } else if (const char* v = getenv("MOAT_COMPILE_MEMORY"); v && *v) {
    auto bytes = ParseSize(v);
    if (!bytes)
      return MakeError(ErrorCode::kInvalidArgument,
                       "MOAT_COMPILE_MEMORY: " + bytes.error().message);
    l.memory_bytes = *bytes;
  }
  if (auto s = l.Validate(); !s) {
    bool from_env = !o.compile_timeout_us || !o.compile_memory_bytes;
    return MakeError(
        ErrorCode::kInvalidArgument,
        (from_env ? "$MOAT_COMPILE_TIMEOUT / $MOAT_COMPILE_MEMORY: " : "") + s.error().message);
  }
  return l;
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Create(EngineOptions options) {
  rt::InitProcess();
  auto limits = ResolveCompileLimits(options);
  if (!limits) return limits.error();
  if (rt::WasiHostLinked() + rt::MoatHostLinked() != 2)
    return MakeError(ErrorCode::kInternal, "host functions missing");
  std::string dir = options.cache_dir.empty() ? CompileCache::DefaultDir() : options.cache_dir;
  auto cache = CompileCache::Open(dir);
  if (!cache) return cache.error();
  auto cc = CCompiler::Find();
  if (!cc) return cc.error();
  return std::unique_ptr<Engine>(
      new Engine(std::move(options), *limits, std::move(*cache), std::move(*cc)));
}

std::string Engine::CacheKey(const std::string& wasm_sha256) const {
  return wasm_sha256 + "-" + config_tag_;
}

Result<ModuleHandle> Engine::LoadFile(const std::string& path, const LoadControl& control) {
  auto bytes = ReadFile(path, Limits::kMaxModuleBytes);
  if (!bytes) {
    if (bytes.error().code == ErrorCode::kLimit) {
      return MakeError(ErrorCode::kInvalidModule, bytes.error().message);
    }
    return bytes.error();
  }
  std::string label = path.substr(path.find_last_of('/') + 1);
  return Load(*bytes, label, control);
}

Result<ModuleHandle> Engine::Load(std::span<const uint8_t> wasm, const std::string& label,
                                  const LoadControl& control) {
  std::string sha = ToHex(Sha256(wasm));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = loaded_.find(sha); it != loaded_.end()) {
      ModuleHandle h = it->second;
      h.compile_ms = 0;
      h.cache_hit = true;
      return h;
    }
  }
  auto start = std::chrono::steady_clock::now();
  bool built = false;
  CompileBudget budget = CompileBudget::Start(compile_limits_, control.timeout_us,
                                              control.cancel ? control.cancel->flag() : nullptr);
  auto obj = cache_.FindOrBuild(
      CacheKey(sha),
      [&](const std::string& work, const std::string& out) -> Status {
        Progress progress(options_.show_progress, label);
        auto seconds = [&] {
          return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        if (options_.on_compile) options_.on_compile(label, "translating", 0);
        PipelineOptions popts;
        popts.meter_fuel = options_.meter_fuel;
        auto tr = TranslateWasmIsolated(wasm, popts, budget);
        if (!tr) {
          if (options_.on_compile) options_.on_compile(label, "failed", seconds());
          return tr.error();
        }
        if (auto s = WriteFileAtomic(work, "moat_module.h", tr->h_source.data(),
                                     tr->h_source.size(), 0600);
            !s) {
          return s;
        }
        if (auto s = WriteFileAtomic(work, "moat_module.c", tr->c_source.data(),
                                     tr->c_source.size(), 0600);
            !s) {
          return s;
        }
        progress.Phase("compiling");
        if (options_.on_compile) options_.on_compile(label, "compiling", seconds());
        Status compiled = cc_.Compile(work, out, tr->c_source.size(), budget);
        if (options_.on_compile)
          options_.on_compile(label, compiled ? "done" : "failed", seconds());
        return compiled;
      },
      &built, budget);
  if (!obj) return obj.error();
  auto handle = OpenObject(*obj, sha);
  if (!handle) return handle.error();
  handle->cache_hit = !built;
  handle->compile_ms =
      built ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count()
            : 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = loaded_.emplace(sha, *handle);
  if (!inserted) {
    ModuleHandle h = it->second;  // another thread won the race; use its copy
    h.compile_ms = handle->compile_ms;
    h.cache_hit = handle->cache_hit;
    return h;
  }
  return *handle;
}

ExecResult Engine::Run(const ExecRequest& request) const {
  ModuleHandle h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loaded_.find(request.module_sha256);
    if (it == loaded_.end()) {
      ExecResult r;
      r.status = RunStatus::kInvalidModule;
      r.module_sha256 = request.module_sha256;
      r.message = "module " + request.module_sha256 + " is not loaded";
      return r;
    }
    h = it->second;
  }
  return Run(h, request);
}

namespace {
void WriteAllTo(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}
}  // namespace

struct Instance::State {
  ModuleHandle module;
  ExecRequest request;
  HostContext host;
  ExecResult result;
  CaptureSink cap_out{&result.stdout_bytes};
  CaptureSink cap_err{&result.stderr_bytes};
  FdSink fd_out{1};
  FdSink fd_err{2};
  // Inherited stdio with secrets granted: output is held, redacted and written at the end.
  bool hold_output = false;
  bool refused = false;  // result already final before running anything
  bool finished = false;
  uint64_t run_ns = 0;  // time spent inside the instance so far
};

Instance::Instance(std::unique_ptr<State> state) : s_(std::move(state)) {}

// Nothing a run reports may hold a granted secret's value: the guest never sees one, and
// this is the last line if a value reached it anyway (a server that encodes it in a way
// the response scan missed, say). Each redaction is a denied event.
void Instance::RedactSecrets(State& st) {
  const std::vector<net::Secret>& secrets = st.request.network.secrets;
  ExecResult& r = st.result;
  if (!secrets.empty()) {
    std::vector<std::string> found;
    r.stdout_bytes = net::Redact(std::move(r.stdout_bytes), secrets, &found);
    r.stderr_bytes = net::Redact(std::move(r.stderr_bytes), secrets, &found);
    for (CapabilityEvent& e : r.denied) {
      e.subject = net::Redact(std::move(e.subject), secrets);
      e.reason = net::Redact(std::move(e.reason), secrets);
    }
    r.message = net::Redact(std::move(r.message), secrets);
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    for (const std::string& name : found) {
      r.denied.push_back(
          {"output", "stdout/stderr", "the value of secret " + name + " was redacted"});
    }
  }
  if (st.hold_output) {
    WriteAllTo(1, r.stdout_bytes);
    WriteAllTo(2, r.stderr_bytes);
    r.stdout_bytes.clear();
    r.stderr_bytes.clear();
  }
}

Instance::~Instance() {
  if (s_->host.instance) rt::Destroy(s_->module.module->abi(), s_->host);
}

uint64_t Instance::memory_bytes() const { return s_->host.instance ? s_->host.memory().size() : 0; }

const uint8_t* Instance::memory_base() const { return s_->host.mem_base; }

std::unique_ptr<Instance> Engine::Instantiate(const ModuleHandle& module,
                                              ExecRequest request) const {
  auto st = std::make_unique<Instance::State>();
  st->module = module;
  st->request = std::move(request);
  ExecResult& r = st->result;
  const ExecRequest& req = st->request;
  r.module_sha256 = module.sha256;
  r.compile_ms = module.compile_ms;
  r.cache_hit = module.cache_hit;
  const Limits& limits = req.limits;
  auto refuse = [&](RunStatus status, std::string message) {
    r.status = status;
    r.message = std::move(message);
    st->refused = true;
    return std::unique_ptr<Instance>(new Instance(std::move(st)));
  };
  if (auto s = limits.Validate(); !s) {
    return refuse(RunStatus::kDenied, "invalid limits: " + s.error().message);
  }
  if (module.shape.has_memory && module.shape.initial_pages > limits.memory_pages()) {
    return refuse(RunStatus::kMemoryLimit,
                  "module needs " + std::to_string(uint64_t{module.shape.initial_pages} << 16) +
                      " bytes of initial memory; the limit is " +
                      std::to_string(limits.memory_bytes));
  }
  HostContext& h = st->host;
  h.request = &req;
  h.memory_limit_pages = limits.memory_pages();
  std::vector<std::string> env;
  for (const auto& [k, v] : req.env) env.push_back(k + "=" + v);
  if (req.argv.empty()) {
    BuildBlock({"module.wasm"}, &h.args_block, &h.args_offsets);
  } else {
    BuildBlock(req.argv, &h.args_block, &h.args_offsets);
  }
  BuildBlock(env, &h.env_block, &h.env_offsets);
  if (h.args_block.size() + h.env_block.size() > Limits::kMaxArgsEnvBytes) {
    return refuse(RunStatus::kDenied, "arguments and environment exceed " +
                                          std::to_string(Limits::kMaxArgsEnvBytes) + " bytes");
  }
  auto fs = wasi::Fs::Create(req, &h.events, own_paths_);
  if (!fs) return refuse(RunStatus::kDenied, fs.error().message);
  h.fs = std::move(*fs);
  h.rng_state = req.seed;
  st->hold_output = req.inherit_stdio && !req.network.secrets.empty();
  bool direct = req.inherit_stdio && !st->hold_output;
  h.out = direct ? static_cast<OutputSink*>(&st->fd_out) : &st->cap_out;
  h.err = direct ? static_cast<OutputSink*>(&st->fd_err) : &st->cap_err;
  h.http_backend = options_.http_backend;
  uint64_t start = rt::MonotonicNs();
  h.deadline_ns = start + limits.timeout_us * 1000;
  rt::Instantiate(module.module->abi(), h);
  st->run_ns = rt::MonotonicNs() - start;
  return std::unique_ptr<Instance>(new Instance(std::move(st)));
}

ExecResult Engine::Run(const ModuleHandle& module, const ExecRequest& request) const {
  std::unique_ptr<Instance> inst = Instantiate(module, request);
  return inst->Finish();
}

ExecResult Instance::Start() {
  if (!s_->finished && !s_->refused) {
    s_->host.deadline_ns = rt::MonotonicNs() + s_->request.limits.timeout_us * 1000;
  }
  return Finish();
}

ExecResult Instance::Finish() {
  State& st = *s_;
  if (st.refused || st.finished) return st.result;
  st.finished = true;
  HostContext& h = st.host;
  const Limits& limits = st.request.limits;
  uint64_t start = rt::MonotonicNs();
  rt::Start(st.module.module->abi(), h);
  rt::Destroy(st.module.module->abi(), h);
  ExecResult& r = st.result;
  r.wall_us = (st.run_ns + rt::MonotonicNs() - start) / 1000;
  r.fuel_used = h.FuelUsed();
  r.peak_memory_bytes = h.peak_memory_bytes;
  r.denied = std::move(h.events);
  if (h.http) {
    r.http_requests = h.http->requests;
    r.http_bytes_sent = h.http->bytes_sent;
    r.http_bytes_received = h.http->bytes_received;
  }
  if (h.fs) {
    r.fs_bytes_written = h.fs->bytes_written();
    r.fs_files_created = h.fs->files_created();
    r.untrusted_reads = h.fs->untrusted_reads();
    r.untrusted_read_count = h.fs->untrusted_read_count();
  }
  // The counter is checked at loop headers, function entries and bulk operations; the
  // charges in between can take it past the limit in code that then finishes. Such a run
  // failed like one stopped at a check: an ok run never used more than its limit.
  if ((h.stop == StopReason::kNone || h.stop == StopReason::kExit) && r.fuel_used > limits.fuel) {
    h.stop = StopReason::kFuel;
  }
  r.message = h.stop_message;
  switch (h.stop) {
    case StopReason::kNone:
      r.status = RunStatus::kOk;
      r.exited = true;
      break;
    case StopReason::kExit:
      r.status = RunStatus::kOk;
      r.exited = true;
      r.exit_code = static_cast<int>(h.exit_code);
      break;
    case StopReason::kTrap:
      r.trap = h.trap;
      // A trap right after a refused memory.grow is the guest failing to get memory.
      r.status = h.grow_refused ? RunStatus::kMemoryLimit : RunStatus::kTrap;
      if (r.message.empty()) r.message = std::string(TrapKindMessage(h.trap));
      if (h.grow_refused) {
        r.message = "memory limit of " + std::to_string(limits.memory_bytes) +
                    " bytes reached (memory.grow refused), then the guest trapped: " + r.message;
      }
      break;
    case StopReason::kFuel:
      r.status = RunStatus::kFuelExhausted;
      r.message = "fuel limit of " + std::to_string(limits.fuel) + " exhausted";
      break;
    case StopReason::kTimeout:
      r.status = RunStatus::kTimeout;
      r.message = "deadline of " + std::to_string(limits.timeout_us / 1000) + " ms passed";
      break;
    case StopReason::kCancelled:
      r.status = RunStatus::kCancelled;
      r.message = "cancelled";
      break;
    case StopReason::kOutputLimit:
      r.status = RunStatus::kOutputLimit;
      r.message = "output limit of " + std::to_string(limits.max_output_bytes) + " bytes reached";
      break;
    case StopReason::kMemoryLimit: r.status = RunStatus::kMemoryLimit; break;
    case StopReason::kInternal: r.status = RunStatus::kInternal; break;
  }
  RedactSecrets(st);
  return r;
}

}  // namespace moat
