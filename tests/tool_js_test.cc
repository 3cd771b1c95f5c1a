// The built-in `js` tool (guests/tools/js.cc, QuickJS) through the registry and the
// sandbox: scripts and their output, errors, and hostile scripts (loops, memory, recursion,
// floods) that must end as error results, never as a crash.
#include <string>

#include <gtest/gtest.h>

#include "orchestration/tools/registry.h"
#include "test_util.h"

namespace moat {
namespace {

using nlohmann::json;

class ToolJs : public ::testing::Test {
 protected:
  static tools::Registry& Reg() {
    static std::unique_ptr<tools::Registry> reg = [] {
      tools::RegistryOptions o;
      o.builtin_dirs = {MOAT_TOOLS_DIR};
      o.preload_builtins = false;
      auto r = tools::Registry::Create(&test::SharedEngine(), std::move(o));
      if (!r) {
        fprintf(stderr, "registry: %s\n", r.error().message.c_str());
        abort();
      }
      return std::move(*r);
    }();
    return *reg;
  }

  // The call's result object; `last_` keeps what the sandbox saw.
  json Call(const json& args, tools::CallOptions options = {}) {
    last_ = Reg().Call("js", args, options);
    return last_.result;
  }
  // Runs `code`, expecting success; returns the content.
  json Ok(const std::string& code, tools::CallOptions options = {}) {
    json r = Call({{"code", code}}, options);
    EXPECT_EQ(r.value("ok", false), true) << code << " -> " << r.dump();
    return r.value("content", json());
  }
  // Runs `code`, expecting an error; returns its code, the message in *message.
  std::string Err(const json& args, std::string* message = nullptr,
                  tools::CallOptions options = {}) {
    json r = Call(args, options);
    EXPECT_EQ(r.value("ok", true), false) << args.dump() << " -> " << r.dump();
    if (message) *message = r["error"].value("message", "");
    return r["error"].value("code", "");
  }

  // Straight to the module, past the host's schema check (the tool checks too).
  json RunRaw(const std::string& stdin_bytes) {
    auto h = test::SharedEngine().LoadFile(std::string(MOAT_TOOLS_DIR) + "/js.wasm");
    EXPECT_TRUE(h.ok());
    if (!h) return {};
    ExecRequest req;
    req.argv = {"js"};
    req.stdin_bytes = stdin_bytes;
    ExecResult r = test::SharedEngine().Run(*h, req);
    EXPECT_EQ(r.status, RunStatus::kOk) << r.message;
    EXPECT_EQ(r.exit_code, 0);
    return json::parse(r.stdout_bytes, nullptr, false);
  }

  static bool Has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
  }

  tools::CallResult last_;
};

TEST_F(ToolJs, ManifestIsStrictAndNeedsNoFiles) {
  auto tool = Reg().Find("js");
  ASSERT_TRUE(tool) << Reg().LoadError("js");
  EXPECT_EQ(tool->manifest.capabilities.filesystem, tools::FsAccess::kNone);
  json m =
      json::parse(test::Slurp(std::string(MOAT_SOURCE_DIR) + "/guests/tools/js.manifest.json"));
  EXPECT_EQ(m["arguments"]["additionalProperties"], false);
  EXPECT_EQ(m["arguments"]["required"], json::array({"code"}));
}

TEST_F(ToolJs, ReturnsOutputAndTheCompletionValue) {
  EXPECT_EQ(Ok("console.log('hi', 1 + 1); print('there'); const xs = [3, 1, 2]; xs.sort(); xs"),
            json::parse(R"({"output":"hi 2\nthere\n","result":[1,2,3],"truncated":false})"));
  EXPECT_EQ(Ok("let n = 0; for (let i = 1; i <= 100; i++) n += i; n")["result"], 5050);
  EXPECT_EQ(Ok("'text'")["result"], "text");
  EXPECT_EQ(Ok("({a: {b: [true, null]}})")["result"], json::parse(R"({"a":{"b":[true,null]}})"));
  // No JSON form: the value's string; undefined is null.
  EXPECT_EQ(Ok("console.log('x')")["result"], nullptr);
  EXPECT_EQ(Ok("(function f() { return 1 })")["result"], "function f() { return 1 }");
  EXPECT_EQ(Ok("Symbol('s')")["result"], "Symbol(s)");
  EXPECT_EQ(Ok("NaN")["result"], nullptr);  // JSON.stringify(NaN) is "null"
  EXPECT_EQ(Ok("new Error('e')")["result"], "Error: e");
  // Standard built-ins: JSON, RegExp, Date, Map, typed arrays, Math.
  json r =
      Ok("[JSON.parse('{\"k\":[1]}').k[0], /b+/.exec('abbbc')[0], new Date(0).toISOString(),"
         " new Map([[1, 2]]).get(1), new Uint8Array([1, 2, 300])[2], Math.max(3, 9)]");
  EXPECT_EQ(r["result"], json::parse(R"([1,"bbb","1970-01-01T00:00:00.000Z",2,44,9])"));
}

TEST_F(ToolJs, InputIsAGlobal) {
  json r = Call({{"code", "console.log(typeof input); input.items.map(x => x * 2)"},
                 {"input", {{"items", {1, 2, 3}}}}});
  EXPECT_EQ(r["content"]["output"], "object\n");
  EXPECT_EQ(r["content"]["result"], json::parse("[2,4,6]"));
  EXPECT_EQ(Call({{"code", "input"}, {"input", "just text"}})["content"]["result"], "just text");
  EXPECT_EQ(Call({{"code", "input === null"}, {"input", nullptr}})["content"]["result"], true);
  EXPECT_EQ(Ok("typeof input")["result"], "undefined");
}

TEST_F(ToolJs, ConsoleLogShowsValuesLikeJson) {
  EXPECT_EQ(Ok("console.log({a: 1, b: [1, 'two']}, [1, [2]], 'plain', 3.5, true, null, undefined)")
                ["output"],
            "{\"a\":1,\"b\":[1,\"two\"]} [1,[2]] plain 3.5 true null undefined\n");
  // Without a JSON form: String(value).
  EXPECT_EQ(
      Ok("const o = {}; o.self = o; console.log(o, Symbol('q'), new TypeError('t'))")["output"],
      "[object Object] Symbol(q) TypeError: t\n");
  EXPECT_EQ(Ok("console.log(function g() {})")["output"], "function g() {}\n");
  EXPECT_EQ(
      Ok("console.info('i'); console.warn('w'); console.error('e'); console.debug('d')")["output"],
      "i\nw\ne\nd\n");
  EXPECT_EQ(Ok("console.log()")["output"], "\n");
  // A toString that throws does not end the script.
  EXPECT_EQ(Ok("console.log({toJSON() { throw 1 }, toString() { throw 2 }}); 7")["result"], 7);
}

TEST_F(ToolJs, PromisesRunAndAResultPromiseIsAwaited) {
  json c = Ok("Promise.resolve(2).then(v => console.log('then', v)); console.log('sync')");
  EXPECT_EQ(c["output"], "sync\nthen 2\n");
  EXPECT_EQ(Ok("(async () => { await null; return {done: true} })()")["result"],
            json::parse(R"({"done":true})"));
  std::string msg;
  EXPECT_EQ(Err({{"code", "(async () => { throw new RangeError('late') })()"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "RangeError: late")) << msg;
  EXPECT_EQ(Err({{"code", "Promise.reject(new Error('nobody')); 1"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "unhandled promise rejection: Error: nobody")) << msg;
  EXPECT_EQ(Ok("Promise.reject(1).catch(() => {}); 1")["result"], 1);
  EXPECT_EQ(Ok("new Promise(() => {})")["result"], "[a promise that never settled]");
}

TEST_F(ToolJs, ExceptionsAreJsErrors) {
  std::string msg;
  EXPECT_EQ(Err({{"code", "function f() { throw new Error('boom') }\nf()"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "Error: boom")) << msg;
  EXPECT_TRUE(Has(msg, "at f (<code>")) << msg;  // the stack
  EXPECT_EQ(Err({{"code", "null.x"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "TypeError")) << msg;
  EXPECT_EQ(Err({{"code", "throw 42"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "uncaught exception: 42")) << msg;
  EXPECT_EQ(Err({{"code", "throw {why: 'x'}"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "{\"why\":\"x\"}")) << msg;
  // What was printed before the error comes with it.
  EXPECT_EQ(Err({{"code", "console.log('step 1'); undefinedName"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "ReferenceError")) << msg;
  EXPECT_TRUE(Has(msg, "output before the error:\nstep 1\n")) << msg;
  // Caught exceptions are the script's business.
  EXPECT_EQ(Ok("try { null.x } catch (e) { e.constructor.name }")["result"], "TypeError");
}

TEST_F(ToolJs, SyntaxErrors) {
  std::string msg;
  EXPECT_EQ(Err({{"code", "let x = ;"}}, &msg), "js_syntax_error");
  EXPECT_TRUE(Has(msg, "SyntaxError")) << msg;
  EXPECT_EQ(Err({{"code", "console.log('never runs');\nfunction ("}}, &msg), "js_syntax_error");
  EXPECT_FALSE(Has(msg, "never runs")) << msg;
  EXPECT_EQ(Err({{"code", "import x from 'y'"}}), "js_syntax_error");  // a script, no modules
  // A syntax error at run time (eval) is an exception like any other.
  EXPECT_EQ(Err({{"code", "eval('(')"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "SyntaxError")) << msg;
  EXPECT_EQ(Ok("")["result"], nullptr);
}

TEST_F(ToolJs, NoModulesFilesOrOs) {
  EXPECT_EQ(Ok("[typeof std, typeof os, typeof require, typeof scriptArgs, typeof setTimeout,"
               " typeof process]")["result"],
            json::parse(R"(["undefined","undefined","undefined","undefined","undefined",
                            "undefined"])"));
  std::string msg;
  EXPECT_EQ(Err({{"code", "import('std')"}}, &msg), "js_error");
}

TEST_F(ToolJs, EachCallIsAFreshRuntime) {
  Ok("globalThis.leftover = 1; Object.prototype.polluted = true");
  EXPECT_EQ(Ok("[typeof leftover, ({}).polluted]")["result"], json::parse(R"(["undefined",null])"));
}

TEST_F(ToolJs, InfiniteLoopsAreStoppedByFuelAndTime) {
  tools::CallOptions fuel;
  fuel.fuel = 1'000'000'000;
  EXPECT_EQ(Err({{"code", "for (;;) {}"}}, nullptr, fuel), "fuel_exhausted");
  EXPECT_EQ(last_.exec.status, RunStatus::kFuelExhausted);
  EXPECT_EQ(Err({{"code", "while (true) { console.log('spam') }"}}, nullptr, fuel),
            "fuel_exhausted");
  tools::CallOptions time;
  time.fuel = Limits::kMaxFuel;
  time.timeout_us = 1'000'000;
  EXPECT_EQ(Err({{"code", "let i = 0; for (;;) i++"}}, nullptr, time), "timeout");
  EXPECT_EQ(last_.exec.status, RunStatus::kTimeout);
  EXPECT_LT(last_.exec.wall_us, 5'000'000u);
  // With the manifest's own limits too (whichever comes first).
  std::string code = Err({{"code", "for (;;) {}"}});
  EXPECT_TRUE(code == "fuel_exhausted" || code == "timeout") << code;
}

TEST_F(ToolJs, MemoryBombsAreOutOfMemoryErrors) {
  std::string msg;
  // QuickJS's own heap limit, inside the manifest's memory.
  EXPECT_EQ(Err({{"code", "let a = []; for (;;) a.push(new Array(1e6))"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "out of memory")) << msg;
  EXPECT_EQ(Err({{"code", "let s = 'x'; for (;;) s += s"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "out of memory")) << msg;
  // A lower sandbox limit: malloc fails first, the same error.
  tools::CallOptions small;
  small.memory_bytes = 48 << 20;
  EXPECT_EQ(Err({{"code", "let a = []; for (;;) a.push(new Array(1e6))"}}, &msg, small),
            "js_error");
  EXPECT_TRUE(Has(msg, "out of memory")) << msg;
  EXPECT_EQ(
      Err({{"code", "let a = []; for (;;) a.push('y'.repeat(1 << 20) + a.length)"}}, &msg, small),
      "js_error");
  EXPECT_TRUE(Has(msg, "out of memory")) << msg;
  // Caught, it leaves a working interpreter.
  EXPECT_EQ(
      Ok("let r; try { let a = []; for (;;) a.push(new Array(1e6)) } catch (e) { r = 'caught' }"
         " r")["result"],
      "caught");
}

TEST_F(ToolJs, DeepRecursionIsAStackOverflowError) {
  std::string msg;
  EXPECT_EQ(Err({{"code", "function f(n) { return f(n + 1) + 1 }\nf(0)"}}, &msg), "js_error");
  EXPECT_TRUE(Has(msg, "stack overflow")) << msg;
  EXPECT_LT(msg.size(), 4096u);  // the stack is cut to its first frames
  EXPECT_EQ(Ok("function g() { g() } try { g() } catch (e) { e.message }")["result"],
            "stack overflow");
  // Recursion through built-ins and the parser.
  EXPECT_EQ(Err({{"code", "const o = {}; o.toString = () => `${o}`; String(o)"}}, &msg),
            "js_error");
  EXPECT_TRUE(Has(msg, "stack overflow")) << msg;
  EXPECT_EQ(Err({{"code", "JSON.parse('['.repeat(1e6))"}}, &msg), "js_error");
  EXPECT_EQ(Err({{"code", std::string(100000, '(') + "1" + std::string(100000, ')')}}, &msg),
            "js_syntax_error");
  EXPECT_TRUE(Has(msg, "stack overflow")) << msg;
  // A deep but finite recursion is fine.
  EXPECT_EQ(Ok("function d(n) { return n ? d(n - 1) + 1 : 0 } d(2000)")["result"], 2000);
}

TEST_F(ToolJs, HugeOutputIsCutAtOneMebibyte) {
  json c = Ok("for (let i = 0; i < 200000; i++) console.log('line ' + i); 'done'");
  EXPECT_EQ(c["truncated"], true);
  EXPECT_EQ(c["result"], "done");
  std::string out = c["output"];
  EXPECT_LE(out.size(), 1u << 20);
  EXPECT_GT(out.size(), (1u << 20) - 100);
  EXPECT_EQ(out.rfind("line 0\nline 1\n", 0), 0u);
  // One huge line, and a huge result.
  c = Ok("console.log('z'.repeat(5e6)); 1");
  EXPECT_EQ(c["truncated"], true);
  EXPECT_EQ(c["output"].get<std::string>().size(), 1u << 20);
  c = Ok("'r'.repeat(3e6)");
  EXPECT_EQ(c["truncated"], true);
  EXPECT_EQ(c["result"].get<std::string>().size(), 1u << 20);
  // A cut never splits a UTF-8 sequence.
  c = Ok("console.log('é'.repeat(1e6))");
  std::string u = c["output"];
  EXPECT_EQ(u.size() % 2, 0u);
  EXPECT_EQ(u.substr(u.size() - 2), "é");
}

TEST_F(ToolJs, MalformedArguments) {
  // The host's schema check.
  EXPECT_EQ(Err({{"code", 12}}), "invalid_arguments");
  EXPECT_EQ(Err(json::object()), "invalid_arguments");
  EXPECT_EQ(Err({{"code", "1"}, {"timeout", 5}}), "invalid_arguments");
  EXPECT_FALSE(last_.ran);
  // The tool's own, past the schema.
  for (const char* in : {"{\"code\": 12}", "{\"code\": [\"1\"]}", "{}", "{\"script\": \"1\"}", "[]",
                         "\"code\"", "not json", "", "{\"code\": \"1\"} trailing"}) {
    json r = RunRaw(in);
    EXPECT_EQ(r.value("ok", true), false) << in;
    EXPECT_EQ(r["error"].value("code", ""), "invalid_arguments") << in;
  }
  json r = RunRaw(R"({"code": "6 * 7"})");
  EXPECT_EQ(r["content"]["result"], 42);
}

TEST_F(ToolJs, Unicode) {
  json c = Ok("const s = 'héllo 😀 мир'; console.log(s, s.length, [...s].length); s.toUpperCase()");
  EXPECT_EQ(c["output"], "héllo 😀 мир 12 11\n");
  EXPECT_EQ(c["result"], "HÉLLO 😀 МИР");
  EXPECT_EQ(Ok("'\\u00e9' === 'é' && 'é'.normalize('NFD').length")["result"], 2);
  EXPECT_EQ(
      Call({{"code", "input.name + '!'"}, {"input", {{"name", "日本語"}}}})["content"]["result"],
      "日本語!");
  // A lone surrogate cannot be UTF-8: replaced, never a broken result.
  c = Ok("console.log('a\\ud800b'); 'x\\udc00'");
  EXPECT_FALSE(c["output"].get<std::string>().empty());
  EXPECT_TRUE(c["result"].is_string());
  // Identifiers and regular expressions with non-ASCII letters.
  EXPECT_EQ(Ok("const café = 3; /\\p{L}+/u.exec('123 ñandú')[0] + café")["result"], "ñandú3");
}

}  // namespace
}  // namespace moat
