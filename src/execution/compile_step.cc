// The compile step's processes under limits: a supervisor per program, a group per step.
#include "execution/compile_step.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace moat {

namespace {

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Bytes(uint64_t n) {
  if (n >= (1ull << 30) && n % (1ull << 30) == 0) return std::to_string(n >> 30) + " GiB";
  if (n >= (1ull << 20) && n % (1ull << 20) == 0) return std::to_string(n >> 20) + " MiB";
  return std::to_string(n) + " bytes";
}

std::string Duration(uint64_t us) {
  if (us % 1'000'000 == 0) return std::to_string(us / 1'000'000) + " s";
  return std::to_string(us / 1000) + " ms";
}

// Whether a process other than a zombie is in process group `group` (from /proc).
bool GroupHasLiveMembers(pid_t group) {
  if (kill(-group, 0) != 0) return false;  // no member at all
  DIR* d = opendir("/proc");
  if (!d) return true;
  bool live = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    // "pid (comm) state ppid pgrp ...": comm may hold anything, so parse after the last ')'.
    const char* rp = strrchr(buf, ')');
    char state = 0;
    int ppid = 0, pgrp = 0;
    if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == group &&
        state != 'Z' && state != 'X') {
      live = true;
      break;
    }
  }
  closedir(d);
  return live;
}

// After SIGKILL to a group: wait, briefly, until no member runs, so that nothing writes
// into a folder that is removed next. (Zombies whose parent died wait for init to reap
// them; they cannot write.)
void WaitGroupGone(pid_t group) {
  for (int i = 0; i < 400 && GroupHasLiveMembers(group); ++i) usleep(5000);
}

}  // namespace

CompileBudget CompileBudget::Start(const CompileLimits& limits, uint64_t run_timeout_us,
                                   const std::atomic<bool>* cancel) {
  CompileBudget b;
  b.limits_ = limits;
  b.cancel_ = cancel;
  b.run_timeout_us_ = run_timeout_us;
  uint64_t now = NowNs();
  b.deadline_ns_ = now + limits.timeout_us * 1000;
  if (run_timeout_us > 0 && run_timeout_us <= limits.timeout_us) {
    b.deadline_ns_ = now + run_timeout_us * 1000;
    b.run_deadline_ = true;
  }
  return b;
}

bool CompileBudget::Stopped() const { return cancelled() || NowNs() >= deadline_ns_; }

Error CompileBudget::StopError() const {
  if (cancelled()) return MakeError(ErrorCode::kLimit, "cancelled while compiling the module");
  if (run_deadline_) {
    return MakeError(ErrorCode::kLimit,
                     "deadline of " + std::to_string(run_timeout_us_ / 1000) +
                         " ms passed while compiling the module (moat compile precompiles it)");
  }
  return MakeError(ErrorCode::kInvalidModule,
                   "module refused: compiling it took longer than the compile time limit of " +
                       Duration(limits_.timeout_us) + " (--compile-timeout)");
}

Error CompileBudget::MemoryError() const {
  return MakeError(ErrorCode::kInvalidModule,
                   "module refused: compiling it needed more memory than the compile memory "
                   "limit of " +
                       Bytes(limits_.memory_bytes) + " (--compile-memory)");
}

Error CompileBudget::CpuError() const {
  return MakeError(ErrorCode::kInvalidModule,
                   "module refused: compiling it used more CPU time than the compile time limit "
                   "of " +
                       Duration(cpu_seconds() * 1'000'000) + " (--compile-timeout)");
}

Error CompileBudget::FileSizeError() const {
  return MakeError(ErrorCode::kInvalidModule,
                   "module refused: compiling it wrote a file larger than the limit of " +
                       Bytes(CompileLimits::kMaxFileBytes));
}

std::string HelperPath() {
  if (const char* env = getenv("MOAT_TRANSLATOR"); env && *env) return env;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "moat-translator";  // not found: the spawn fails and says so
  std::string exe(self, static_cast<size_t>(n));
  std::string beside = exe.substr(0, exe.find_last_of('/') + 1) + "moat-translator";
#ifdef MOAT_BUILD_TREE
  // Tests and benchmarks live in folders of the build tree, the helper at its top. Only a
  // program inside that tree looks there: a `moat` copied elsewhere never runs a program
  // from a path baked in at build time, which whoever can create it would control.
  std::string_view tree = MOAT_BUILD_TREE;
  if (access(beside.c_str(), X_OK) != 0 && exe.size() > tree.size() &&
      exe.compare(0, tree.size(), tree) == 0 && exe[tree.size()] == '/') {
    return std::string(tree) + "/moat-translator";
  }
#endif
  return beside;
}

SupervisedChild::SupervisedChild(pid_t pid) : pid_(pid) {
  // A descriptor that becomes readable when the supervisor exits (Linux 5.3); without it
  // Wait polls.
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

SupervisedChild::SupervisedChild(SupervisedChild&& other) noexcept
    : pid_(other.pid_), pidfd_(other.pidfd_) {
  other.pid_ = -1;
  other.pidfd_ = -1;
}

SupervisedChild::~SupervisedChild() {
  if (pid_ > 0) KillAndReap();
  if (pidfd_ >= 0) close(pidfd_);
}

void SupervisedChild::KillAndReap() {
  // The supervisor leads the group and is not reaped yet, so the group id is still ours.
  kill(-pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  // Processes the program started (cc1, as) die with the signal.
  WaitGroupGone(pid_);
  pid_ = -1;
}

Result<SupervisedChild> SupervisedChild::Start(const ChildSpec& spec) {
  if (spec.argv.empty()) return MakeError(ErrorCode::kInternal, "no program to run");
  std::string helper = HelperPath();
  std::vector<std::string> args = {helper,
                                   "--supervise",
                                   std::to_string(spec.memory_bytes),
                                   std::to_string(spec.cpu_seconds),
                                   std::to_string(spec.file_bytes),
                                   std::to_string(getpid()),
                                   "--"};
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = spec.env;
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (spec.stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, spec.stdin_fd, 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  if (spec.stdout_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, spec.stdout_fd, 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  if (spec.stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, spec.stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
  }
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  // A group of its own (so the whole of it can be killed), default signal handling and
  // an empty mask (moat ignores SIGPIPE; its children should not).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXCPU, SIGXFSZ}) {
    sigaddset(&defaults, s);
  }
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, helper.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return MakeError(ErrorCode::kInternal,
                     "cannot start the helper " + helper + ": " + strerror(rc));
  }
  return SupervisedChild(pid);
}

ChildEnd SupervisedChild::Wait(const CompileBudget& budget, int read_fd, std::string* out,
                               size_t max_out) {
  ChildEnd end;
  bool reading = read_fd >= 0 && out != nullptr;
  char buf[1 << 16];
  // Reads what is there; false when the reader must stop (EOF, error, too much).
  auto read_some = [&]() -> bool {
    ssize_t n = read(read_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) return false;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > max_out) {
      end.kind = ChildEnd::kOverflow;
      return false;
    }
    return true;
  };
  for (;;) {
    if (end.kind == ChildEnd::kOverflow || budget.Stopped()) {
      if (end.kind != ChildEnd::kOverflow) end.kind = ChildEnd::kStopped;
      KillAndReap();
      return end;
    }
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid_) {
      break;
    }
    pollfd p[2];
    nfds_t n = 0;
    if (reading) p[n++] = {read_fd, POLLIN, 0};
    if (pidfd_ >= 0) p[n++] = {pidfd_, POLLIN, 0};
    uint64_t now = NowNs();
    uint64_t left_ms = budget.deadline_ns() > now ? (budget.deadline_ns() - now) / 1'000'000 : 0;
    // Cancellation is a flag, not a descriptor: look at it every 50 ms. Without a pidfd,
    // look for the exit as often.
    int timeout = static_cast<int>(std::min<uint64_t>(left_ms + 1, pidfd_ >= 0 ? 50 : 10));
    int r = poll(p, n, timeout);
    if (r > 0 && reading && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      reading = read_some();
    }
  }
  // The supervisor has exited (not reaped yet): stragglers of its group die now, then the
  // rest of the output is read (every writer is gone, so this ends).
  kill(-pid_, SIGKILL);
  while (reading && read_some()) {
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  WaitGroupGone(pid_);
  pid_ = -1;
  if (end.kind == ChildEnd::kOverflow) return end;
  if (WIFSIGNALED(status)) {  // the supervisor itself
    end.kind = ChildEnd::kSignaled;
    end.code = WTERMSIG(status);
  } else if (WEXITSTATUS(status) > 128) {
    end.kind = ChildEnd::kSignaled;
    end.code = WEXITSTATUS(status) - 128;
  } else {
    end.kind = ChildEnd::kExited;
    end.code = WEXITSTATUS(status);
  }
  return end;
}

namespace {

void KillGroupAndExit(int) {
  kill(0, SIGKILL);  // the whole group, this process included
  _exit(137);
}

bool ParseU64(const char* s, uint64_t* v) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *v = x;
  return true;
}

void Limit(int resource, uint64_t soft, uint64_t hard) {
  rlimit r{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
  setrlimit(resource, &r);
}

}  // namespace

int SupervisorMain(int argc, char** argv) {
  uint64_t memory = 0, cpu = 0, fsize = 0, parent = 0;
  if (argc < 8 || strcmp(argv[1], "--supervise") != 0 || !ParseU64(argv[2], &memory) ||
      !ParseU64(argv[3], &cpu) || !ParseU64(argv[4], &fsize) || !ParseU64(argv[5], &parent) ||
      strcmp(argv[6], "--") != 0) {
    return 126;
  }
  // When moat dies (killed, even with SIGKILL) the kernel sends SIGTERM here, and the
  // whole group goes. If it died before this was set up, go at once.
  struct sigaction sa {};
  sa.sa_handler = KillGroupAndExit;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGTERM, SIGHUP, SIGINT}) sigaction(s, &sa, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (static_cast<uint64_t>(getppid()) != parent) KillGroupAndExit(0);

  pid_t child = fork();
  if (child < 0) return 125;
  if (child == 0) {
    // Limits are inherited by every process the program starts (cc -> cc1, as, ld);
    // RLIMIT_CPU is per process: SIGXCPU at the soft limit, SIGKILL at the hard one.
    if (memory > 0) Limit(RLIMIT_AS, memory, memory);
    if (cpu > 0) Limit(RLIMIT_CPU, cpu, cpu + 5);
    if (fsize > 0) Limit(RLIMIT_FSIZE, fsize, fsize);
    Limit(RLIMIT_CORE, 0, 0);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    execve(argv[7], argv + 7, environ);
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return 125;
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace moat
