// The only way host code touches guest memory: every access is bounds-checked against the
// memory's current size, and a failed check is a value (nullopt / false), never a fault.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "wasm-rt.h"

namespace moat {

class GuestMemory {
 public:
  explicit GuestMemory(wasm_rt_memory_t* mem) : mem_(mem) {}

  bool valid() const { return mem_ != nullptr && mem_->data != nullptr; }
  uint64_t size() const { return mem_ ? mem_->size : 0; }

  // [ptr, ptr+len) if it lies inside memory.
  std::optional<std::span<uint8_t>> Span(uint32_t ptr, uint32_t len) const {
    if (!valid() || static_cast<uint64_t>(ptr) + len > mem_->size) return std::nullopt;
    return std::span<uint8_t>(mem_->data + ptr, len);
  }
  std::optional<std::string_view> String(uint32_t ptr, uint32_t len) const {
    auto s = Span(ptr, len);
    if (!s) return std::nullopt;
    return std::string_view(reinterpret_cast<const char*>(s->data()), len);
  }
  template <class T>
  bool Read(uint32_t ptr, T* out) const {
    auto s = Span(ptr, sizeof(T));
    if (!s) return false;
    memcpy(out, s->data(), sizeof(T));
    return true;
  }
  template <class T>
  bool Write(uint32_t ptr, T value) const {
    auto s = Span(ptr, sizeof(T));
    if (!s) return false;
    memcpy(s->data(), &value, sizeof(T));
    return true;
  }
  bool WriteBytes(uint32_t ptr, const void* data, uint32_t len) const {
    auto s = Span(ptr, len);
    if (!s) return false;
    if (len) memcpy(s->data(), data, len);
    return true;
  }

 private:
  wasm_rt_memory_t* mem_;
};

}  // namespace moat
