// wasi_snapshot_preview1: the exported host functions. This file moves values between guest
// memory and the host; files and paths are wasi::Fs (wasi_fs.cc), the capability layer.
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
#include <optional>
#include <utility>

#include "execution/host_call.h"
#include "execution/host_context.h"
#include "execution/runtime.h"

namespace moat {
namespace {

using namespace wasi;  // NOLINT: the ABI constants

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

// Host iovecs over bounds-checked guest spans.
std::vector<iovec> HostIoVecs(const GuestMemory& mem, const std::vector<IoVec>& v) {
  std::vector<iovec> out;
  out.reserve(v.size());
  for (const IoVec& io : v) {
    if (io.len == 0) continue;
    out.push_back({mem.Span(io.buf, io.len)->data(), io.len});
  }
  return out;
}

// Deterministic mode: time starts at 2000-01-01T00:00:00Z and advances one nanosecond per
// unit of fuel, plus whatever the guest slept.
constexpr uint64_t kDeterministicEpochNs = 946'684'800ull * 1'000'000'000ull;

bool ClockNow(const HostContext& h, uint32_t id, uint64_t* out) {
  clockid_t c;
  if (!ClockFor(id, &c)) return false;
  if (h.request->deterministic) {
    uint64_t t = h.FuelUsed() + (id <= 1 ? h.virtual_sleep_ns : 0);
    *out = id == 0 ? kDeterministicEpochNs + t : t;
    return true;
  }
  *out = Now(c);
  return true;
}

uint64_t NextRandom(HostContext& h) {  // splitmix64
  uint64_t z = (h.rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint32_t WriteStdio(HostContext& h, uint8_t stream, const GuestMemory& mem,
                    const std::vector<IoVec>& v, uint64_t* total) {
  OutputSink* sink = stream == 1 ? h.out : h.err;
  for (const IoVec& io : v) {
    if (io.len == 0) continue;
    uint64_t room = h.request->limits.max_output_bytes - h.output_used;
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(io.len, room));
    if (n && !sink->Write(mem.Span(io.buf, n)->data(), n, h)) {
      h.stop = rt::WaitStopReason(h);
      return kEio;
    }
    h.output_used += n;
    *total += n;
    if (n < io.len) {
      h.Deny("fd_write", stream == 1 ? "stdout" : "stderr",
             "output limit of " + std::to_string(h.request->limits.max_output_bytes) +
                 " bytes reached");
      h.stop = StopReason::kOutputLimit;
      break;
    }
  }
  return kSuccess;
}

uint32_t ReadStdin(HostContext& h, const GuestMemory& mem, const std::vector<IoVec>& v,
                   uint64_t* total) {
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
      *total = static_cast<uint64_t>(n);
      break;  // one read per call, like readv on a pipe
    }
    return kSuccess;
  }
  const std::string& in = h.request->stdin_bytes;
  for (const IoVec& io : v) {
    size_t n = std::min<size_t>(io.len, in.size() - h.stdin_pos);
    if (n) memcpy(mem.Span(io.buf, static_cast<uint32_t>(n))->data(), in.data() + h.stdin_pos, n);
    h.stdin_pos += n;
    *total += n;
    if (n < io.len) break;
  }
  return kSuccess;
}

// fd_read, fd_write, fd_pread and fd_pwrite.
enum class Io { kRead, kWrite, kPread, kPwrite };

uint32_t FdIo(HostContext& h, Io kind, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
              uint64_t offset, uint32_t result) {
  GuestMemory mem = h.memory();
  FdEntry* e = h.fs->Get(fd);
  if (!e) return kEbadf;
  std::vector<IoVec> v;
  if (uint32_t r = ReadIoVecs(mem, iovs, iovs_len, &v); r != kSuccess) return r;
  uint64_t total = 0;
  uint32_t r = kSuccess;
  bool writing = kind == Io::kWrite || kind == Io::kPwrite;
  if (e->kind == FdKind::kStdio) {
    if (kind == Io::kPread || kind == Io::kPwrite) return kEspipe;
    if (writing != (e->stdio != 0)) return kEbadf;
    r = writing ? WriteStdio(h, e->stdio, mem, v, &total) : ReadStdin(h, mem, v, &total);
  } else {
    std::vector<iovec> hv = HostIoVecs(mem, v);
    switch (kind) {
      case Io::kRead: r = h.fs->Read(fd, hv, &total); break;
      case Io::kWrite: r = h.fs->Write(fd, hv, &total); break;
      case Io::kPread: r = h.fs->Pread(fd, hv, offset, &total); break;
      case Io::kPwrite: r = h.fs->Pwrite(fd, hv, offset, &total); break;
    }
  }
  ChargeFuel(h, total / kBytesPerFuel);
  if (r != kSuccess) return r;
  return mem.Write<uint32_t>(result, static_cast<uint32_t>(total)) ? kSuccess : kEfault;
}

uint32_t FdFdstatGet(HostContext& h, uint32_t fd, uint32_t out) {
  FdStat st;
  if (Errno e = h.fs->FdstatGet(fd, &st)) return e;
  uint8_t buf[24] = {};
  buf[0] = st.filetype;
  memcpy(buf + 2, &st.flags, 2);
  memcpy(buf + 8, &st.rights, 8);
  memcpy(buf + 16, &st.inheriting, 8);
  return h.memory().WriteBytes(out, buf, sizeof buf) ? kSuccess : kEfault;
}

uint32_t PutFilestat(const HostContext& h, const FileStat& st, uint32_t out) {
  uint8_t buf[64] = {};
  memcpy(buf, &st.dev, 8);
  memcpy(buf + 8, &st.ino, 8);
  buf[16] = st.filetype;
  memcpy(buf + 24, &st.nlink, 8);
  memcpy(buf + 32, &st.size, 8);
  memcpy(buf + 40, &st.atim, 8);
  memcpy(buf + 48, &st.mtim, 8);
  memcpy(buf + 56, &st.ctim, 8);
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
    uint64_t wake_ns;  // on the run's clock (virtual in deterministic mode)
    uint32_t fd;
    uint16_t error;
    uint64_t nbytes;
  };
  bool virt = h.request->deterministic;
  std::vector<Sub> subs(nsubs);
  uint64_t now = 0;
  if (virt) {
    ClockNow(h, 1, &now);
  } else {
    now = rt::MonotonicNs();
  }
  uint64_t earliest = UINT64_MAX;
  bool fd_ready = false;
  for (uint32_t i = 0; i < nsubs; ++i) {
    uint32_t p = in + i * 48;
    Sub& s = subs[i];
    s.error = kSuccess;
    s.nbytes = 0;
    mem.Read(p, &s.userdata);
    mem.Read(p + 8, &s.tag);
    if (s.tag == 0) {
      uint32_t id = 0;  // in-bounds: the whole array was checked above
      uint64_t timeout = 0;
      uint16_t flags = 0;
      mem.Read(p + 16, &id);
      mem.Read(p + 24, &timeout);
      mem.Read(p + 40, &flags);
      uint64_t cur;
      if (!ClockNow(h, id, &cur)) {
        s.error = kEinval;
        fd_ready = true;  // report the error at once
        continue;
      }
      if (flags & 1) {  // absolute time on that clock
        s.wake_ns = timeout <= cur ? now : now + (timeout - cur);
      } else {
        s.wake_ns = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
      }
      earliest = std::min(earliest, s.wake_ns);
    } else if (s.tag == 1 || s.tag == 2) {
      mem.Read(p + 16, &s.fd);
      fd_ready = true;  // stdio and files are reported ready, as for regular files
      FdEntry* e = h.fs->Get(s.fd);
      if (!e || e->kind == FdKind::kDir) {
        s.error = kEbadf;
      } else if (!(e->rights & kRightPollFdReadwrite)) {
        s.error = kEnotcapable;
      } else if (e->kind == FdKind::kFile && s.tag == 1) {
        struct stat st {};
        off_t pos = lseek(e->host_fd, 0, SEEK_CUR);
        if (fstat(e->host_fd, &st) == 0 && pos >= 0 && st.st_size > pos) {
          s.nbytes = static_cast<uint64_t>(st.st_size - pos);
        }
      } else if (e->kind == FdKind::kStdio) {
        s.nbytes = 1;
      }
    } else {
      return kEinval;
    }
  }
  if (!fd_ready && virt) {
    // The virtual clock jumps to the earliest wake-up: a deterministic sleep.
    if (earliest != UINT64_MAX && earliest > now) h.virtual_sleep_ns += earliest - now;
    now = earliest;
  } else if (!fd_ready) {
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
    now = rt::MonotonicNs();
  }
  uint32_t n = 0;
  for (const Sub& s : subs) {
    bool fire = s.tag == 0 ? (s.error != kSuccess || now >= s.wake_ns) : true;
    if (!fire) continue;
    uint8_t ev[32] = {};
    memcpy(ev, &s.userdata, 8);
    memcpy(ev + 8, &s.error, 2);
    ev[10] = s.tag;
    if (s.tag != 0 && s.error == kSuccess) memcpy(ev + 16, &s.nbytes, 8);
    mem.WriteBytes(out + n * 32, ev, sizeof ev);
    ++n;
  }
  return mem.Write<uint32_t>(nevents, n) ? kSuccess : kEfault;
}

// A guest path argument: nullopt when it is not inside guest memory.
std::optional<std::string_view> Path(const HostContext& h, uint32_t ptr, uint32_t len) {
  return h.memory().String(ptr, len);
}

}  // namespace
}  // namespace moat

using moat::HostContext;
using u32 = uint32_t;
using u64 = uint64_t;
namespace w = moat::wasi;

// Every WASI host function: EIO when its body throws.
template <class F>
static u32 HostCall(void* host, F&& body) {
  return moat::HostCall(host, w::kEio, std::forward<F>(body));
}

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
    if (!moat::ClockFor(id, &c)) return w::kEinval;
    u64 ns = 1;
    if (!h.request->deterministic) {
      timespec ts{};
      clock_getres(c, &ts);
      ns = static_cast<u64>(ts.tv_sec) * 1'000'000'000ull + static_cast<u64>(ts.tv_nsec);
    }
    return h.memory().Write<u64>(out, ns) ? w::kSuccess : w::kEfault;
  });
}
u32 WASI(clock_time_get)(void* p, u32 id, u64 /*precision*/, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    u64 now;
    if (!moat::ClockNow(h, id, &now)) return w::kEinval;
    return h.memory().Write<u64>(out, now) ? w::kSuccess : w::kEfault;
  });
}
u32 WASI(random_get)(void* p, u32 buf, u32 len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto span = h.memory().Span(buf, len);
    if (!span) return w::kEfault;
    if (h.request->deterministic) {
      for (u32 i = 0; i < len; i += 8) {
        u64 r = moat::NextRandom(h);
        memcpy(span->data() + i, &r, std::min<u32>(8, len - i));
      }
    } else {
      size_t done = 0;
      while (done < len) {
        ssize_t n = getrandom(span->data() + done, len - done, 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          return w::kEio;
        }
        done += static_cast<size_t>(n);
      }
    }
    moat::ChargeFuel(h, len / moat::kBytesPerFuel);
    return w::kSuccess;
  });
}
u32 WASI(fd_write)(void* p, u32 fd, u32 iovs, u32 n, u32 out) {
  return HostCall(p,
                  [&](HostContext& h) { return FdIo(h, moat::Io::kWrite, fd, iovs, n, 0, out); });
}
u32 WASI(fd_read)(void* p, u32 fd, u32 iovs, u32 n, u32 out) {
  return HostCall(p, [&](HostContext& h) { return FdIo(h, moat::Io::kRead, fd, iovs, n, 0, out); });
}
u32 WASI(fd_pwrite)(void* p, u32 fd, u32 iovs, u32 n, u64 off, u32 out) {
  return HostCall(
      p, [&](HostContext& h) { return FdIo(h, moat::Io::kPwrite, fd, iovs, n, off, out); });
}
u32 WASI(fd_pread)(void* p, u32 fd, u32 iovs, u32 n, u64 off, u32 out) {
  return HostCall(p,
                  [&](HostContext& h) { return FdIo(h, moat::Io::kPread, fd, iovs, n, off, out); });
}
u32 WASI(fd_close)(void* p, u32 fd) {
  return HostCall(p, [&](HostContext& h) -> u32 { return h.fs->Close(fd); });
}
u32 WASI(fd_renumber)(void* p, u32 from, u32 to) {
  return HostCall(p, [&](HostContext& h) -> u32 { return h.fs->Renumber(from, to); });
}
u32 WASI(fd_fdstat_get)(void* p, u32 fd, u32 out) {
  return HostCall(p, [&](HostContext& h) { return moat::FdFdstatGet(h, fd, out); });
}
u32 WASI(fd_fdstat_set_flags)(void* p, u32 fd, u32 flags) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    if (flags > 0xffff) return w::kEinval;
    return h.fs->FdstatSetFlags(fd, static_cast<uint16_t>(flags));
  });
}
u32 WASI(fd_fdstat_set_rights)(void* p, u32 fd, u64 rights, u64 inheriting) {
  return HostCall(
      p, [&](HostContext& h) -> u32 { return h.fs->FdstatSetRights(fd, rights, inheriting); });
}
u32 WASI(fd_filestat_get)(void* p, u32 fd, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    w::FileStat st;
    if (w::Errno e = h.fs->FilestatGet(fd, &st)) return e;
    return moat::PutFilestat(h, st, out);
  });
}
u32 WASI(fd_filestat_set_size)(void* p, u32 fd, u64 size) {
  return HostCall(p, [&](HostContext& h) -> u32 { return h.fs->FilestatSetSize(fd, size); });
}
u32 WASI(fd_filestat_set_times)(void* p, u32 fd, u64 atim, u64 mtim, u32 fst) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    if (fst > 0xffff) return w::kEinval;
    return h.fs->FilestatSetTimes(fd, atim, mtim, static_cast<uint16_t>(fst));
  });
}
u32 WASI(fd_seek)(void* p, u32 fd, u64 offset, u32 whence, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    if (whence > 0xff) return w::kEinval;
    u64 pos = 0;
    if (w::Errno e =
            h.fs->Seek(fd, static_cast<int64_t>(offset), static_cast<uint8_t>(whence), &pos)) {
      return e;
    }
    return h.memory().Write<u64>(out, pos) ? w::kSuccess : w::kEfault;
  });
}
u32 WASI(fd_tell)(void* p, u32 fd, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    u64 pos = 0;
    if (w::Errno e = h.fs->Tell(fd, &pos)) return e;
    return h.memory().Write<u64>(out, pos) ? w::kSuccess : w::kEfault;
  });
}
u32 WASI(fd_sync)(void* p, u32 fd) {
  return HostCall(p, [&](HostContext& h) -> u32 { return h.fs->Sync(fd, false); });
}
u32 WASI(fd_datasync)(void* p, u32 fd) {
  return HostCall(p, [&](HostContext& h) -> u32 { return h.fs->Sync(fd, true); });
}
u32 WASI(fd_advise)(void* p, u32 fd, u64 offset, u64 len, u32 advice) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    if (advice > 0xff) return w::kEinval;
    return h.fs->Advise(fd, offset, len, static_cast<uint8_t>(advice));
  });
}
u32 WASI(fd_allocate)(void* p, u32 fd, u64 offset, u64 len) {
  return HostCall(p, [&](HostContext& h) -> u32 { return h.fs->Allocate(fd, offset, len); });
}
u32 WASI(fd_readdir)(void* p, u32 fd, u32 buf, u32 len, u64 cookie, u32 used_ptr) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto span = h.memory().Span(buf, len);
    if (!span || !h.memory().Span(used_ptr, 4)) return w::kEfault;
    u32 used = 0;
    if (w::Errno e = h.fs->Readdir(fd, *span, cookie, &used)) return e;
    moat::ChargeFuel(h, used / moat::kBytesPerFuel);
    return h.memory().Write<u32>(used_ptr, used) ? w::kSuccess : w::kEfault;
  });
}
u32 WASI(fd_prestat_get)(void* p, u32 fd, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    std::string name;
    if (w::Errno e = h.fs->PrestatDirName(fd, &name)) return e;
    uint8_t buf[8] = {};
    u32 len = static_cast<u32>(name.size());
    memcpy(buf + 4, &len, 4);
    return h.memory().WriteBytes(out, buf, 8) ? w::kSuccess : w::kEfault;
  });
}
u32 WASI(fd_prestat_dir_name)(void* p, u32 fd, u32 path, u32 len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    std::string name;
    if (w::Errno e = h.fs->PrestatDirName(fd, &name)) return e;
    if (len < name.size()) return w::kEnametoolong;
    return h.memory().WriteBytes(path, name.data(), static_cast<u32>(name.size())) ? w::kSuccess
                                                                                   : w::kEfault;
  });
}
u32 WASI(path_open)(void* p, u32 dirfd, u32 lookup, u32 path, u32 path_len, u32 oflags, u64 rights,
                    u64 inheriting, u32 fdflags, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto s = moat::Path(h, path, path_len);
    if (!s || !h.memory().Span(out, 4)) return w::kEfault;
    if (oflags > 0xffff || fdflags > 0xffff) return w::kEinval;
    u32 fd = 0;
    if (w::Errno e = h.fs->PathOpen(dirfd, lookup, *s, static_cast<uint16_t>(oflags), rights,
                                    inheriting, static_cast<uint16_t>(fdflags), &fd)) {
      return e;
    }
    h.memory().Write<u32>(out, fd);
    return w::kSuccess;
  });
}
u32 WASI(path_filestat_get)(void* p, u32 dirfd, u32 lookup, u32 path, u32 path_len, u32 out) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto s = moat::Path(h, path, path_len);
    if (!s || !h.memory().Span(out, 64)) return w::kEfault;
    w::FileStat st;
    if (w::Errno e = h.fs->PathFilestatGet(dirfd, lookup, *s, &st)) return e;
    return moat::PutFilestat(h, st, out);
  });
}
u32 WASI(path_filestat_set_times)(void* p, u32 dirfd, u32 lookup, u32 path, u32 path_len, u64 atim,
                                  u64 mtim, u32 fst) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto s = moat::Path(h, path, path_len);
    if (!s) return w::kEfault;
    if (fst > 0xffff) return w::kEinval;
    return h.fs->PathFilestatSetTimes(dirfd, lookup, *s, atim, mtim, static_cast<uint16_t>(fst));
  });
}
u32 WASI(path_create_directory)(void* p, u32 dirfd, u32 path, u32 path_len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto s = moat::Path(h, path, path_len);
    return s ? h.fs->PathCreateDirectory(dirfd, *s) : w::kEfault;
  });
}
u32 WASI(path_remove_directory)(void* p, u32 dirfd, u32 path, u32 path_len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto s = moat::Path(h, path, path_len);
    return s ? h.fs->PathRemoveDirectory(dirfd, *s) : w::kEfault;
  });
}
u32 WASI(path_unlink_file)(void* p, u32 dirfd, u32 path, u32 path_len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto s = moat::Path(h, path, path_len);
    return s ? h.fs->PathUnlinkFile(dirfd, *s) : w::kEfault;
  });
}
u32 WASI(path_rename)(void* p, u32 fd, u32 old_path, u32 old_len, u32 new_fd, u32 new_path,
                      u32 new_len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto a = moat::Path(h, old_path, old_len);
    auto b = moat::Path(h, new_path, new_len);
    return a && b ? h.fs->PathRename(fd, *a, new_fd, *b) : w::kEfault;
  });
}
u32 WASI(path_link)(void* p, u32 fd, u32 lookup, u32 old_path, u32 old_len, u32 new_fd,
                    u32 new_path, u32 new_len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto a = moat::Path(h, old_path, old_len);
    auto b = moat::Path(h, new_path, new_len);
    return a && b ? h.fs->PathLink(fd, lookup, *a, new_fd, *b) : w::kEfault;
  });
}
u32 WASI(path_symlink)(void* p, u32 old_path, u32 old_len, u32 fd, u32 new_path, u32 new_len) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto a = moat::Path(h, old_path, old_len);
    auto b = moat::Path(h, new_path, new_len);
    return a && b ? h.fs->PathSymlink(*a, fd, *b) : w::kEfault;
  });
}
u32 WASI(path_readlink)(void* p, u32 fd, u32 path, u32 path_len, u32 buf, u32 buf_len,
                        u32 used_ptr) {
  return HostCall(p, [&](HostContext& h) -> u32 {
    auto s = moat::Path(h, path, path_len);
    auto span = h.memory().Span(buf, buf_len);
    if (!s || !span || !h.memory().Span(used_ptr, 4)) return w::kEfault;
    u32 used = 0;
    if (w::Errno e = h.fs->PathReadlink(fd, *s, *span, &used)) return e;
    return h.memory().Write<u32>(used_ptr, used) ? w::kSuccess : w::kEfault;
  });
}
u32 WASI(poll_oneoff)(void* p, u32 in, u32 out, u32 n, u32 nevents) {
  return HostCall(p, [&](HostContext& h) { return moat::PollOneoff(h, in, out, n, nevents); });
}
u32 WASI(sched_yield)(void* p) {
  return HostCall(p, [&](HostContext&) -> u32 { return w::kSuccess; });
}
void WASI(proc_exit)(void* p, u32 code) {
  HostContext* h = moat::rt::EnterHost(p);
  h->exit_code = code;
  h->stop = moat::StopReason::kExit;
  moat::rt::LeaveHost(h);  // unwinds
  moat::rt::StopRun(moat::StopReason::kExit);
}
u32 WASI(proc_raise)(void* p, u32 /*sig*/) {
  return HostCall(p, [&](HostContext&) -> u32 { return w::kEnosys; });
}

// No sockets exist in a moat sandbox (the network is reached through moat's own host API),
// so every fd is either invalid or not a socket.
static u32 NotASocket(void* p, u32 fd) {
  return HostCall(p,
                  [&](HostContext& h) -> u32 { return h.fs->Get(fd) ? w::kEnotsock : w::kEbadf; });
}
u32 WASI(sock_accept)(void* p, u32 fd, u32, u32) { return NotASocket(p, fd); }
u32 WASI(sock_recv)(void* p, u32 fd, u32, u32, u32, u32, u32) { return NotASocket(p, fd); }
u32 WASI(sock_send)(void* p, u32 fd, u32, u32, u32, u32) { return NotASocket(p, fd); }
u32 WASI(sock_shutdown)(void* p, u32 fd, u32) { return NotASocket(p, fd); }

}  // extern "C"

namespace moat::rt {
// Referenced by the engine so the linker keeps this object (and its exported host
// functions, which only dlopen'ed modules call) in every binary.
int WasiHostLinked() { return 1; }
}  // namespace moat::rt
