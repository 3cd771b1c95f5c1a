// libFuzzer target for the pipeline's front half: arbitrary bytes through validation, the
// fuel pass and the C writer. Anything but a clean accept or a one-line refusal is a bug.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "execution/module_pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto shape = moat::ValidateWasm(bytes);
  if (!shape.ok()) {
    if (shape.error().code != moat::ErrorCode::kInvalidModule) abort();
    if (shape.error().message.find('\n') != std::string::npos) abort();
    return 0;
  }
  auto translated = moat::TranslateWasm(bytes, {});
  if (!translated.ok()) abort();  // validated modules must translate
  return 0;
}
