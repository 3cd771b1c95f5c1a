// An AssemblyScript program built with the npm compiler (asc) and @assemblyscript/wasi-shim,
// the way AssemblyScript programs target WASI, and run unmodified by moat. It uses the
// shim's process, console, Date, performance and crypto, and calls the raw preview1
// functions for files (AssemblyScript has no file API of its own).
// Verdicts as in guests/wasi/*.c: "ok <group>" per passed group, "FAIL ..." per failed
// check, exit 1 if anything failed.
//
// Run (tests/languages_test.cc):
//   moat run --dir SANDBOX::/ --env MOAT_LANG=assemblyscript probe.wasm check a b
// SANDBOX holds file.txt ("hello\n") and .env. `probe.wasm stdin` echoes stdin,
// `probe.wasm exit N` exits with N, `probe.wasm entropy` prints time and random values.
import {
  errno, fd, fd_close, fd_read, fd_readdir, fd_write, oflags, path_open, path_unlink_file,
  rights,
} from "bindings/wasi_snapshot_preview1";

let failed = false;
let groupFailed = false;
let group = "";

function begin(name: string): void {
  group = name;
  groupFailed = false;
}

function end(): void {
  console.log((groupFailed ? "not ok " : "ok ") + group);
}

function check(cond: bool, what: string): void {
  if (!cond) {
    console.log("FAIL probe.ts: " + what);
    groupFailed = true;
    failed = true;
  }
}

const PREOPEN: fd = 3;  // the first preopen, "/"
const scratch = memory.data(64);

// Opens `path` beneath the preopen; returns the errno, the fd in `scratch`.
function open(path: string, flags: u16, rb: u64): errno {
  const p = String.UTF8.encode(path);
  return path_open(PREOPEN, 0, changetype<usize>(p), p.byteLength, flags, rb, rb, 0, scratch);
}

function writeAll(f: fd, text: string): errno {
  const b = String.UTF8.encode(text);
  store<usize>(scratch, changetype<usize>(b));
  store<usize>(scratch, b.byteLength, sizeof<usize>());
  return fd_write(f, scratch, 1, scratch + 2 * sizeof<usize>());
}

function readAll(f: fd): string {
  const buf = new ArrayBuffer(4096);
  store<usize>(scratch, changetype<usize>(buf));
  store<usize>(scratch, buf.byteLength, sizeof<usize>());
  if (fd_read(f, scratch, 1, scratch + 2 * sizeof<usize>()) != 0) return "<error>";
  const n = load<usize>(scratch, 2 * sizeof<usize>());
  return String.UTF8.decode(buf.slice(0, <i32>n));
}

function argsEnv(): void {
  begin("args_env");
  const argv = process.argv;
  check(argv.length == 4, "argv.length " + argv.length.toString());
  check(argv.length == 4 && argv[2] == "a" && argv[3] == "b", "argv values");
  check(process.env.has("MOAT_LANG") && process.env.get("MOAT_LANG") == "assemblyscript",
    "MOAT_LANG");
  check(process.env.size == 1, "only granted env, got " + process.env.size.toString());
  end();
}

function files(): void {
  begin("files");
  check(open("file.txt", 0, rights.FD_READ) == errno.SUCCESS, "open file.txt");
  let f = load<u32>(scratch);
  check(readAll(f) == "hello\n", "content of file.txt");
  check(fd_close(f) == errno.SUCCESS, "close");
  check(open("as.txt", oflags.CREAT | oflags.TRUNC, rights.FD_WRITE) == errno.SUCCESS,
    "create as.txt");
  f = load<u32>(scratch);
  check(writeAll(f, "written by assemblyscript ✓\n") == errno.SUCCESS, "write");
  fd_close(f);
  check(open("as.txt", 0, rights.FD_READ) == errno.SUCCESS, "reopen as.txt");
  f = load<u32>(scratch);
  check(readAll(f) == "written by assemblyscript ✓\n", "read back");
  fd_close(f);
  check(open("as.txt", oflags.CREAT | oflags.EXCL, rights.FD_WRITE) == errno.EXIST, "EXCL");
  check(open("missing", 0, rights.FD_READ) == errno.NOENT, "missing is ENOENT");
  const tmp = String.UTF8.encode("as.txt");
  check(path_unlink_file(PREOPEN, changetype<usize>(tmp), tmp.byteLength) == errno.SUCCESS,
    "unlink");
  check(open("as.txt", 0, rights.FD_READ) == errno.NOENT, "gone after unlink");
  end();
}

function confinement(): void {
  begin("confinement");
  check(open(".env", 0, rights.FD_READ) == errno.NOENT, ".env is hidden");
  check(open("../../etc/passwd", 0, rights.FD_READ) == errno.PERM, "escape with ..");
  check(open("/etc/passwd", 0, rights.FD_READ) == errno.PERM, "absolute path");
  // The listing of "/" has file.txt but not .env.
  check(open(".", oflags.DIRECTORY, rights.FD_READDIR) == errno.SUCCESS, "open .");
  const d = load<u32>(scratch);
  const buf = new ArrayBuffer(8192);
  check(fd_readdir(d, changetype<usize>(buf), buf.byteLength, 0, scratch) == errno.SUCCESS,
    "readdir");
  const used = load<usize>(scratch);
  let names = "";
  let off: usize = 0;
  while (off + 24 <= used) {  // dirent: next u64, ino u64, namlen u32, type u8 (+3)
    const namlen = load<u32>(changetype<usize>(buf) + off, 16);
    if (off + 24 + namlen > used) break;
    names += String.UTF8.decode(buf.slice(<i32>(off + 24), <i32>(off + 24 + namlen))) + ",";
    off += 24 + namlen;
  }
  fd_close(d);
  check(names.includes("file.txt,") && !names.includes(".env,"), "listing: " + names);
  end();
}

function timeRandom(): void {
  begin("time_random");
  check(Date.now() > 946684800000, "Date.now after 2000");
  const t0 = performance.now();
  let x: f64 = 0;
  for (let i = 0; i < 100000; i++) x += Math.sqrt(<f64>i);
  check(performance.now() >= t0, "performance.now is monotonic");
  check(x > 0, "work was done");
  const a = new Uint8Array(32), b = new Uint8Array(32);
  crypto.getRandomValues(a);
  crypto.getRandomValues(b);
  let same = true, zero = true;
  for (let i = 0; i < 32; i++) {
    if (a[i] != b[i]) same = false;
    if (a[i] != 0) zero = false;
  }
  check(!same && !zero, "random bytes differ");
  const r = Math.random();
  check(r >= 0 && r < 1, "Math.random in [0, 1)");
  end();
}

const argv = process.argv;
const mode = argv.length > 1 ? argv[1] : "check";
if (mode == "stdin") {
  const buf = new ArrayBuffer(1024);
  const n = process.stdin.read(buf);
  process.stdout.write("stdin " + n.toString() + " bytes: " +
    String.UTF8.decode(buf.slice(0, n)));
  process.stderr.write("to stderr\n");
} else if (mode == "exit") {
  process.exit(I32.parseInt(argv[2]));
} else if (mode == "entropy") {
  const r = new Uint8Array(8);
  crypto.getRandomValues(r);
  console.log("time " + Date.now().toString() + " random " + r.join(","));
} else if (mode == "abort") {
  const v = new Array<i32>(0);
  console.log(v[argv.length].toString());  // out of range: the runtime aborts
} else {
  argsEnv();
  files();
  confinement();
  timeRandom();
  process.exit(failed ? 1 : 0);
}
