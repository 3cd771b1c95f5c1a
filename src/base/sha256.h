#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace moat {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::span<const uint8_t> data);
// Hashes everything readable from an open fd, from offset 0.
Result<Digest> Sha256Fd(int fd);
std::string ToHex(const Digest& d);
// SHA-256 of `text`, in hex.
std::string Sha256Hex(std::string_view text);

}  // namespace moat
