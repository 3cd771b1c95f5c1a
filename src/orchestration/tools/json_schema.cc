#include "orchestration/tools/json_schema.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/json_text.h"

namespace moat::tools {

using nlohmann::json;

namespace {

// Instance text echoed in a message is cut at this many code points.
constexpr size_t kMaxEcho = 80;
// A pattern whose counted repetitions expand to more than this many atoms is refused:
// matching time grows with it.
constexpr size_t kMaxPatternAtoms = 1000;
// Validation frames (one per subschema applied); the instance depth bounds the recursion
// through properties and items, this bounds $ref chains and nested applicators.
constexpr size_t kMaxEvalDepth = 1024;
// The validation budget is checked for cancellation every this many steps.
constexpr uint64_t kCancelCheckSteps = 4096;
// An enum listed in a message shows at most this many values.
constexpr size_t kMaxEnumShown = 10;

enum TypeBit : uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kString = 32,
  kInteger = 64,
};

constexpr std::pair<std::string_view, uint8_t> kTypeNames[] = {
    {"null", kNull},     {"boolean", kBoolean}, {"object", kObject},   {"array", kArray},
    {"number", kNumber}, {"string", kString},   {"integer", kInteger},
};

}  // namespace

namespace schema_internal {

struct Pattern {
  std::string source;
  std::regex re;
  size_t atoms = 1;  // its size once counted repetitions are expanded (matching cost)
};

struct Node {
  std::string location;         // JSON Pointer of this subschema in the schema document
  std::optional<bool> boolean;  // a `true` / `false` schema
  uint8_t types = 0;            // 0: no "type" keyword
  std::optional<std::vector<json>> enum_values;
  std::optional<json> const_value;
  std::map<std::string, Node*> properties;
  std::vector<std::string> required;
  Node* additional_properties = nullptr;
  std::vector<std::pair<Pattern, Node*>> pattern_properties;
  std::vector<Node*> prefix_items;
  Node* items = nullptr;
  std::optional<uint64_t> min_items, max_items, min_length, max_length;
  bool unique_items = false;
  std::optional<json> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;
  std::optional<Pattern> pattern;
  std::vector<Node*> all_of, any_of, one_of;
  Node* not_schema = nullptr;
  Node* if_schema = nullptr;
  Node* then_schema = nullptr;
  Node* else_schema = nullptr;
  std::optional<std::string> ref;  // as written
  Node* ref_target = nullptr;
};

struct Compiled {
  std::vector<std::unique_ptr<Node>> nodes;
  Node* root = nullptr;
};

}  // namespace schema_internal

namespace {

using schema_internal::Compiled;
using schema_internal::Node;
using schema_internal::Pattern;

// ---- Text helpers ----------------------------------------------------------------------

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Appends `s` escaped like a JSON string body (without quotes), at most `max_points`
// code points, then "..." if cut. Invalid UTF-8 bytes show as \xNN.
void AppendEscaped(std::string& out, std::string_view s, size_t max_points) {
  size_t points = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (points == max_points) {
      out += "...";
      return;
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    char buf[8];
    if (!valid) {
      snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      ++i;
    } else if (len > 1) {
      out.append(s.substr(i, len));
      i += len;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n", ++i;
    } else if (c == '\t') {
      out += "\\t", ++i;
    } else if (c == '\r') {
      out += "\\r", ++i;
    } else if (c < 0x20 || c == 0x7F) {
      snprintf(buf, sizeof buf, "\\u%04X", c);
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
      ++i;
    }
    ++points;
  }
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  AppendEscaped(out, s, kMaxEcho);
  out += '"';
  return out;
}

// A JSON value as compact text, cut at kMaxEcho code points; strings are quoted.
std::string Show(const json& v) {
  if (v.is_string()) return Quote(v.get_ref<const std::string&>());
  std::string text = DumpJson(v);
  if (Utf8Length(text) <= kMaxEcho) return text;
  std::string out;
  AppendEscaped(out, text, kMaxEcho);  // escapes the quotes of nested strings; fine
  return out;
}

std::string PointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Plural(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "number";
    default: return "invalid value";
  }
}

std::string ListTypes(uint8_t types) {
  std::vector<std::string_view> names;
  for (const auto& [name, bit] : kTypeNames) {
    if ((types & bit) != 0) names.push_back(name);
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

// Depth of nesting of `v` (a scalar is 1), without recursion: true when over `limit`.
bool DeeperThan(const json& v, size_t limit) {
  struct Frame {
    json::const_iterator it, end;
  };
  if (!v.is_structured()) return limit < 1;
  std::vector<Frame> stack;
  stack.push_back({v.cbegin(), v.cend()});
  while (!stack.empty()) {
    if (stack.size() > limit) return true;
    Frame& top = stack.back();
    if (top.it == top.end) {
      stack.pop_back();
      continue;
    }
    const json& child = *top.it;
    ++top.it;
    if (child.is_structured()) {
      if (stack.size() + 1 > limit) return true;
      stack.push_back({child.cbegin(), child.cend()});
    }
  }
  return false;
}

// ---- Numbers ---------------------------------------------------------------------------
// long double holds every int64, uint64 and double exactly (x86-64: 64-bit mantissa).

long double AsLong(const json& v) {
  if (v.is_number_unsigned()) return static_cast<long double>(v.get<uint64_t>());
  if (v.is_number_integer()) return static_cast<long double>(v.get<int64_t>());
  return static_cast<long double>(v.get<double>());
}

bool IsIntegral(const json& v) {
  if (v.is_number_integer()) return true;  // includes unsigned
  if (!v.is_number_float()) return false;
  double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

bool IsMultipleOf(const json& v, const json& divisor) {
  if (v.is_number_integer() && divisor.is_number_integer()) {
    auto magnitude = [](const json& j) -> uint64_t {
      if (j.is_number_unsigned()) return j.get<uint64_t>();
      int64_t i = j.get<int64_t>();
      return i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
    };
    uint64_t d = magnitude(divisor);
    return d != 0 && magnitude(v) % d == 0;
  }
  long double q = AsLong(v) / AsLong(divisor);
  if (!std::isfinite(q)) return false;
  long double r = std::nearbyint(q);
  return std::fabs(q - r) <= std::fabs(q) * 1e-12L;
}

// The number as written in a message.
std::string ShowNumber(const json& v) { return DumpJson(v); }

// ---- Patterns --------------------------------------------------------------------------

// Walks a pattern that std::regex already accepted, refusing lookahead and estimating the
// size of the automaton once counted repetitions ({n,m}) are expanded.
class PatternScanner {
 public:
  explicit PatternScanner(std::string_view p) : p_(p) {}

  // Empty when acceptable, else the reason.
  std::string Check() {
    size_t atoms = Alternation();
    atoms_ = std::max<size_t>(atoms, 1);
    if (!error_.empty()) return error_;
    if (atoms > kMaxPatternAtoms) {
      return "too complex once its repetitions are expanded (more than " +
             std::to_string(kMaxPatternAtoms) + " parts)";
    }
    return "";
  }
  // After Check(): the size of the pattern once expanded (at least 1).
  size_t atoms() const { return atoms_; }

 private:
  size_t Alternation() {
    size_t total = Sequence();
    while (ok() && i_ < p_.size() && p_[i_] == '|') {
      ++i_;
      total = Add(total, Sequence());
    }
    return total;
  }

  size_t Sequence() {
    size_t total = 0;
    while (ok() && i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
      size_t atom = Atom();
      total = Add(total, Quantified(atom));
    }
    return total;
  }

  size_t Atom() {
    char c = p_[i_++];
    if (c == '\\') {
      if (i_ < p_.size()) ++i_;
      return 1;
    }
    if (c == '[') {
      if (i_ < p_.size() && p_[i_] == '^') ++i_;
      if (i_ < p_.size() && p_[i_] == ']') ++i_;  // a leading ']' is literal
      while (i_ < p_.size() && p_[i_] != ']') {
        if (p_[i_] == '\\') ++i_;
        ++i_;
      }
      ++i_;
      return 1;
    }
    if (c == '(') {
      if (p_.substr(i_, 2) == "?=" || p_.substr(i_, 2) == "?!") {
        error_ = "uses lookahead ((?= or (?!), which is not supported";
        return 0;
      }
      if (p_.substr(i_, 2) == "?:") i_ += 2;
      size_t inner = Alternation();
      if (i_ < p_.size() && p_[i_] == ')') ++i_;
      return inner + 1;
    }
    return 1;
  }

  size_t Quantified(size_t atom) {
    if (i_ >= p_.size()) return atom;
    char c = p_[i_];
    size_t times = 1;
    if (c == '*' || c == '+' || c == '?') {
      ++i_;
      atom = Add(atom, 1);
    } else if (c == '{' && i_ + 1 < p_.size() && p_[i_ + 1] >= '0' && p_[i_ + 1] <= '9') {
      ++i_;
      uint64_t lo = Number(), hi = lo;
      if (i_ < p_.size() && p_[i_] == ',') {
        ++i_;
        hi = (i_ < p_.size() && p_[i_] == '}') ? lo : Number();
      }
      if (i_ < p_.size() && p_[i_] == '}') ++i_;
      times = static_cast<size_t>(std::max<uint64_t>({lo, hi, 1}));
    } else {
      return atom;
    }
    if (i_ < p_.size() && p_[i_] == '?') ++i_;  // lazy
    return Mul(atom, times);
  }

  uint64_t Number() {
    uint64_t n = 0;
    while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') {
      n = std::min<uint64_t>(n * 10 + static_cast<uint64_t>(p_[i_] - '0'), 1u << 30);
      ++i_;
    }
    return n;
  }

  static size_t Add(size_t a, size_t b) { return std::min<size_t>(a + b, 1u << 30); }
  static size_t Mul(size_t a, size_t b) {
    return (a != 0 && b > (1u << 30) / a) ? (1u << 30) : a * b;
  }
  bool ok() const { return error_.empty(); }

  std::string_view p_;
  size_t i_ = 0;
  size_t atoms_ = 1;
  std::string error_;
};

const auto kRegexFlags = std::regex::ECMAScript
#ifdef __GLIBCXX__
                         // Breadth-first executor: no exponential backtracking, no
                         // recursion per input character; refuses backreferences.
                         | std::regex_constants::__polynomial
#endif
    ;

// Compiles `source` as an unanchored ECMAScript pattern, or says why not.
Result<Pattern> CompilePattern(const std::string& source) {
  if (Utf8Length(source) > JsonSchema::kMaxPatternLength) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "longer than " + std::to_string(JsonSchema::kMaxPatternLength) + " characters");
  }
  // libstdc++ parses the numbers of "{m,n}" and back-references "\\N" into a long
  // without an overflow check (undefined behaviour, found by the fuzzer): refuse long ones.
  auto digits_at = [&](size_t i) {
    size_t n = 0;
    while (i + n < source.size() && source[i + n] >= '0' && source[i + n] <= '9') ++n;
    return n;
  };
  for (size_t i = 0; i < source.size(); ++i) {
    size_t run = 0;
    if (source[i] == '\\') {
      run = digits_at(i + 1);
      if (run == 0) ++i;  // skip the escaped character
    } else if (source[i] == '{') {
      run = digits_at(i + 1);
      size_t after = i + 1 + run;
      if (after < source.size() && source[after] == ',') run = std::max(run, digits_at(after + 1));
    }
    if (run > 9) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a repetition count or back-reference has more than 9 digits");
    }
  }
  try {
    std::regex alone(source, kRegexFlags);  // syntax check of the pattern by itself
    (void)alone;
  } catch (const std::regex_error& e) {
    if (e.code() == std::regex_constants::error_complexity) {
      return MakeError(ErrorCode::kInvalidArgument, "uses backreferences, which are not supported");
    }
    return MakeError(ErrorCode::kInvalidArgument, std::string("invalid regex: ") + e.what());
  }
  PatternScanner scanner(source);
  std::string why = scanner.Check();
  if (!why.empty()) return MakeError(ErrorCode::kInvalidArgument, why);
  try {
    // The pattern is balanced (it compiled alone), so wrapping it keeps its meaning. A
    // search is then one breadth-first pass from the start (match_continuous) instead of
    // one pass per start position.
    return Pattern{source, std::regex("[\\s\\S]*?(?:" + source + ")", kRegexFlags),
                   scanner.atoms()};
  } catch (const std::regex_error& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("invalid regex: ") + e.what());
  }
}

// nullopt: the text is too long to be matched (see kMaxPatternInputBytes).
std::optional<bool> PatternMatches(const Pattern& p, const std::string& text) {
  if (text.size() > JsonSchema::kMaxPatternInputBytes) return std::nullopt;
  try {
    return std::regex_search(text, p.re, std::regex_constants::match_continuous);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Validation steps one match costs: its time grows with the text's length times the
// pattern's expanded size, and two units of that product take about as long as a step.
uint64_t PatternCost(const Pattern& p, const std::string& text) {
  size_t len = std::min(text.size(), JsonSchema::kMaxPatternInputBytes);
  return 1 + static_cast<uint64_t>(len) * p.atoms / 2;
}

// ---- Compiling -------------------------------------------------------------------------

class Compiler {
 public:
  explicit Compiler(Compiled& out) : out_(out) {}

  Result<Node*> CompileNode(const json& s, const std::string& loc, size_t depth);
  Status ResolveRefs();
  Status CheckInPlaceCycles();
  Status CheckExpansion();

 private:
  Error Fail(const std::string& loc, const std::string& what) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "schema at " + (loc.empty() ? std::string("/") : loc) + ": " + what);
  }
  Result<Node*> Sub(const json& s, const std::string& loc, std::string_view token, size_t depth) {
    return CompileNode(s, loc + "/" + PointerToken(token), depth + 1);
  }
  Result<std::vector<Node*>> SubArray(const json& s, const std::string& loc, const std::string& key,
                                      size_t depth, bool allow_empty);
  Result<std::map<std::string, Node*>> SubObject(const json& s, const std::string& loc,
                                                 const std::string& key, size_t depth);
  Result<uint64_t> Count(const json& v, const std::string& loc, const std::string& key);

  Compiled& out_;
  std::unordered_map<std::string, Node*> by_location_;
};

Result<uint64_t> Compiler::Count(const json& v, const std::string& loc, const std::string& key) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  if (v.is_number_float() && IsIntegral(v) && v.get<double>() >= 0 && v.get<double>() < 1.8e19) {
    return static_cast<uint64_t>(v.get<double>());
  }
  return Fail(loc, "\"" + key + "\" must be a non-negative integer");
}

Result<std::vector<Node*>> Compiler::SubArray(const json& s, const std::string& loc,
                                              const std::string& key, size_t depth,
                                              bool allow_empty) {
  if (!s.is_array() || (!allow_empty && s.empty())) {
    return Fail(loc, "\"" + key + "\" must be a" + (allow_empty ? "n" : " non-empty") +
                         " array of schemas");
  }
  std::vector<Node*> nodes;
  for (size_t i = 0; i < s.size(); ++i) {
    auto n = CompileNode(s[i], loc + "/" + key + "/" + std::to_string(i), depth + 1);
    if (!n) return n.error();
    nodes.push_back(*n);
  }
  return nodes;
}

Result<std::map<std::string, Node*>> Compiler::SubObject(const json& s, const std::string& loc,
                                                         const std::string& key, size_t depth) {
  if (!s.is_object()) return Fail(loc, "\"" + key + "\" must be an object of schemas");
  std::map<std::string, Node*> nodes;
  for (const auto& [name, sub] : s.items()) {
    auto n = CompileNode(sub, loc + "/" + PointerToken(key) + "/" + PointerToken(name), depth + 1);
    if (!n) return n.error();
    nodes.emplace(name, *n);
  }
  return nodes;
}

Result<Node*> Compiler::CompileNode(const json& s, const std::string& loc, size_t depth) {
  if (depth > JsonSchema::kMaxDepth) {
    return Fail(loc, "nested deeper than " + std::to_string(JsonSchema::kMaxDepth) + " levels");
  }
  out_.nodes.push_back(std::make_unique<Node>());
  Node* node = out_.nodes.back().get();
  node->location = loc;
  by_location_[loc] = node;
  if (s.is_boolean()) {
    node->boolean = s.get<bool>();
    return node;
  }
  if (!s.is_object()) {
    return Fail(loc, "a schema must be an object or a boolean, got " + TypeName(s));
  }
  static const char* const kIgnored[] = {
      "title",    "description", "default",    "examples", "$schema",   "$id",
      "$comment", "format",      "deprecated", "readOnly", "writeOnly",
  };
  for (const auto& [key, v] : s.items()) {
    auto fail_type = [&](const std::string& what) {
      return Fail(loc, "\"" + key + "\" must be " + what);
    };
    if (std::find(std::begin(kIgnored), std::end(kIgnored), key) != std::end(kIgnored)) {
      continue;
    } else if (key == "type") {
      std::vector<json> names = v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v};
      if (names.empty()) return fail_type("a type name or a non-empty array of type names");
      for (const json& name : names) {
        uint8_t bit = 0;
        if (name.is_string()) {
          for (const auto& [n, b] : kTypeNames) {
            if (name.get_ref<const std::string&>() == n) bit = b;
          }
        }
        if (bit == 0) {
          return Fail(loc, "unknown type " + Show(name) +
                               " (expected null, boolean, object, array, number, string or "
                               "integer)");
        }
        node->types |= bit;
      }
    } else if (key == "enum") {
      if (!v.is_array()) return fail_type("an array");
      node->enum_values = v.get<std::vector<json>>();
    } else if (key == "const") {
      node->const_value = v;
    } else if (key == "properties") {
      auto m = SubObject(v, loc, key, depth);
      if (!m) return m.error();
      node->properties = std::move(*m);
    } else if (key == "required") {
      if (!v.is_array()) return fail_type("an array of strings");
      for (const json& r : v) {
        if (!r.is_string()) return fail_type("an array of strings");
        node->required.push_back(r.get<std::string>());
      }
    } else if (key == "additionalProperties" || key == "items" || key == "not" || key == "if" ||
               key == "then" || key == "else") {
      if (key == "items" && v.is_array()) {
        return Fail(loc,
                    "unsupported form of \"items\": an array of schemas (draft-07 tuples); "
                    "use \"prefixItems\"");
      }
      auto n = Sub(v, loc, key, depth);
      if (!n) return n.error();
      Node*& slot = key == "additionalProperties" ? node->additional_properties
                    : key == "items"              ? node->items
                    : key == "not"                ? node->not_schema
                    : key == "if"                 ? node->if_schema
                    : key == "then"               ? node->then_schema
                                                  : node->else_schema;
      slot = *n;
    } else if (key == "patternProperties") {
      if (!v.is_object()) return fail_type("an object of schemas");
      for (const auto& [source, sub] : v.items()) {
        auto p = CompilePattern(source);
        if (!p) {
          return Fail(loc, "patternProperties key " + Quote(source) + ": " + p.error().message);
        }
        auto n = CompileNode(sub, loc + "/patternProperties/" + PointerToken(source), depth + 1);
        if (!n) return n.error();
        node->pattern_properties.emplace_back(std::move(*p), *n);
      }
    } else if (key == "prefixItems") {
      auto a = SubArray(v, loc, key, depth, /*allow_empty=*/false);
      if (!a) return a.error();
      node->prefix_items = std::move(*a);
    } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
      auto a = SubArray(v, loc, key, depth, /*allow_empty=*/false);
      if (!a) return a.error();
      (key == "allOf"   ? node->all_of
       : key == "anyOf" ? node->any_of
                        : node->one_of) = std::move(*a);
    } else if (key == "minItems" || key == "maxItems" || key == "minLength" || key == "maxLength") {
      auto n = Count(v, loc, key);
      if (!n) return n.error();
      (key == "minItems"    ? node->min_items
       : key == "maxItems"  ? node->max_items
       : key == "minLength" ? node->min_length
                            : node->max_length) = *n;
    } else if (key == "uniqueItems") {
      if (!v.is_boolean()) return fail_type("a boolean");
      node->unique_items = v.get<bool>();
    } else if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
               key == "exclusiveMaximum") {
      if (!v.is_number()) return fail_type("a number");
      (key == "minimum"            ? node->minimum
       : key == "maximum"          ? node->maximum
       : key == "exclusiveMinimum" ? node->exclusive_minimum
                                   : node->exclusive_maximum) = v;
    } else if (key == "multipleOf") {
      if (!v.is_number() || AsLong(v) <= 0) return fail_type("a number greater than 0");
      node->multiple_of = v;
    } else if (key == "pattern") {
      if (!v.is_string()) return fail_type("a string");
      auto p = CompilePattern(v.get<std::string>());
      if (!p) return Fail(loc, "\"pattern\" " + p.error().message);
      node->pattern = std::move(*p);
    } else if (key == "$ref") {
      if (!v.is_string()) return fail_type("a string");
      node->ref = v.get<std::string>();
    } else if (key == "$defs" || key == "definitions") {
      auto m = SubObject(v, loc, key, depth);
      if (!m) return m.error();
    } else {
      return Fail(loc, "unsupported keyword " + Quote(key));
    }
  }
  return node;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status Compiler::ResolveRefs() {
  for (const auto& owned : out_.nodes) {
    Node* node = owned.get();
    if (!node->ref) continue;
    const std::string& ref = *node->ref;
    if (ref.empty() || ref[0] != '#' || (ref.size() > 1 && ref[1] != '/')) {
      return Fail(node->location,
                  "unsupported $ref " + Quote(ref) +
                      ": only references within this schema (\"#\", \"#/$defs/NAME\") are "
                      "supported");
    }
    std::string pointer;  // the fragment, percent-decoded
    for (size_t i = 1; i < ref.size(); ++i) {
      if (ref[i] == '%' && i + 2 < ref.size() && HexValue(ref[i + 1]) >= 0 &&
          HexValue(ref[i + 2]) >= 0) {
        pointer += static_cast<char>(HexValue(ref[i + 1]) * 16 + HexValue(ref[i + 2]));
        i += 2;
      } else {
        pointer += ref[i];
      }
    }
    auto it = by_location_.find(pointer);
    if (it == by_location_.end()) {
      return Fail(node->location, "unresolvable $ref " + Quote(ref));
    }
    node->ref_target = it->second;
  }
  return OkStatus();
}

// Subschemas applied to the same instance location: a cycle among these never ends.
std::vector<Node*> InPlaceChildren(const Node* n) {
  std::vector<Node*> out;
  if (n->ref_target != nullptr) out.push_back(n->ref_target);
  for (const auto* list : {&n->all_of, &n->any_of, &n->one_of}) {
    out.insert(out.end(), list->begin(), list->end());
  }
  for (Node* c : {n->not_schema, n->if_schema, n->then_schema, n->else_schema}) {
    if (c != nullptr) out.push_back(c);
  }
  return out;
}

Status Compiler::CheckInPlaceCycles() {
  // Iterative depth-first search (a long $ref chain must not recurse deeply here either).
  enum Color : uint8_t { kWhite, kGrey, kBlack };
  std::unordered_map<const Node*, Color> color;
  for (const auto& owned : out_.nodes) {
    if (color[owned.get()] != kWhite) continue;
    std::vector<std::pair<Node*, std::vector<Node*>>> stack;
    stack.emplace_back(owned.get(), InPlaceChildren(owned.get()));
    color[owned.get()] = kGrey;
    while (!stack.empty()) {
      auto& [node, children] = stack.back();
      if (children.empty()) {
        color[node] = kBlack;
        stack.pop_back();
        continue;
      }
      Node* child = children.back();
      children.pop_back();
      Color c = color[child];
      if (c == kGrey) {
        return Fail(node->location,
                    "$ref cycle through " + (child->location.empty() ? "/" : child->location) +
                        " that never reaches a property or an item (it would never end)");
      }
      if (c == kWhite) {
        color[child] = kGrey;
        stack.emplace_back(child, InPlaceChildren(child));
      }
    }
  }
  return OkStatus();
}

// Applying a node to one value applies every subschema reachable through in-place
// applicators ($ref, allOf, anyOf, oneOf, not, if/then/else) once per path: a chain of n
// levels with two references each costs 2^n. The number of paths from each node is
// counted (cycles are refused before this), and a node past the bound is refused.
Status Compiler::CheckExpansion() {
  const uint64_t cap = JsonSchema::kMaxSubschemasPerValue;
  std::unordered_map<const Node*, uint64_t> cost;  // saturates at cap + 1
  for (const auto& owned : out_.nodes) {
    if (cost.count(owned.get()) != 0) continue;
    // Iterative post-order: a node's cost once all its children have one.
    std::vector<std::pair<Node*, bool>> stack{{owned.get(), false}};
    while (!stack.empty()) {
      auto [node, expanded] = stack.back();
      stack.pop_back();
      if (cost.count(node) != 0) continue;
      std::vector<Node*> children = InPlaceChildren(node);
      if (!expanded) {
        stack.emplace_back(node, true);
        for (Node* c : children) {
          if (cost.count(c) == 0) stack.emplace_back(c, false);
        }
        continue;
      }
      uint64_t total = 1;
      for (Node* c : children) total = std::min(cap + 1, total + cost.at(c));
      cost[node] = total;
      if (total > cap) {
        return Fail(node->location,
                    "applying this schema to one value would take more than " +
                        std::to_string(cap) +
                        " subschema steps ($ref, allOf, anyOf, oneOf, not and if/then/else "
                        "multiply); refusing it");
      }
    }
  }
  return OkStatus();
}

// ---- Validating ------------------------------------------------------------------------

struct Failure {
  std::string pointer;  // into the instance, "" for the root
  std::string message;
  bool limit = false;  // a validation limit was hit or it was cancelled: fail, whatever
                       // the context
};

std::string Format(const Failure& f) {
  return (f.pointer.empty() ? std::string("/") : f.pointer) + ": " + f.message;
}

class Validator {
 public:
  explicit Validator(const std::atomic<bool>* cancel) : cancel_(cancel) {}
  // nullopt when `v` is valid against `n`.
  std::optional<Failure> Check(const Node* n, const json& v);

 private:
  struct Segment {
    const std::string* key;  // null for an array index
    size_t index;
  };

  std::optional<Failure> CheckChild(const Node* n, const json& v, Segment seg) {
    path_.push_back(seg);
    auto f = Check(n, v);
    path_.pop_back();
    return f;
  }
  [[gnu::noinline]] Failure Fail(std::string message) const {
    return Failure{Pointer(), std::move(message)};
  }
  std::string Pointer() const;

  // Kept out of line: Check() recurses, so its own frame must stay small.
  [[gnu::noinline]] std::optional<Failure> CheckValue(const Node* n, const json& v);
  [[gnu::noinline]] std::optional<Failure> CheckNumber(const Node* n, const json& v);
  [[gnu::noinline]] std::optional<Failure> CheckString(const Node* n, const std::string& s);
  [[gnu::noinline]] std::optional<Failure> CheckObject(const Node* n, const json& v);
  [[gnu::noinline]] std::optional<Failure> CheckArray(const Node* n, const json& v);
  [[gnu::noinline]] std::optional<Failure> CheckApplicators(const Node* n, const json& v);
  [[gnu::noinline]] std::optional<Failure> CheckAlternatives(const std::vector<Node*>& branches,
                                                             const json& v, bool exactly_one);

  // Charges `steps` to the validation budget: a limit failure once it is spent or the
  // validation was cancelled.
  std::optional<Failure> Spend(uint64_t steps);

  std::vector<Segment> path_;
  size_t depth_ = 0;
  uint64_t steps_ = 0;
  uint64_t next_cancel_check_ = kCancelCheckSteps;
  const std::atomic<bool>* cancel_;
};

std::optional<Failure> Validator::Spend(uint64_t steps) {
  steps_ += steps;
  if (steps_ > JsonSchema::kMaxValidationSteps) {
    Failure f =
        Fail("validation needs more than " + std::to_string(JsonSchema::kMaxValidationSteps) +
             " steps (the limit); the schema applies its subschemas too many times to "
             "this value");
    f.limit = true;
    return f;
  }
  if (steps_ >= next_cancel_check_) {
    next_cancel_check_ = steps_ + kCancelCheckSteps;
    if (cancel_ != nullptr && cancel_->load(std::memory_order_relaxed)) {
      Failure f = Fail("validation cancelled");
      f.limit = true;
      return f;
    }
  }
  return std::nullopt;
}

std::string Validator::Pointer() const {
  std::string out;
  for (const Segment& s : path_) {
    out += '/';
    if (s.key == nullptr) {
      out += std::to_string(s.index);
    } else {
      std::string token = PointerToken(*s.key);
      AppendEscaped(out, token, 40);
    }
  }
  if (out.size() > 200) out = out.substr(0, 60) + "/.../" + out.substr(out.size() - 135);
  return out;
}

bool TypeMatches(uint8_t types, const json& v) {
  switch (v.type()) {
    case json::value_t::null: return (types & kNull) != 0;
    case json::value_t::boolean: return (types & kBoolean) != 0;
    case json::value_t::object: return (types & kObject) != 0;
    case json::value_t::array: return (types & kArray) != 0;
    case json::value_t::string: return (types & kString) != 0;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return (types & kNumber) != 0 || ((types & kInteger) != 0 && IsIntegral(v));
    default: return false;
  }
}

std::optional<Failure> Validator::Check(const Node* n, const json& v) {
  if (depth_ >= kMaxEvalDepth) {
    Failure f = Fail("schema applies more than " + std::to_string(kMaxEvalDepth) +
                     " nested subschemas here; refusing to go deeper");
    f.limit = true;
    return f;
  }
  if (auto f = Spend(1)) return f;
  struct DepthGuard {
    size_t& d;
    explicit DepthGuard(size_t& depth) : d(++depth) {}
    ~DepthGuard() { --d; }
  } guard(depth_);

  if (n->boolean) {
    if (*n->boolean) return std::nullopt;
    return Fail("no value is allowed here");
  }
  if (auto f = CheckValue(n, v)) return f;
  std::optional<Failure> f;
  if (v.is_number()) {
    f = CheckNumber(n, v);
  } else if (v.is_string()) {
    f = CheckString(n, v.get_ref<const std::string&>());
  } else if (v.is_object()) {
    f = CheckObject(n, v);
  } else if (v.is_array()) {
    f = CheckArray(n, v);
  }
  if (f) return f;
  return CheckApplicators(n, v);
}

std::optional<Failure> Validator::CheckValue(const Node* n, const json& v) {
  if (n->types != 0 && !TypeMatches(n->types, v)) {
    std::string got = TypeName(v);
    if ((n->types & kInteger) != 0 && v.is_number()) got = "a number with a fraction";
    return Fail("expected " + ListTypes(n->types) + ", got " + got);
  }
  if (n->const_value && !(v == *n->const_value)) return Fail("must be " + Show(*n->const_value));
  if (n->enum_values) {
    const auto& values = *n->enum_values;
    if (auto f = Spend(values.size() / 16)) return f;
    if (std::find(values.begin(), values.end(), v) == values.end()) {
      std::string list;
      for (size_t i = 0; i < values.size() && i < kMaxEnumShown; ++i) {
        list += (i > 0 ? ", " : "") + Show(values[i]);
      }
      if (values.size() > kMaxEnumShown) {
        list += ", ... (" + std::to_string(values.size()) + " values)";
      }
      if (values.empty()) return Fail("no value is allowed here (empty enum)");
      return Fail(values.size() == 1 ? "must be " + list : "must be one of " + list);
    }
  }
  return std::nullopt;
}

std::optional<Failure> Validator::CheckNumber(const Node* n, const json& v) {
  long double x = AsLong(v);
  if (n->minimum && x < AsLong(*n->minimum)) return Fail("must be >= " + ShowNumber(*n->minimum));
  if (n->maximum && x > AsLong(*n->maximum)) return Fail("must be <= " + ShowNumber(*n->maximum));
  if (n->exclusive_minimum && x <= AsLong(*n->exclusive_minimum)) {
    return Fail("must be > " + ShowNumber(*n->exclusive_minimum));
  }
  if (n->exclusive_maximum && x >= AsLong(*n->exclusive_maximum)) {
    return Fail("must be < " + ShowNumber(*n->exclusive_maximum));
  }
  if (n->multiple_of && !IsMultipleOf(v, *n->multiple_of)) {
    return Fail("must be a multiple of " + ShowNumber(*n->multiple_of));
  }
  return std::nullopt;
}

std::optional<Failure> Validator::CheckString(const Node* n, const std::string& s) {
  if (n->min_length || n->max_length) {
    // Characters are counted only as far as a bound needs: a string of B bytes has at most
    // B characters, so under maxLength in bytes needs no count for it, and minLength stops
    // counting once reached (a 3 MB argument is not walked for "minLength": 1).
    const bool count_all = n->max_length && s.size() > *n->max_length;
    size_t len = 0;
    if (count_all) {
      len = Utf8Length(s);
    } else if (n->min_length) {
      for (size_t i = 0; i < s.size() && len < *n->min_length; ++i) {
        len += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
      }
    }
    if (n->min_length && len < *n->min_length) {
      return Fail("must be at least " + Plural(*n->min_length, "character", "characters") +
                  " long");
    }
    if (count_all && len > *n->max_length) {
      return Fail("must be at most " + Plural(*n->max_length, "character", "characters") +
                  " long, got " + std::to_string(len));
    }
  }
  if (n->pattern) {
    if (auto f = Spend(PatternCost(*n->pattern, s))) return f;
    std::optional<bool> m = PatternMatches(*n->pattern, s);
    if (!m) {
      return Fail("too long to check against the pattern " + Quote(n->pattern->source) +
                  " (limit " + std::to_string(JsonSchema::kMaxPatternInputBytes) + " bytes)");
    }
    if (!*m) return Fail("must match the pattern " + Quote(n->pattern->source));
  }
  return std::nullopt;
}

std::optional<Failure> Validator::CheckObject(const Node* n, const json& v) {
  for (const std::string& name : n->required) {
    if (!v.contains(name)) return Fail("missing required property " + Quote(name));
  }
  if (n->properties.empty() && n->pattern_properties.empty() &&
      n->additional_properties == nullptr) {
    return std::nullopt;
  }
  for (const auto& [key, value] : v.items()) {
    bool matched = false;
    auto prop = n->properties.find(key);
    if (prop != n->properties.end()) {
      matched = true;
      if (auto f = CheckChild(prop->second, value, {&key, 0})) return f;
    }
    for (const auto& [pattern, sub] : n->pattern_properties) {
      if (auto f = Spend(PatternCost(pattern, key))) return f;
      std::optional<bool> m = PatternMatches(pattern, key);
      if (!m) {
        return Fail("property name " + Quote(key) + " is too long to check against " +
                    Quote(pattern.source));
      }
      if (!*m) continue;
      matched = true;
      if (auto f = CheckChild(sub, value, {&key, 0})) return f;
    }
    if (!matched && n->additional_properties != nullptr) {
      const Node* extra = n->additional_properties;
      if (extra->boolean && !*extra->boolean) return Fail("unexpected property " + Quote(key));
      if (auto f = CheckChild(extra, value, {&key, 0})) return f;
    }
  }
  return std::nullopt;
}

std::optional<Failure> Validator::CheckArray(const Node* n, const json& v) {
  if (n->min_items && v.size() < *n->min_items) {
    return Fail("must have at least " + Plural(*n->min_items, "item", "items"));
  }
  if (n->max_items && v.size() > *n->max_items) {
    return Fail("must have at most " + Plural(*n->max_items, "item", "items") + ", got " +
                std::to_string(v.size()));
  }
  if (n->unique_items && v.size() > 1) {
    if (auto f = Spend(v.size())) return f;
    // Sorting keeps huge arrays fast; json's ordering agrees with its equality (1 == 1.0).
    std::vector<size_t> order(v.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::optional<std::pair<size_t, size_t>> dup;
    for (size_t i = 1; i < order.size(); ++i) {
      if (v[order[i - 1]] == v[order[i]]) {
        auto pair = std::minmax(order[i - 1], order[i]);
        if (!dup || pair.second < dup->second) dup = pair;
      }
    }
    if (dup) {
      return Fail("items must be unique (items " + std::to_string(dup->first) + " and " +
                  std::to_string(dup->second) + " are equal)");
    }
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const Node* sub = i < n->prefix_items.size() ? n->prefix_items[i] : n->items;
    if (sub == nullptr) {
      if (i >= n->prefix_items.size()) break;
      continue;
    }
    if (auto f = CheckChild(sub, v[i], {nullptr, i})) return f;
  }
  return std::nullopt;
}

std::optional<Failure> Validator::CheckAlternatives(const std::vector<Node*>& branches,
                                                    const json& v, bool exactly_one) {
  std::vector<Failure> failures;
  std::vector<size_t> matched;
  for (size_t i = 0; i < branches.size(); ++i) {
    auto f = Check(branches[i], v);
    if (f && f->limit) return f;
    if (!f) {
      matched.push_back(i);
      if (!exactly_one || matched.size() > 1) break;
    } else {
      failures.push_back(std::move(*f));
    }
  }
  if (exactly_one && matched.size() > 1) {
    return Fail("matches more than one of the " + std::to_string(branches.size()) +
                " alternatives (#" + std::to_string(matched[0]) + " and #" +
                std::to_string(matched[1]) + "); it must match exactly one");
  }
  if (!matched.empty()) return std::nullopt;
  // None matched. A branch that failed deeper inside the value matched its shape: its
  // error is the useful one.
  std::string here = Pointer();
  const Failure* deepest = nullptr;
  for (const Failure& f : failures) {
    if (f.pointer.size() > here.size() &&
        (deepest == nullptr || f.pointer.size() > deepest->pointer.size())) {
      deepest = &f;
    }
  }
  if (deepest != nullptr) return *deepest;
  // All failed right here: if they all want other types, say which types would do.
  uint8_t types = 0;
  bool all_types = true;
  for (const Node* b : branches) {
    if (b->types == 0 || TypeMatches(b->types, v)) all_types = false;
    types |= b->types;
  }
  if (all_types) return Fail("expected " + ListTypes(types) + ", got " + TypeName(v));
  std::string message = "matches none of the " + std::to_string(branches.size()) + " alternatives";
  if (!failures.empty()) message += " (first: " + failures[0].message + ")";
  return Fail(std::move(message));
}

std::optional<Failure> Validator::CheckApplicators(const Node* n, const json& v) {
  if (n->ref_target != nullptr) {
    if (auto f = Check(n->ref_target, v)) return f;
  }
  for (const Node* sub : n->all_of) {
    if (auto f = Check(sub, v)) return f;
  }
  if (!n->any_of.empty()) {
    if (auto f = CheckAlternatives(n->any_of, v, /*exactly_one=*/false)) return f;
  }
  if (!n->one_of.empty()) {
    if (auto f = CheckAlternatives(n->one_of, v, /*exactly_one=*/true)) return f;
  }
  if (n->not_schema != nullptr) {
    auto f = Check(n->not_schema, v);
    if (!f) return Fail("must not match the schema in \"not\"");
    if (f->limit) return f;
  }
  if (n->if_schema != nullptr) {
    auto cond = Check(n->if_schema, v);
    if (cond && cond->limit) return cond;
    const Node* branch = cond ? n->else_schema : n->then_schema;
    if (branch != nullptr) {
      if (auto f = Check(branch, v)) return f;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<JsonSchema> JsonSchema::Compile(const json& schema) {
  try {
    // Each schema level is at most two JSON levels (e.g. "properties" then the name).
    if (DeeperThan(schema, 2 * kMaxDepth + 2)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "schema: nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    auto compiled = std::make_shared<Compiled>();
    Compiler compiler(*compiled);
    auto root = compiler.CompileNode(schema, "", 0);
    if (!root) return root.error();
    compiled->root = *root;
    if (auto s = compiler.ResolveRefs(); !s) return s.error();
    if (auto s = compiler.CheckInPlaceCycles(); !s) return s.error();
    if (auto s = compiler.CheckExpansion(); !s) return s.error();
    JsonSchema out;
    out.schema_ = schema;
    out.compiled_ = std::move(compiled);
    return out;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("schema: ") + e.what());
  }
}

Status JsonSchema::Validate(const json& instance, const std::atomic<bool>* cancel) const {
  if (compiled_ == nullptr) {
    return MakeError(ErrorCode::kInternal, "JSON Schema used before it was compiled");
  }
  try {
    if (DeeperThan(instance, kMaxDepth)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "/: nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    Validator validator(cancel);
    if (auto f = validator.Check(compiled_->root, instance)) {
      return MakeError(ErrorCode::kInvalidArgument, Format(*f));
    }
    return OkStatus();
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("/: cannot validate: ") + e.what());
  }
}

}  // namespace moat::tools
