// WASI conformance: everything that is not a file. args and environ (sizes and
// contents), clocks (all four ids, bad ids), random_get, poll_oneoff (relative and
// absolute clocks, stdio, files, errors), sched_yield, proc_raise, fd_prestat_get and
// fd_prestat_dir_name, stdio reads and writes, sock_* on things that are not sockets, and
// guest pointers outside linear memory (moat answers EFAULT instead of trapping).
//
// Run by the harness with argv and environ below, stdin = "input line\n", and one
// preopen named argv[1] holding fixture.txt = "fixture".
#include "wasi_check.h"

static const char* const kArgs[] = {"misc.wasm",
                                    "/sandbox",
                                    "two words",
                                    "",
                                    "\xc3\xbcnic\xc3\xb6"
                                    "de",
                                    "--flag=x"};
static const char* const kEnv[] = {"A=1", "EMPTY=", "WITH_EQ=x=y", "UNICODE=\xc3\xa9"};
enum { kNumArgs = sizeof kArgs / sizeof kArgs[0], kNumEnv = sizeof kEnv / sizeof kEnv[0] };

static __wasi_fd_t scratch;

static void CheckBlock(const char* what, __wasi_size_t count, __wasi_size_t size, char** ptrs,
                       char* buf, const char* const* want, int nwant) {
  CHECK_EQ(count, nwant);
  size_t total = 0;
  for (int i = 0; i < nwant; ++i) total += strlen(want[i]) + 1;
  CHECK_EQ(size, total);
  for (int i = 0; i < nwant; ++i) {
    CHECK(ptrs[i] >= buf && ptrs[i] < buf + size, what);
    CHECK(strcmp(ptrs[i], want[i]) == 0, what);
  }
  CHECK_EQ(buf[size - 1], 0);
}

static void TestArgsEnviron(void) {
  __wasi_size_t count = 0, size = 0;
  CHECK_OK(__wasi_args_sizes_get(&count, &size));
  char** ptrs = calloc(count + 1, sizeof(char*));
  char* buf = malloc(size + 1);
  CHECK_OK(__wasi_args_get((uint8_t**)ptrs, (uint8_t*)buf));
  CheckBlock("args", count, size, ptrs, buf, kArgs, kNumArgs);
  free(ptrs);
  free(buf);
  PASS("args");

  CHECK_OK(__wasi_environ_sizes_get(&count, &size));
  ptrs = calloc(count + 1, sizeof(char*));
  buf = malloc(size + 1);
  CHECK_OK(__wasi_environ_get((uint8_t**)ptrs, (uint8_t*)buf));
  CheckBlock("environ", count, size, ptrs, buf, kEnv, kNumEnv);
  free(ptrs);
  free(buf);
  PASS("environ");
}

static uint64_t Monotonic(void) {
  __wasi_timestamp_t t = 0;
  CHECK_OK(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 0, &t));
  return t;
}

static void TestClocks(void) {
  for (__wasi_clockid_t id = 0; id <= 3; ++id) {
    __wasi_timestamp_t res = 0, t = 0;
    CHECK_OK(__wasi_clock_res_get(id, &res));
    CHECK(res > 0 && res <= 1000000000ull, "resolution between 1 ns and 1 s");
    CHECK_OK(__wasi_clock_time_get(id, 0, &t));
    CHECK_OK(__wasi_clock_time_get(id, 1, &t));
    CHECK_OK(__wasi_clock_time_get(id, UINT64_MAX, &t));
  }
  __wasi_timestamp_t now = 0;
  CHECK_OK(__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &now));
  CHECK(now > 1577836800ull * 1000000000ull, "realtime after 2020");
  uint64_t a = Monotonic(), b = Monotonic();
  CHECK(b >= a, "monotonic never goes back");
  __wasi_timestamp_t t;
  CHECK_ERRNO(__wasi_clock_time_get(4, 0, &t), EINVAL_);
  CHECK_ERRNO(__wasi_clock_time_get(0xFFFFFFFFu, 0, &t), EINVAL_);
  CHECK_ERRNO(__wasi_clock_res_get(4, &t), EINVAL_);
  CHECK_ERRNO(__wasi_clock_res_get(0x80000000u, &t), EINVAL_);
  PASS("clocks");
}

static void TestRandom(void) {
  static uint8_t a[4096], b[4096];
  CHECK_OK(__wasi_random_get(a, 0));
  CHECK_OK(__wasi_random_get(a, sizeof a));
  CHECK_OK(__wasi_random_get(b, sizeof b));
  CHECK(memcmp(a, b, sizeof a) != 0, "two draws differ");
  int zeros = 0;
  for (size_t i = 0; i < sizeof a; ++i) zeros += a[i] == 0;
  CHECK(zeros < 100, "not mostly zeros");
  uint8_t* big = malloc(1 << 20);  // big_random_buf.rs
  CHECK_OK(__wasi_random_get(big, 1 << 20));
  free(big);
  PASS("random_get");
}

static void ClockSub(__wasi_subscription_t* s, uint64_t userdata, __wasi_clockid_t id,
                     uint64_t timeout, __wasi_subclockflags_t flags) {
  memset(s, 0, sizeof *s);
  s->userdata = userdata;
  s->u.tag = __WASI_EVENTTYPE_CLOCK;
  s->u.u.clock.id = id;
  s->u.u.clock.timeout = timeout;
  s->u.u.clock.flags = flags;
}

static void FdSub(__wasi_subscription_t* s, uint64_t userdata, __wasi_eventtype_t type,
                  __wasi_fd_t fd) {
  memset(s, 0, sizeof *s);
  s->userdata = userdata;
  s->u.tag = type;
  if (type == __WASI_EVENTTYPE_FD_READ)
    s->u.u.fd_read.file_descriptor = fd;
  else
    s->u.u.fd_write.file_descriptor = fd;
}

static void TestPoll(void) {
  __wasi_subscription_t subs[4];
  __wasi_event_t ev[4];
  __wasi_size_t n = 0;
  const uint64_t kMs = 1000000ull;
  CHECK_ERRNO(__wasi_poll_oneoff(subs, ev, 0, &n), EINVAL_);

  // A relative clock: one event, after the timeout.
  ClockSub(&subs[0], 0x1234, __WASI_CLOCKID_MONOTONIC, 10 * kMs, 0);
  uint64_t t0 = Monotonic();
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 1, &n));
  CHECK(Monotonic() - t0 >= 10 * kMs, "slept at least the timeout");
  CHECK_EQ(n, 1);
  CHECK_EQ(ev[0].userdata, 0x1234);
  CHECK_EQ(ev[0].error, 0);
  CHECK_EQ(ev[0].type, __WASI_EVENTTYPE_CLOCK);
  // Zero timeout: at once.
  ClockSub(&subs[0], 1, __WASI_CLOCKID_MONOTONIC, 0, 0);
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 1, &n));
  CHECK_EQ(n, 1);
  // Absolute, on the monotonic and the realtime clock.
  ClockSub(&subs[0], 2, __WASI_CLOCKID_MONOTONIC, Monotonic() + 15 * kMs,
           __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME);
  t0 = Monotonic();
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 1, &n));
  CHECK(Monotonic() - t0 >= 10 * kMs, "absolute monotonic deadline waited for");
  CHECK_EQ(n, 1);
  CHECK_EQ(ev[0].userdata, 2);
  __wasi_timestamp_t real = 0;
  CHECK_OK(__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 0, &real));
  ClockSub(&subs[0], 3, __WASI_CLOCKID_REALTIME, real + 15 * kMs,
           __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME);
  t0 = Monotonic();
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 1, &n));
  CHECK(Monotonic() - t0 >= 5 * kMs, "absolute realtime deadline waited for");
  // A deadline in the past: at once.
  ClockSub(&subs[0], 4, __WASI_CLOCKID_MONOTONIC, 1,
           __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME);
  t0 = Monotonic();
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 1, &n));
  CHECK_EQ(n, 1);
  CHECK(Monotonic() - t0 < 1000 * kMs, "past deadline does not wait");
  // Two clocks: only the earlier fires.
  ClockSub(&subs[0], 10, __WASI_CLOCKID_MONOTONIC, 5 * kMs, 0);
  ClockSub(&subs[1], 11, __WASI_CLOCKID_MONOTONIC, 5000 * kMs, 0);
  t0 = Monotonic();
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 2, &n));
  CHECK_EQ(n, 1);
  CHECK_EQ(ev[0].userdata, 10);
  CHECK(Monotonic() - t0 < 4000 * kMs, "returned at the earlier clock");
  PASS("poll_oneoff_clock");

  // poll_oneoff_stdio.rs: stdout and stderr are writable before a 200 ms clock.
  FdSub(&subs[0], 1, __WASI_EVENTTYPE_FD_WRITE, 1);
  FdSub(&subs[1], 2, __WASI_EVENTTYPE_FD_WRITE, 2);
  ClockSub(&subs[2], 99, __WASI_CLOCKID_MONOTONIC, 200 * kMs, 0);
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 3, &n));
  CHECK(n >= 1, "an event");
  int seen = 0;
  for (__wasi_size_t i = 0; i < n; ++i) {
    CHECK(ev[i].userdata != 99, "stdout/stderr ready before the timeout");
    CHECK_EQ(ev[i].type, __WASI_EVENTTYPE_FD_WRITE);
    CHECK_EQ(ev[i].error, 0);
    seen |= 1 << ev[i].userdata;
  }
  // stdin (the harness gives bytes): readable or the clock, never an error.
  FdSub(&subs[0], 5, __WASI_EVENTTYPE_FD_READ, 0);
  ClockSub(&subs[1], 99, __WASI_CLOCKID_MONOTONIC, 200 * kMs, 0);
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 2, &n));
  CHECK(n >= 1, "an event");
  for (__wasi_size_t i = 0; i < n; ++i) CHECK_EQ(ev[i].error, 0);
  // A regular file is always ready.
  __wasi_fd_t file = OpenAt(scratch, "fixture.txt", 0, R(FD_READ) | R(POLL_FD_READWRITE), 0);
  FdSub(&subs[0], 6, __WASI_EVENTTYPE_FD_READ, file);
  ClockSub(&subs[1], 99, __WASI_CLOCKID_MONOTONIC, 2000 * kMs, 0);
  t0 = Monotonic();
  CHECK_OK(__wasi_poll_oneoff(subs, ev, 2, &n));
  CHECK(n >= 1 && ev[0].userdata == 6, "file readable at once");
  CHECK_EQ(ev[0].error, 0);
  CHECK(Monotonic() - t0 < 1000 * kMs, "no wait for a file");
  CHECK_OK(__wasi_fd_close(file));
  PASS("poll_oneoff_fds");

  // A bad fd: the call fails with EBADF, or its event carries EBADF.
  FdSub(&subs[0], 7, __WASI_EVENTTYPE_FD_READ, 77);
  __wasi_errno_t e = __wasi_poll_oneoff(subs, ev, 1, &n);
  if (e == 0) {
    CHECK_EQ(n, 1);
    CHECK_EQ(ev[0].userdata, 7);
    CHECK_EQ(ev[0].error, EBADF_);
  } else {
    CHECK_ERRNO(e, EBADF_);
  }
  // A bad clock id: EINVAL, either way.
  ClockSub(&subs[0], 8, 17, 1, 0);
  e = __wasi_poll_oneoff(subs, ev, 1, &n);
  if (e == 0) {
    CHECK_EQ(n, 1);
    CHECK_EQ(ev[0].error, EINVAL_);
  } else {
    CHECK_ERRNO(e, EINVAL_);
  }
  // An unknown event type.
  memset(&subs[0], 0, sizeof subs[0]);
  subs[0].u.tag = 3;
  CHECK_ERRNO(__wasi_poll_oneoff(subs, ev, 1, &n), EINVAL_);
  PASS("poll_oneoff_errors");
}

static void TestYieldRaise(void) {
  CHECK_OK(__wasi_sched_yield());
  PASS("sched_yield");
  // proc_raise is gone from later WASI versions; hosts answer ENOSYS or ENOTSUP.
  CHECK_ERRNO(RAW(proc_raise)(15 /* SIGTERM */), ENOSYS_, ENOTSUP_);
  PASS("proc_raise");
}

static void TestPrestat(const char* name) {
  __wasi_prestat_t ps;
  CHECK_OK(__wasi_fd_prestat_get(scratch, &ps));
  CHECK_EQ(ps.tag, __WASI_PREOPENTYPE_DIR);
  size_t len = strlen(name);
  CHECK_EQ(ps.u.dir.pr_name_len, len);
  char buf[64];
  memset(buf, 'Z', sizeof buf);
  CHECK_OK(__wasi_fd_prestat_dir_name(scratch, (uint8_t*)buf, len));
  CHECK_STR(buf, len, name);
  CHECK_EQ(buf[len], 'Z');  // no NUL written
  // dir_fd_op_failures.rs: a short buffer is EINVAL or ENAMETOOLONG; a longer one works.
  CHECK_ERRNO(__wasi_fd_prestat_dir_name(scratch, (uint8_t*)buf, 0), EINVAL_, ENAMETOOLONG_);
  CHECK_ERRNO(__wasi_fd_prestat_dir_name(scratch, (uint8_t*)buf, len - 1), EINVAL_, ENAMETOOLONG_);
  CHECK_OK(__wasi_fd_prestat_dir_name(scratch, (uint8_t*)buf, sizeof buf));
  CHECK_STR(buf, len, name);
  // Not preopens: stdio, an opened file, an opened directory, nothing.
  for (__wasi_fd_t fd = 0; fd <= 2; ++fd) CHECK_ERRNO(__wasi_fd_prestat_get(fd, &ps), EBADF_);
  __wasi_fd_t file = OpenAt(scratch, "fixture.txt", 0, R(FD_READ), 0);
  CHECK_ERRNO(__wasi_fd_prestat_get(file, &ps), EBADF_);
  CHECK_ERRNO(__wasi_fd_prestat_dir_name(file, (uint8_t*)buf, sizeof buf), EBADF_);
  CHECK_OK(__wasi_fd_close(file));
  __wasi_fd_t dir = OpenDir(scratch, ".");
  CHECK_ERRNO(__wasi_fd_prestat_get(dir, &ps), EBADF_);
  CHECK_OK(__wasi_fd_close(dir));
  CHECK_ERRNO(__wasi_fd_prestat_get(77, &ps), EBADF_);
  CHECK_ERRNO(__wasi_fd_prestat_dir_name(77, (uint8_t*)buf, sizeof buf), EBADF_);
  PASS("prestat");
}

static void TestStdio(void) {
  __wasi_ciovec_t out[2] = {{(const uint8_t*)"hello ", 6}, {(const uint8_t*)"stdout\n", 7}};
  __wasi_size_t n = 0;
  fflush(stdout);
  CHECK_OK(__wasi_fd_write(1, out, 2, &n));
  CHECK_EQ(n, 13);
  __wasi_ciovec_t err = {(const uint8_t*)"hello stderr\n", 13};
  CHECK_OK(__wasi_fd_write(2, &err, 1, &n));
  CHECK_EQ(n, 13);
  CHECK_OK(__wasi_fd_write(1, out, 0, &n));  // nothing to write
  CHECK_EQ(n, 0);
  char buf[64];
  __wasi_iovec_t in[2] = {{(uint8_t*)buf, 5}, {(uint8_t*)buf + 5, sizeof buf - 5}};
  CHECK_OK(__wasi_fd_read(0, in, 2, &n));
  CHECK_STR(buf, n, "input line\n");
  CHECK_OK(__wasi_fd_read(0, in, 2, &n));
  CHECK_EQ(n, 0);  // end of input
  __wasi_fdstat_t st = FdFdstat(1);
  CHECK(st.fs_rights_base & R(FD_WRITE), "stdout is writable");
  PASS("stdio");
}

// sock_shutdown-not_sock.c, sock_shutdown-invalid_fd.c
static void TestSockets(void) {
  CHECK_ERRNO(__wasi_sock_shutdown(1, __WASI_SDFLAGS_RD), ENOTSOCK_);
  CHECK_ERRNO(__wasi_sock_shutdown(77, __WASI_SDFLAGS_RD), EBADF_);
  __wasi_fd_t file = OpenAt(scratch, "fixture.txt", 0, R(FD_READ) | R(FD_WRITE), 0);
  char buf[8];
  __wasi_iovec_t iov = {(uint8_t*)buf, sizeof buf};
  __wasi_ciovec_t ciov = {(const uint8_t*)buf, sizeof buf};
  __wasi_size_t n;
  __wasi_roflags_t roflags;
  CHECK_ERRNO(__wasi_sock_recv(file, &iov, 1, 0, &n, &roflags), ENOTSOCK_);
  CHECK_ERRNO(__wasi_sock_send(file, &ciov, 1, 0, &n), ENOTSOCK_);
  CHECK_ERRNO(__wasi_sock_shutdown(file, __WASI_SDFLAGS_WR), ENOTSOCK_);
  __wasi_fd_t conn;
  CHECK_ERRNO(__wasi_sock_accept(file, 0, &conn), ENOTSOCK_);
  CHECK_ERRNO(__wasi_sock_accept(scratch, 0, &conn), ENOTSOCK_);
  CHECK_ERRNO(__wasi_sock_accept(77, 0, &conn), EBADF_);
  CHECK_ERRNO(__wasi_sock_recv(77, &iov, 1, 0, &n, &roflags), EBADF_);
  CHECK_ERRNO(__wasi_sock_send(77, &ciov, 1, 0, &n), EBADF_);
  CHECK_OK(__wasi_fd_close(file));
  PASS("sock_not_socket");
}

// Pointers outside linear memory: EFAULT, and the program goes on.
static void TestBadPointers(void) {
  const int32_t end = (int32_t)MemoryEnd();
  const int32_t wrap = (int32_t)0xFFFFFFF0u;
  static int32_t iov[2];
  static int32_t out;
  CHECK_ERRNO(RAW(fd_write)(1, end, 1, (int32_t)&out), EFAULT_);
  CHECK_ERRNO(RAW(fd_write)(1, end - 4, 1, (int32_t)&out), EFAULT_);  // straddles the end
  iov[0] = end - 2;
  iov[1] = 8;
  CHECK_ERRNO(RAW(fd_write)(1, (int32_t)iov, 1, (int32_t)&out), EFAULT_);
  iov[0] = wrap;
  iov[1] = 0x20;
  CHECK_ERRNO(RAW(fd_write)(1, (int32_t)iov, 1, (int32_t)&out), EFAULT_);  // wraps around
  static const char msg[] = "x";
  iov[0] = (int32_t)msg;
  iov[1] = 0;
  CHECK_ERRNO(RAW(fd_write)(1, (int32_t)iov, 1, end), EFAULT_);  // result pointer
  iov[0] = end;
  iov[1] = 16;
  CHECK_ERRNO(RAW(fd_read)(0, (int32_t)iov, 1, (int32_t)&out), EFAULT_);
  CHECK_ERRNO(RAW(args_sizes_get)(end, (int32_t)&out), EFAULT_);
  CHECK_ERRNO(RAW(args_get)(end, end), EFAULT_);
  CHECK_ERRNO(RAW(environ_get)(wrap, wrap), EFAULT_);
  CHECK_ERRNO(RAW(clock_time_get)(0, 0, end), EFAULT_);
  CHECK_ERRNO(RAW(clock_time_get)(0, 0, end - 4), EFAULT_);
  CHECK_ERRNO(RAW(clock_res_get)(1, wrap), EFAULT_);
  CHECK_ERRNO(RAW(random_get)(end - 10, 100), EFAULT_);
  CHECK_ERRNO(RAW(random_get)(wrap, 0x20), EFAULT_);
  CHECK_OK(RAW(random_get)(end, 0));  // an empty range at the end is in bounds
  CHECK_ERRNO(RAW(fd_prestat_get)(scratch, end), EFAULT_);
  CHECK_ERRNO(RAW(fd_prestat_dir_name)(scratch, end, 64), EFAULT_);
  CHECK_ERRNO(RAW(fd_fdstat_get)(1, end), EFAULT_);
  CHECK_ERRNO(RAW(fd_filestat_get)(scratch, end), EFAULT_);
  static const char path[] = "fixture.txt";
  CHECK_ERRNO(RAW(path_open)(scratch, 0, end, 4, 0, 0, 0, 0, (int32_t)&out), EFAULT_);
  CHECK_ERRNO(RAW(path_open)(scratch, 0, end - 4, 8, 0, 0, 0, 0, (int32_t)&out), EFAULT_);
  CHECK_ERRNO(RAW(path_open)(scratch, 0, wrap, 0x20, 0, 0, 0, 0, (int32_t)&out), EFAULT_);
  CHECK_ERRNO(RAW(path_filestat_get)(scratch, 0, (int32_t)path, sizeof path - 1, end), EFAULT_);
  CHECK_ERRNO(RAW(path_create_directory)(scratch, end, 3), EFAULT_);
  CHECK_ERRNO(RAW(path_symlink)(end, 3, scratch, (int32_t) "efault_link", 11), EFAULT_);
  CHECK(!Exists(scratch, "efault_link"), "no link made");
  CHECK_OK(__wasi_path_symlink("fixture.txt", scratch, "a_link"));
  CHECK_ERRNO(RAW(path_readlink)(scratch, (int32_t) "a_link", 6, end - 2, 16, (int32_t)&out),
              EFAULT_);
  CHECK_ERRNO(RAW(path_readlink)(scratch, (int32_t) "a_link", 6, (int32_t)iov, 8, end), EFAULT_);
  CHECK_OK(__wasi_path_unlink_file(scratch, "a_link"));
  CHECK_ERRNO(RAW(fd_readdir)(scratch, end - 8, 256, 0, (int32_t)&out), EFAULT_);
  __wasi_fd_t file = OpenAt(scratch, "fixture.txt", 0, R(FD_READ) | R(FD_SEEK) | R(FD_TELL), 0);
  CHECK_ERRNO(RAW(fd_seek)(file, 0, __WASI_WHENCE_SET, end), EFAULT_);
  CHECK_ERRNO(RAW(fd_tell)(file, end), EFAULT_);
  iov[0] = end - 1;
  iov[1] = 4;
  CHECK_ERRNO(RAW(fd_pread)(file, (int32_t)iov, 1, 0, (int32_t)&out), EFAULT_);
  CHECK_ERRNO(RAW(fd_read)(file, (int32_t)iov, 1, (int32_t)&out), EFAULT_);
  CHECK_OK(__wasi_fd_close(file));
  CHECK_ERRNO(RAW(poll_oneoff)(end, (int32_t)iov, 1, (int32_t)&out), EFAULT_);
  static __wasi_subscription_t sub;
  ClockSub(&sub, 1, __WASI_CLOCKID_MONOTONIC, 0, 0);
  CHECK_ERRNO(RAW(poll_oneoff)((int32_t)&sub, end, 1, (int32_t)&out), EFAULT_);
  PASS("bad_pointers");
}

int main(int argc, char** argv) {
  scratch = ScratchDir(argc, argv);
  TestArgsEnviron();
  TestClocks();
  TestRandom();
  TestPoll();
  TestYieldRaise();
  TestPrestat(argv[1]);
  TestStdio();
  TestSockets();
  TestBadPointers();
  return Finish();
}
