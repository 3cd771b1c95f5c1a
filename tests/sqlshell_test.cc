// End to end with a real program: the SQLite amalgamation as a wasm32-wasi SQL shell
// (guests/sqlshell/sqlshell.c) run by the real `moat` binary on a database file in a
// mounted folder, against the same shell built natively. Every step must print the same
// bytes, exit with the same status, and leave databases that read back the same.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace moat {
namespace {

struct Outcome {
  int status = -1;
  std::string out, err;
  double ms = 0;
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command line with `input` on stdin; captures stdout and stderr.
Outcome Shell(const std::string& cmd, const std::string& input) {
  static int n = 0;
  std::string base = "/tmp/moat-sqlshell-" + std::to_string(getpid()) + "-" + std::to_string(n++);
  std::ofstream(base + ".in", std::ios::binary) << input;
  std::string full = cmd + " <" + base + ".in >" + base + ".out 2>" + base + ".err";
  auto t0 = std::chrono::steady_clock::now();
  int rc = system(full.c_str());  // runs the program under test (moat or the native shell)
  Outcome r;
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = Slurp(base + ".out");
  r.err = Slurp(base + ".err");
  for (const char* ext : {".in", ".out", ".err"}) unlink((base + ext).c_str());
  return r;
}

// The same shell on both sides: the wasm build sees only its mount, at /data.
class SqlShell : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    wasm_dir_ = test::TempDir("sqlshell-wasm");
    native_dir_ = test::TempDir("sqlshell-native");
    mkdir(wasm_dir_.c_str(), 0700);
    mkdir(native_dir_.c_str(), 0700);
    // Compile (or find in the cache) first, so the runs below time only running.
    Outcome c = Shell(std::string(MOAT_BINARY) + " compile " + test::Guest("sqlshell"), "");
    ASSERT_EQ(c.status, 0) << c.err;
    printf("moat compile sqlshell.wasm: %.1f s\n", c.ms / 1000);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(wasm_dir_);
    std::filesystem::remove_all(native_dir_);
  }

  static Outcome Wasm(const std::string& args, const std::string& input = "") {
    // Default fuel: the metering charges each case of SQLite's VDBE switch on its own.
    return Shell(std::string(MOAT_BINARY) + " run --timeout 2m --dir " + Quote(wasm_dir_) +
                     "::/data " + test::Guest("sqlshell") + " " + args,
                 input);
  }
  static Outcome Native(const std::string& args, const std::string& input = "") {
    return Shell(std::string(MOAT_NATIVE_SQLSHELL) + " " + args, input);
  }

  // Runs `sqlshell [FLAGS] DB [SQL]` both ways on DB inside each side's folder, expects
  // identical stdout, stderr and status, and returns the native run.
  static Outcome Both(const std::string& db, const std::string& script,
                      const std::string& flags = "", const std::string& sql_arg = "") {
    std::string tail = sql_arg.empty() ? "" : " " + Quote(sql_arg);
    std::string pre = flags.empty() ? "" : flags + " ";
    Outcome w = Wasm(pre + "/data/" + db + tail, script);
    Outcome n = Native(pre + Quote(native_dir_ + "/" + db) + tail, script);
    EXPECT_EQ(w.out, n.out);
    EXPECT_EQ(w.err, n.err);
    EXPECT_EQ(w.status, n.status) << "wasm stderr: " << w.err;
    printf("  wasm %.0f ms, native %.0f ms\n", w.ms, n.ms);
    return n;
  }

  // Everything in a database, read by the native shell.
  static Outcome Dump(const std::string& path) {
    return Native(Quote(path),
                  "PRAGMA integrity_check;"
                  "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name;"
                  "SELECT * FROM people ORDER BY id;"
                  "SELECT * FROM blobs ORDER BY k;"
                  "SELECT count(*), sum(n), total(x), group_concat(tag, ',') FROM big;"
                  "SELECT * FROM big ORDER BY n LIMIT 5;");
  }

  static std::string wasm_dir_, native_dir_;
};
std::string SqlShell::wasm_dir_;
std::string SqlShell::native_dir_;

const char kCreate[] = R"sql(
-- a comment before the first statement
CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, city TEXT, age INT,
                    score REAL);
CREATE INDEX people_city ON people(city, age);
CREATE TABLE blobs(k TEXT PRIMARY KEY, v BLOB);
INSERT INTO people(name, city, age, score) VALUES
  ('Ada', 'London', 36, 9.5), ('Grace', 'New York', 85, 7.25),
  ('Zoë', 'Zürich', 29, NULL), ('李雷', '北京', 41, 3.0), ('Олег', 'Москва', NULL, 1e-3),
  ('Émile', 'Paris', 29, -2.5), ('🦀 crab', NULL, 7, 100);
INSERT INTO blobs VALUES ('empty', X''), ('bytes', X'00FF10807F'), ('null', NULL),
  ('text', CAST('héllo' AS BLOB));
SELECT id, name, city, age, score FROM people ORDER BY id;
SELECT k, v, typeof(v), length(v), hex(v) FROM blobs ORDER BY k;
UPDATE people SET age = age + 1 WHERE city IN ('London', 'Paris');
DELETE FROM people WHERE name = 'Grace';
SELECT name, length(name), upper(name), unicode(substr(name, 1, 1)) FROM people ORDER BY name;
BEGIN;
INSERT INTO people(name, city, age) VALUES ('Temp', 'Nowhere', 1);
ROLLBACK;
BEGIN TRANSACTION;
INSERT INTO people(name, city, age, score) VALUES ('Linus', 'Helsinki', 29, 4.5);
UPDATE people SET score = score * 2 WHERE age = 29;
COMMIT;
SELECT age, count(*), group_concat(name, ';'), sum(score), avg(score) FROM people
  GROUP BY age ORDER BY age DESC;
SELECT coalesce(city, '(none)'), count(*) FROM people GROUP BY 1 ORDER BY 2 DESC, 1;
SELECT 1.0 / 3, 10 / 4, 2e300 * 10, -0.0, 9223372036854775807, printf('%.3f|%5d|%s', 3.14159, 42, 'x');
-- enough rows for a multi-level b-tree and a sort that does not fit a page
CREATE TABLE big(n INTEGER, x REAL, tag TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
INSERT INTO big SELECT i, i * 0.5, 'tag' || (i % 37) FROM c;
CREATE INDEX big_tag ON big(tag);
SELECT tag, count(*), min(n), max(n), sum(x) FROM big GROUP BY tag ORDER BY count(*) DESC, tag
  LIMIT 6;
SELECT count(DISTINCT tag), sum(length(tag)) FROM big;
PRAGMA integrity_check;
)sql";

const char kReopen[] = R"sql(
SELECT count(*) FROM people;
SELECT name FROM people WHERE city = 'Zürich';
UPDATE people SET city = 'Tōkyō' WHERE name = 'Ada';
INSERT INTO blobs VALUES ('again', zeroblob(3));
DELETE FROM big WHERE n % 2 = 0;
SELECT id, name, city, age, score FROM people ORDER BY city, age;
SELECT count(*), sum(n) FROM big;
)sql";

TEST_F(SqlShell, SameOutputCreatingQueryingAndReopeningADatabase) {
  Outcome created = Both("t.db", kCreate);
  EXPECT_EQ(created.status, 0) << created.err;
  EXPECT_EQ(created.err, "");
  // A few rows checked by value, so both sides agreeing on nothing cannot pass.
  EXPECT_NE(created.out.find("3|Zoë|Zürich|29|\n"), std::string::npos) << created.out;
  EXPECT_NE(created.out.find("bytes|X'00FF10807F'|blob|5|00FF10807F\n"), std::string::npos);
  EXPECT_NE(created.out.find("29|2|Zoë;Linus|9.0|9.0\n"), std::string::npos) << created.out;
  EXPECT_NE(created.out.find("tag1|136|1|4996|169898.0\n"), std::string::npos) << created.out;
  EXPECT_EQ(created.out.substr(created.out.size() - 3), "ok\n");

  // A second process reopens the existing file: SQL from the command line, with a header.
  Outcome reopened = Both("t.db", "", "--header", kReopen);
  EXPECT_EQ(reopened.status, 0) << reopened.err;
  EXPECT_NE(reopened.out.find("count(*)\n7\n"), std::string::npos) << reopened.out;
  EXPECT_NE(reopened.out.find("1|Ada|Tōkyō|37|9.5\n"), std::string::npos) << reopened.out;
  EXPECT_NE(reopened.out.find("2500|6250000\n"), std::string::npos) << reopened.out;

  // Errors: the message, the status, and the rows printed before the failing statement.
  Outcome syntax = Both("t.db", "SELECT 'before';\nSELEC name FROM people;\nSELECT 'after';");
  EXPECT_EQ(syntax.status, 1);
  EXPECT_EQ(syntax.out, "before\n");
  EXPECT_EQ(syntax.err, "error: near \"SELEC\": syntax error\n");
  Outcome unique = Both("t.db", "INSERT INTO people(name) VALUES ('Ada');");
  EXPECT_EQ(unique.status, 1);
  EXPECT_EQ(unique.err, "error: UNIQUE constraint failed: people.name\n");
  Outcome missing = Both("t.db", "SELECT * FROM nope;");
  EXPECT_EQ(missing.err, "error: no such table: nope\n");
  Outcome usage_wasm = Wasm("");
  Outcome usage_native = Native("");
  EXPECT_EQ(usage_native.status, 2);
  EXPECT_EQ(usage_wasm.status, usage_native.status);
  EXPECT_EQ(usage_wasm.err, usage_native.err);

  // Both files now hold the same database.
  Outcome wasm_db = Dump(wasm_dir_ + "/t.db");
  Outcome native_db = Dump(native_dir_ + "/t.db");
  EXPECT_EQ(wasm_db.status, 0) << wasm_db.err;
  EXPECT_EQ(native_db.status, 0) << native_db.err;
  EXPECT_EQ(wasm_db.out, native_db.out);
  EXPECT_EQ(wasm_db.out.rfind("ok\n", 0), 0u) << wasm_db.out;
  EXPECT_NE(wasm_db.out.find("again|X'000000'\n"), std::string::npos) << wasm_db.out;
  EXPECT_NE(wasm_db.out.find("2500|6250000|3125000.0|"), std::string::npos) << wasm_db.out;
}

// A database in a read-only mount: SQLite's WASI locking creates a directory beside the
// file, which the mount refuses; opened immutable, the same database reads fine.
TEST_F(SqlShell, ReadOnlyMountNeedsImmutable) {
  Outcome made =
      Native(Quote(native_dir_ + "/ro.db"), "CREATE TABLE t(x); INSERT INTO t VALUES (42);");
  ASSERT_EQ(made.status, 0) << made.err;
  std::string run = std::string(MOAT_BINARY) + " run --dir " + Quote(native_dir_) + "::/ro:ro " +
                    test::Guest("sqlshell") + " ";
  Outcome locked = Shell(run + "/ro/ro.db 'SELECT x FROM t'", "");
  EXPECT_EQ(locked.status, 1);
  EXPECT_NE(locked.err.find("error:"), std::string::npos) << locked.err;
  Outcome immutable = Shell(run + "'file:/ro/ro.db?immutable=1' 'SELECT x FROM t'", "");
  EXPECT_EQ(immutable.status, 0) << immutable.err;
  EXPECT_EQ(immutable.out, "42\n");
}

}  // namespace
}  // namespace moat
