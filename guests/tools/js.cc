// js: runs a JavaScript snippet with QuickJS in a fresh runtime and returns what it
// printed and its completion value. The script sees the standard built-ins, console.log
// (and its siblings) and print, and `input` when the caller passes one; no modules, no
// files, no OS. QuickJS's own heap and stack limits turn a runaway allocation or a deep
// recursion into a JavaScript error; loops that never end are the sandbox's to stop
// (fuel, timeout).
//
// Built twice from this file: as the tool (wasm32-wasi, with the toolkit's Main), and
// natively with MOAT_JS_NATIVE as the benchmark's reference (bench/bench_js.cc), which
// reads the same arguments on stdin and prints the same result line.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "quickjs.h"
#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kMaxCodeBytes = 1u << 20;        // the script
constexpr size_t kMaxOutputBytes = 1u << 20;      // console.log text kept
constexpr size_t kMaxResultBytes = 1u << 20;      // the completion value's JSON text
constexpr size_t kMaxMessageBytes = 16u << 10;    // error message with its stack
constexpr size_t kOutputInErrorBytes = 4u << 10;  // output shown with an error
constexpr int kMaxResultDepth = 64;               // nesting kept as JSON (else a string)
// The JS heap: below the manifest's memory limit so QuickJS says "out of memory" before
// the sandbox refuses to grow memory (which QuickJS reports the same way, if later).
constexpr size_t kHeapLimit = 192u << 20;
// How deep the interpreter may recurse on the wasm shadow stack (linked with 4 MiB, see
// cmake/tool_js.cmake); checked by QuickJS itself, so overflow is a catchable
// "InternalError: stack overflow". Small enough that the native stack wasm runs on
// (8 MiB) never runs out first.
constexpr size_t kJsStackBytes = 1u << 20;
constexpr size_t kHeapReserve = 16u << 20;  // for describing an error past the limit
constexpr size_t kMallocOverhead = 8;
constexpr int kMaxStackLines = 24;  // of an error's stack trace

// --- UTF-8 --------------------------------------------------------------------------

// The longest prefix of `s` of at most `max` bytes that does not split a UTF-8 sequence.
size_t Utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80 && max - n < 4) --n;
  return n;
}

std::string Capped(std::string s, size_t max) {
  if (s.size() > max) s.resize(Utf8Prefix(s, max));
  return s;
}

// Nesting depth of JSON text outside strings, stopping past `limit`.
bool DepthWithin(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// --- The JS heap -------------------------------------------------------------------
// QuickJS's default allocator counts malloc_usable_size, which its wasm configuration
// does not use; this one counts it on every platform, so the limit means the same.

// Records why an allocation was refused: kHeapFull (the limit) or kNoMemory (malloc
// failed: the sandbox's memory limit). QuickJS then throws "out of memory", or null when
// it cannot even allocate that error.
enum Refusal { kNotRefused, kHeapFull, kNoMemory };
void Refused(JSMallocState* s, Refusal why) { *static_cast<Refusal*>(s->opaque) = why; }

void* HeapMalloc(JSMallocState* s, size_t size) {
  if (s->malloc_size + size > s->malloc_limit) {
    Refused(s, kHeapFull);
    return nullptr;
  }
  void* p = malloc(size);
  if (!p) {
    Refused(s, kNoMemory);
    return nullptr;
  }
  s->malloc_count++;
  s->malloc_size += malloc_usable_size(p) + kMallocOverhead;
  return p;
}

void HeapFree(JSMallocState* s, void* p) {
  if (!p) return;
  s->malloc_count--;
  s->malloc_size -= malloc_usable_size(p) + kMallocOverhead;
  free(p);
}

void* HeapRealloc(JSMallocState* s, void* p, size_t size) {
  if (!p) return size == 0 ? nullptr : HeapMalloc(s, size);
  size_t old = malloc_usable_size(p);
  if (size == 0) {
    HeapFree(s, p);
    return nullptr;
  }
  if (s->malloc_size + size - old > s->malloc_limit) {
    Refused(s, kHeapFull);
    return nullptr;
  }
  void* q = realloc(p, size);
  if (!q) {
    Refused(s, kNoMemory);
    return nullptr;
  }
  s->malloc_size += malloc_usable_size(q) - old;
  return q;
}

size_t HeapUsableSize(const void* p) { return p ? malloc_usable_size(const_cast<void*>(p)) : 0; }

const JSMallocFunctions kHeap = {HeapMalloc, HeapFree, HeapRealloc, HeapUsableSize};

// --- One run -----------------------------------------------------------------------

struct Run {
  JSContext* ctx = nullptr;
  Refusal refused = kNotRefused;     // the last allocation that failed, and why
  JSValue string_fn = JS_UNDEFINED;  // the global String, for String(value)
  std::string output;
  bool truncated = false;
  // Rejected promises nobody handled yet (promise, reason), owned.
  std::vector<std::pair<JSValue, JSValue>> rejections;
  // The completion value when it is a promise: how it settled.
  int settled = 0;  // 0 pending, 1 fulfilled, 2 rejected
  JSValue settled_value = JS_UNDEFINED;

  void Append(std::string_view text) {
    if (truncated) return;
    size_t room = kMaxOutputBytes - output.size();
    if (text.size() <= room) {
      output.append(text);
    } else {
      output.append(text.substr(0, Utf8Prefix(text, room)));
      truncated = true;
    }
  }
};

Run* RunOf(JSContext* ctx) { return static_cast<Run*>(JS_GetContextOpaque(ctx)); }

// The bytes of a JS string value (consumed).
std::string TakeString(JSContext* ctx, JSValue v) {
  size_t len = 0;
  const char* p = JS_ToCStringLen(ctx, &len, v);
  JS_FreeValue(ctx, v);
  if (!p) return {};
  std::string s(p, len);
  JS_FreeCString(ctx, p);
  return s;
}

// Drops a pending exception (one thrown while printing something).
void Swallow(JSContext* ctx) { JS_FreeValue(ctx, JS_GetException(ctx)); }

// String(v), which unlike ToString also prints symbols; "<unprintable>" if it throws.
std::string StringOf(JSContext* ctx, JSValueConst v) {
  JSValue argv[1] = {v};
  JSValue s = JS_Call(ctx, RunOf(ctx)->string_fn, JS_UNDEFINED, 1, argv);
  if (JS_IsException(s)) {
    Swallow(ctx);
    return "<unprintable>";
  }
  return TakeString(ctx, s);
}

// JSON.stringify(v); false when it gives undefined (functions, symbols) or throws
// (cycles, BigInt, a throwing toJSON).
bool JsonOf(JSContext* ctx, JSValueConst v, std::string* out) {
  JSValue s = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
  if (JS_IsException(s)) {
    Swallow(ctx);
    return false;
  }
  if (!JS_IsString(s)) {
    JS_FreeValue(ctx, s);
    return false;
  }
  *out = TakeString(ctx, s);
  return true;
}

// How console.log shows one argument: strings as they are, errors as "Name: message",
// other objects as JSON when they have a JSON form, everything else as String(v).
std::string Show(JSContext* ctx, JSValueConst v) {
  if (JS_IsString(v)) return TakeString(ctx, JS_DupValue(ctx, v));
  if (JS_IsObject(v) && !JS_IsFunction(ctx, v) && !JS_IsError(ctx, v)) {
    std::string text;
    if (JsonOf(ctx, v, &text)) return text;
  }
  return StringOf(ctx, v);
}

JSValue ConsoleLog(JSContext* ctx, JSValueConst this_val, int argc, JSValueConst* argv) {
  Run* run = RunOf(ctx);
  std::string line;
  for (int i = 0; i < argc && !run->truncated; ++i) {
    if (i > 0) line += ' ';
    line += Show(ctx, argv[i]);
    if (line.size() > kMaxOutputBytes) break;  // the rest would be cut anyway
  }
  line += '\n';
  run->Append(line);
  return JS_UNDEFINED;
}

JSValue Settle(JSContext* ctx, JSValueConst this_val, int argc, JSValueConst* argv, int magic) {
  Run* run = RunOf(ctx);
  if (run->settled == 0) {
    run->settled = magic;
    run->settled_value = JS_DupValue(ctx, argc > 0 ? argv[0] : JS_UNDEFINED);
  }
  return JS_UNDEFINED;
}

void TrackRejection(JSContext* ctx, JSValueConst promise, JSValueConst reason, JS_BOOL handled,
                    void* opaque) {
  Run* run = RunOf(ctx);
  auto& list = run->rejections;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (JS_VALUE_GET_PTR(it->first) == JS_VALUE_GET_PTR(promise)) {
      if (handled) {
        JS_FreeValue(ctx, it->first);
        JS_FreeValue(ctx, it->second);
        list.erase(it);
      }
      return;
    }
  }
  if (!handled) list.emplace_back(JS_DupValue(ctx, promise), JS_DupValue(ctx, reason));
}

// The text of an exception: "Name: message" and the stack for errors.
std::string Describe(JSContext* ctx, JSValueConst exc) {
  std::string text;
  if (JS_IsError(ctx, exc)) {
    text = StringOf(ctx, exc);
    JSValue stack = JS_GetPropertyStr(ctx, exc, "stack");
    if (JS_IsString(stack)) {
      std::string s = TakeString(ctx, stack);
      if (!s.empty()) text += "\n" + s;
    } else {
      JS_FreeValue(ctx, stack);
      Swallow(ctx);  // a throwing getter
    }
  } else if (JS_IsNull(exc) && RunOf(ctx)->refused != kNotRefused) {
    text = RunOf(ctx)->refused == kHeapFull
               ? "InternalError: out of memory (the script's heap reached its limit of " +
                     std::to_string(kHeapLimit >> 20) + " MiB)"
               : std::string("InternalError: out of memory (the sandbox's memory limit)");
  } else {
    text = "uncaught exception: " + Show(ctx, exc);
  }
  // Deep recursion makes a long stack: its first frames are the useful ones.
  size_t pos = 0;
  for (int lines = 0; lines < kMaxStackLines && pos != std::string::npos; ++lines) {
    pos = text.find('\n', pos + 1);
  }
  if (pos != std::string::npos) {
    size_t more = static_cast<size_t>(std::count(text.begin() + pos, text.end(), '\n'));
    text.resize(pos);
    text += "\n    ... (" + std::to_string(more) + " more lines)";
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// The error result of an exception (consumed), with the tail of what was printed.
tk::Outcome ErrorOf(JSContext* ctx, JSValue exc, const char* code, const std::string& output) {
  // Describing it allocates: give that room past the limit the script may have reached.
  JS_SetMemoryLimit(JS_GetRuntime(ctx), kHeapLimit + kHeapReserve);
  std::string message = Capped(Describe(ctx, exc), kMaxMessageBytes);
  JS_FreeValue(ctx, exc);
  if (!output.empty()) {
    size_t from = output.size() > kOutputInErrorBytes ? output.size() - kOutputInErrorBytes : 0;
    while (from < output.size() && (static_cast<unsigned char>(output[from]) & 0xC0) == 0x80) {
      ++from;
    }
    message += "\noutput before the error" + std::string(from > 0 ? " (end)" : "") + ":\n" +
               output.substr(from);
  }
  return tk::Fail(code, message);
}

// The completion value as JSON: JSON.stringify's form when it has one and is not too
// deep or too large, else String(value); undefined is null.
json ResultOf(JSContext* ctx, JSValueConst v, bool* truncated) {
  if (JS_IsUndefined(v)) return nullptr;
  std::string text;
  bool is_json = JS_IsFunction(ctx, v) || JS_IsError(ctx, v) ? false : JsonOf(ctx, v, &text);
  if (!is_json) text = StringOf(ctx, v);
  if (text.size() > kMaxResultBytes) {
    *truncated = true;
    return Capped(std::move(text), kMaxResultBytes);
  }
  if (is_json && DepthWithin(text, kMaxResultDepth)) {
    json parsed = json::parse(text, nullptr, false);
    if (!parsed.is_discarded()) return parsed;
  }
  return text;
}

bool IsPromise(JSContext* ctx, JSValueConst v) {
  if (!JS_IsObject(v)) return false;
  JSValue global = JS_GetGlobalObject(ctx);
  JSValue ctor = JS_GetPropertyStr(ctx, global, "Promise");
  int is = JS_IsInstanceOf(ctx, v, ctor);
  JS_FreeValue(ctx, ctor);
  JS_FreeValue(ctx, global);
  if (is < 0) Swallow(ctx);
  return is > 0;
}

// Runs queued promise jobs; false with the exception pending when one failed.
bool DrainJobs(JSRuntime* rt) {
  JSContext* job_ctx = nullptr;
  for (;;) {
    int r = JS_ExecutePendingJob(rt, &job_ctx);
    if (r == 0) return true;
    if (r < 0) return false;
  }
}

tk::Outcome Evaluate(JSContext* ctx, Run* run, const std::string& code, const json* input) {
  JSRuntime* rt = JS_GetRuntime(ctx);
  JSValue global = JS_GetGlobalObject(ctx);
  run->string_fn = JS_GetPropertyStr(ctx, global, "String");
  JSValue console = JS_NewObject(ctx);
  for (const char* name : {"log", "info", "warn", "error", "debug"}) {
    JS_SetPropertyStr(ctx, console, name, JS_NewCFunction(ctx, ConsoleLog, name, 1));
  }
  JS_SetPropertyStr(ctx, global, "console", console);
  JS_SetPropertyStr(ctx, global, "print", JS_NewCFunction(ctx, ConsoleLog, "print", 1));
  if (input) {
    std::string text = input->dump(-1, ' ', false, json::error_handler_t::replace);
    JSValue v = JS_ParseJSON(ctx, text.c_str(), text.size(), "<input>");
    if (JS_IsException(v)) {
      JS_FreeValue(ctx, global);
      return ErrorOf(ctx, JS_GetException(ctx), "js_error", run->output);
    }
    JS_SetPropertyStr(ctx, global, "input", v);
  }
  JS_FreeValue(ctx, global);

  // Compile first, so a syntax error has its own code.
  JSValue fn = JS_Eval(ctx, code.c_str(), code.size(), "<code>",
                       JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
  if (JS_IsException(fn)) {
    JSValue exc = JS_GetException(ctx);
    bool syntax = false;
    if (JS_IsError(ctx, exc)) {
      JSValue name = JS_GetPropertyStr(ctx, exc, "name");
      syntax = JS_IsString(name) && TakeString(ctx, JS_DupValue(ctx, name)) == "SyntaxError";
      JS_FreeValue(ctx, name);
    }
    return ErrorOf(ctx, exc, syntax ? "js_syntax_error" : "js_error", run->output);
  }
  JSValue value = JS_EvalFunction(ctx, fn);
  if (JS_IsException(value)) return ErrorOf(ctx, JS_GetException(ctx), "js_error", run->output);
  if (!DrainJobs(rt)) {
    JS_FreeValue(ctx, value);
    return ErrorOf(ctx, JS_GetException(ctx), "js_error", run->output);
  }
  // A promise as the completion value (an async snippet): its settled value.
  if (IsPromise(ctx, value)) {
    JSValue handlers[2] = {
        JS_NewCFunctionMagic(ctx, Settle, "fulfilled", 1, JS_CFUNC_generic_magic, 1),
        JS_NewCFunctionMagic(ctx, Settle, "rejected", 1, JS_CFUNC_generic_magic, 2)};
    JSValue then = JS_GetPropertyStr(ctx, value, "then");
    JSValue chained = JS_Call(ctx, then, value, 2, handlers);
    JS_FreeValue(ctx, then);
    JS_FreeValue(ctx, handlers[0]);
    JS_FreeValue(ctx, handlers[1]);
    JS_FreeValue(ctx, value);
    if (JS_IsException(chained)) return ErrorOf(ctx, JS_GetException(ctx), "js_error", run->output);
    JS_FreeValue(ctx, chained);
    if (!DrainJobs(rt)) return ErrorOf(ctx, JS_GetException(ctx), "js_error", run->output);
    if (run->settled == 2) {
      JSValue reason = run->settled_value;
      run->settled_value = JS_UNDEFINED;
      return ErrorOf(ctx, reason, "js_error", run->output);
    }
    value = run->settled == 1 ? run->settled_value
                              : JS_NewString(ctx, "[a promise that never settled]");
    run->settled_value = JS_UNDEFINED;
  }
  if (!run->rejections.empty()) {
    JS_FreeValue(ctx, value);
    JSValue reason = JS_DupValue(ctx, run->rejections.front().second);
    tk::Outcome out = ErrorOf(ctx, reason, "js_error", run->output);
    out.message = "unhandled promise rejection: " + out.message;
    return out;
  }
  bool result_cut = false;
  json result = ResultOf(ctx, value, &result_cut);
  JS_FreeValue(ctx, value);
  return tk::Ok(json{{"output", std::move(run->output)},
                     {"result", std::move(result)},
                     {"truncated", run->truncated || result_cut}});
}

tk::Outcome Js(const json& args) {
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (it.key() != "code" && it.key() != "input") {
      return tk::Fail("invalid_arguments", "unknown argument \"" + it.key() + "\"");
    }
  }
  auto code_it = args.find("code");
  if (code_it == args.end() || code_it->is_null()) {
    return tk::Fail("invalid_arguments", "missing argument \"code\"");
  }
  if (!code_it->is_string()) {
    return tk::Fail("invalid_arguments", "argument \"code\" must be a string");
  }
  const std::string& code = code_it->get_ref<const std::string&>();
  if (code.size() > kMaxCodeBytes) {
    return tk::Fail("invalid_arguments", "argument \"code\" is longer than 1 MiB");
  }
  auto input_it = args.find("input");
  const json* input = input_it == args.end() ? nullptr : &*input_it;

  Run run;
  JSRuntime* rt = JS_NewRuntime2(&kHeap, &run.refused);
  if (!rt) return tk::Fail("js_error", "cannot create the JavaScript runtime (out of memory)");
  JS_SetMemoryLimit(rt, kHeapLimit);
  JS_SetMaxStackSize(rt, kJsStackBytes);
  JSContext* ctx = JS_NewContext(rt);
  if (!ctx) {
    JS_FreeRuntime(rt);
    return tk::Fail("js_error", "cannot create the JavaScript context (out of memory)");
  }
  run.ctx = ctx;
  run.output.reserve(kMaxOutputBytes / 4);
  JS_SetContextOpaque(ctx, &run);
  JS_SetHostPromiseRejectionTracker(rt, TrackRejection, nullptr);
  tk::Outcome out = Evaluate(ctx, &run, code, input);
  for (auto& [promise, reason] : run.rejections) {
    JS_FreeValue(ctx, promise);
    JS_FreeValue(ctx, reason);
  }
  JS_FreeValue(ctx, run.settled_value);
  JS_FreeValue(ctx, run.string_fn);
  JS_FreeContext(ctx);
  JS_FreeRuntime(rt);
  return out;
}

}  // namespace

#ifdef MOAT_JS_NATIVE
// The benchmark's native reference: the arguments on stdin, the result line on stdout,
// as tk::Main does it in the sandbox.
int main() {
  std::string input;
  char buf[65536];
  ssize_t n;
  while ((n = read(0, buf, sizeof buf)) > 0) input.append(buf, static_cast<size_t>(n));
  json args = json::parse(input, nullptr, false);
  tk::Outcome out = args.is_object()
                        ? Js(args)
                        : tk::Fail("invalid_arguments", "the arguments must be a JSON object");
  auto dump = [](const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
  std::string line = out.ok ? "{\"ok\":true,\"content\":" + dump(out.content) + "}\n"
                            : "{\"ok\":false,\"error\":" +
                                  dump(json{{"code", out.code}, {"message", out.message}}) + "}\n";
  fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}
#else
int main() { return tk::Main(&Js); }
#endif
