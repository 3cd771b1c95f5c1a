// The built-in file tools (guests/tools/), each run through the real sandbox: a workspace
// folder mounted at /workspace, the arguments on stdin, one JSON result on stdout.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include <gtest/gtest.h>

#include "test_util.h"

#ifndef MOAT_TOOLS_DIR
#define MOAT_TOOLS_DIR MOAT_GUEST_DIR "/../tools"
#endif

namespace moat {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const char* const kTools[] = {"read_file", "write_file", "edit_file", "apply_patch", "list_dir",
                              "glob",      "grep",       "move",      "delete",      "make_dir"};

class BuiltinTools : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::TempDir("tools");
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

  // Runs a tool; the run itself must succeed (exit 0, one JSON line on stdout).
  json Run(const std::string& tool, const std::string& stdin_bytes, bool read_only = false,
           Limits limits = {}) {
    last_ = RunRaw(tool, stdin_bytes, read_only, limits);
    EXPECT_EQ(last_.status, RunStatus::kOk) << tool << ": " << last_.message;
    EXPECT_EQ(last_.exit_code, 0) << tool;
    EXPECT_FALSE(last_.stdout_bytes.empty()) << tool;
    EXPECT_EQ(last_.stdout_bytes.back(), '\n') << tool;
    json out = json::parse(last_.stdout_bytes, nullptr, false);
    EXPECT_FALSE(out.is_discarded()) << tool << ": " << last_.stdout_bytes;
    return out;
  }
  json Run(const std::string& tool, const json& args, bool read_only = false, Limits limits = {}) {
    return Run(tool, args.dump(), read_only, limits);
  }
  ExecResult RunRaw(const std::string& tool, const std::string& stdin_bytes, bool read_only,
                    Limits limits) {
    auto h = test::SharedEngine().LoadFile(std::string(MOAT_TOOLS_DIR) + "/" + tool + ".wasm");
    EXPECT_TRUE(h.ok()) << tool << ": " << (h ? "" : h.error().message);
    if (!h) return {};
    ExecRequest req;
    req.argv = {tool};
    req.stdin_bytes = stdin_bytes;
    req.mounts = {Mount{ws_, "/workspace", read_only}};
    req.limits = limits;
    return test::SharedEngine().Run(*h, req);
  }
  static std::string Code(const json& r) {
    if (r.value("ok", true) || !r.contains("error")) return "(ok)";
    return r["error"].value("code", "");
  }

  std::string root_, ws_;
  ExecResult last_;
};

// --- manifests ----------------------------------------------------------------------------

TEST_F(BuiltinTools, EveryToolHasAStrictManifest) {
  for (const char* tool : kTools) {
    std::string text =
        test::Slurp(std::string(MOAT_SOURCE_DIR) + "/guests/tools/" + tool + ".manifest.json");
    json m = json::parse(text, nullptr, false);
    ASSERT_TRUE(m.is_object()) << tool;
    EXPECT_EQ(m["name"], tool);
    EXPECT_GT(m["description"].get<std::string>().size(), 80u) << tool;
    const json& a = m["arguments"];
    EXPECT_EQ(a["type"], "object") << tool;
    EXPECT_EQ(a["additionalProperties"], false) << tool;
    for (const auto& r : a["required"]) EXPECT_TRUE(a["properties"].contains(r)) << tool;
    std::string fsmode = m["capabilities"]["filesystem"];
    EXPECT_TRUE(fsmode == "read" || fsmode == "write") << tool;
    for (const char* k : {"fuel", "memory", "timeout", "max_output"}) {
      EXPECT_TRUE(m["limits"].contains(k)) << tool << " " << k;
    }
  }
}

// --- garbage on stdin ---------------------------------------------------------------------

TEST_F(BuiltinTools, EveryToolSurvivesGarbageArguments) {
  std::string binary;
  for (int i = 0; i < 4096; ++i) binary.push_back(static_cast<char>((i * 131) & 0xFF));
  const std::string inputs[] = {"",
                                std::string(10 << 20, '['),
                                std::string(1 << 20, '{'),
                                binary,
                                "[1,2,3]",
                                "\"just a string\"",
                                "{\"path\": 12, \"pattern\": [], \"from\": {}}",
                                "{\"unknown_argument\": true}",
                                "{\"path\": \"a\\u0000b\"}",
                                "{\"path\":\"a.txt\"} trailing"};
  for (const char* tool : kTools) {
    for (const auto& in : inputs) {
      json r = Run(tool, in);
      EXPECT_EQ(Code(r), "invalid_arguments") << tool << " <- " << in.substr(0, 40);
    }
  }
}

// The tools read their arguments with RapidJSON, the host with nlohmann/json: both must
// take the same text to the same value, and refuse the same text, with a message that says
// where.
TEST_F(BuiltinTools, ArgumentTextReadAsTheHostReadsIt) {
  Put("a.txt", "alpha");
  auto message = [&](const std::string& in) {
    json r = Run("read_file", in);
    EXPECT_EQ(Code(r), "invalid_arguments") << in.substr(0, 60);
    return r["error"]["message"].get<std::string>();
  };
  EXPECT_EQ(message("{\"path\": \"a.txt\",}"),
            "the arguments are not valid JSON: Missing a name for object member. (at byte 17)");
  EXPECT_EQ(message(std::string("{\"path\":\"a.txt\"}\0junk", 22)),
            "the arguments are not valid JSON: unexpected text after the value (at byte 16)");
  EXPECT_EQ(message(std::string("[1]")), "the arguments must be a JSON object");
  // Everything the host refuses, the tool refuses too.
  const std::string refused[] = {
      "{\"path\":\"a\x01.txt\"}",                    // raw control character in a string
      "{\"path\":\"a\xC0\x80.txt\"}",                // overlong UTF-8
      "{\"path\":\"a\xED\xA0\x80.txt\"}",            // UTF-16 surrogate in UTF-8
      "{\"path\":\"a\\ud800.txt\"}",                 // lone high surrogate escape
      "{\"path\":\"a.txt\", \"max_bytes\": 1e400}",  // number overflow
      "{\"path\":\"a.txt\", \"max_bytes\": NaN}",
      "{\"path\":\"a.txt\" /* comment */}",
      "{'path':'a.txt'}",
  };
  for (const std::string& in : refused) {
    EXPECT_TRUE(json::parse(in, nullptr, false).is_discarded()) << in;
    EXPECT_EQ(Code(Run("read_file", in)), "invalid_arguments") << in;
  }
  // A repeated key keeps its last value, as in nlohmann/json.
  const std::string twice = "{\"path\":\"missing.txt\",\"path\":\"a.txt\"}";
  EXPECT_EQ(json::parse(twice)["path"], "a.txt");
  EXPECT_EQ(Run("read_file", twice)["content"]["content"], "alpha");
  // Escapes, including a NUL, reach the tool as the host decoded them.
  EXPECT_EQ(Run("read_file", std::string("{\"path\":\"\\u0061.t\\u0078t\"}"))["content"]["content"],
            "alpha");
  EXPECT_EQ(Code(Run("read_file", std::string("{\"path\":\"a\\u0000.txt\"}"))),
            "invalid_arguments");
  // Nesting: 32 levels are read (and refused by the schema), 33 are too deep.
  std::string deep32 = "{\"path\":" + std::string(31, '[') + std::string(31, ']') + "}";
  std::string deep33 = "{\"path\":" + std::string(32, '[') + std::string(32, ']') + "}";
  EXPECT_EQ(message(deep32), "argument \"path\" must be a string");
  EXPECT_EQ(message(deep33), "the arguments are nested too deeply (more than 32 levels)");
}

// --- read_file ----------------------------------------------------------------------------

TEST_F(BuiltinTools, ReadFileReturnsLineRanges) {
  Put("a.txt", "one\ntwo\nthree\nfour");
  EXPECT_EQ(Run("read_file", json{{"path", "a.txt"}}),
            json::parse(R"({"ok":true,"content":{"path":"a.txt","content":"one\ntwo\nthree\nfour",
              "start_line":1,"end_line":4,"total_lines":4,"truncated":false,"size":18}})"));
  EXPECT_EQ(
      Run("read_file", json{{"path", "/workspace/a.txt"}, {"offset_line", 2}, {"limit_lines", 2}}),
      json::parse(R"({"ok":true,"content":{"path":"a.txt","content":"two\nthree\n",
              "start_line":2,"end_line":3,"total_lines":4,"truncated":true,"size":18}})"));
  json cut = Run("read_file", json{{"path", "a.txt"}, {"max_bytes", 6}});
  EXPECT_EQ(cut["content"]["content"], "one\ntw");
  EXPECT_EQ(cut["content"]["truncated"], true);
  json past = Run("read_file", json{{"path", "a.txt"}, {"offset_line", 9}});
  EXPECT_EQ(past["content"]["content"], "");
  EXPECT_EQ(past["content"]["end_line"], 0);
  Put("empty", "");
  EXPECT_EQ(Run("read_file", json{{"path", "empty"}})["content"]["total_lines"], 0);
  // A cut never splits a UTF-8 sequence.
  Put("u.txt", "h\xC3\xA9llo");
  EXPECT_EQ(Run("read_file", json{{"path", "u.txt"}, {"max_bytes", 2}})["content"]["content"], "h");
  fs::create_directories(ws_ + "/d");
  EXPECT_EQ(Code(Run("read_file", json{{"path", "d"}})), "not_a_file");
  EXPECT_EQ(Code(Run("read_file", json{{"path", "nope"}})), "not_found");
  EXPECT_EQ(Code(Run("read_file", json{{"path", "a.txt"}, {"offset_line", 0}})),
            "invalid_arguments");
}

TEST_F(BuiltinTools, ReadFileRefusesBinaryAndStreamsHugeFiles) {
  Put("img.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  json bin = Run("read_file", json{{"path", "img.png"}});
  EXPECT_EQ(Code(bin), "binary_file");
  EXPECT_NE(bin["error"]["message"].get<std::string>().find("16 bytes"), std::string::npos);
  Put("latin1.txt", "caf\xE9 au lait");
  EXPECT_EQ(Code(Run("read_file", json{{"path", "latin1.txt"}})), "binary_file");

  // 50 MB sparse: all NUL bytes, never read whole.
  int fd = open((ws_ + "/sparse.bin").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_EQ(ftruncate(fd, 50 << 20), 0);
  close(fd);
  EXPECT_EQ(Code(Run("read_file", json{{"path", "sparse.bin"}})), "binary_file");

  // 50 MB of real text: the first lines, the exact line count, and little memory.
  {
    std::ofstream f(ws_ + "/big.log");
    std::string line(99, 'x');
    for (int i = 0; i < 500000; ++i) f << line << "\n";
  }
  json big = Run("read_file", json{{"path", "big.log"}, {"limit_lines", 3}});
  EXPECT_EQ(big["content"]["content"], std::string(99, 'x') + "\n" + std::string(99, 'x') + "\n" +
                                           std::string(99, 'x') + "\n");
  EXPECT_EQ(big["content"]["total_lines"], 500000);
  EXPECT_EQ(big["content"]["truncated"], true);
  EXPECT_LT(last_.peak_memory_bytes, 8u << 20);
  // One 50 MB line: the content stops at max_bytes.
  {
    std::ofstream f(ws_ + "/oneline.txt");
    f << std::string(50 << 20, 'y');
  }
  json one = Run("read_file", json{{"path", "oneline.txt"}});
  EXPECT_EQ(one["content"]["content"].get<std::string>().size(), 256u << 10);
  EXPECT_EQ(one["content"]["truncated"], true);
  EXPECT_EQ(one["content"]["total_lines"], 1);
  EXPECT_LT(last_.peak_memory_bytes, 8u << 20);
}

// --- confinement --------------------------------------------------------------------------

TEST_F(BuiltinTools, PathsOutsideTheWorkspaceAndHiddenFiles) {
  Put("ok.txt", "fine\n");
  Put(".env", "SECRET=hunter2\n");
  Put("keys/server.pem", "SECRET KEY\n");
  fs::create_directories(root_ + "/outside");
  std::ofstream(root_ + "/outside/secret.txt") << "SECRET outside\n";
  fs::create_symlink(root_ + "/outside/secret.txt", ws_ + "/link_out");
  fs::create_symlink("../outside", ws_ + "/dir_out");

  for (const char* p : {"../outside/secret.txt", "/etc/passwd", "/", "link_out",
                        "dir_out/secret.txt", "/workspace/../outside/secret.txt"}) {
    EXPECT_EQ(Code(Run("read_file", json{{"path", p}})), "outside_workspace") << p;
  }
  EXPECT_EQ(Code(Run("read_file", json{{"path", ".env"}})), "not_found");
  EXPECT_EQ(Code(Run("read_file", json{{"path", "keys/server.pem"}})), "not_found");
  EXPECT_EQ(Code(Run("list_dir", json{{"path", "dir_out"}})), "outside_workspace");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "../evil"}, {"content", "x"}})),
            "outside_workspace");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "dir_out/evil"}, {"content", "x"}})),
            "outside_workspace");
  EXPECT_EQ(Code(Run("delete", json{{"path", "/etc/passwd"}})), "outside_workspace");
  EXPECT_FALSE(fs::exists(root_ + "/evil"));
  EXPECT_FALSE(fs::exists(root_ + "/outside/evil"));

  // Hidden files appear nowhere.
  json ls = Run("list_dir", json{{"recursive", true}, {"include_hidden_dotfiles", true}});
  std::string listing = ls.dump();
  EXPECT_EQ(listing.find(".env"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("server.pem"), std::string::npos) << listing;
  json g = Run("grep", json{{"pattern", "SECRET"}});
  EXPECT_EQ(g["content"]["count"], 0) << g.dump();
  json gl = Run("glob", json{{"pattern", "**/*"}});
  EXPECT_EQ(gl.dump().find(".pem"), std::string::npos);
  EXPECT_EQ(Code(Run("glob", json{{"pattern", ".env"}})), "(ok)");
  EXPECT_EQ(Run("glob", json{{"pattern", ".env"}})["content"]["matches"], json::array());
  // A hidden path cannot be created either.
  EXPECT_EQ(Code(Run("write_file", json{{"path", ".env"}, {"content", "x"}})), "permission_denied");
  EXPECT_EQ(Get(".env"), "SECRET=hunter2\n");
}

TEST_F(BuiltinTools, ReadOnlyMountRefusesEveryWriteTool) {
  Put("a.txt", "alpha\n");
  fs::create_directories(ws_ + "/d");
  json ok = Run("read_file", json{{"path", "a.txt"}}, true);
  EXPECT_EQ(ok["content"]["content"], "alpha\n");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "a.txt"}, {"content", "x"}}, true)),
            "permission_denied");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "new.txt"}, {"content", "x"}}, true)),
            "permission_denied");
  EXPECT_EQ(Code(Run("edit_file",
                     json{{"path", "a.txt"}, {"old_text", "alpha"}, {"new_text", "beta"}}, true)),
            "permission_denied");
  EXPECT_EQ(Code(Run("move", json{{"from", "a.txt"}, {"to", "b.txt"}}, true)), "permission_denied");
  EXPECT_EQ(Code(Run("delete", json{{"path", "a.txt"}}, true)), "permission_denied");
  EXPECT_EQ(Code(Run("delete", json{{"path", "d"}}, true)), "permission_denied");
  EXPECT_EQ(Code(Run("make_dir", json{{"path", "e"}}, true)), "permission_denied");
  EXPECT_EQ(Get("a.txt"), "alpha\n");
  EXPECT_EQ(test::CountDir(ws_), 2);
}

// --- write_file ---------------------------------------------------------------------------

TEST_F(BuiltinTools, WriteFile) {
  EXPECT_EQ(
      Run("write_file", json{{"path", "n.txt"}, {"content", "héllo\n"}}),
      json::parse(R"({"ok":true,"content":{"path":"n.txt","bytes_written":7,"created":true}})"));
  EXPECT_EQ(Get("n.txt"), "héllo\n");
  EXPECT_EQ(
      Run("write_file",
          json{{"path", "n.txt"}, {"content", "more\n"}, {"append", true}})["content"]["created"],
      false);
  EXPECT_EQ(Get("n.txt"), "héllo\nmore\n");
  EXPECT_EQ(
      Code(Run("write_file", json{{"path", "n.txt"}, {"content", "x"}, {"overwrite", false}})),
      "exists");
  Run("write_file", json{{"path", "n.txt"}, {"content", "replaced"}});
  EXPECT_EQ(Get("n.txt"), "replaced");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "a/b/c.txt"}, {"content", "x"}})), "not_found");
  Run("write_file", json{{"path", "a/b/c.txt"}, {"content", "deep"}, {"create_dirs", true}});
  EXPECT_EQ(Get("a/b/c.txt"), "deep");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "a"}, {"content", "x"}})), "not_a_file");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "."}, {"content", "x"}})), "not_a_file");
  EXPECT_EQ(Code(Run("write_file", json{{"path", "n.txt/x"}, {"content", "x"}})),
            "not_a_directory");
  // No temporary files left behind.
  EXPECT_EQ(test::CountDir(ws_), 2);
  EXPECT_EQ(Code(Run("write_file", json{{"path", "x"}})), "invalid_arguments");
}

TEST_F(BuiltinTools, WriteQuotaNeverLeavesAHalfFile) {
  Put("keep.txt", "original\n");
  Limits small;
  small.max_write_bytes = 1000;
  json r = Run("write_file", json{{"path", "keep.txt"}, {"content", std::string(5000, 'z')}}, false,
               small);
  EXPECT_EQ(Code(r), "limit") << r.dump();
  EXPECT_EQ(Get("keep.txt"), "original\n");
  EXPECT_EQ(test::CountDir(ws_), 1);
  int n = 0;
  for (auto& e : fs::directory_iterator(ws_)) n += e.path().filename() != "keep.txt";
  EXPECT_EQ(n, 0);  // dot-named temporaries included
}

// --- edit_file ----------------------------------------------------------------------------

TEST_F(BuiltinTools, EditFile) {
  Put("c.py", "def f():\n    return 1\n\ndef g():\n    return 1\n");
  json one = Run("edit_file", json{{"path", "c.py"},
                                   {"old_text", "def g():\n    return 1"},
                                   {"new_text", "def g():\n    return 2"}});
  EXPECT_EQ(one, json::parse(R"({"ok":true,"content":{"path":"c.py","replacements":1,
                                  "first_line":4,"size":45}})"));
  EXPECT_EQ(Get("c.py"), "def f():\n    return 1\n\ndef g():\n    return 2\n");
  json none = Run("edit_file", json{{"path", "c.py"}, {"old_text", "return 3"}, {"new_text", ""}});
  EXPECT_EQ(Code(none), "no_match");
  Put("m.txt", "x\nx\ny\nx\n");
  json amb = Run("edit_file", json{{"path", "m.txt"}, {"old_text", "x"}, {"new_text", "z"}});
  EXPECT_EQ(amb, json::parse(R"({"ok":false,"error":{"code":"ambiguous_match","message":
      "old_text occurs 3 times in m.txt (lines 1, 2, 4); include more surrounding text to make it unique, or set replace_all to true"}})"));
  json all =
      Run("edit_file",
          json{{"path", "m.txt"}, {"old_text", "x"}, {"new_text", "zz"}, {"replace_all", true}});
  EXPECT_EQ(all["content"]["replacements"], 3);
  EXPECT_EQ(Get("m.txt"), "zz\nzz\ny\nzz\n");
  EXPECT_EQ(Code(Run("edit_file", json{{"path", "m.txt"}, {"old_text", ""}, {"new_text", "q"}})),
            "invalid_arguments");
  Put("b.bin", std::string("ab\0cd", 5));
  EXPECT_EQ(Code(Run("edit_file", json{{"path", "b.bin"}, {"old_text", "ab"}, {"new_text", "x"}})),
            "binary_file");
  EXPECT_EQ(Code(Run("edit_file", json{{"path", "gone"}, {"old_text", "a"}, {"new_text", "b"}})),
            "not_found");
  EXPECT_EQ(test::CountDir(ws_), 3);
}

TEST_F(BuiltinTools, EditHittingTheWriteQuotaLeavesTheFileWhole) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "line " + std::to_string(i) + " MARK\n";
  Put("big.txt", text);
  Limits small;
  small.max_write_bytes = 4096;  // the rewrite needs ~30 KB
  json r = Run(
      "edit_file",
      json{{"path", "big.txt"}, {"old_text", "MARK"}, {"new_text", "DONE"}, {"replace_all", true}},
      false, small);
  EXPECT_EQ(Code(r), "limit") << r.dump();
  EXPECT_EQ(Get("big.txt"), text);
  EXPECT_EQ(std::distance(fs::directory_iterator(ws_), fs::directory_iterator()), 1);
}

// --- list_dir -----------------------------------------------------------------------------

TEST_F(BuiltinTools, ListDir) {
  Put("b.txt", "12345");
  Put("a/z.txt", "1");
  Put("a/y/x.txt", "");
  Put(".hidden", "h");
  fs::create_symlink("..", ws_ + "/a/up");  // a loop if followed
  EXPECT_EQ(Run("list_dir", json::object()),
            json::parse(R"({"ok":true,"content":{"path":".","count":2,"truncated":false,"entries":[
              {"path":"a","type":"dir"},{"path":"b.txt","type":"file","size":5}]}})"));
  EXPECT_EQ(Run("list_dir", json{{"path", "a"}, {"recursive", true}}),
            json::parse(R"({"ok":true,"content":{"path":"a","count":4,"truncated":false,"entries":[
              {"path":"up","type":"symlink","target":".."},{"path":"y","type":"dir"},
              {"path":"y/x.txt","type":"file","size":0},{"path":"z.txt","type":"file","size":1}]}})"));
  json dots = Run("list_dir", json{{"include_hidden_dotfiles", true}});
  EXPECT_EQ(dots["content"]["entries"][0]["path"], ".hidden");
  json capped = Run("list_dir", json{{"recursive", true}, {"max_entries", 2}});
  EXPECT_EQ(capped["content"]["count"], 2);
  EXPECT_EQ(capped["content"]["truncated"], true);
  EXPECT_EQ(Code(Run("list_dir", json{{"path", "b.txt"}})), "not_a_directory");
  EXPECT_EQ(Code(Run("list_dir", json{{"path", "nope"}})), "not_found");
  // Many entries: capped, in order.
  for (int i = 0; i < 3000; ++i) Put("many/f" + std::to_string(10000 + i), "");
  json many = Run("list_dir", json{{"path", "many"}, {"max_entries", 1000}});
  EXPECT_EQ(many["content"]["count"], 1000);
  EXPECT_EQ(many["content"]["entries"][999]["path"], "f10999");
}

// --- glob ---------------------------------------------------------------------------------

TEST_F(BuiltinTools, Glob) {
  for (const char* f : {"src/a.cc", "src/b.cc", "src/b.h", "src/sub/c.cc", "src/sub/deep/d.cc",
                        "README.md", ".git/x.cc", "src/.gen/e.cc", "f1.txt", "f2.txt", "fx.txt"}) {
    Put(f, "x");
  }
  auto matches = [this](json args) { return Run("glob", args)["content"]["matches"]; };
  EXPECT_EQ(matches({{"pattern", "src/*.cc"}}), json({"src/a.cc", "src/b.cc"}));
  EXPECT_EQ(matches({{"pattern", "**/*.cc"}}),
            json({"src/a.cc", "src/b.cc", "src/sub/c.cc", "src/sub/deep/d.cc"}));
  EXPECT_EQ(matches({{"pattern", "src/**/d.cc"}}), json({"src/sub/deep/d.cc"}));
  EXPECT_EQ(matches({{"pattern", "f?.txt"}}), json({"f1.txt", "f2.txt", "fx.txt"}));
  EXPECT_EQ(matches({{"pattern", "f[0-9].txt"}}), json({"f1.txt", "f2.txt"}));
  EXPECT_EQ(matches({{"pattern", "*.cc"}, {"path", "src/sub"}}), json({"c.cc"}));
  EXPECT_EQ(matches({{"pattern", ".git/*"}}), json({".git/x.cc"}));
  EXPECT_EQ(matches({{"pattern", "/workspace/src/*.h"}}), json({"/workspace/src/b.h"}));
  EXPECT_EQ(matches({{"pattern", "nothing*"}}), json::array());
  json capped = Run("glob", json{{"pattern", "**"}, {"max_results", 3}});
  EXPECT_EQ(capped["content"]["matches"].size(), 3u);
  EXPECT_EQ(capped["content"]["truncated"], true);
  EXPECT_EQ(Code(Run("glob", json{{"pattern", "../*"}})), "invalid_pattern");
  EXPECT_EQ(Code(Run("glob", json{{"pattern", "*"}, {"path", "README.md"}})), "not_a_directory");
}

// --- grep ---------------------------------------------------------------------------------

TEST_F(BuiltinTools, Grep) {
  Put("a.py", "import os\ndef main():\n    os.exit(1)\n# TODO fix\n");
  Put("lib/b.py", "x = 1\nTODO: more\n");
  Put("lib/c.txt", "todo lowercase\n");
  Put("blob.bin", std::string("TODO\0\0\0", 7));
  EXPECT_EQ(Run("grep", json{{"pattern", "TODO"}}),
            json::parse(R"({"ok":true,"content":{"count":2,"truncated":false,"files_searched":4,
              "binary_files_skipped":1,"matches":[{"file":"a.py","line":4,"text":"# TODO fix"},
              {"file":"lib/b.py","line":2,"text":"TODO: more"}]}})"));
  json ci = Run("grep", json{{"pattern", "todo"}, {"ignore_case", true}, {"glob", "*.txt"}});
  EXPECT_EQ(ci["content"]["matches"],
            json::parse(R"([{"file":"lib/c.txt","line":1,"text":"todo lowercase"}])"));
  json ctx =
      Run("grep", json{{"pattern", "^def [a-z]+\\(\\):$"}, {"context_lines", 1}, {"path", "a.py"}});
  EXPECT_EQ(ctx["content"]["matches"],
            json::parse(R"J([{"file":"a.py","line":2,"text":"def main():",
              "before":["import os"],"after":["    os.exit(1)"]}])J"));
  json fixed = Run("grep", json{{"pattern", "os.exit(1)"}, {"regex", false}});
  EXPECT_EQ(fixed["content"]["count"], 1);
  json bad = Run("grep", json{{"pattern", "a(b"}});
  EXPECT_EQ(Code(bad), "invalid_pattern");
  EXPECT_EQ(Code(Run("grep", json{{"pattern", "[z-a]"}})), "invalid_pattern");
  json g2 = Run("grep", json{{"pattern", "x"}, {"glob", "lib/**/*.py"}});
  EXPECT_EQ(g2["content"]["matches"],
            json::parse(R"([{"file":"lib/b.py","line":1,"text":"x = 1"}])"));
  EXPECT_EQ(Code(Run("grep", json{{"pattern", "x"}, {"path", "missing"}})), "not_found");
}

TEST_F(BuiltinTools, GrepCapsAndCatastrophicPatterns) {
  std::string many;
  for (int i = 0; i < 500; ++i) many += "match " + std::to_string(i) + "\n";
  Put("many.txt", many);
  json capped = Run("grep", json{{"pattern", "match"}, {"max_matches", 10}});
  EXPECT_EQ(capped["content"]["count"], 10);
  EXPECT_EQ(capped["content"]["truncated"], true);
  Put("long.txt", std::string(100000, 'q') + "NEEDLE\n");
  json longl = Run("grep", json{{"pattern", "NEEDLE"}, {"max_line_bytes", 20}});
  EXPECT_EQ(longl["content"]["matches"][0]["text"], std::string(20, 'q'));
  EXPECT_EQ(longl["content"]["matches"][0]["line_truncated"], true);

  // Exponential for a backtracking engine; linear for TRE.
  Put("evil.txt", std::string(50000, 'a') + "b\n" + std::string(50000, 'a') + "\n");
  for (const char* p : {"(a+)+$", "(a|aa)+$", "(a*)*b$", "^(a|a?)+$"}) {
    auto t0 = std::chrono::steady_clock::now();
    json r = Run("grep", json{{"pattern", p}, {"path", "evil.txt"}, {"max_line_bytes", 16}});
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(Code(r), "(ok)") << p;
    EXPECT_LT(s, 5.0) << p;
  }
  json r = Run("grep", json{{"pattern", "(a+)+$"}, {"path", "evil.txt"}, {"max_line_bytes", 16}});
  EXPECT_EQ(r["content"]["count"], 1);  // the line of only a's
}

// Without context lines grep reads files whole behind a literal prefilter; with context it
// streams lines. Both must find the same lines.
TEST_F(BuiltinTools, GrepPrefilterFindsWhatTheLineScanFinds) {
  Put("a.c",
      "int main(void) {\r\n  FIXME(x): fix\r\n  fixme(y)\n  abcabc ab+c\n  colour color\n"
      "  x{2} xx \\.dot\n  Kelvin \xE2\x84\xAA SKI ski\n  a|b\n  tail without newline");
  Put("b.txt", std::string(3000, 'z') + " FIXME(long)\n");
  for (const char* p :
       {"FIXME\\([a-z]+\\)", "fix(me)?", "colou?r", "(ab)+c", "ab\\+c", "x{2}", "\\\\\\.dot",
        "a\\|b", "a|zzz", "newline$", "^  [a-z]+\\(", "ski", "[[:upper:]]{3}", "c\\r$"}) {
    for (bool icase : {false, true}) {
      json fast = Run("grep", json{{"pattern", p}, {"ignore_case", icase}});
      json slow = Run("grep", json{{"pattern", p}, {"ignore_case", icase}, {"context_lines", 1}});
      ASSERT_EQ(Code(fast), Code(slow)) << p;
      if (Code(fast) != "(ok)") continue;
      for (auto& m : slow["content"]["matches"]) {
        m.erase("before");
        m.erase("after");
      }
      EXPECT_EQ(fast["content"]["matches"], slow["content"]["matches"]) << p << " " << icase;
    }
  }
  json fixed = Run("grep", json{{"pattern", "fixme("}, {"regex", false}, {"ignore_case", true}});
  EXPECT_EQ(fixed["content"]["count"], 3);
}

// --- move, delete, make_dir ---------------------------------------------------------------

TEST_F(BuiltinTools, MoveDeleteMakeDir) {
  Put("a.txt", "A");
  Put("b.txt", "B");
  EXPECT_EQ(
      Run("move", json{{"from", "a.txt"}, {"to", "c.txt"}}),
      json::parse(
          R"({"ok":true,"content":{"from":"a.txt","to":"c.txt","type":"file","replaced":false}})"));
  EXPECT_EQ(Get("c.txt"), "A");
  EXPECT_EQ(Code(Run("move", json{{"from", "c.txt"}, {"to", "b.txt"}})), "exists");
  EXPECT_EQ(
      Run("move",
          json{{"from", "c.txt"}, {"to", "b.txt"}, {"overwrite", true}})["content"]["replaced"],
      true);
  EXPECT_EQ(Get("b.txt"), "A");
  EXPECT_EQ(Code(Run("move", json{{"from", "nope"}, {"to", "x"}})), "not_found");
  EXPECT_EQ(Code(Run("move", json{{"from", "b.txt"}, {"to", "../b.txt"}})), "outside_workspace");
  EXPECT_EQ(Code(Run("move", json{{"from", "b.txt"}, {"to", "q/r/b.txt"}})), "not_found");
  Run("move", json{{"from", "b.txt"}, {"to", "q/r/b.txt"}, {"create_dirs", true}});
  EXPECT_EQ(Get("q/r/b.txt"), "A");
  EXPECT_EQ(Code(Run("move", json{{"from", ".."}, {"to", "x"}})), "outside_workspace");
  EXPECT_EQ(Code(Run("move", json{{"from", "."}, {"to", "x"}})), "permission_denied");

  EXPECT_EQ(Run("make_dir", json{{"path", "m"}}),
            json::parse(R"({"ok":true,"content":{"path":"m","created":true}})"));
  EXPECT_EQ(Code(Run("make_dir", json{{"path", "m"}})), "exists");
  EXPECT_EQ(Run("make_dir", json{{"path", "m"}, {"parents", true}})["content"]["created"], false);
  EXPECT_EQ(Code(Run("make_dir", json{{"path", "n/o/p"}})), "not_found");
  Run("make_dir", json{{"path", "n/o/p"}, {"parents", true}});
  EXPECT_TRUE(fs::is_directory(ws_ + "/n/o/p"));

  EXPECT_EQ(Code(Run("delete", json{{"path", "q"}})), "exists");
  EXPECT_EQ(Run("delete", json{{"path", "q"}, {"recursive", true}}),
            json::parse(R"({"ok":true,"content":{"path":"q","type":"dir","deleted":3}})"));
  EXPECT_FALSE(fs::exists(ws_ + "/q"));
  EXPECT_EQ(Run("delete", json{{"path", "m"}})["content"]["deleted"], 1);
  EXPECT_EQ(Code(Run("delete", json{{"path", "m"}})), "not_found");
  for (const char* root : {".", "/workspace", "/workspace/", "n/..", ""}) {
    json r = Run("delete", json{{"path", root}, {"recursive", true}});
    EXPECT_TRUE(Code(r) == "permission_denied" || Code(r) == "invalid_arguments") << root;
  }
  EXPECT_TRUE(fs::exists(ws_ + "/n/o/p"));
}

TEST_F(BuiltinTools, RecursiveDeleteNeverFollowsSymlinksOut) {
  fs::create_directories(root_ + "/outside");
  std::ofstream(root_ + "/outside/precious") << "keep";
  Put("d/file", "x");
  fs::create_symlink(root_ + "/outside", ws_ + "/d/out");
  fs::create_symlink("..", ws_ + "/d/loop");
  json r = Run("delete", json{{"path", "d"}, {"recursive", true}});
  EXPECT_EQ(r["content"]["deleted"], 4) << r.dump();
  EXPECT_FALSE(fs::exists(ws_ + "/d"));
  EXPECT_EQ(test::Slurp(root_ + "/outside/precious"), "keep");
}

// --- apply_patch --------------------------------------------------------------------------

// Entries of the directory tree below `dir` as "path=bytes", so a test can tell that
// nothing changed, temporaries and backups included.
std::string Snapshot(const std::string& dir) {
  std::string out;
  std::vector<std::string> lines;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    std::string rel = fs::relative(e.path(), dir).string();
    lines.push_back(e.is_directory() ? rel + "/" : rel + "=" + test::Slurp(e.path().string()));
  }
  std::sort(lines.begin(), lines.end());
  for (auto& l : lines) out += l + "\n";
  return out;
}

TEST_F(BuiltinTools, ApplyPatchModifiesCreatesAndDeletes) {
  Put("src/a.c", "int a;\nint b;\nint c;\n");
  Put("old.txt", "bye\nnow\n");
  const std::string patch =
      "diff --git a/src/a.c b/src/a.c\n"
      "index 1111111..2222222 100644\n"
      "--- a/src/a.c\n"
      "+++ b/src/a.c\n"
      "@@ -1,3 +1,3 @@\n"
      " int a;\n"
      "-int b;\n"
      "+long b;\n"
      " int c;\n"
      "diff --git a/new/dir/n.txt b/new/dir/n.txt\n"
      "new file mode 100644\n"
      "--- /dev/null\n"
      "+++ b/new/dir/n.txt\n"
      "@@ -0,0 +1,2 @@\n"
      "+hello\n"
      "+world\n"
      "--- a/old.txt\n"
      "+++ /dev/null\n"
      "@@ -1,2 +0,0 @@\n"
      "-bye\n"
      "-now\n";
  json dry = Run("apply_patch", json{{"patch", patch}, {"dry_run", true}});
  EXPECT_EQ(dry["content"]["dry_run"], true) << dry.dump();
  EXPECT_EQ(Get("src/a.c"), "int a;\nint b;\nint c;\n");
  EXPECT_FALSE(fs::exists(ws_ + "/new"));
  json r = Run("apply_patch", json{{"patch", patch}});
  EXPECT_EQ(r, json::parse(R"({"ok":true,"content":{"files":[
      {"path":"src/a.c","status":"modified","hunks":1,"added":1,"removed":1,"offsets":[0]},
      {"path":"new/dir/n.txt","status":"created","hunks":1,"added":2,"removed":0,"offsets":[0]},
      {"path":"old.txt","status":"deleted","hunks":1,"added":0,"removed":2,"offsets":[0]}]}})"));
  EXPECT_EQ(Get("src/a.c"), "int a;\nlong b;\nint c;\n");
  EXPECT_EQ(Get("new/dir/n.txt"), "hello\nworld\n");
  EXPECT_FALSE(fs::exists(ws_ + "/old.txt"));
  EXPECT_EQ(Snapshot(ws_),
            "new/\nnew/dir/\nnew/dir/n.txt=hello\nworld\n\nsrc/\nsrc/a.c=int "
            "a;\nlong b;\nint c;\n\n");
  // Applying it again: the file to create exists now.
  EXPECT_EQ(Code(Run("apply_patch", json{{"patch", patch}})), "patch_failed");
}

TEST_F(BuiltinTools, ApplyPatchOffsetsAndMismatches) {
  std::string text;
  for (int i = 1; i <= 40; ++i) text += "line " + std::to_string(i) + "\n";
  Put("f.txt", "extra 1\nextra 2\nextra 3\n" + text);  // 3 lines above what the patch saw
  Put("g.txt", "untouched\n");
  const std::string hunks =
      "@@ -4,3 +4,3 @@\n line 4\n-line 5\n+LINE 5\n line 6\n"
      "@@ -30,3 +30,4 @@\n line 30\n line 31\n+inserted\n line 32\n";
  json r = Run("apply_patch", json{{"patch", "--- f.txt\n+++ f.txt\n" + hunks}});
  EXPECT_EQ(r["content"]["files"][0]["offsets"], json({3, 3})) << r.dump();
  std::string want = text;
  want.replace(want.find("line 5\n"), 7, "LINE 5\n");
  want.insert(want.find("line 32\n"), "inserted\n");
  EXPECT_EQ(Get("f.txt"), "extra 1\nextra 2\nextra 3\n" + want);

  // A mismatch in the second file leaves the first one untouched too.
  const std::string before = Snapshot(ws_);
  json bad =
      Run("apply_patch", json{{"patch",
                               "--- a/g.txt\n+++ b/g.txt\n@@ -1 +1 @@\n-untouched\n+changed\n"
                               "--- a/f.txt\n+++ b/f.txt\n@@ -10,2 +10,2 @@\n line 7\n"
                               "-line 99\n+LINE 99\n"}});
  EXPECT_EQ(Code(bad), "patch_failed");
  EXPECT_EQ(bad["error"]["message"],
            "f.txt: hunk 1 (line 10) does not match: expected 'line 99' found 'line 8' at line 11; "
            "no match within 200 lines either")
      << bad.dump();
  EXPECT_EQ(Snapshot(ws_), before);
  // Context never fuzzes by default; fuzz 1 lets an edge context line go.
  const std::string fuzzy =
      "--- f.txt\n+++ f.txt\n@@ -1,3 +1,3 @@\n nope\n-extra 2\n+EXTRA 2\n extra 3\n";
  EXPECT_EQ(Code(Run("apply_patch", json{{"patch", fuzzy}})), "patch_failed");
  json fz = Run("apply_patch", json{{"patch", fuzzy}, {"fuzz", 1}});
  EXPECT_EQ(fz["content"]["files"][0]["fuzzed_hunks"], json({1})) << fz.dump();
  EXPECT_EQ(Get("f.txt").substr(0, 24), "extra 1\nEXTRA 2\nextra 3\n");
}

TEST_F(BuiltinTools, ApplyPatchRejectsMalformedPatches) {
  Put("a.txt", "one\ntwo\n");
  const std::string before = Snapshot(ws_);
  auto message = [this](const std::string& patch) {
    json r = Run("apply_patch", json{{"patch", patch}});
    EXPECT_EQ(Code(r), "invalid_arguments") << patch << " -> " << r.dump();
    return r["error"].value("message", "");
  };
  // Truncated hunk.
  EXPECT_EQ(message("--- a.txt\n+++ a.txt\n@@ -1,2 +1,2 @@\n one\n"),
            "patch line 4: the hunk is truncated: 1 old and 1 new lines missing (the header at "
            "line 3 counts 2 old and 2 new lines)");
  // Bad headers.
  EXPECT_NE(message("--- a.txt\n@@ -1 +1 @@\n-one\n+uno\n").find("patch line 1:"),
            std::string::npos);
  EXPECT_NE(message("--- a.txt\n+++ a.txt\n@@ -1 +1 @\n-one\n+uno\n").find("bad hunk header"),
            std::string::npos);
  EXPECT_NE(message("--- a.txt\n+++ a.txt\n@@ -x,1 +1 @@\n-one\n+uno\n").find("patch line 3"),
            std::string::npos);
  EXPECT_NE(message("just some text\n").find("no file headers"), std::string::npos);
  EXPECT_NE(message("--- a.txt\n+++ a.txt\n").find("no hunks"), std::string::npos);
  // Counts that do not match the lines: too many lines, too few.
  EXPECT_NE(message("--- a.txt\n+++ a.txt\n@@ -1,1 +1,1 @@\n-one\n+uno\n two\n")
                .find("patch line 6: more lines than the hunk header says"),
            std::string::npos);
  EXPECT_NE(message("--- a.txt\n+++ a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+dos\n"
                    "--- b.txt\n+++ b.txt\n@@ -1 +1 @@\n-x\n+y\n")
                .find("patch line 7: unexpected '--- b.txt'"),
            std::string::npos);
  EXPECT_EQ(Snapshot(ws_), before);
  // Paths.
  for (const char* p : {"../x.txt", "/etc/passwd", "sub/../../x.txt"}) {
    std::string patch = std::string("--- /dev/null\n+++ ") + p + "\n@@ -0,0 +1 @@\n+x\n";
    EXPECT_EQ(Code(Run("apply_patch", json{{"patch", patch}})), "outside_workspace") << p;
  }
  Put(".env", "SECRET=1\n");
  EXPECT_EQ(Code(Run("apply_patch", json{{"patch",
                                          "--- .env\n+++ .env\n@@ -1 +1 @@\n-SECRET=1\n"
                                          "+SECRET=2\n"}})),
            "not_found");
  EXPECT_EQ(Code(Run("apply_patch",
                     json{{"patch", "--- /dev/null\n+++ b/.env.local\n@@ -0,0 +1 @@\n+K=v\n"}})),
            "permission_denied");
  EXPECT_EQ(Get(".env"), "SECRET=1\n");
  EXPECT_EQ(Snapshot(ws_), ".env=SECRET=1\n\n" + before);
}

TEST_F(BuiltinTools, ApplyPatchLineEndings) {
  // CRLF file, patch with CRLF lines (as diff writes it) and with plain LF lines.
  Put("w.txt", "alpha\r\nbeta\r\ngamma\r\n");
  Run("apply_patch",
      json{{"patch",
            "--- w.txt\n+++ w.txt\n@@ -1,3 +1,3 @@\n alpha\r\n-beta\r\n+BETA\r\n gamma\r\n"}});
  EXPECT_EQ(Get("w.txt"), "alpha\r\nBETA\r\ngamma\r\n");
  Run("apply_patch",
      json{{"patch", "--- w.txt\n+++ w.txt\n@@ -2,2 +2,3 @@\n BETA\n gamma\n+delta\n"}});
  EXPECT_EQ(Get("w.txt"), "alpha\r\nBETA\r\ngamma\r\ndelta\r\n");
  // Adding the missing newline at the end, and taking it away.
  Put("n.txt", "a\nb");
  Run("apply_patch", json{{"patch",
                           "--- n.txt\n+++ n.txt\n@@ -1,2 +1,2 @@\n a\n-b\n"
                           "\\ No newline at end of file\n+b\n"}});
  EXPECT_EQ(Get("n.txt"), "a\nb\n");
  Run("apply_patch",
      json{{"patch",
            "--- n.txt\n+++ n.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n\\ No newline at end of file\n"}});
  EXPECT_EQ(Get("n.txt"), "a\nB");
  // A patch that expects a newline the file lacks does not apply.
  json r = Run("apply_patch", json{{"patch", "--- n.txt\n+++ n.txt\n@@ -2 +2 @@\n-B\n+C\n"}});
  EXPECT_EQ(Code(r), "patch_failed") << r.dump();
  EXPECT_EQ(Get("n.txt"), "a\nB");
}

TEST_F(BuiltinTools, ApplyPatchRollsBackOnTheWriteQuota) {
  Put("small.txt", "s\n");
  std::string big;
  for (int i = 0; i < 2000; ++i) big += "row " + std::to_string(i) + "\n";
  Put("big.txt", big);
  const std::string before = Snapshot(ws_);
  std::string patch =
      "--- a/small.txt\n+++ b/small.txt\n@@ -1 +1 @@\n-s\n+S\n"
      "--- /dev/null\n+++ b/made/dir/new.txt\n@@ -0,0 +1 @@\n+new\n"
      "--- a/big.txt\n+++ b/big.txt\n@@ -1 +1 @@\n-row 0\n+ROW 0\n";
  Limits small;
  small.max_write_bytes = 4096;  // the two small files fit, big.txt (~17 KB) does not
  json r = Run("apply_patch", json{{"patch", patch}}, false, small);
  EXPECT_EQ(Code(r), "limit") << r.dump();
  EXPECT_EQ(Snapshot(ws_), before);  // no temporaries, no new directories
  Limits few;
  few.max_files_created = 2;
  r = Run("apply_patch", json{{"patch", patch}}, false, few);
  EXPECT_EQ(Code(r), "limit") << r.dump();
  EXPECT_EQ(Snapshot(ws_), before);
  r = Run("apply_patch", json{{"patch", patch}});
  EXPECT_EQ(Code(r), "(ok)") << r.dump();
  EXPECT_EQ(Get("small.txt"), "S\n");
  EXPECT_EQ(Get("made/dir/new.txt"), "new\n");
  EXPECT_EQ(Get("big.txt").substr(0, 6), "ROW 0\n");
}

TEST_F(BuiltinTools, ApplyPatchFromRealDiff) {
  // Fixtures in two trees; GNU diff writes the patch; the tool must turn one into the other.
  const std::string a = root_ + "/a", b = root_ + "/b";
  auto put = [](const std::string& path, const std::string& bytes) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
  };
  std::string code;
  for (int i = 0; i < 120; ++i)
    code += "int f" + std::to_string(i) + "(void) { return " + std::to_string(i) + "; }\n";
  std::string changed = code;
  changed.replace(changed.find("return 7;"), 9, "return 70;");
  changed.replace(changed.find("int f60"), 0, "// sixty\n");
  changed.erase(changed.find("int f100"), changed.find("int f102") - changed.find("int f100"));
  put(a + "/src/code.c", code);
  put(b + "/src/code.c", changed);
  put(a + "/crlf.txt", "one\r\ntwo\r\nthree\r\n");
  put(b + "/crlf.txt", "one\r\n2\r\nthree\r\nfour");
  put(a + "/gone.txt", "to be deleted\n");
  put(b + "/fresh/new.md", "# new\n\ntext\n");
  put(a + "/same.txt", "same\n");
  put(b + "/same.txt", "same\n");
  for (const auto& e : fs::recursive_directory_iterator(a)) {
    if (e.is_regular_file())
      put(ws_ + "/" + fs::relative(e.path(), a).string(), test::Slurp(e.path().string()));
  }
  std::string cmd = "cd '" + root_ + "' && LC_ALL=C diff -ruN a b";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string patch;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) patch.append(buf, n);
  ASSERT_EQ(WEXITSTATUS(pclose(p)), 1) << patch;  // 1: differences found
  json r = Run("apply_patch", json{{"patch", patch}});
  ASSERT_EQ(Code(r), "(ok)") << r.dump() << "\n" << patch;
  std::map<std::string, std::string> status;
  for (const auto& f : r["content"]["files"]) status[f["path"]] = f["status"];
  EXPECT_EQ(status, (std::map<std::string, std::string>{{"src/code.c", "modified"},
                                                        {"crlf.txt", "modified"},
                                                        {"gone.txt", "deleted"},
                                                        {"fresh/new.md", "created"}}));
  for (const auto& e : fs::recursive_directory_iterator(b)) {
    if (!e.is_regular_file()) continue;
    std::string rel = fs::relative(e.path(), b).string();
    EXPECT_EQ(Get(rel), test::Slurp(e.path().string())) << rel;
  }
  EXPECT_FALSE(fs::exists(ws_ + "/gone.txt"));
  EXPECT_EQ(Snapshot(ws_), Snapshot(b));
}

}  // namespace
}  // namespace moat
