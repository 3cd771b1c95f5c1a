// JSON Schema validation of tool arguments, on the host, before anything runs.
//
// The subset of draft 2020-12 that tool schemas use:
//   type (a name or an array of names; "integer" = a number with no fractional part),
//   enum, const, properties, required, additionalProperties, patternProperties,
//   items, prefixItems, minItems, maxItems, uniqueItems, minLength, maxLength (Unicode
//   code points), minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf,
//   pattern, allOf, anyOf, oneOf, not, if/then/else, $ref, $defs / definitions.
// Annotations are accepted and ignored: title, description, default, examples, $schema,
// $id, $comment, format, deprecated, readOnly, writeOnly. Any other keyword is refused by
// Compile(), so a manifest cannot ask for a check that would silently not happen.
//
// Limits, for untrusted schemas and instances (each fails with a clear message, never a
// crash or a hang):
//   - schemas and instances nested deeper than kMaxDepth levels are refused;
//   - $ref only to a subschema of the same document ("#", "#/$defs/NAME",
//     "#/definitions/NAME", or another "#/..." pointer to a subschema); a $ref cycle that
//     does not pass through a property or an item (so could never end) is refused;
//   - pattern / patternProperties: ECMAScript syntax (std::regex) without backreferences
//     or lookahead, at most kMaxPatternLength characters, and small enough once counted
//     repetitions are expanded. Matching runs std::regex's breadth-first (polynomial)
//     executor, so it neither backtracks exponentially nor recurses per input character;
//     its time still grows with input length × pattern size, so a string longer than
//     kMaxPatternInputBytes fails validation instead of being matched. Patterns match
//     bytes: "." and character classes see UTF-8 bytes, not code points;
//   - applying a subschema costs steps ($ref, allOf, anyOf, oneOf, not and if/then/else
//     apply further subschemas to the same value, so a chain of n levels with two
//     references each would cost 2^n): Compile() refuses a schema any of whose subschemas
//     would take more than kMaxSubschemasPerValue steps on one value, and Validate() fails
//     (naming the limit) once it has taken kMaxValidationSteps steps in all, or when
//     `cancel` is set (checked every few thousand steps). A pattern match costs steps in
//     proportion to the text's length times the pattern's size.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace moat::tools {

namespace schema_internal {
struct Compiled;
}  // namespace schema_internal

class JsonSchema {
 public:
  static constexpr size_t kMaxDepth = 256;
  static constexpr size_t kMaxPatternLength = 256;
  static constexpr size_t kMaxPatternInputBytes = 4096;
  static constexpr uint64_t kMaxSubschemasPerValue = 10'000;
  static constexpr uint64_t kMaxValidationSteps = 4'000'000;

  // Checks that `schema` is a schema this validator understands; an unknown or malformed
  // keyword is an error naming it and its location, e.g.
  // "schema at /properties/x: unsupported keyword \"contains\"".
  static Result<JsonSchema> Compile(const nlohmann::json& schema);
  // kInvalidArgument naming the first failing location as a JSON Pointer, e.g.
  // "/path: expected string, got number" or "/: missing required property \"path\"".
  // A default-constructed JsonSchema (never compiled) refuses everything (kInternal).
  // Past the step budget, or once `cancel` is set, it fails (kInvalidArgument) whatever
  // the schema says.
  Status Validate(const nlohmann::json& instance, const std::atomic<bool>* cancel = nullptr) const;
  const nlohmann::json& schema() const { return schema_; }

 private:
  nlohmann::json schema_;
  std::shared_ptr<const schema_internal::Compiled> compiled_;
};

}  // namespace moat::tools
