// wasi_snapshot_preview1 for command programs: args, environ, clocks, random, stdio,
// preopen discovery, poll on clocks and stdio, exit. The rest answers ENOSYS for now.
// Every guest pointer goes through GuestMemory; every call is charged fuel and checks the
// deadline and cancellation on the way out.
#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "execution/host_context.h"
#include "execution/runtime.h"

namespace moat {
namespace {

// WASI errno values.
enum : uint32_t {
  kSuccess = 0,
  kE2big = 1,
  kEbadf = 8,
  kEfault = 21,
  kEinval = 28,
  kEio = 29,
  kEnametoolong = 37,
  kEnosys = 52,
  kEpipe = 64,
  kEspipe = 70,
};

// WASI file types.
enum : uint8_t {
  kFileTypeUnknown = 0,
  kFileTypeCharDevice = 2,
  kFileTypeDirectory = 3,
  kFileTypeRegular = 4,
  kFileTypeSocketStream = 6,
};

constexpr uint64_t kRightFdRead = 1ull << 1;
constexpr uint64_t kRightFdFdstatSetFlags = 1ull << 3;
constexpr uint64_t kRightFdWrite = 1ull << 6;
constexpr uint64_t kRightFdFilestatGet = 1ull << 21;
constexpr uint64_t kRightPollFdReadwrite = 1ull << 27;
constexpr uint64_t kStdioRights = kRightFdRead | kRightFdWrite | kRightFdFdstatSetFlags |
                                  kRightFdFilestatGet | kRightPollFdReadwrite;

constexpr int64_t kHostCallFuel = 50;   // every host call
constexpr uint32_t kBytesPerFuel = 64;  // plus one unit per 64 bytes moved
constexpr uint32_t kFirstPreopenFd = 3;

void ChargeFuel(HostContext& h, uint64_t units) {
  if (int64_t* c = h.fuel_counter()) *c -= static_cast<int64_t>(units);
}

// Runs a host function body between EnterHost and LeaveHost. The body's C++ objects are
// destroyed before LeaveHost may unwind to the runtime.
template <class F>
uint32_t HostCall(void* host, F&& body) {
  HostContext* h = rt::EnterHost(host);
  uint32_t r = kEio;
  try {
    ChargeFuel(*h, kHostCallFuel);
    r = body(*h);
  } catch (...) {
    h->stop = StopReason::kInternal;
    h->stop_message = "host function failed";
  }
  rt::LeaveHost(h);
  return r;
}

bool IsPreopen(const HostContext& h, uint32_t fd) {
  return fd >= kFirstPreopenFd && fd - kFirstPreopenFd < h.request->mounts.size();
}

uint8_t HostFdType(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return kFileTypeUnknown;
  if (S_ISCHR(st.st_mode)) return kFileTypeCharDevice;
  if (S_ISREG(st.st_mode)) return kFileTypeRegular;
  if (S_ISSOCK(st.st_mode)) return kFileTypeSocketStream;
  return kFileTypeUnknown;
}

uint8_t StdioType(const HostContext& h, uint32_t fd) {
  return h.request->inherit_stdio ? HostFdType(static_cast<int>(fd)) : uint8_t{kFileTypeUnknown};
}

uint32_t WriteBlock(const HostContext& h, const std::string& block,
                    const std::vector<uint32_t>& offsets, uint32_t ptrs, uint32_t buf) {
  GuestMemory mem = h.memory();
  if (!mem.WriteBytes(buf, block.data(), static_cast<uint32_t>(block.size()))) return kEfault;
  if (!mem.Span(ptrs, static_cast<uint32_t>(offsets.size() * 4))) return kEfault;
  for (size_t i = 0; i < offsets.size(); ++i) {
    if (!mem.Write<uint32_t>(ptrs + static_cast<uint32_t>(i * 4), buf + offsets[i])) return kEfault;
  }
  return kSuccess;
}

uint32_t WriteSizes(const HostContext& h, size_t count, size_t bytes, uint32_t count_ptr,
                    uint32_t size_ptr) {
  GuestMemory mem = h.memory();
  if (!mem.Write<uint32_t>(count_ptr, static_cast<uint32_t>(count)) ||
      !mem.Write<uint32_t>(size_ptr, static_cast<uint32_t>(bytes))) {
    return kEfault;
  }
  return kSuccess;
}

bool ClockFor(uint32_t id, clockid_t* out) {
  switch (id) {
    case 0: *out = CLOCK_REALTIME; return true;
    case 1: *out = CLOCK_MONOTONIC; return true;
    case 2: *out = CLOCK_PROCESS_CPUTIME_ID; return true;
    case 3: *out = CLOCK_THREAD_CPUTIME_ID; return true;
    default: return false;
  }
}

uint64_t Now(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct IoVec {
  uint32_t buf;
  uint32_t len;
};

// Reads and bounds-checks an iovec array. Returns kSuccess or kEfault/kEinval.
uint32_t ReadIoVecs(const GuestMemory& mem, uint32_t iovs, uint32_t count,
                    std::vector<IoVec>* out) {
  if (count > 1024) return kEinval;  // IOV_MAX
  if (!mem.Span(iovs, count * 8)) return kEfault;
  out->resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    IoVec v{};
    mem.Read(iovs + i * 8, &v.buf);
    mem.Read(iovs + i * 8 + 4, &v.len);
    if (!mem.Span(v.buf, v.len)) return kEfault;
    (*out)[i] = v;
  }
  return kSuccess;
}

uint32_t FdWrite(HostContext& h, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nwritten) {
  GuestMemory mem = h.memory();
  if (fd != 1 && fd != 2) return kEbadf;
  if (h.stdio_closed[fd]) return kEbadf;
  std::vector<IoVec> v;
  if (uint32_t e = ReadIoVecs(mem, iovs, iovs_len, &v); e != kSuccess) return e;
  OutputSink* sink = fd == 1 ? h.out : h.err;
  uint64_t total = 0;
  for (const IoVec& io : v) {
    if (io.len == 0) continue;
    uint64_t room = h.request->limits.max_output_bytes - h.output_used;
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(io.len, room));
    if (n && !sink->Write(mem.Span(io.buf, n)->data(), n, h)) {
      h.stop = rt::WaitStopReason(h);
      return kEio;
    }
    h.output_used += n;
    total += n;
    ChargeFuel(h, n / kBytesPerFuel);
    if (n < io.len) {
      h.Deny("fd_write", fd == 1 ? "stdout" : "stderr",
             "output limit of " + std::to_string(h.request->limits.max_output_bytes) +
                 " bytes reached");
      h.stop = StopReason::kOutputLimit;
      break;
    }
  }
  if (!mem.Write<uint32_t>(nwritten, static_cast<uint32_t>(total))) return kEfault;
  return kSuccess;
}

uint32_t FdRead(HostContext& h, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nread) {
  GuestMemory mem = h.memory();
  if (fd != 0 || h.stdio_closed[0]) return kEbadf;
  std::vector<IoVec> v;
  if (uint32_t e = ReadIoVecs(mem, iovs, iovs_len, &v); e != kSuccess) return e;
  uint64_t total = 0;
  if (h.request->inherit_stdio) {
    for (const IoVec& io : v) {
      if (io.len == 0) continue;
      if (!rt::WaitFd(h, 0, POLLIN)) {
        h.stop = rt::WaitStopReason(h);
        return kEio;
      }
      ssize_t n;
      do {
        n = read(0, mem.Span(io.buf, io.len)->data(), io.len);
      } while (n < 0 && errno == EINTR);
      if (n < 0) return kEio;
      total = static_cast<uint64_t>(n);
      break;  // one read per call, like readv on a pipe
    }
  } else {
    const std::string& in = h.request->stdin_bytes;
    for (const IoVec& io : v) {
      size_t n = std::min<size_t>(io.len, in.size() - h.stdin_pos);
      if (n) memcpy(mem.Span(io.buf, static_cast<uint32_t>(n))->data(), in.data() + h.stdin_pos, n);
      h.stdin_pos += n;
      total += n;
      if (n < io.len) break;
    }
  }
  ChargeFuel(h, total / kBytesPerFuel);
  if (!mem.Write<uint32_t>(nread, static_cast<uint32_t>(total))) return kEfault;
  return kSuccess;
}

uint32_t FdFdstatGet(HostContext& h, uint32_t fd, uint32_t out) {
  uint8_t type;
  uint64_t rights, inheriting = 0;
  if (fd <= 2) {
    if (h.stdio_closed[fd]) return kEbadf;
    type = StdioType(h, fd);
    rights = kStdioRights;
  } else if (IsPreopen(h, fd)) {
    type = kFileTypeDirectory;
    rights = 0;  // path operations arrive with the full WASI layer
  } else {
    return kEbadf;
  }
  uint8_t buf[24] = {};
  buf[0] = type;
  memcpy(buf + 8, &rights, 8);
  memcpy(buf + 16, &inheriting, 8);
  return h.memory().WriteBytes(out, buf, sizeof buf) ? kSuccess : kEfault;
}

uint32_t FdFilestatGet(HostContext& h, uint32_t fd, uint32_t out) {
  uint8_t type;
  if (fd <= 2 && !h.stdio_closed[fd])
    type = StdioType(h, fd);
  else if (IsPreopen(h, fd))
    type = kFileTypeDirectory;
  else
    return kEbadf;
  uint8_t buf[64] = {};
  buf[16] = type;
  return h.memory().WriteBytes(out, buf, sizeof buf) ? kSuccess : kEfault;
}

uint32_t PollOneoff(HostContext& h, uint32_t in, uint32_t out, uint32_t nsubs, uint32_t nevents) {
  GuestMemory mem = h.memory();
  if (nsubs == 0) return kEinval;
  if (nsubs > 4096) return kEinval;
  if (!mem.Span(in, nsubs * 48) || !mem.Span(out, nsubs * 32)) return kEfault;
  struct Sub {
    uint64_t userdata;
    uint8_t tag;
    uint64_t wake_ns;  // CLOCK_MONOTONIC, for clocks
    uint32_t fd;
    uint16_t error;
  };
  std::vector<Sub> subs(nsubs);
  uint64_t now = rt::MonotonicNs();
  uint64_t earliest = UINT64_MAX;
  bool fd_ready = false;
  for (uint32_t i = 0; i < nsubs; ++i) {
    uint32_t p = in + i * 48;
    Sub& s = subs[i];
    s.error = kSuccess;
    mem.Read(p, &s.userdata);
    mem.Read(p + 8, &s.tag);
    if (s.tag == 0) {
      uint32_t id = 0;  // in-bounds: the whole array was checked above
      uint64_t timeout = 0;
      uint16_t flags = 0;
      mem.Read(p + 16, &id);
      mem.Read(p + 24, &timeout);
      mem.Read(p + 40, &flags);
      clockid_t c;
      if (!ClockFor(id, &c)) {
        s.error = kEinval;
        fd_ready = true;  // report the error at once
        continue;
      }
      if (flags & 1) {  // absolute time on that clock
        uint64_t cur = Now(c);
        s.wake_ns = timeout <= cur ? now : now + (timeout - cur);
      } else {
        s.wake_ns = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
      }
      earliest = std::min(earliest, s.wake_ns);
    } else if (s.tag == 1 || s.tag == 2) {
      mem.Read(p + 16, &s.fd);
      bool ok = s.tag == 1 ? s.fd == 0 : (s.fd == 1 || s.fd == 2);
      if (!ok || h.stdio_closed[std::min<uint32_t>(s.fd, 2)]) s.error = kEbadf;
      fd_ready = true;  // stdio is reported ready, as for regular files
    } else {
      return kEinval;
    }
  }
  if (!fd_ready) {
    // Sleep until the earliest clock, the run's deadline, or cancellation.
    for (;;) {
      now = rt::MonotonicNs();
      if (now >= earliest) break;
      if (now >= h.deadline_ns) {
        h.stop = StopReason::kTimeout;
        return kSuccess;
      }
      if (h.request->cancel && h.request->cancel->cancelled()) {
        h.stop = StopReason::kCancelled;
        return kSuccess;
      }
      uint64_t until = std::min<uint64_t>({earliest, h.deadline_ns, now + 20'000'000ull});
      timespec ts{static_cast<time_t>((until - now) / 1'000'000'000ull),
                  static_cast<long>((until - now) % 1'000'000'000ull)};
      nanosleep(&ts, nullptr);
    }
  }
  now = rt::MonotonicNs();
  uint32_t n = 0;
  for (const Sub& s : subs) {
    bool fire = s.tag == 0 ? (s.error != kSuccess || now >= s.wake_ns) : true;
    if (!fire) continue;
    uint8_t ev[32] = {};
    memcpy(ev, &s.userdata, 8);
    memcpy(ev + 8, &s.error, 2);
    ev[10] = s.tag;
    if (s.tag != 0 && s.error == kSuccess) {
      uint64_t nbytes = 1;
      memcpy(ev + 16, &nbytes, 8);
    }
    mem.WriteBytes(out + n * 32, ev, sizeof ev);
    ++n;
  }
  return mem.Write<uint32_t>(nevents, n) ? kSuccess : kEfault;
}

}  // namespace
}  // namespace moat

using moat::HostCall;
using moat::HostContext;
using u32 = uint32_t;
using u64 = uint64_t;

#define WASI(name) Z_wasi_snapshot_preview1Z_##name

extern "C" {

u32 WASI(args_sizes_get)(void* p, u32 argc, u32 size) {
  return HostCall(p, [&](HostContext& h) {
    return moat::WriteSizes(h, h.args_offsets.size(), h.args_block.size(), argc, size);
  });
}
u32 WASI(args_get)(void* p, u32 argv, u32 buf) {
  return HostCall(p, [&](HostContext& h) {
    return moat::WriteBlock(h, h.args_block, h.args_offsets, argv, buf);
  });
}
u32 WASI(environ_sizes_get)(void* p, u32 count, u32 size) {
  return HostCall(p, [&](HostContext& h) {
    return moat::WriteSizes(h, h.env_offsets.size(), h.env_block.size(), count, size);
  });
}
u32 WASI(environ_get)(void* p, u32 env, u32 buf) {
  return HostCall(
      p, [&](HostContext& h) { return moat::WriteBlock(h, h.env_block, h.env_offsets, env, buf); });
}
u32 WASI(clock_res_get)(void* p, u32 id, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    clockid_t c;
    if (!moat::ClockFor(id, &c)) return moat::kEinval;
    timespec ts{};
    clock_getres(c, &ts);
    u64 ns = static_cast<u64>(ts.tv_sec) * 1'000'000'000ull + static_cast<u64>(ts.tv_nsec);
    return h.memory().Write<u64>(out, ns) ? moat::kSuccess : moat::kEfault;
  });
}
u32 WASI(clock_time_get)(void* p, u32 id, u64 /*precision*/, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    clockid_t c;
    if (!moat::ClockFor(id, &c)) return moat::kEinval;
    return h.memory().Write<u64>(out, moat::Now(c)) ? moat::kSuccess : moat::kEfault;
  });
}
u32 WASI(random_get)(void* p, u32 buf, u32 len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto span = h.memory().Span(buf, len);
    if (!span) return moat::kEfault;
    size_t done = 0;
    while (done < len) {
      ssize_t n = getrandom(span->data() + done, len - done, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return moat::kEio;
      }
      done += static_cast<size_t>(n);
    }
    moat::ChargeFuel(h, len / moat::kBytesPerFuel);
    return moat::kSuccess;
  });
}
u32 WASI(fd_write)(void* p, u32 fd, u32 iovs, u32 n, u32 out) {
  return HostCall(p, [&](HostContext& h) { return moat::FdWrite(h, fd, iovs, n, out); });
}
u32 WASI(fd_read)(void* p, u32 fd, u32 iovs, u32 n, u32 out) {
  return HostCall(p, [&](HostContext& h) { return moat::FdRead(h, fd, iovs, n, out); });
}
u32 WASI(fd_close)(void* p, u32 fd) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    if (fd <= 2 && !h.stdio_closed[fd]) {
      h.stdio_closed[fd] = true;
      return moat::kSuccess;
    }
    return moat::kEbadf;
  });
}
u32 WASI(fd_fdstat_get)(void* p, u32 fd, u32 out) {
  return HostCall(p, [&](HostContext& h) { return moat::FdFdstatGet(h, fd, out); });
}
u32 WASI(fd_fdstat_set_flags)(void* p, u32 fd, u32 /*flags*/) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    return fd <= 2 && !h.stdio_closed[fd] ? moat::kSuccess : moat::kEbadf;
  });
}
u32 WASI(fd_filestat_get)(void* p, u32 fd, u32 out) {
  return HostCall(p, [&](HostContext& h) { return moat::FdFilestatGet(h, fd, out); });
}
u32 WASI(fd_seek)(void* p, u32 fd, u64, u32, u32) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    return fd <= 2 && !h.stdio_closed[fd] ? moat::kEspipe : moat::kEbadf;
  });
}
u32 WASI(fd_tell)(void* p, u32 fd, u32) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    return fd <= 2 && !h.stdio_closed[fd] ? moat::kEspipe : moat::kEbadf;
  });
}
u32 WASI(fd_prestat_get)(void* p, u32 fd, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    if (!moat::IsPreopen(h, fd)) return moat::kEbadf;
    const auto& m = h.request->mounts[fd - moat::kFirstPreopenFd];
    uint8_t buf[8] = {};
    u32 len = static_cast<u32>(m.guest_path.size());
    memcpy(buf + 4, &len, 4);
    return h.memory().WriteBytes(out, buf, 8) ? moat::kSuccess : moat::kEfault;
  });
}
u32 WASI(fd_prestat_dir_name)(void* p, u32 fd, u32 path, u32 len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    if (!moat::IsPreopen(h, fd)) return moat::kEbadf;
    const std::string& name = h.request->mounts[fd - moat::kFirstPreopenFd].guest_path;
    if (len < name.size()) return moat::kEnametoolong;
    return h.memory().WriteBytes(path, name.data(), static_cast<u32>(name.size())) ? moat::kSuccess
                                                                                   : moat::kEfault;
  });
}
u32 WASI(poll_oneoff)(void* p, u32 in, u32 out, u32 n, u32 nevents) {
  return HostCall(p, [&](HostContext& h) { return moat::PollOneoff(h, in, out, n, nevents); });
}
u32 WASI(sched_yield)(void* p) {
  return HostCall(p, [&](HostContext&) -> u32 { return moat::kSuccess; });
}
void WASI(proc_exit)(void* p, u32 code) {
  HostContext* h = moat::rt::EnterHost(p);
  h->exit_code = code;
  h->stop = moat::StopReason::kExit;
  moat::rt::LeaveHost(h);  // unwinds
  moat::rt::StopRun(moat::StopReason::kExit);
}

// Not yet provided: the full WASI layer (files under mounts) comes with the capability
// layer. Until then these answer ENOSYS, with the right types so any WASI module links.
#define ENOSYS_STUB(name, ...)                                             \
  u32 WASI(name)(void* p, __VA_ARGS__) {                                   \
    return HostCall(p, [](HostContext&) -> u32 { return moat::kEnosys; }); \
  }
ENOSYS_STUB(fd_advise, u32, u64, u64, u32)
ENOSYS_STUB(fd_allocate, u32, u64, u64)
ENOSYS_STUB(fd_datasync, u32)
ENOSYS_STUB(fd_fdstat_set_rights, u32, u64, u64)
ENOSYS_STUB(fd_filestat_set_size, u32, u64)
ENOSYS_STUB(fd_filestat_set_times, u32, u64, u64, u32)
ENOSYS_STUB(fd_pread, u32, u32, u32, u64, u32)
ENOSYS_STUB(fd_pwrite, u32, u32, u32, u64, u32)
ENOSYS_STUB(fd_readdir, u32, u32, u32, u64, u32)
ENOSYS_STUB(fd_renumber, u32, u32)
ENOSYS_STUB(fd_sync, u32)
ENOSYS_STUB(path_create_directory, u32, u32, u32)
ENOSYS_STUB(path_filestat_get, u32, u32, u32, u32, u32)
ENOSYS_STUB(path_filestat_set_times, u32, u32, u32, u32, u64, u64, u32)
ENOSYS_STUB(path_link, u32, u32, u32, u32, u32, u32, u32)
ENOSYS_STUB(path_open, u32, u32, u32, u32, u32, u64, u64, u32, u32)
ENOSYS_STUB(path_readlink, u32, u32, u32, u32, u32, u32)
ENOSYS_STUB(path_remove_directory, u32, u32, u32)
ENOSYS_STUB(path_rename, u32, u32, u32, u32, u32, u32)
ENOSYS_STUB(path_symlink, u32, u32, u32, u32, u32)
ENOSYS_STUB(path_unlink_file, u32, u32, u32)
ENOSYS_STUB(proc_raise, u32)
ENOSYS_STUB(sock_accept, u32, u32, u32)
ENOSYS_STUB(sock_recv, u32, u32, u32, u32, u32, u32)
ENOSYS_STUB(sock_send, u32, u32, u32, u32, u32)
ENOSYS_STUB(sock_shutdown, u32, u32)
#undef ENOSYS_STUB

}  // extern "C"

namespace moat::rt {
// Referenced by the engine so the linker keeps this object (and its exported host
// functions, which only dlopen'ed modules call) in every binary.
int WasiHostLinked() { return 1; }
}  // namespace moat::rt
