// The built-in `sql` tool (guests/tools/sql.cc) through the real sandbox: calls through the
// tool registry (schema check on the host, manifest limits, the workspace mounted
// read-write as the manifest says), and runs of the module with a read-only workspace or
// raw bytes on stdin. Hostile inputs end in a contract error or a limit, never a crash.
#include <sys/stat.h>
#include <utime.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include <gtest/gtest.h>

#include "orchestration/tools/registry.h"
#include "test_util.h"

namespace moat {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class SqlTool : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tools::RegistryOptions o;
    o.builtin_dirs = {MOAT_TOOLS_DIR};
    o.preload_builtins = false;
    auto r = tools::Registry::Create(&test::SharedEngine(), std::move(o));
    ASSERT_TRUE(r.ok()) << r.error().message;
    registry_ = r->release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  void SetUp() override {
    root_ = test::TempDir("sql");
    ws_ = root_ + "/ws";
    fs::create_directories(ws_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Put(const std::string& rel, const std::string& bytes) {
    fs::path p = fs::path(ws_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
  }
  std::string Get(const std::string& rel) { return test::Slurp(ws_ + "/" + rel); }
  bool Exists(const std::string& rel) { return fs::exists(fs::path(ws_) / rel); }

  // A call through the registry, as `moat call sql` makes it.
  json Call(const json& args, tools::CallOptions o = {}) {
    o.workspace = ws_;
    tools::CallResult r = registry_->Call("sql", args, o);
    last_ = r.exec;
    return r.result;
  }
  // The module run directly, with the workspace mounted read-only or not.
  json Direct(const std::string& stdin_bytes, bool read_only) {
    auto tool = registry_->Find("sql");
    EXPECT_TRUE(tool) << registry_->LoadError("sql");
    if (!tool) return nullptr;
    ExecRequest req;
    req.argv = {"sql"};
    req.stdin_bytes = stdin_bytes;
    req.mounts = {Mount{ws_, "/workspace", read_only}};
    req.limits.fuel = 2'000'000'000;
    last_ = test::SharedEngine().Run(tool->module, req);
    EXPECT_EQ(last_.status, RunStatus::kOk) << last_.message;
    EXPECT_EQ(last_.exit_code, 0);
    json out = json::parse(last_.stdout_bytes, nullptr, false);
    EXPECT_TRUE(out.is_object()) << last_.stdout_bytes;
    return out;
  }
  static std::string Code(const json& r) {
    if (r.value("ok", true) || !r.contains("error")) return "(ok)";
    return r["error"].value("code", "");
  }
  static std::string Message(const json& r) {
    return r.contains("error") ? r["error"].value("message", "") : "";
  }
  static json Content(const json& r) {
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    return r.value("content", json());
  }

  static tools::Registry* registry_;
  std::string root_, ws_;
  ExecResult last_;
};

tools::Registry* SqlTool::registry_ = nullptr;

// --- results ----------------------------------------------------------------------------

TEST_F(SqlTool, InMemoryValuesOfEveryType) {
  json c = Content(Call({{"sql",
                          "SELECT 1 AS i, 2.5 AS r, 'héllo' AS t, NULL AS n, "
                          "x'00ff10' AS b, 9223372036854775807 AS big"}}));
  EXPECT_EQ(c["columns"], json({"i", "r", "t", "n", "b", "big"}));
  EXPECT_EQ(c["rows"],
            json::parse(R"([[1,2.5,"héllo",null,{"base64":"AP8Q"},9223372036854775807]])"));
  EXPECT_EQ(c["row_count"], 1);
  EXPECT_EQ(c["truncated"], false);
  EXPECT_EQ(c["statements"], 1);
  EXPECT_EQ(c["changes"], 0);
  EXPECT_EQ(c["database"], ":memory:");
}

TEST_F(SqlTool, FileDatabaseIsCreatedKeptAndReopened) {
  fs::create_directories(ws_ + "/data");
  json c = Content(Call({{"database", "data/app.db"},
                         {"sql",
                          "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT);"
                          "INSERT INTO t(name) VALUES ('a'), ('b'), ('c');"
                          "UPDATE t SET name = upper(name) WHERE id > 1"}}));
  EXPECT_TRUE(c["columns"].empty());
  EXPECT_EQ(c["changes"], 5);
  EXPECT_EQ(c["statements"], 3);
  EXPECT_EQ(c["database"], "data/app.db");
  EXPECT_EQ(Get("data/app.db").substr(0, 16), std::string("SQLite format 3\0", 16));
  EXPECT_FALSE(Exists("data/app.db-journal"));
  EXPECT_FALSE(Exists("data/app.db.lock"));
  c = Content(
      Call({{"database", "/workspace/data/app.db"}, {"sql", "SELECT name FROM t ORDER BY id"}}));
  EXPECT_EQ(c["rows"], json::parse(R"([["a"],["B"],["C"]])"));
  // A database that a failed call created stays absent; so does one only read from.
  EXPECT_EQ(Code(Call({{"database", "new.db"}, {"sql", "SELEC 1"}})), "sql_error");
  EXPECT_FALSE(Exists("new.db"));
  Content(Call({{"database", "new.db"}, {"sql", "SELECT 1"}}));
  EXPECT_FALSE(Exists("new.db"));
  // The parent must exist.
  EXPECT_EQ(Code(Call({{"database", "no/such/dir/x.db"}, {"sql", "SELECT 1"}})), "not_found");
  EXPECT_EQ(Code(Call({{"database", "data"}, {"sql", "SELECT 1"}})), "not_a_file");
}

TEST_F(SqlTool, ParamsBindToTheLastStatement) {
  json c =
      Content(Call({{"sql",
                     "CREATE TABLE t(a, b, c, d, e); INSERT INTO t VALUES (?, ?, ?, ?, ?) "
                     "RETURNING typeof(a), typeof(b), typeof(c), typeof(d), e"},
                    {"params", json::parse(R"([7, 1.25, "text", null, {"base64":"AQID"}])")}}));
  EXPECT_EQ(c["rows"], json::parse(R"([["integer","real","text","null",{"base64":"AQID"}]])"));
  EXPECT_EQ(c["changes"], 1);
  c = Content(Call({{"sql", "SELECT ?1 + ?1, :x"}, {"params", {20, true}}}));
  EXPECT_EQ(c["rows"], json::parse("[[40, 1]]"));
  json r = Call({{"sql", "SELECT ?, ?"}, {"params", {1}}});
  EXPECT_EQ(Code(r), "invalid_arguments");
  EXPECT_NE(Message(r).find("2 placeholder"), std::string::npos) << r;
  r = Call({{"sql", "SELECT ?"}});
  EXPECT_EQ(Code(r), "invalid_arguments");
  r = Call({{"sql", "SELECT ?; SELECT 2"}, {"params", {1}}});
  EXPECT_EQ(Code(r), "invalid_arguments");
  EXPECT_NE(Message(r).find("statement 1"), std::string::npos) << r;
  EXPECT_EQ(Code(Call({{"sql", "SELECT ?"}, {"params", json::parse(R"([{"base64":"!!"}])")}})),
            "invalid_arguments");
  // Comments and empty statements around the last one do not count.
  c = Content(
      Call({{"sql", "SELECT 1;; -- one\n SELECT ? /* two */ ;\n-- end"}, {"params", {"z"}}}));
  EXPECT_EQ(c["rows"], json::parse(R"([["z"]])"));
  EXPECT_EQ(c["statements"], 2);
}

TEST_F(SqlTool, ErrorsNameTheStatementAndEarlierOnesStay) {
  json r = Call(
      {{"database", "e.db"},
       {"sql", "CREATE TABLE t(a UNIQUE); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)"}});
  EXPECT_EQ(Code(r), "sql_error");
  EXPECT_EQ(Message(r), "UNIQUE constraint failed: t.a (statement 3)");
  json c = Content(Call({{"database", "e.db"}, {"sql", "SELECT count(*) FROM t"}}));
  EXPECT_EQ(c["rows"], json::parse("[[1]]"));
  // In an explicit transaction, nothing stays.
  r = Call({{"database", "e.db"},
            {"sql", "BEGIN; INSERT INTO t VALUES (2); SELECT * FROM nope; COMMIT"}});
  EXPECT_EQ(Message(r), "no such table: nope (statement 3)");
  c = Content(Call({{"database", "e.db"}, {"sql", "SELECT count(*) FROM t"}}));
  EXPECT_EQ(c["rows"], json::parse("[[1]]"));
  r = Call({{"sql", "SELECT 1; SELEC 2"}});
  EXPECT_EQ(Message(r), "near \"SELEC\": syntax error (statement 2)");
}

TEST_F(SqlTool, HugeResultsAreCapped) {
  const std::string count =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
      "LIMIT 1000000) SELECT x, printf('%.200c', 'a') FROM c";
  json c = Content(Call({{"sql", count}}));
  EXPECT_EQ(c["row_count"], 1000);
  EXPECT_EQ(c["truncated"], true);
  c = Content(Call({{"sql", count}, {"max_rows", 100000}}));
  EXPECT_EQ(c["truncated"], true);
  EXPECT_LT(c["row_count"].get<int>(), 100000);  // the 4 MB budget came first
  EXPECT_LT(last_.stdout_bytes.size(), 6u << 20);
  c = Content(Call({{"sql", "SELECT 1 UNION ALL SELECT 2"}, {"max_rows", 0}}));
  EXPECT_EQ(c["row_count"], 0);
  EXPECT_EQ(c["truncated"], true);
  // One value larger than a megabyte is cut, and said so.
  c = Content(Call({{"sql", "SELECT zeroblob(3000000), printf('%.2000000c', 'x')"}}));
  EXPECT_EQ(c["values_cut"], 2);
  EXPECT_EQ(c["rows"][0][1].get<std::string>().size(), 1u << 20);
}

// --- limits and locks -------------------------------------------------------------------

TEST_F(SqlTool, RunawayQueriesAreStoppedAndTheirLocksRecovered) {
  Content(
      Call({{"database", "r.db"}, {"sql", "CREATE TABLE t(a); INSERT INTO t VALUES (1), (2)"}}));
  const std::string forever =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c, t";
  tools::CallOptions o;
  o.fuel = 500'000'000;
  EXPECT_EQ(Code(Call({{"database", "r.db"}, {"sql", forever}}, o)), "fuel_exhausted");
  o.fuel = 1'000'000'000'000ull;
  o.timeout_us = 500'000;
  EXPECT_EQ(Code(Call({{"database", "r.db"}, {"sql", forever}}, o)), "timeout");

  // The stopped call held SQLite's lock directory: a fresh one means "locked"...
  ASSERT_TRUE(fs::is_directory(ws_ + "/r.db.lock"));
  json r = Call({{"database", "r.db"}, {"sql", "SELECT count(*) FROM t"}});
  EXPECT_EQ(Code(r), "sql_error");
  EXPECT_NE(Message(r).find("r.db.lock"), std::string::npos) << r;
  // ... and one older than 30 s is a leftover, removed.
  utimbuf old{time(nullptr) - 120, time(nullptr) - 120};
  ASSERT_EQ(utime((ws_ + "/r.db.lock").c_str(), &old), 0);
  json c = Content(Call({{"database", "r.db"}, {"sql", "SELECT count(*) FROM t"}}));
  EXPECT_EQ(c["rows"], json::parse("[[2]]"));
  EXPECT_FALSE(Exists("r.db.lock"));

  // A write stopped halfway leaves a hot journal, rolled back by the next call.
  o = {};
  o.fuel = 3'000'000'000ull;
  r = Call({{"database", "r.db"},
            {"sql",
             "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
             "FROM c) SELECT randomblob(100) FROM c"}},
           o);
  EXPECT_EQ(Code(r), "fuel_exhausted");
  ASSERT_TRUE(fs::is_directory(ws_ + "/r.db.lock"));
  ASSERT_EQ(utime((ws_ + "/r.db.lock").c_str(), &old), 0);
  c = Content(Call({{"database", "r.db"}, {"sql", "SELECT count(*) FROM t; "}}));
  EXPECT_EQ(c["rows"], json::parse("[[2]]"));
  c = Content(Call({{"database", "r.db"}, {"sql", "PRAGMA integrity_check"}}));
  EXPECT_EQ(c["rows"], json::parse(R"([["ok"]])"));
  EXPECT_FALSE(Exists("r.db-journal"));
}

TEST_F(SqlTool, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "SELECT ";
  for (int i = 0; i < 5000; ++i) deep += "(";
  deep += "1";
  for (int i = 0; i < 5000; ++i) deep += ")";
  EXPECT_EQ(Code(Call({{"sql", deep}})), "sql_error");
  std::string sub = "SELECT 1";
  for (int i = 0; i < 300; ++i) sub = "SELECT (" + sub + ")";
  json r = Call({{"sql", sub}});
  EXPECT_TRUE(r["ok"] == true || Code(r) == "sql_error") << r;
}

// --- confinement ------------------------------------------------------------------------

TEST_F(SqlTool, AttachCannotLeaveTheWorkspace) {
  const char* outside[] = {"/etc/passwd", "../x.db", "/tmp/moat-sql-escape.db", "file:/etc/passwd",
                           "/workspace/../../etc/hostname"};
  for (const char* path : outside) {
    json r = Call({{"database", "a.db"},
                   {"sql", std::string("ATTACH '") + path +
                               "' AS x; CREATE TABLE x.t(a); "
                               "SELECT * FROM x.sqlite_master"}});
    EXPECT_EQ(Code(r), "sql_error") << path << ": " << r;
  }
  EXPECT_FALSE(fs::exists(root_ + "/x.db"));
  EXPECT_FALSE(fs::exists("/tmp/moat-sql-escape.db"));
  // VACUUM INTO is confined the same way.
  EXPECT_EQ(Code(Call({{"database", "a.db"}, {"sql", "CREATE TABLE q(a); VACUUM INTO '../v.db'"}})),
            "sql_error");
  EXPECT_FALSE(fs::exists(root_ + "/v.db"));
  // Inside the workspace, ATTACH works.
  json c = Content(Call({{"database", "a.db"},
                         {"sql",
                          "ATTACH 'b.db' AS b; CREATE TABLE b.t(a); INSERT INTO b.t VALUES "
                          "(5); SELECT a FROM b.t"}}));
  EXPECT_EQ(c["rows"], json::parse("[[5]]"));
  EXPECT_TRUE(Exists("b.db"));
  EXPECT_EQ(Code(Call({{"database", "../outside.db"}, {"sql", "SELECT 1"}})), "outside_workspace");
  EXPECT_EQ(Code(Call({{"database", "/etc/passwd"}, {"sql", "SELECT 1"}})), "outside_workspace");
}

TEST_F(SqlTool, HiddenFilesLookMissing) {
  Put(".env", "a,b\n1,2\n");
  EXPECT_EQ(Code(Call({{"csv", {{{"path", ".env"}, {"table", "e"}}}}, {"sql", "SELECT * FROM e"}})),
            "not_found");
  EXPECT_EQ(Code(Call({{"database", ".env"}, {"sql", "SELECT 1"}})), "permission_denied");
  EXPECT_EQ(Code(Call({{"sql", "ATTACH '.env' AS e; SELECT * FROM e.sqlite_master"}})),
            "sql_error");
  EXPECT_EQ(Code(Call({{"sql", "SELECT 1"}, {"export_csv", {{"path", ".env"}}}})),
            "permission_denied");
  EXPECT_EQ(Get(".env"), "a,b\n1,2\n");
}

TEST_F(SqlTool, FilesThatAreNotDatabases) {
  std::string binary;
  for (int i = 0; i < 5000; ++i) binary.push_back(static_cast<char>((i * 97 + 13) & 0xFF));
  Put("blob.bin", binary);
  Put("notes.csv", "a,b\n1,2\n");
  for (const char* f : {"blob.bin", "notes.csv"}) {
    json r = Call({{"database", f}, {"sql", "SELECT 1"}});
    EXPECT_EQ(Code(r), "sql_error") << f;
    EXPECT_NE(Message(r).find("file is not a database"), std::string::npos) << r;
  }
  // A file with the right header and garbage after it: SQLite's own error.
  Put("fake.db", std::string("SQLite format 3\0", 16) + binary);
  json r = Call({{"database", "fake.db"}, {"sql", "SELECT * FROM sqlite_master"}});
  EXPECT_EQ(Code(r), "sql_error") << r;
  EXPECT_EQ(Get("blob.bin"), binary);
  // An empty file is an empty database.
  Put("empty.db", "");
  Content(Call({{"database", "empty.db"}, {"sql", "SELECT count(*) FROM sqlite_master"}}));
}

TEST_F(SqlTool, ReadOnlyWorkspace) {
  Content(Call({{"database", "ro.db"}, {"sql", "CREATE TABLE t(a); INSERT INTO t VALUES (42)"}}));
  std::string before = Get("ro.db");
  json r = Direct(R"({"database":"ro.db","sql":"SELECT a FROM t"})", true);
  json c = Content(r);
  EXPECT_EQ(c["rows"], json::parse("[[42]]"));
  EXPECT_EQ(c["read_only"], true);
  r = Direct(json({{"database", "ro.db"}, {"sql", "INSERT INTO t VALUES (1)"}}).dump(), true);
  EXPECT_EQ(Code(r), "permission_denied") << r;
  EXPECT_NE(Message(r).find("read-only"), std::string::npos) << r;
  r = Direct(json({{"database", "missing.db"}, {"sql", "CREATE TABLE t(a)"}}).dump(), true);
  EXPECT_EQ(Code(r), "permission_denied") << r;
  r = Direct(R"({"database":"ro.db","sql":"SELECT a FROM t","export_csv":{"path":"o.csv"}})", true);
  EXPECT_EQ(Code(r), "permission_denied") << r;
  // Temp tables and in-memory databases still work.
  Put("in.csv", "x\n1\n2\n");
  r = Direct(R"({"database":"ro.db","csv":[{"path":"in.csv","table":"i"}],
                 "sql":"SELECT sum(x) + (SELECT a FROM t) FROM i"})",
             true);
  EXPECT_EQ(Content(r)["rows"], json::parse("[[45]]"));
  EXPECT_EQ(Get("ro.db"), before);
  EXPECT_FALSE(Exists("ro.db.lock"));
  EXPECT_FALSE(Exists("missing.db"));
  EXPECT_FALSE(Exists("o.csv"));
}

// --- CSV --------------------------------------------------------------------------------

TEST_F(SqlTool, CsvImportFollowsRfc4180) {
  Put("people.csv",
      "\xEF\xBB\xBFname,age,score,zip,note\r\n"
      "\"Smith, J\",42,1.5,00123,\"said \"\"hi\"\"\"\r\n"
      "\r\n"
      "Bob,7,,02139,\"two\r\nlines\"\r\n"
      "\"\",-3,2e3,10001,\n"
      "Zoë,0,0.25,94110,last");
  json c = Content(Call({{"csv", {{{"path", "people.csv"}, {"table", "p"}}}},
                         {"sql",
                          "SELECT name, age, score, zip, note, typeof(age), typeof(score), "
                          "typeof(zip) FROM p ORDER BY rowid"}}));
  EXPECT_EQ(c["rows"], json::parse(R"([
    ["Smith, J", 42, 1.5, "00123", "said \"hi\"", "integer", "real", "text"],
    ["Bob", 7, null, "02139", "two\r\nlines", "integer", "null", "text"],
    ["", -3, 2000.0, "10001", "", "integer", "real", "text"],
    ["Zoë", 0, 0.25, "94110", "last", "integer", "real", "text"]])"));
  EXPECT_EQ(c["imported"][0]["rows"], 4);
  EXPECT_EQ(c["imported"][0]["columns"][2], json::parse(R"({"name":"score","type":"REAL"})"));

  // No header, other delimiters, duplicate and empty header names, odd table names.
  Put("t.tsv", "1\tx\n2\ty\n");
  Put("dup.csv", "a;a;;A\n1;2;3;4\n");
  c = Content(
      Call({{"csv",
             {{{"path", "t.tsv"}, {"table", "tab \"q\""}, {"header", false}, {"delimiter", "\t"}},
              {{"path", "dup.csv"}, {"table", "d"}, {"delimiter", ";"}}}},
            {"sql",
             "SELECT column_1, column_2, (SELECT group_concat(name) FROM "
             "pragma_table_info('d')) FROM \"tab \"\"q\"\"\""}}));
  EXPECT_EQ(c["rows"],
            json::parse(R"([[1,"x","a,a_2,column_3,A_3"],[2,"y","a,a_2,column_3,A_3"]])"));
  // Tables are temporary: the database file does not get them.
  Content(Call({{"database", "keep.db"},
                {"csv", {{{"path", "t.tsv"}, {"table", "t"}, {"header", false}}}},
                {"sql", "CREATE TABLE kept AS SELECT * FROM t"}}));
  c = Content(Call({{"database", "keep.db"}, {"sql", "SELECT name FROM sqlite_master"}}));
  EXPECT_EQ(c["rows"], json::parse(R"([["kept"]])"));
}

TEST_F(SqlTool, MalformedCsvNamesTheLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"a,b\n1,2\n3,\"open\n4,5\n", "bad.csv: line 3: a quoted field is never closed"},
      {"a,b\n1,2\n3,x\"y\n", "bad.csv: line 3: a quote inside an unquoted field"},
      {"a,b\n\"1\"x,2\n", "bad.csv: line 2: unexpected text after a closing quote"},
      {"a,b\n1,2\n\"multi\nline\",2,3\n", "bad.csv: line 3: 3 fields, expected 2"},
      {"a,b\n1\n", "bad.csv: line 2: 1 fields, expected 2"},
      {"", "bad.csv is empty"},
      {"\n\r\n", "bad.csv is empty"},
      {"(replaced by binary text)", "bad.csv is not CSV text"},
  };
  for (const auto& k : cases) {
    std::string text = k.text;
    if (std::string(k.message).find("not CSV") != std::string::npos)
      text = std::string("a,b\n1,\0\n", 8);
    Put("bad.csv", text);
    json r = Call({{"csv", {{{"path", "bad.csv"}, {"table", "b"}}}}, {"sql", "SELECT * FROM b"}});
    EXPECT_EQ(Code(r), "csv_error") << k.message;
    EXPECT_EQ(Message(r).rfind(k.message, 0), 0u) << Message(r);
  }
  Put("ok.csv", "a\n1\n");
  EXPECT_EQ(
      Code(Call(
          {{"csv", {{{"path", "ok.csv"}, {"table", "t"}}, {{"path", "ok.csv"}, {"table", "t"}}}},
           {"sql", "SELECT 1"}})),
      "csv_error");
  EXPECT_EQ(Code(Call({{"csv", {{{"path", "missing.csv"}, {"table", "t"}}}}, {"sql", "SELECT 1"}})),
            "not_found");
  EXPECT_EQ(Code(Call({{"csv", {{{"path", "ok.csv"}, {"table", "t"}, {"delimiter", "\""}}}},
                       {"sql", "SELECT 1"}})),
            "invalid_arguments");
}

TEST_F(SqlTool, ExportWritesEveryRowAndReadsBack) {
  fs::create_directories(ws_ + "/out");
  json c = Content(
      Call({{"sql",
             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5000) "
             "SELECT x AS n, CASE x % 3 WHEN 0 THEN NULL WHEN 1 THEN 'a,\"b\"' ELSE 'two\nlines' "
             "END AS s, x / 4.0 AS f FROM c"},
            {"max_rows", 2},
            {"export_csv", {{"path", "out/all.csv"}}}}));
  EXPECT_EQ(c["row_count"], 2);
  EXPECT_EQ(c["truncated"], true);
  EXPECT_EQ(c["exported"], json::parse(R"({"path":"out/all.csv","rows":5000})"));
  const std::string head = "n,s,f\n1,\"a,\"\"b\"\"\",0.25\n2,\"two\nlines\",0.5\n";
  EXPECT_EQ(Get("out/all.csv").substr(0, head.size()), head);
  c = Content(
      Call({{"csv", {{{"path", "out/all.csv"}, {"table", "back"}}}},
            {"sql", "SELECT count(*), sum(n), sum(s IS NULL), sum(s = ''), sum(f) FROM back"}}));
  EXPECT_EQ(c["rows"], json::parse("[[5000, 12502500, 0, 1666, 3125625.0]]"));
  // No header, another delimiter; an existing file is replaced; no temp files stay.
  Content(Call({{"sql", "SELECT 1, 'x;y'"},
                {"export_csv", {{"path", "out/all.csv"}, {"header", false}, {"delimiter", ";"}}}}));
  EXPECT_EQ(Get("out/all.csv"), "1;\"x;y\"\n");
  EXPECT_EQ(test::CountDir(ws_ + "/out"), 1);
  for (const auto& e : fs::directory_iterator(ws_ + "/out"))
    EXPECT_EQ(e.path().filename(), "all.csv");
  EXPECT_EQ(Code(Call({{"sql", "CREATE TABLE z(a)"}, {"export_csv", {{"path", "z.csv"}}}})),
            "invalid_arguments");
  EXPECT_EQ(Code(Call({{"sql", "SELECT 1"}, {"export_csv", {{"path", "../z.csv"}}}})),
            "outside_workspace");
  EXPECT_EQ(Code(Call({{"sql", "SELECT 1"}, {"export_csv", {{"path", "out"}}}})), "not_a_file");
}

// --- arguments --------------------------------------------------------------------------

TEST_F(SqlTool, MalformedArguments) {
  // The host's schema check refuses these before anything runs.
  const char* refused[] = {
      R"({})",
      R"({"sql": 5})",
      R"({"sql": ""})",
      R"({"sql": "SELECT 1", "params": {"a": 1}})",
      R"({"sql": "SELECT ?", "params": [[1]]})",
      R"({"sql": "SELECT 1", "csv": {"path": "a", "table": "b"}})",
      R"({"sql": "SELECT 1", "csv": [{"path": "a"}]})",
      R"({"sql": "SELECT 1", "csv": [{"path": "a", "table": "b", "delimiter": ";;"}]})",
      R"({"sql": "SELECT 1", "max_rows": -1})",
      R"({"sql": "SELECT 1", "max_rows": 1.5})",
      R"({"sql": "SELECT 1", "export_csv": "x.csv"})",
      R"({"sql": "SELECT 1", "unknown": true})",
  };
  for (const char* a : refused) {
    tools::CallResult r = registry_->Call("sql", json::parse(a), {.workspace = ws_});
    EXPECT_EQ(Code(r.result), "invalid_arguments") << a;
    EXPECT_FALSE(r.ran) << a;
  }
  // The tool checks again when run directly, and survives bytes that are not JSON.
  std::string binary;
  for (int i = 0; i < 4096; ++i) binary.push_back(static_cast<char>((i * 131) & 0xFF));
  const std::string raw[] = {"",
                             binary,
                             std::string(1 << 20, '['),
                             "[1]",
                             R"({"sql": 5})",
                             R"({"sql": "SELECT 1", "params": {"a": 1}})",
                             R"({"sql": "SELECT ?", "params": [[1]]})",
                             R"({"sql": "SELECT 1", "csv": [7]})",
                             R"({"sql": "SELECT 1", "csv": [{"path": "a", "table": "", "x": 1}]})",
                             R"({"sql": "SELECT 1", "export_csv": {"path": 3}})",
                             R"({"sql": "SELECT 1", "database": ""})",
                             R"({"sql": "SELECT 1; \u0000 DROP TABLE x"})",
                             R"({"sql": "SELECT 1", "max_rows": 1e20})"};
  for (const auto& in : raw) {
    json r = Direct(in, false);
    EXPECT_EQ(Code(r), "invalid_arguments") << in.substr(0, 80) << " -> " << r;
  }
}

TEST_F(SqlTool, ManifestDescribesTheContract) {
  auto tool = registry_->Find("sql");
  ASSERT_TRUE(tool) << registry_->LoadError("sql");
  EXPECT_EQ(tool->manifest.name, "sql");
  json m =
      json::parse(test::Slurp(std::string(MOAT_SOURCE_DIR) + "/guests/tools/sql.manifest.json"));
  EXPECT_EQ(m["arguments"]["additionalProperties"], false);
  EXPECT_EQ(m["capabilities"]["filesystem"], "write");
  for (const char* word : {"sql_error", "csv_error", "base64", "LAST statement", "TEMP"}) {
    EXPECT_NE(m["description"].get<std::string>().find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace moat
