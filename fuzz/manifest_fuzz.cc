// Fuzzes what moat reads from a tool module before trusting it, with libFuzzer + ASan +
// UBSan: the custom-section walk (FindCustomSection, SetCustomSection) over arbitrary
// bytes, and ParseManifest over the section's payload. Nothing may crash; a rewritten
// module must read back the payload it was given; errors carry a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "orchestration/tools/manifest.h"

using moat::tools::FindCustomSection;
using moat::tools::kManifestSection;
using moat::tools::ParseManifest;
using moat::tools::SetCustomSection;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto found = FindCustomSection(bytes, kManifestSection);
  if (!found.ok()) {
    if (found.error().message.empty()) abort();
    if (SetCustomSection(bytes, kManifestSection, "{}").ok()) abort();  // same framing rules
    return 0;
  }
  if (found->has_value()) {
    auto m = ParseManifest(**found);
    if (!m.ok() && m.error().message.empty()) abort();
  }
  // Rewriting keeps every other section and reads back exactly what was put in.
  std::string payload(reinterpret_cast<const char*>(data), size < 300 ? size : 300);
  auto rewritten = SetCustomSection(bytes, kManifestSection, payload);
  if (!rewritten.ok()) abort();
  auto back = FindCustomSection(*rewritten, kManifestSection);
  if (!back.ok() || !back->has_value() || **back != payload) abort();
  // The whole input as a manifest text, too.
  auto m = ParseManifest(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!m.ok() && m.error().message.empty()) abort();
  return 0;
}
