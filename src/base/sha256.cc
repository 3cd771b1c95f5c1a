// SHA-256 through OpenSSL's direct digest functions: hardware SHA extensions where the CPU
// has them, and no provider or config loading at first use (the EVP path spends ~2 ms
// there, most of a cached `moat run`).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "base/sha256.h"

#include <openssl/sha.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace moat {

Digest Sha256(std::span<const uint8_t> data) {
  Digest d{};
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(d.data(), &ctx);
  return d;
}

Result<Digest> Sha256Fd(int fd) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  std::vector<uint8_t> buf(1 << 16);
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError(ErrorCode::kIo, std::string("sha256: read failed: ") + strerror(errno));
    }
    if (n == 0) break;
    SHA256_Update(&ctx, buf.data(), static_cast<size_t>(n));
    off += n;
  }
  Digest d{};
  SHA256_Final(d.data(), &ctx);
  return d;
}

std::string ToHex(const Digest& d) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (uint8_t b : d) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

std::string Sha256Hex(std::string_view text) {
  return ToHex(
      Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
}

}  // namespace moat
