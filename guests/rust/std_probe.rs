// A Rust program using the standard library as ordinary Rust code does (std::fs, std::env,
// std::io, std::time), built for wasm32-wasi by Debian's rustc and run unmodified by moat.
// Same verdict format as guests/wasi/*.c: "ok <group>" per passed group, "FAIL ..." per
// failed check, exit 1 if anything failed.
//
// Run (tests/languages_test.cc):
//   moat run --dir SANDBOX::/ --dir RO::/ro:ro --env MOAT_LANG=rust std_probe.wasm check a b
// SANDBOX holds file.txt ("hello\n"), .env and sub/; RO holds data.txt ("read-only\n").
// `std_probe.wasm stdin` echoes stdin; `std_probe.wasm exit N` exits with N; `std_probe.wasm
// entropy` prints the time and random values (for the deterministic-mode check).

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    // Not in stable std for this target: the raw calls, as a crate like `wasi` would make.
    fn path_symlink(old: *const u8, old_len: usize, fd: u32, new: *const u8, new_len: usize)
        -> u16;
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

struct Checker {
    group: &'static str,
    group_failed: bool,
    failed: bool,
}

impl Checker {
    fn begin(&mut self, group: &'static str) {
        self.group = group;
        self.group_failed = false;
    }
    fn end(&mut self) {
        if self.group_failed {
            println!("not ok {}", self.group);
        } else {
            println!("ok {}", self.group);
        }
    }
    fn check(&mut self, line: u32, what: &str, cond: bool, detail: String) {
        if !cond {
            println!("FAIL std_probe.rs:{}: {}: {}", line, what, detail);
            self.group_failed = true;
            self.failed = true;
        }
    }
}

macro_rules! check {
    ($c:expr, $cond:expr) => {
        $c.check(line!(), stringify!($cond), $cond, String::new())
    };
    ($c:expr, $cond:expr, $($fmt:tt)+) => {
        $c.check(line!(), stringify!($cond), $cond, format!($($fmt)+))
    };
}

fn kind<T: std::fmt::Debug>(r: io::Result<T>) -> Option<ErrorKind> {
    r.err().map(|e| e.kind())
}

fn args_env(c: &mut Checker) {
    c.begin("args_env");
    let args: Vec<String> = std::env::args().collect();
    check!(c, args.len() == 4, "{:?}", args);
    check!(c, args.get(2).map(String::as_str) == Some("a") && args.get(3).map(String::as_str)
        == Some("b"), "{:?}", args);
    check!(c, std::env::var("MOAT_LANG").as_deref() == Ok("rust"));
    // Only what was granted: no PATH, HOME or anything else from the host.
    let vars: Vec<(String, String)> = std::env::vars().collect();
    check!(c, vars.len() == 1, "{:?}", vars);
    check!(c, std::env::var("PATH").is_err());
    c.end();
}

fn files(c: &mut Checker) {
    c.begin("files");
    check!(c, fs::read_to_string("/file.txt").ok().as_deref() == Some("hello\n"));
    check!(c, fs::read_to_string("file.txt").ok().as_deref() == Some("hello\n"), "relative");
    check!(c, fs::write("/new.txt", b"0123456789").is_ok());
    {
        let mut f = OpenOptions::new().append(true).open("/new.txt").unwrap();
        check!(c, f.write_all(b"ab").is_ok());
    }
    check!(c, fs::read("/new.txt").ok().as_deref() == Some(&b"0123456789ab"[..]));
    {
        let mut f = OpenOptions::new().read(true).write(true).open("/new.txt").unwrap();
        check!(c, f.seek(SeekFrom::Start(4)).ok() == Some(4));
        let mut buf = [0u8; 3];
        check!(c, f.read_exact(&mut buf).is_ok() && &buf == b"456");
        check!(c, f.seek(SeekFrom::End(-1)).ok() == Some(11));
        check!(c, f.write_all(b"Z").is_ok());
        check!(c, f.set_len(5).is_ok());
        check!(c, f.metadata().map(|m| m.len()).ok() == Some(5));
        check!(c, f.sync_all().is_ok());
    }
    check!(c, fs::read_to_string("/new.txt").ok().as_deref() == Some("01234"));
    let md = fs::metadata("/new.txt").unwrap();
    check!(c, md.is_file() && !md.is_dir() && md.len() == 5);
    let age = SystemTime::now().duration_since(md.modified().unwrap());
    check!(c, age.as_ref().map(|d| *d < Duration::from_secs(600)).unwrap_or(true), "{:?}", age);
    check!(c, kind(OpenOptions::new().write(true).create_new(true).open("/new.txt"))
        == Some(ErrorKind::AlreadyExists));
    check!(c, kind(File::open("/missing.txt")) == Some(ErrorKind::NotFound));
    check!(c, kind(File::open("/file.txt/x")).is_some(), "a file is not a directory");
    check!(c, fs::copy("/file.txt", "/copy.txt").ok() == Some(6));
    check!(c, fs::rename("/copy.txt", "/sub/moved.txt").is_ok());
    check!(c, fs::read_to_string("/sub/moved.txt").ok().as_deref() == Some("hello\n"));
    check!(c, fs::remove_file("/sub/moved.txt").is_ok());
    check!(c, kind(fs::remove_file("/sub/moved.txt")) == Some(ErrorKind::NotFound));
    c.end();
}

fn dirs(c: &mut Checker) {
    c.begin("dirs");
    check!(c, fs::create_dir_all("/tree/a/b/c").is_ok());
    check!(c, fs::write("/tree/a/one", "1").is_ok() && fs::write("/tree/a/two", "2").is_ok());
    let mut names: Vec<String> = fs::read_dir("/tree/a")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    check!(c, names == ["b", "one", "two"], "{:?}", names);
    let types: Vec<bool> = {
        let mut v: Vec<_> = fs::read_dir("/tree/a").unwrap().map(|e| e.unwrap()).collect();
        v.sort_by_key(|e| e.file_name());
        v.iter().map(|e| e.file_type().unwrap().is_dir()).collect()
    };
    check!(c, types == [true, false, false], "{:?}", types);
    check!(c, kind(fs::create_dir("/tree/a")) == Some(ErrorKind::AlreadyExists));
    check!(c, fs::remove_dir("/tree/a").is_err(), "not empty");
    check!(c, fs::rename("/tree/a", "/tree/z").is_ok());
    check!(c, fs::metadata("/tree/z/b/c").map(|m| m.is_dir()).unwrap_or(false));
    check!(c, fs::remove_dir_all("/tree").is_ok());
    check!(c, kind(fs::metadata("/tree")) == Some(ErrorKind::NotFound));
    // The hidden .env is not listed at the root.
    let root: Vec<String> = fs::read_dir("/")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    check!(c, root.iter().any(|n| n == "file.txt") && !root.iter().any(|n| n == ".env"),
        "{:?}", root);
    c.end();
}

fn links(c: &mut Checker) {
    c.begin("links");
    check!(c, fs::hard_link("/file.txt", "/hard.txt").is_ok());
    check!(c, fs::read_to_string("/hard.txt").ok().as_deref() == Some("hello\n"));
    let (old, new) = ("file.txt", "soft.txt");
    // fd 3 is the first preopen, "/".
    let e = unsafe { path_symlink(old.as_ptr(), old.len(), 3, new.as_ptr(), new.len()) };
    check!(c, e == 0, "path_symlink errno {}", e);
    check!(c, fs::read_link("/soft.txt").ok().map(|p| p.display().to_string())
        == Some("file.txt".to_string()));
    check!(c, fs::symlink_metadata("/soft.txt").map(|m| m.file_type().is_symlink())
        .unwrap_or(false));
    check!(c, fs::read_to_string("/soft.txt").ok().as_deref() == Some("hello\n"));
    // A link pointing out of the sandbox cannot be made, and one made by the host cannot
    // be followed out.
    let (old, new) = ("../../etc/passwd", "escape");
    let e = unsafe { path_symlink(old.as_ptr(), old.len(), 3, new.as_ptr(), new.len()) };
    check!(c, e != 0, "symlink out of the mount was made");
    check!(c, fs::read_to_string("/escape").is_err());
    check!(c, fs::remove_file("/soft.txt").is_ok() && fs::remove_file("/hard.txt").is_ok());
    c.end();
}

fn confinement(c: &mut Checker) {
    c.begin("confinement");
    check!(c, fs::read_to_string("/../../../../etc/passwd").is_err());
    check!(c, fs::read_to_string("/sub/../../etc/hostname").is_err());
    check!(c, fs::read_dir("/..").map(|d| d.count()).unwrap_or(0) == 0
        || fs::read_dir("/..").is_err(), "listing above the root");
    check!(c, kind(fs::read_to_string("/.env")) == Some(ErrorKind::NotFound));
    check!(c, kind(fs::metadata("/.env")) == Some(ErrorKind::NotFound));
    check!(c, kind(fs::write("/id_rsa", "x")) == Some(ErrorKind::PermissionDenied));
    // The read-only mount reads, and refuses every change.
    check!(c, fs::read_to_string("/ro/data.txt").ok().as_deref() == Some("read-only\n"));
    check!(c, kind(fs::write("/ro/data.txt", "x")) == Some(ErrorKind::PermissionDenied));
    check!(c, kind(fs::write("/ro/new.txt", "x")) == Some(ErrorKind::PermissionDenied));
    check!(c, kind(fs::remove_file("/ro/data.txt")) == Some(ErrorKind::PermissionDenied));
    check!(c, kind(fs::create_dir("/ro/d")) == Some(ErrorKind::PermissionDenied));
    check!(c, kind(fs::rename("/ro/data.txt", "/stolen.txt")).is_some());
    check!(c, kind(fs::rename("/file.txt", "/ro/planted.txt")).is_some());
    check!(c, kind(OpenOptions::new().append(true).open("/ro/data.txt"))
        == Some(ErrorKind::PermissionDenied));
    check!(c, fs::read_to_string("/ro/data.txt").ok().as_deref() == Some("read-only\n"));
    c.end();
}

fn time_random(c: &mut Checker) {
    c.begin("time_random");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    check!(c, now > Duration::from_secs(946_684_800 - 1), "{:?}", now); // after 2000-01-01
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    let slept = t0.elapsed();
    check!(c, slept >= Duration::from_millis(20), "{:?}", slept);
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    unsafe {
        check!(c, random_get(a.as_mut_ptr(), a.len()) == 0);
        check!(c, random_get(b.as_mut_ptr(), b.len()) == 0);
    }
    check!(c, a != b && a != [0u8; 32]);
    // std's HashMap seeds itself from random_get.
    let m: std::collections::HashMap<u32, u32> = (0..100).map(|i| (i, i * i)).collect();
    check!(c, m.get(&9) == Some(&81) && m.len() == 100);
    c.end();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("stdin") => {
            let mut s = String::new();
            io::stdin().read_to_string(&mut s).unwrap();
            print!("stdin {} bytes: {}", s.len(), s);
            eprintln!("to stderr");
        }
        Some("exit") => std::process::exit(args[2].parse().unwrap()),
        Some("entropy") => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let mut r = [0u8; 8];
            unsafe { random_get(r.as_mut_ptr(), r.len()) };
            println!("time {} random {:?}", now.as_nanos(), r);
        }
        Some("panic") => {
            let v: Vec<u32> = Vec::new();
            println!("{}", v[args.len()]);
        }
        _ => {
            let mut c = Checker { group: "", group_failed: false, failed: false };
            args_env(&mut c);
            files(&mut c);
            dirs(&mut c);
            links(&mut c);
            confinement(&mut c);
            time_random(&mut c);
            std::process::exit(if c.failed { 1 } else { 0 });
        }
    }
}
