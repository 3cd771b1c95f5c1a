// Fuzzes JsonSchema with libFuzzer + ASan + UBSan: the input is a schema and an instance,
// two JSON texts separated by the first NUL byte (or the instance `null` when there is
// none). Compile() and Validate() must never crash, throw or overflow the stack, and every
// error must be kInvalidArgument with a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "orchestration/tools/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t cut = in.find('\0');
  std::string_view schema_text = in.substr(0, cut);
  std::string_view instance_text = cut == std::string_view::npos ? "null" : in.substr(cut + 1);
  nlohmann::json schema = nlohmann::json::parse(schema_text, nullptr, false);
  nlohmann::json instance = nlohmann::json::parse(instance_text, nullptr, false);
  if (schema.is_discarded() || instance.is_discarded()) return 0;
  auto compiled = moat::tools::JsonSchema::Compile(schema);
  if (!compiled.ok()) {
    if (compiled.error().code != moat::ErrorCode::kInvalidArgument ||
        compiled.error().message.empty()) {
      abort();
    }
    return 0;
  }
  auto status = compiled->Validate(instance);
  if (!status.ok() && (status.error().code != moat::ErrorCode::kInvalidArgument ||
                       status.error().message.empty())) {
    abort();
  }
  return 0;
}
