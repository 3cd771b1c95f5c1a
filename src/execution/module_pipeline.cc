#include "execution/module_pipeline.h"

#include <wabt/apply-names.h>
#include <wabt/binary-reader-ir.h>
#include <wabt/binary-reader.h>
#include <wabt/c-writer.h>
#include <wabt/cast.h>
#include <wabt/error-formatter.h>
#include <wabt/feature.h>
#include <wabt/generate-names.h>
#include <wabt/ir.h>
#include <wabt/stream.h>
#include <wabt/validator.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <unordered_set>

#include "execution/compile_step.h"
#include "execution/host_imports.h"
#include "execution/limits.h"

namespace moat {

namespace {

using wabt::Expr;
using wabt::ExprList;
using wabt::ExprType;
using wabt::Index;
using wabt::Type;

Error Invalid(std::string msg) { return MakeError(ErrorCode::kInvalidModule, std::move(msg)); }

// Parser features: everything the binary format may contain, so that a module using a
// feature moat refuses still parses and can be refused by name instead of by opcode.
wabt::Features ParseFeatures() {
  wabt::Features f;
  f.enable_simd();
  f.enable_threads();
  f.enable_tail_call();
  f.enable_exceptions();
  f.enable_memory64();
  f.enable_multi_memory();
  f.enable_function_references();
  return f;
}

// Validation features: WebAssembly 2.0 as moat runs it. Typed function references stay
// off: with them on, wabt types `ref.func` as a non-nullable typed reference that it then
// refuses where a plain funcref is expected (table.set, table.grow, table.fill).
wabt::Features ValidateFeatures() {
  wabt::Features f = ParseFeatures();
  f.disable_function_references();
  return f;
}

// First error of a wabt Errors list, on one line.
std::string FirstLine(const wabt::Errors& errors) {
  if (errors.empty()) return "unknown error";
  const wabt::Error& e = errors.front();
  std::string msg = e.message;
  if (e.loc.offset != wabt::kInvalidOffset) {
    char buf[48];
    snprintf(buf, sizeof buf, " (at byte offset %zu)", static_cast<size_t>(e.loc.offset));
    msg += buf;
  }
  for (char& c : msg) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';  // one line, no terminal control bytes
  }
  return msg;
}

// Calls f on every expression of a list, recursing into nested bodies.
void Walk(ExprList& list, const std::function<void(Expr&)>& f) {
  for (Expr& e : list) {
    f(e);
    switch (e.type()) {
      case ExprType::Block: Walk(wabt::cast<wabt::BlockExpr>(&e)->block.exprs, f); break;
      case ExprType::Loop: Walk(wabt::cast<wabt::LoopExpr>(&e)->block.exprs, f); break;
      case ExprType::If: {
        auto* ie = wabt::cast<wabt::IfExpr>(&e);
        Walk(ie->true_.exprs, f);
        Walk(ie->false_, f);
        break;
      }
      case ExprType::Try: {
        auto* te = wabt::cast<wabt::TryExpr>(&e);
        Walk(te->block.exprs, f);
        for (auto& c : te->catches) Walk(c.exprs, f);
        break;
      }
      default: break;
    }
  }
}

bool IsV128(Type t) { return t == Type::V128; }

bool SigUsesV128(const wabt::FuncSignature& sig) {
  for (Type t : sig.param_types) {
    if (IsV128(t)) return true;
  }
  for (Type t : sig.result_types) {
    if (IsV128(t)) return true;
  }
  return false;
}

// Names the first unsupported feature an expression uses, or returns nullptr.
const char* UnsupportedFeature(Expr& e) {
  auto prefix_feature = [](wabt::Opcode op) -> const char* {
    if (op.GetPrefix() == 0xfd) return "SIMD (v128)";
    if (op.GetPrefix() == 0xfe) return "threads (atomic instructions)";
    return nullptr;
  };
  switch (e.type()) {
    case ExprType::SimdLaneOp:
    case ExprType::SimdLoadLane:
    case ExprType::SimdStoreLane:
    case ExprType::SimdShuffleOp:
    case ExprType::LoadSplat:
    case ExprType::LoadZero: return "SIMD (v128)";
    case ExprType::AtomicLoad:
    case ExprType::AtomicRmw:
    case ExprType::AtomicRmwCmpxchg:
    case ExprType::AtomicStore:
    case ExprType::AtomicNotify:
    case ExprType::AtomicFence:
    case ExprType::AtomicWait: return "threads (atomic instructions)";
    case ExprType::ReturnCall:
    case ExprType::ReturnCallIndirect: return "tail calls";
    case ExprType::Try:
    case ExprType::Throw:
    case ExprType::Rethrow: return "exception handling";
    case ExprType::CallRef: return "typed function references";
    case ExprType::Const:
      return IsV128(wabt::cast<wabt::ConstExpr>(&e)->const_.type()) ? "SIMD (v128)" : nullptr;
    case ExprType::Binary: return prefix_feature(wabt::cast<wabt::BinaryExpr>(&e)->opcode);
    case ExprType::Compare: return prefix_feature(wabt::cast<wabt::CompareExpr>(&e)->opcode);
    case ExprType::Convert: return prefix_feature(wabt::cast<wabt::ConvertExpr>(&e)->opcode);
    case ExprType::Unary: return prefix_feature(wabt::cast<wabt::UnaryExpr>(&e)->opcode);
    case ExprType::Ternary: return prefix_feature(wabt::cast<wabt::TernaryExpr>(&e)->opcode);
    case ExprType::Load: return prefix_feature(wabt::cast<wabt::LoadExpr>(&e)->opcode);
    case ExprType::Store: return prefix_feature(wabt::cast<wabt::StoreExpr>(&e)->opcode);
    case ExprType::Block:
      return SigUsesV128(wabt::cast<wabt::BlockExpr>(&e)->block.decl.sig) ? "SIMD (v128)" : nullptr;
    case ExprType::Loop:
      return SigUsesV128(wabt::cast<wabt::LoopExpr>(&e)->block.decl.sig) ? "SIMD (v128)" : nullptr;
    case ExprType::If:
      return SigUsesV128(wabt::cast<wabt::IfExpr>(&e)->true_.decl.sig) ? "SIMD (v128)" : nullptr;
    case ExprType::Select:
      for (Type t : wabt::cast<wabt::SelectExpr>(&e)->result_type) {
        if (IsV128(t)) return "SIMD (v128)";
      }
      return nullptr;
    default: return nullptr;
  }
}

std::string SignatureString(const wabt::FuncSignature& sig) {
  auto code = [](Type t) -> char {
    switch (t) {
      case Type::I32: return 'i';
      case Type::I64: return 'I';
      case Type::F32: return 'f';
      case Type::F64: return 'F';
      default: return '?';
    }
  };
  std::string s;
  for (Type t : sig.param_types) s.push_back(code(t));
  s.push_back(':');
  for (Type t : sig.result_types) s.push_back(code(t));
  return s;
}

// A name from the module, safe to print: printable ASCII kept, other bytes as \xHH
// (no newlines or terminal escapes from hostile names), at most 64 bytes shown.
std::string Printable(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i == 64) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// ---- compile-cost caps -------------------------------------------------------------------

// "module refused: function 7 has 20000 locals, over the limit of 16384 locals per function"
Error OverCap(const std::string& where, const std::string& value, const std::string& noun,
              uint64_t cap, const std::string& per = "") {
  return Invalid("module refused: " + where + " has " + value + " " + noun +
                 ", over the limit of " + std::to_string(cap) + " " + noun + per);
}
Error OverCap(const std::string& where, uint64_t value, const std::string& noun, uint64_t cap,
              const std::string& per = "") {
  return OverCap(where, std::to_string(value), noun, cap, per);
}

// One unsigned LEB128 of at most 32 bits.
bool ReadU32(std::span<const uint8_t> b, size_t& pos, uint32_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (pos >= b.size()) return false;
    uint8_t x = b[pos++];
    r |= uint64_t{x & 0x7fu} << shift;
    if (!(x & 0x80)) {
      if (r > UINT32_MAX) return false;
      *v = static_cast<uint32_t>(r);
      return true;
    }
  }
  return false;
}

// The caps that section headers and function bodies show, read from the binary before
// wabt builds anything from it: a function of a million locals is a few bytes of wasm.
// Whatever is malformed here is left for wabt's reader to name.
Status CheckBinaryCaps(std::span<const uint8_t> wasm) {
  using C = CompileLimits;
  size_t pos = 8;
  uint32_t imports = 0;
  while (pos < wasm.size()) {
    uint8_t id = wasm[pos++];
    uint32_t len = 0;
    if (!ReadU32(wasm, pos, &len) || len > wasm.size() - pos) return OkStatus();
    std::span<const uint8_t> sec = wasm.subspan(pos, len);
    pos += len;
    size_t p = 0;
    uint32_t count = 0;
    if (id == 0 || !ReadU32(sec, p, &count)) continue;
    switch (id) {
      case 1:
        if (count > C::kMaxTypes) return OverCap("the module", count, "types", C::kMaxTypes);
        break;
      case 2:
        imports = count;
        if (count > C::kMaxImports) return OverCap("the module", count, "imports", C::kMaxImports);
        break;
      case 3:
      case 10:
        if (count > C::kMaxFunctions)
          return OverCap("the module", count, "functions", C::kMaxFunctions);
        break;
      case 6:
        if (count > C::kMaxGlobals) return OverCap("the module", count, "globals", C::kMaxGlobals);
        break;
      case 7:
        if (count > C::kMaxExports) return OverCap("the module", count, "exports", C::kMaxExports);
        break;
      default: break;
    }
    if (id != 10) continue;
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t size = 0, decls = 0;
      if (!ReadU32(sec, p, &size) || size > sec.size() - p) return OkStatus();
      std::span<const uint8_t> body = sec.subspan(p, size);
      p += size;
      const std::string fn = "function " + std::to_string(uint64_t{imports} + i);
      if (size > C::kMaxFunctionBodyBytes) {
        return OverCap(fn, size, "bytes of code", C::kMaxFunctionBodyBytes, " per function");
      }
      size_t q = 0;
      uint64_t locals = 0;
      if (!ReadU32(body, q, &decls)) return OkStatus();
      for (uint32_t d = 0; d < decls; ++d) {
        uint32_t n = 0;
        if (!ReadU32(body, q, &n) || q >= body.size()) return OkStatus();
        ++q;          // the type
        locals += n;  // at most 2^32 per declaration, fewer than 2^20 declarations
      }
      if (locals > C::kMaxFunctionLocals) {
        return OverCap(fn, locals, "locals", C::kMaxFunctionLocals, " per function");
      }
      if (locals * size > C::kMaxFunctionCost) {
        return Invalid("module refused: " + fn + " has " + std::to_string(locals) + " locals and " +
                       std::to_string(size) +
                       " bytes of code; locals times bytes of code is over the limit of " +
                       std::to_string(C::kMaxFunctionCost) +
                       " per function (the C compiler's time and memory grow with it)");
      }
    }
  }
  return OkStatus();
}

// Block nesting and br_table sizes of one body, without recursing deeper than the cap
// (wabt's C writer recurses on nesting).
Status CheckNesting(const ExprList& list, uint64_t depth, const std::string& fn) {
  using C = CompileLimits;
  for (const Expr& e : list) {
    const ExprList* inner[2] = {nullptr, nullptr};
    switch (e.type()) {
      case ExprType::Block: inner[0] = &wabt::cast<wabt::BlockExpr>(&e)->block.exprs; break;
      case ExprType::Loop: inner[0] = &wabt::cast<wabt::LoopExpr>(&e)->block.exprs; break;
      case ExprType::If:
        inner[0] = &wabt::cast<wabt::IfExpr>(&e)->true_.exprs;
        inner[1] = &wabt::cast<wabt::IfExpr>(&e)->false_;
        break;
      case ExprType::Try: inner[0] = &wabt::cast<wabt::TryExpr>(&e)->block.exprs; break;
      case ExprType::BrTable: {
        size_t n = wabt::cast<wabt::BrTableExpr>(&e)->targets.size();
        if (n > C::kMaxBrTableTargets) {
          return OverCap(fn, n, "br_table targets", C::kMaxBrTableTargets, " in one br_table");
        }
        break;
      }
      default: break;
    }
    if (!inner[0]) continue;
    if (depth + 1 > C::kMaxNestingDepth) {
      return OverCap(fn, "more than " + std::to_string(C::kMaxNestingDepth),
                     "levels of block nesting", C::kMaxNestingDepth);
    }
    for (const ExprList* l : inner) {
      if (l) {
        if (auto s = CheckNesting(*l, depth + 1, fn); !s) return s;
      }
    }
  }
  return OkStatus();
}

// The caps that need the parsed module.
Status CheckModuleCaps(const wabt::Module& m) {
  using C = CompileLimits;
  for (const wabt::TypeEntry* te : m.types) {
    if (const auto* ft = wabt::dyn_cast<wabt::FuncType>(te)) {
      size_t n = std::max(ft->sig.param_types.size(), ft->sig.result_types.size());
      if (n > C::kMaxParams) {
        return OverCap("a function type", n, "parameters or results", C::kMaxParams);
      }
    }
  }
  for (Index i = 0; i < m.funcs.size(); ++i) {
    std::string fn = "function " + std::to_string(i);
    if (auto s = CheckNesting(m.funcs[i]->exprs, 0, fn); !s) return s;
  }
  uint64_t data = 0;
  for (const wabt::DataSegment* d : m.data_segments) data += d->data.size();
  if (data > C::kMaxDataBytes)
    return OverCap("the module", data, "bytes of data segments", C::kMaxDataBytes);
  uint64_t elems = 0;
  for (const wabt::ElemSegment* e : m.elem_segments) elems += e->elem_exprs.size();
  if (elems > C::kMaxElemEntries)
    return OverCap("the module", elems, "element segment entries", C::kMaxElemEntries);
  return OkStatus();
}

// The first instruction of a feature moat refuses, by name, or nullptr.
const char* FirstUnsupportedFeature(wabt::Module& m) {
  const char* bad = nullptr;
  for (wabt::Func* f : m.funcs) {
    Walk(f->exprs, [&](Expr& e) {
      if (!bad) bad = UnsupportedFeature(e);
    });
    if (bad) break;
  }
  return bad;
}

// Checks everything moat requires of a module beyond wasm validity.
Status CheckModule(wabt::Module& m) {
  if (auto s = CheckModuleCaps(m); !s) return s;
  // Imports: only the host functions moat implements, with their exact types.
  for (const wabt::Import* imp : m.imports) {
    std::string what = "'" + Printable(imp->module_name) + "." + Printable(imp->field_name) + "'";
    if (imp->kind() != wabt::ExternalKind::Func) {
      return Invalid("import " + what + " is not a function; moat provides only function imports");
    }
    if (imp->module_name == kMoatModule && imp->field_name == kFuelExhaustedName) {
      return Invalid("import " + what + " is reserved for moat's fuel metering");
    }
    const HostImport* h = FindHostImport(imp->module_name, imp->field_name);
    if (!h) return Invalid("unknown import " + what + ": the host does not provide it");
    const auto* fi = wabt::cast<wabt::FuncImport>(imp);
    std::string sig = SignatureString(fi->func.decl.sig);
    if (sig != h->signature) {
      return Invalid("import " + what + " has signature (" + sig + "), expected (" +
                     std::string(h->signature) + ")");
    }
  }
  // Memories and tables.
  if (m.memories.size() > 1)
    return Invalid("module uses multi-memory (" + std::to_string(m.memories.size()) +
                   " memories), which moat does not support");
  for (const wabt::Memory* mem : m.memories) {
    if (mem->page_limits.is_64) return Invalid("module uses memory64, which moat does not support");
    if (mem->page_limits.is_shared)
      return Invalid("module uses threads (shared memory), which moat does not support");
  }
  for (const wabt::Table* t : m.tables) {
    if (t->elem_limits.initial > Limits::kMaxTableElements) {
      return Invalid("table of " + std::to_string(t->elem_limits.initial) +
                     " elements exceeds the limit of " + std::to_string(Limits::kMaxTableElements));
    }
  }
  if (!m.tags.empty())
    return Invalid("module uses exception handling (tags), which moat does not support");
  // Types, globals, locals.
  for (const wabt::TypeEntry* te : m.types) {
    if (const auto* ft = wabt::dyn_cast<wabt::FuncType>(te)) {
      if (SigUsesV128(ft->sig))
        return Invalid("module uses SIMD (v128), which moat does not support");
    } else {
      return Invalid("module uses GC types, which moat does not support");
    }
  }
  for (const wabt::Global* g : m.globals) {
    if (IsV128(g->type)) return Invalid("module uses SIMD (v128), which moat does not support");
  }
  for (wabt::Func* f : m.funcs) {
    for (Type t : f->local_types) {
      if (IsV128(t)) return Invalid("module uses SIMD (v128), which moat does not support");
    }
  }
  if (const char* bad = FirstUnsupportedFeature(m))
    return Invalid(std::string("module uses ") + bad + ", which moat does not support");
  // Exports: a command module.
  const wabt::Export* start = m.GetExport("_start");
  if (!start || start->kind != wabt::ExternalKind::Func) {
    return Invalid("module has no '_start' function export; moat runs WASI command modules");
  }
  const wabt::Func* sf = m.GetFunc(start->var);
  if (!sf || sf->GetNumParams() != 0 || sf->GetNumResults() != 0) {
    return Invalid("'_start' must take no parameters and return nothing");
  }
  if (m.GetExport(kFuelExportName)) {
    return Invalid("export name '" + std::string(kFuelExportName) + "' is reserved by moat");
  }
  if (!m.imports.empty()) {
    const wabt::Export* mem = m.GetExport("memory");
    if (!mem || mem->kind != wabt::ExternalKind::Memory) {
      return Invalid("module imports host functions but exports no memory named 'memory'");
    }
  }
  return OkStatus();
}

Result<std::unique_ptr<wabt::Module>> ReadAndCheck(std::span<const uint8_t> wasm) {
  if (wasm.size() < 8)
    return Invalid("not a wasm module: " + std::to_string(wasm.size()) + " bytes is too short");
  static const uint8_t kMagic[4] = {0, 'a', 's', 'm'};
  if (memcmp(wasm.data(), kMagic, 4) != 0) return Invalid("not a wasm module: bad magic number");
  if (wasm[4] != 1 || wasm[5] != 0 || wasm[6] != 0 || wasm[7] != 0) {
    return Invalid(
        "unsupported wasm binary version (only version 1 modules; components are not supported)");
  }
  if (auto s = CheckBinaryCaps(wasm); !s) return s.error();
  auto module = std::make_unique<wabt::Module>();
  wabt::Errors errors;
  wabt::ReadBinaryOptions options(ParseFeatures(), nullptr, /*read_debug_names=*/false,
                                  /*stop_on_first_error=*/true,
                                  /*fail_on_custom_section_error=*/false);
  if (wabt::Failed(wabt::ReadBinaryIr("module.wasm", wasm.data(), wasm.size(), options, &errors,
                                      module.get()))) {
    return Invalid("malformed module: " + FirstLine(errors));
  }
  wabt::ValidateOptions vopts(ValidateFeatures());
  if (wabt::Failed(wabt::ValidateModule(module.get(), &errors, vopts))) {
    // A module that is invalid only because it uses a feature moat refuses (call_ref, say)
    // is refused by that feature's name (after the caps, which bound the walk's depth).
    if (auto s = CheckModuleCaps(*module); !s) return s.error();
    if (const char* bad = FirstUnsupportedFeature(*module))
      return Invalid(std::string("module uses ") + bad + ", which moat does not support");
    return Invalid("invalid module: " + FirstLine(errors));
  }
  if (auto s = CheckModule(*module); !s) return s.error();
  return module;
}

ModuleShape ShapeOf(const wabt::Module& m) {
  ModuleShape s;
  if (!m.memories.empty()) {
    const wabt::Limits& l = m.memories[0]->page_limits;
    s.has_memory = true;
    s.initial_pages = static_cast<uint32_t>(l.initial);
    s.max_pages = l.has_max ? static_cast<uint32_t>(l.max) : 65536;
  }
  return s;
}

// ---- fuel pass -------------------------------------------------------------------------

// Shifts every function index >= from by one (a new import is inserted at `from`).
Status ShiftFuncIndices(wabt::Module& m, Index from) {
  bool bad = false;
  auto fix = [&](wabt::Var& v) {
    if (!v.is_index()) {
      bad = true;
      return;
    }
    if (v.index() >= from) v.set_index(v.index() + 1);
  };
  auto fix_expr = [&](Expr& e) {
    if (e.type() == ExprType::Call) fix(wabt::cast<wabt::CallExpr>(&e)->var);
    if (e.type() == ExprType::RefFunc) fix(wabt::cast<wabt::RefFuncExpr>(&e)->var);
  };
  for (wabt::Func* f : m.funcs) Walk(f->exprs, fix_expr);
  for (wabt::Global* g : m.globals) Walk(g->init_expr, fix_expr);
  for (wabt::ElemSegment* seg : m.elem_segments) {
    for (ExprList& l : seg->elem_exprs) Walk(l, fix_expr);
  }
  for (wabt::Export* ex : m.exports) {
    if (ex->kind == wabt::ExternalKind::Func) fix(ex->var);
  }
  for (wabt::Var* s : m.starts) fix(*s);
  for (auto& [name, binding] : m.func_bindings) {
    if (binding.index >= from) binding.index++;
  }
  if (bad) return MakeError(ErrorCode::kInternal, "fuel pass: unexpected named function reference");
  return OkStatus();
}

// Charges fuel in advance for straight-line segments of code: at every function entry and
// loop header, and at the start of an if arm or of the code after a block when that code
// costs more than kFoldCost on its own (smaller ones are folded into the enclosing
// segment, so hot loops keep one check per iteration). A segment's cost is its instruction
// count up to the next place that charges for itself; block and loop markers are free.
// Branching out of a segment early leaves its rest paid for: fuel is an upper bound that
// stays within kFoldCost per skipped piece, and a loop iteration or a call always costs at
// least one unit. (An interpreter's dispatch loop, one loop around a switch of hundreds
// of cases, pays for the case it runs, not for all of them.)
//
// Within a function the counter lives in a local (a register in the generated C), synced
// with the global around calls (callees and host functions charge the global), before
// `return`, and at the end of the body, which is wrapped in a block so that branches to
// the function's label reach that sync too. A trap skips the final sync, so the fuel of
// a trapped run may be reported slightly low; the points at which fuel runs out are the
// same as with the global alone, so exhaustion stays exact and deterministic.
class FuelPass {
 public:
  FuelPass(Index fuel_global, Index exhausted_func) : g_(fuel_global), exhausted_(exhausted_func) {}

  // Small leaves that only direct calls reach are not instrumented: each call site pays
  // their whole instruction count (an upper bound: without loops, each instruction runs at
  // most once), with no counter sync around the call. `cost[i]` > 0 marks function i.
  void SetCallerCharged(std::vector<uint64_t> cost) { caller_charged_ = std::move(cost); }

  // The instruction count of `f` if callers may pay for it: no loop, call or bulk
  // operation, at most kCallerChargedMax instructions; else 0.
  static uint64_t CallerChargeable(wabt::Func& f) {
    if (LoopsOrCalls(f.exprs)) return 0;
    uint64_t n = 0;
    bool bulk = false;
    Walk(f.exprs, [&](Expr& e) {
      ++n;
      if (BulkShift(e.type()) >= 0) bulk = true;
    });
    return !bulk && n <= kCallerChargedMax ? n : 0;
  }
  static constexpr uint64_t kCallerChargedMax = 48;

  void MeterFunction(wabt::Func& f, Index index) {
    if (index < caller_charged_.size() && caller_charged_[index] > 0) return;
    scratch_ = f.GetNumParamsAndLocals();  // i32: length operand of bulk operations
    f.local_types.AppendDecl(Type::I32, 1);
    if (!LoopsOrCalls(f.exprs)) {
      // A leaf without loops runs each instruction at most once, so it cannot run long:
      // the counter in the global (one read-modify-write per charge, nothing to sync) and
      // no refill check. The next loop header or function entry checks. Hot small
      // functions (comparators, varint decoders) no longer pay for a check and two syncs.
      uint64_t entry_cost = Segment(f.exprs, false);
      Prepend(f.exprs, Charge(entry_cost, Glob, false, /*check=*/false));
      return;
    }
    if (f.GetNumResults() > 1) {
      // Multi-value bodies cannot be wrapped in an inline-typed block: charge the global.
      uint64_t entry_cost = Segment(f.exprs, false);
      Prepend(f.exprs, Charge(entry_cost, Glob, false));
      return;
    }
    local_ = f.GetNumParamsAndLocals();
    f.local_types.AppendDecl(Type::I64, 1);
    uint64_t entry_cost = Segment(f.exprs, true);
    auto body = std::make_unique<wabt::BlockExpr>();
    body->block.decl.sig.result_types = f.decl.sig.result_types;
    body->block.exprs.splice(body->block.exprs.begin(), f.exprs);
    ExprList entry = Charge(entry_cost, Glob, true);  // local = global - cost
    f.exprs.splice(f.exprs.end(), entry);
    f.exprs.push_back(std::move(body));
    Append(f.exprs, Get(Loc));
    Append(f.exprs, Set(Glob));
  }

  // Whether `list` has a loop or a call of any kind (nested blocks and arms included).
  static bool LoopsOrCalls(const ExprList& list) {
    for (const Expr& e : list) {
      switch (e.type()) {
        case ExprType::Loop:
        case ExprType::Call:
        case ExprType::CallIndirect:
        case ExprType::CallRef:
        case ExprType::ReturnCall:
        case ExprType::ReturnCallIndirect:
        case ExprType::Try:
        case ExprType::Throw:
        case ExprType::Rethrow: return true;
        case ExprType::Block:
          if (LoopsOrCalls(wabt::cast<wabt::BlockExpr>(&e)->block.exprs)) return true;
          break;
        case ExprType::If: {
          auto* ie = wabt::cast<wabt::IfExpr>(&e);
          if (LoopsOrCalls(ie->true_.exprs) || LoopsOrCalls(ie->false_)) return true;
          break;
        }
        default: break;
      }
    }
    return false;
  }

  // Pieces of code this long or shorter are paid for by the enclosing segment.
  static constexpr uint64_t kFoldCost = 32;

 private:
  enum Where { Glob, Loc };

  static wabt::Var V(Index i) { return wabt::Var(i, wabt::Location()); }
  std::unique_ptr<Expr> Get(Where w) const {
    if (w == Glob) return std::make_unique<wabt::GlobalGetExpr>(V(g_));
    return std::make_unique<wabt::LocalGetExpr>(V(local_));
  }
  std::unique_ptr<Expr> Set(Where w) const {
    if (w == Glob) return std::make_unique<wabt::GlobalSetExpr>(V(g_));
    return std::make_unique<wabt::LocalSetExpr>(V(local_));
  }
  static void Append(ExprList& l, std::unique_ptr<Expr> e) { l.push_back(std::move(e)); }
  static void Prepend(ExprList& l, ExprList seq) { l.splice(l.begin(), seq); }

  // [new counter value on stack] -> stored in the counter; if it is negative, refill:
  // local mode: local.tee; if (< 0) { sync; fuel_exhausted(); reload }
  // global mode: global.set; if (global < 0) fuel_exhausted()
  void AppendStoreAndCheck(ExprList& l, bool local_mode) const {
    if (local_mode) {
      Append(l, std::make_unique<wabt::LocalTeeExpr>(V(local_)));
    } else {
      Append(l, Set(Glob));
      Append(l, Get(Glob));
    }
    Append(l, std::make_unique<wabt::ConstExpr>(wabt::Const::I64(0)));
    Append(l, std::make_unique<wabt::CompareExpr>(wabt::Opcode::I64LtS));
    auto iff = std::make_unique<wabt::IfExpr>();
    if (local_mode) {
      Append(iff->true_.exprs, Get(Loc));
      Append(iff->true_.exprs, Set(Glob));
    }
    Append(iff->true_.exprs, std::make_unique<wabt::CallExpr>(V(exhausted_)));
    if (local_mode) {
      Append(iff->true_.exprs, Get(Glob));
      Append(iff->true_.exprs, Set(Loc));
    }
    l.push_back(std::move(iff));
  }

  // counter -= cost, then the refill check unless `check` is false. `from` is where the
  // counter is read.
  ExprList Charge(uint64_t cost, Where from, bool local_mode, bool check = true) const {
    ExprList seq;
    Append(seq, Get(from));
    Append(seq, std::make_unique<wabt::ConstExpr>(wabt::Const::I64(std::max<uint64_t>(1, cost))));
    Append(seq, std::make_unique<wabt::BinaryExpr>(wabt::Opcode::I64Sub));
    if (check) {
      AppendStoreAndCheck(seq, local_mode);
    } else {
      Append(seq, Set(local_mode ? Loc : Glob));
    }
    return seq;
  }

  // Bulk operations do work proportional to their length operand (on top of the stack):
  // one unit per 64 bytes of memory, per 4 table elements, charged before they run.
  static int BulkShift(ExprType t) {
    switch (t) {
      case ExprType::MemoryFill:
      case ExprType::MemoryCopy:
      case ExprType::MemoryInit: return 6;
      case ExprType::TableFill:
      case ExprType::TableCopy:
      case ExprType::TableInit:
      case ExprType::TableGrow: return 2;
      default: return -1;
    }
  }

  // [n on stack] -> [n on stack], counter -= n >> shift, refill check.
  ExprList ChargeBulk(int shift, bool local_mode) const {
    ExprList seq;
    Append(seq, std::make_unique<wabt::LocalTeeExpr>(V(scratch_)));
    Append(seq, Get(local_mode ? Loc : Glob));
    Append(seq, std::make_unique<wabt::LocalGetExpr>(V(scratch_)));
    Append(seq, std::make_unique<wabt::ConvertExpr>(wabt::Opcode::I64ExtendI32U));
    Append(seq, std::make_unique<wabt::ConstExpr>(wabt::Const::I64(static_cast<uint64_t>(shift))));
    Append(seq, std::make_unique<wabt::BinaryExpr>(wabt::Opcode::I64ShrU));
    Append(seq, std::make_unique<wabt::BinaryExpr>(wabt::Opcode::I64Sub));
    AppendStoreAndCheck(seq, local_mode);
    return seq;
  }

  // Instruments `list` (charges for the pieces that pay for themselves, bulk operations,
  // and in local mode the counter sync around calls and before returns) and returns the
  // cost of the rest, which whoever enters the list charges.
  uint64_t Segment(ExprList& list, bool local_mode) {
    // The list splits at the end of each block it contains: piece 0 runs from the start,
    // piece k from just after the k-th block (kept as the block's iterator: code inserted
    // later before the next instruction must come after the piece's charge). Each piece is
    // decided from the last one back.
    std::vector<std::pair<ExprList::iterator, uint64_t>> pieces = {{list.end(), 0}};
    for (auto it = list.begin(); it != list.end(); ++it) {
      Expr& e = *it;
      uint64_t& cost = pieces.back().second;
      if (int shift = BulkShift(e.type()); shift >= 0) {
        ExprList charge = ChargeBulk(shift, local_mode);
        list.splice(it, charge);
        cost += 1;
        continue;
      }
      switch (e.type()) {
        case ExprType::Call:
          if (Index callee = wabt::cast<wabt::CallExpr>(&e)->var.index();
              callee < caller_charged_.size() && caller_charged_[callee] > 0) {
            cost += 1 + caller_charged_[callee];
            break;
          }
          [[fallthrough]];
        case ExprType::CallIndirect:
          cost += 1;
          if (!local_mode) break;
          list.insert(it, Get(Loc));
          list.insert(it, Set(Glob));
          {
            auto next = std::next(it);
            list.insert(next, Get(Glob));
            list.insert(next, Set(Loc));
            it = std::prev(next);  // the reload's local.set; the loop steps past it
          }
          break;
        case ExprType::Return:
          cost += 1;
          if (!local_mode) break;
          list.insert(it, Get(Loc));
          list.insert(it, Set(Glob));
          break;
        case ExprType::Block:
          labels_.push_back(&e);
          cost += Segment(wabt::cast<wabt::BlockExpr>(&e)->block.exprs, local_mode);
          labels_.pop_back();
          pieces.push_back({it, 0});
          break;
        case ExprType::Br:
          cost += 1;
          Target(wabt::cast<wabt::BrExpr>(&e)->var);
          break;
        case ExprType::BrIf:
          cost += 1;
          Target(wabt::cast<wabt::BrIfExpr>(&e)->var);
          break;
        case ExprType::BrTable: {
          cost += 1;
          auto* bt = wabt::cast<wabt::BrTableExpr>(&e);
          for (const wabt::Var& v : bt->targets) Target(v);
          Target(bt->default_target);
          break;
        }
        case ExprType::If: {
          auto* ie = wabt::cast<wabt::IfExpr>(&e);
          labels_.push_back(&e);
          uint64_t arms[2] = {Segment(ie->true_.exprs, local_mode),
                              Segment(ie->false_, local_mode)};
          labels_.pop_back();
          ExprList* lists[2] = {&ie->true_.exprs, &ie->false_};
          for (int k = 0; k < 2; ++k) {
            if (arms[k] > kFoldCost) {
              Prepend(*lists[k], Charge(arms[k], local_mode ? Loc : Glob, local_mode, false));
              arms[k] = 0;
            }
          }
          cost += 1 + std::max(arms[0], arms[1]);
          break;
        }
        case ExprType::Loop: {
          auto* le = wabt::cast<wabt::LoopExpr>(&e);
          labels_.push_back(&e);
          uint64_t body = Segment(le->block.exprs, local_mode);
          labels_.pop_back();
          Prepend(le->block.exprs, Charge(body, local_mode ? Loc : Glob, local_mode));
          break;
        }
        default: cost += 1; break;
      }
    }
    // Code after a block that a branch leaves is a merge point: it pays for itself, or an
    // interpreter's switch (nested blocks, a case after each) would pay for every case.
    // Code after a block only fallen out of runs in sequence and may be folded.
    uint64_t rest = 0;
    for (size_t k = pieces.size() - 1; k > 0; --k) {
      rest += pieces[k].second;
      bool merge = targeted_.count(&*pieces[k].first) > 0;
      if (rest > kFoldCost || (merge && rest > 0)) {
        ExprList charge = Charge(rest, local_mode ? Loc : Glob, local_mode, false);
        list.splice(std::next(pieces[k].first), charge);
        rest = 0;
      }
    }
    return pieces[0].second + rest;
  }

  // Marks the block, loop or if that a branch label refers to.
  void Target(const wabt::Var& v) {
    if (!v.is_index()) {  // named labels (text format): every enclosing block is a target
      targeted_.insert(labels_.begin(), labels_.end());
      return;
    }
    if (v.index() < labels_.size()) targeted_.insert(labels_[labels_.size() - 1 - v.index()]);
  }

  std::vector<const Expr*> labels_;  // enclosing blocks, loops and ifs, innermost last
  std::unordered_set<const Expr*> targeted_;
  std::vector<uint64_t> caller_charged_;
  Index g_;
  Index exhausted_;
  Index local_ = 0;
  Index scratch_ = 0;
};

// A memory stream that refuses to grow past `cap` bytes.
class CappedStream : public wabt::MemoryStream {
 public:
  explicit CappedStream(size_t cap) : cap_(cap) {}
  bool over() const { return over_; }

 protected:
  wabt::Result WriteDataImpl(size_t offset, const void* data, size_t size) override {
    if (offset > cap_ || size > cap_ - offset) {
      over_ = true;
      return wabt::Result::Error;
    }
    return MemoryStream::WriteDataImpl(offset, data, size);
  }

 private:
  size_t cap_;
  bool over_ = false;
};

// Host functions reached through a table (or any funcref) go through a thunk: a function
// of the module with the same type that calls the import directly. wasm2c gives a funcref
// to an imported function the address of the instance's field that holds the import's
// instance, not that instance, so a call_indirect of one passed the host a pointer into
// the module instance as its context (a crash or a wrong host call). A direct call passes
// the right one, so every ref.func of an import (in code, globals and element segments)
// is pointed at its thunk instead. Thunks are appended: no existing index moves.
void RouteImportReferencesThroughThunks(wabt::Module& m) {
  std::map<Index, Index> thunk_of;  // import's function index -> its thunk's
  auto thunk = [&](Index import) -> Index {
    if (auto it = thunk_of.find(import); it != thunk_of.end()) return it->second;
    const wabt::Func* imported = m.funcs[import];
    auto field = std::make_unique<wabt::FuncModuleField>();
    wabt::Func& f = field->func;
    f.decl = imported->decl;
    for (Index p = 0; p < imported->GetNumParams(); ++p) {
      f.exprs.push_back(std::make_unique<wabt::LocalGetExpr>(wabt::Var(p, wabt::Location())));
    }
    f.exprs.push_back(std::make_unique<wabt::CallExpr>(wabt::Var(import, wabt::Location())));
    m.AppendField(std::move(field));
    Index index = static_cast<Index>(m.funcs.size() - 1);
    thunk_of[import] = index;
    return index;
  };
  auto route = [&](Expr& e) {
    if (e.type() != ExprType::RefFunc) return;
    wabt::Var& v = wabt::cast<wabt::RefFuncExpr>(&e)->var;
    if (v.is_index() && v.index() < m.num_func_imports) v.set_index(thunk(v.index()));
  };
  size_t defined = m.funcs.size();  // thunks added below are not walked
  for (size_t i = m.num_func_imports; i < defined; ++i) Walk(m.funcs[i]->exprs, route);
  for (wabt::Global* g : m.globals) Walk(g->init_expr, route);
  for (wabt::ElemSegment* seg : m.elem_segments) {
    for (ExprList& l : seg->elem_exprs) Walk(l, route);
  }
}

Status AddFuelMetering(wabt::Module& m) {
  // A () -> () type for the import.
  Index void_type = wabt::kInvalidIndex;
  for (Index i = 0; i < m.types.size(); ++i) {
    auto* ft = wabt::dyn_cast<wabt::FuncType>(m.types[i]);
    if (ft && ft->sig.param_types.empty() && ft->sig.result_types.empty()) {
      void_type = i;
      break;
    }
  }
  if (void_type == wabt::kInvalidIndex) {
    auto field = std::make_unique<wabt::TypeModuleField>();
    field->type = std::make_unique<wabt::FuncType>();
    m.AppendField(std::move(field));
    void_type = static_cast<Index>(m.types.size() - 1);
  }

  // The import moat.fuel_exhausted, placed after the existing function imports.
  const Index at = m.num_func_imports;
  if (auto s = ShiftFuncIndices(m, at); !s) return s;
  auto imp = std::make_unique<wabt::FuncImport>();
  imp->module_name = std::string(kMoatModule);
  imp->field_name = std::string(kFuelExhaustedName);
  imp->func.decl.has_func_type = true;
  imp->func.decl.type_var = wabt::Var(void_type, wabt::Location());
  wabt::Func* func = &imp->func;
  wabt::Import* raw_import = imp.get();
  auto import_field = std::make_unique<wabt::ImportModuleField>(std::move(imp));
  // Keep the field list in import-section order: after the last import field.
  auto pos = m.fields.begin();
  for (auto it = m.fields.begin(); it != m.fields.end(); ++it) {
    if (it->type() == wabt::ModuleFieldType::Import) pos = std::next(it);
  }
  m.fields.insert(pos, std::move(import_field));
  m.imports.push_back(raw_import);
  m.funcs.insert(m.funcs.begin() + at, func);
  m.num_func_imports++;

  // The fuel counter: a mutable i64 global, exported so the host can refill it.
  auto gfield = std::make_unique<wabt::GlobalModuleField>();
  gfield->global.type = Type::I64;
  gfield->global.mutable_ = true;
  gfield->global.init_expr.push_back(std::make_unique<wabt::ConstExpr>(wabt::Const::I64(0)));
  m.AppendField(std::move(gfield));
  const Index fuel_global = static_cast<Index>(m.globals.size() - 1);
  auto efield = std::make_unique<wabt::ExportModuleField>();
  efield->export_.name = std::string(kFuelExportName);
  efield->export_.kind = wabt::ExternalKind::Global;
  efield->export_.var = wabt::Var(fuel_global, wabt::Location());
  m.AppendField(std::move(efield));

  // Functions reachable other than by a direct call (exported, the start function, named
  // by ref.func in code, globals or element segments, so callable through a table) keep
  // their own charges; small leaves reached only by direct calls are paid for by callers.
  std::vector<bool> escapes(m.funcs.size(), false);
  auto escape = [&](const wabt::Var& v) {
    if (v.is_index() && v.index() < escapes.size()) escapes[v.index()] = true;
  };
  auto escape_refs = [&](Expr& e) {
    if (e.type() == ExprType::RefFunc) escape(wabt::cast<wabt::RefFuncExpr>(&e)->var);
  };
  for (const wabt::Export* ex : m.exports) {
    if (ex->kind == wabt::ExternalKind::Func) escape(ex->var);
  }
  for (const wabt::Var* v : m.starts) escape(*v);
  for (wabt::Func* f : m.funcs) Walk(f->exprs, escape_refs);
  for (wabt::Global* g : m.globals) Walk(g->init_expr, escape_refs);
  for (wabt::ElemSegment* seg : m.elem_segments) {
    for (ExprList& l : seg->elem_exprs) Walk(l, escape_refs);
  }
  std::vector<uint64_t> caller_charged(m.funcs.size(), 0);
  for (Index i = m.num_func_imports; i < m.funcs.size(); ++i) {
    if (!escapes[i]) caller_charged[i] = FuelPass::CallerChargeable(*m.funcs[i]);
  }

  FuelPass pass(fuel_global, at);
  pass.SetCallerCharged(std::move(caller_charged));
  for (Index i = m.num_func_imports; i < m.funcs.size(); ++i) pass.MeterFunction(*m.funcs[i], i);
  return OkStatus();
}

std::string Shim(const wabt::Module& m, const ModuleShape& shape, bool metered) {
  size_t import_modules = 0;
  std::vector<std::string> seen;
  for (const wabt::Import* imp : m.imports) {
    if (std::find(seen.begin(), seen.end(), imp->module_name) == seen.end()) {
      seen.push_back(imp->module_name);
      ++import_modules;
    }
  }
  std::string args;
  for (size_t i = 0; i < import_modules; ++i) args += ", host";
  const wabt::Export* mem_export = m.GetExport("memory");
  bool memory = mem_export && mem_export->kind == wabt::ExternalKind::Memory;
  std::string s = "\n/* ---- moat shim: the stable ABI the host loads ---- */\n";
  s += "#define MOAT_EXPORT __attribute__((visibility(\"default\")))\n";
  s += "MOAT_EXPORT unsigned moat_abi_version(void) { return 1; }\n";
  s += "MOAT_EXPORT unsigned long moat_instance_size(void) { return sizeof(Z_m_instance_t); }\n";
  s += "MOAT_EXPORT void moat_init_module(void) { Z_m_init_module(); }\n";
  s += "MOAT_EXPORT void moat_instantiate(void* inst, void* host) { (void)host; "
       "Z_m_instantiate((Z_m_instance_t*)inst" +
       args + "); }\n";
  s += "MOAT_EXPORT void moat_free(void* inst) { Z_m_free((Z_m_instance_t*)inst); }\n";
  s += "MOAT_EXPORT void moat_start(void* inst) { Z_mZ__start((Z_m_instance_t*)inst); }\n";
  s += std::string("MOAT_EXPORT wasm_rt_memory_t* moat_memory(void* inst) { ") +
       (memory ? "return Z_mZ_memory((Z_m_instance_t*)inst);" : "(void)inst; return 0;") + " }\n";
  s += std::string("MOAT_EXPORT long long* moat_fuel(void* inst) { ") +
       (metered ? "return (long long*)Z_mZ_moat_fuel((Z_m_instance_t*)inst);"
                : "(void)inst; return 0;") +
       " }\n";
  s += "MOAT_EXPORT void moat_shape(unsigned* has_memory, unsigned* initial, unsigned* max) { "
       "*has_memory = " +
       std::to_string(shape.has_memory ? 1 : 0) +
       "; *initial = " + std::to_string(shape.initial_pages) +
       "u; *max = " + std::to_string(shape.max_pages) + "u; }\n";
  return s;
}

}  // namespace

Result<ModuleShape> ValidateWasm(std::span<const uint8_t> wasm) {
  auto module = ReadAndCheck(wasm);
  if (!module) return module.error();
  return ShapeOf(**module);
}

Result<TranslatedModule> TranslateWasm(std::span<const uint8_t> wasm,
                                       const PipelineOptions& options) {
  auto read = ReadAndCheck(wasm);
  if (!read) return read.error();
  wabt::Module& m = **read;
  TranslatedModule out;
  out.shape = ShapeOf(m);
  RouteImportReferencesThroughThunks(m);
  if (options.meter_fuel) {
    if (auto s = AddFuelMetering(m); !s) return s.error();
    wabt::Errors errors;
    if (wabt::Failed(
            wabt::ValidateModule(&m, &errors, wabt::ValidateOptions(ValidateFeatures())))) {
      return MakeError(ErrorCode::kInternal,
                       "fuel pass produced an invalid module: " + FirstLine(errors));
    }
  }
  if (wabt::Failed(wabt::GenerateNames(&m))) {
    return MakeError(ErrorCode::kInternal, "naming pass failed");
  }
  // Names are applied where they can be; one that cannot (the table of a declared element
  // segment in a module without tables) leaves its index, which the C writer takes as
  // well. wabt's own wasm2c ignores this result the same way.
  (void)wabt::ApplyNames(&m);
  // The C writer's output stops growing at the cap (its streams refuse the write).
  CappedStream c_stream(CompileLimits::kMaxCSourceBytes), h_stream(CompileLimits::kMaxCSourceBytes);
  wabt::WriteCOptions wopts;
  wopts.module_name = "m";
  wabt::Result written = wabt::WriteC(&c_stream, &h_stream, "moat_module.h", &m, wopts);
  const auto& cb = c_stream.output_buffer().data;
  const auto& hb = h_stream.output_buffer().data;
  if (c_stream.over() || h_stream.over() ||
      cb.size() + hb.size() > CompileLimits::kMaxCSourceBytes) {
    return OverCap("the module's generated C",
                   "more than " + std::to_string(CompileLimits::kMaxCSourceBytes), "bytes",
                   CompileLimits::kMaxCSourceBytes, " (total C size)");
  }
  if (wabt::Failed(written)) {
    return MakeError(ErrorCode::kInternal, "wasm2c could not translate the module");
  }
  out.c_source.assign(cb.begin(), cb.end());
  out.c_source += Shim(m, out.shape, options.meter_fuel);
  out.h_source.assign(hb.begin(), hb.end());
  if (options.meter_fuel) {
    // The refill path runs once per slice: marking it cold keeps the check at every loop
    // header a not-taken branch, out of the loop body's way.
    out.h_source +=
        "\nvoid Z_moatZ_fuel_exhausted(struct Z_moat_instance_t*) __attribute__((cold));\n";
  }
  return out;
}

namespace {

// Child -> parent message: 'E' code len message | 'T' has_memory initial max clen hlen c h.
bool WriteAll(int fd, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

template <class T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <class T>
bool Take(const std::string& in, size_t& pos, T* v) {
  if (in.size() - pos < sizeof(T)) return false;
  memcpy(v, in.data() + pos, sizeof(T));
  pos += sizeof(T);
  return true;
}

// An owned file descriptor, closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Stack of the translator's working thread (reserved, touched only as deep as needed).
constexpr size_t kTranslatorStackBytes = 256u << 20;

// Replies larger than this are cut: the generated C is capped, plus the reply's framing
// and moat's shim.
constexpr size_t kMaxReplyBytes = CompileLimits::kMaxCSourceBytes + (1u << 20);

// The translator's work, on a thread with a large stack: wabt's IR frees nested blocks
// recursively, and a refused module may nest far deeper than the cap it broke.
struct TranslateJob {
  std::span<const uint8_t> wasm;
  PipelineOptions options;
  std::string reply;
  bool out_of_memory = false;
};

void* RunTranslateJob(void* arg) {
  auto* job = static_cast<TranslateJob*>(arg);
  std::string& msg = job->reply;
  try {
    auto r = TranslateWasm(job->wasm, job->options);
    if (!r) {
      msg.push_back('E');
      Put<uint8_t>(msg, static_cast<uint8_t>(r.error().code));
      Put<uint32_t>(msg, static_cast<uint32_t>(r.error().message.size()));
      msg += r.error().message;
    } else {
      msg.push_back('T');
      Put<uint32_t>(msg, r->shape.has_memory ? 1 : 0);
      Put<uint32_t>(msg, r->shape.initial_pages);
      Put<uint32_t>(msg, r->shape.max_pages);
      Put<uint64_t>(msg, r->c_source.size());
      Put<uint64_t>(msg, r->h_source.size());
      msg += r->c_source;
      msg += r->h_source;
    }
  } catch (...) {
    job->out_of_memory = true;  // bad_alloc, most likely: the address-space limit
  }
  return nullptr;
}

}  // namespace

int TranslatorMain() {
  // Its limits (address space, CPU, file size) and its process group are set by the
  // supervisor that started it (compile_step.h).
  PipelineOptions options;
  const char* meter = getenv("MOAT_TRANSLATOR_METER");
  options.meter_fuel = !(meter && strcmp(meter, "0") == 0);
  std::vector<uint8_t> wasm;
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 2;
    if (n == 0) break;
    wasm.insert(wasm.end(), buf, buf + n);
    if (wasm.size() > Limits::kMaxModuleBytes) return 2;
  }
  TranslateJob job{wasm, options, {}, false};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kTranslatorStackBytes);
  pthread_t thread;
  if (pthread_create(&thread, &attr, RunTranslateJob, &job) == 0) {
    pthread_join(thread, nullptr);
  } else {
    RunTranslateJob(&job);  // no room for the large stack: the ordinary one
  }
  pthread_attr_destroy(&attr);
  if (job.out_of_memory) return 3;
  return WriteAll(1, job.reply.data(), job.reply.size()) ? 0 : 1;
}

Result<TranslatedModule> TranslateWasmIsolated(std::span<const uint8_t> wasm,
                                               const PipelineOptions& options,
                                               const CompileBudget& budget) {
  // The module goes in through a memfd (no pipe to block on, no SIGPIPE if the child
  // dies early); the reply comes back through a pipe.
  Fd in(memfd_create("moat-wasm", MFD_CLOEXEC));
  if (in.get() < 0)
    return MakeError(ErrorCode::kInternal, std::string("memfd_create: ") + strerror(errno));
  if (!WriteAll(in.get(), wasm.data(), wasm.size()) || lseek(in.get(), 0, SEEK_SET) != 0) {
    return MakeError(ErrorCode::kInternal, "cannot stage the module for translation");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return MakeError(ErrorCode::kInternal, std::string("pipe: ") + strerror(errno));
  }
  Fd reply_in(fds[0]), reply_out(fds[1]);
  // A fresh process (posix_spawn, not fork): nothing of this multithreaded process's
  // locks or descriptors comes along; only stdin, stdout and /dev/null on stderr.
  ChildSpec spec;
  spec.argv = {HelperPath()};
  spec.env = {std::string("MOAT_TRANSLATOR_METER=") + (options.meter_fuel ? "1" : "0")};
  spec.stdin_fd = in.get();
  spec.stdout_fd = reply_out.get();
  // Not under AddressSanitizer, whose shadow memory is a huge reservation of its own.
#if !defined(__SANITIZE_ADDRESS__)
  spec.memory_bytes = budget.limits().memory_bytes;
#endif
  spec.cpu_seconds = budget.cpu_seconds();
  spec.file_bytes = CompileLimits::kMaxFileBytes;
  auto child = SupervisedChild::Start(spec);
  if (!child) return child.error();
  in.reset();
  reply_out.reset();
  std::string reply;
  ChildEnd end = child->Wait(budget, reply_in.get(), &reply, kMaxReplyBytes);
  switch (end.kind) {
    case ChildEnd::kStopped: return budget.StopError();
    case ChildEnd::kOverflow:
      return OverCap("the module's translation", "more than " + std::to_string(kMaxReplyBytes),
                     "bytes", kMaxReplyBytes, " (total C size)");
    case ChildEnd::kSignaled:
      if (end.code == SIGXCPU) return budget.CpuError();
      if (end.code == SIGXFSZ) return budget.FileSizeError();
      return Invalid("malformed module: the wasm parser failed on it (signal " +
                     std::to_string(end.code) + ")");
    case ChildEnd::kExited: break;
  }
  if (end.code == 3) return budget.MemoryError();
  const std::string& in_msg = reply;
  size_t pos = 1;
  if (in_msg.empty() || end.code != 0) {
    return MakeError(ErrorCode::kInternal,
                     "module translation failed (status " + std::to_string(end.code) + ")");
  }
  if (in_msg[0] == 'E') {
    uint8_t code = 0;
    uint32_t len = 0;
    if (!Take(in_msg, pos, &code) || !Take(in_msg, pos, &len) || in_msg.size() - pos < len) {
      return MakeError(ErrorCode::kInternal, "module translation: short reply");
    }
    return MakeError(static_cast<ErrorCode>(code), in_msg.substr(pos, len));
  }
  TranslatedModule out;
  uint32_t has_memory = 0;
  uint64_t clen = 0, hlen = 0;
  if (!Take(in_msg, pos, &has_memory) || !Take(in_msg, pos, &out.shape.initial_pages) ||
      !Take(in_msg, pos, &out.shape.max_pages) || !Take(in_msg, pos, &clen) ||
      !Take(in_msg, pos, &hlen) || clen > in_msg.size() - pos ||
      hlen != in_msg.size() - pos - clen) {
    return MakeError(ErrorCode::kInternal, "module translation: short reply");
  }
  out.shape.has_memory = has_memory != 0;
  out.c_source = in_msg.substr(pos, clen);
  out.h_source = in_msg.substr(pos + clen, hlen);
  return out;
}

}  // namespace moat
