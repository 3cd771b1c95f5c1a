#include "execution/net/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace moat::net {
namespace {

IpAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress ip;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

// Whether the first `bits` bits of x and y agree.
bool PrefixEqual(const uint8_t* x, const uint8_t* y, int bits) {
  int whole = bits / 8;
  if (memcmp(x, y, static_cast<size_t>(whole)) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (x[whole] & mask) == (y[whole] & mask);
}

bool In(const IpAddress& a, const IpAddress& base, int bits) {
  return a.v6 == base.v6 && PrefixEqual(a.bytes.data(), base.bytes.data(), bits);
}

IpAddress V6(std::initializer_list<uint16_t> groups) {
  IpAddress ip;
  ip.v6 = true;
  size_t i = 0;
  for (uint16_t g : groups) {
    ip.bytes[i++] = static_cast<uint8_t>(g >> 8);
    ip.bytes[i++] = static_cast<uint8_t>(g & 0xFF);
  }
  return ip;
}

AddressClass ClassifyV4(const IpAddress& a) {
  const uint8_t* b = a.bytes.data();
  if (a == V4(169, 254, 169, 254)) return AddressClass::kMetadata;
  if (a == V4(255, 255, 255, 255)) return AddressClass::kBroadcast;
  if (b[0] == 127) return AddressClass::kLoopback;
  if (b[0] == 0) return AddressClass::kUnspecified;
  if (b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168)) {
    return AddressClass::kPrivate;
  }
  if (b[0] == 169 && b[1] == 254) return AddressClass::kLinkLocal;
  if (b[0] == 100 && (b[1] & 0xC0) == 64) return AddressClass::kCgnat;
  if ((b[0] & 0xF0) == 224) return AddressClass::kMulticast;
  if ((b[0] & 0xF0) == 240) return AddressClass::kReserved;
  // IETF protocol assignments, documentation (TEST-NET-1/2/3), benchmarking, 6to4 relay.
  if ((b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2)) ||
      (b[0] == 198 && (b[1] & 0xFE) == 18) || (b[0] == 198 && b[1] == 51 && b[2] == 100) ||
      (b[0] == 203 && b[1] == 0 && b[2] == 113) || (b[0] == 192 && b[1] == 88 && b[2] == 99)) {
    return AddressClass::kReserved;
  }
  return AddressClass::kPublic;
}

AddressClass ClassifyV6(const IpAddress& a) {
  static const IpAddress kMetadata = V6({0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254});
  static const IpAddress kZero = V6({});
  static const IpAddress kLoop = V6({0, 0, 0, 0, 0, 0, 0, 1});
  if (a == kMetadata) return AddressClass::kMetadata;
  if (a == kZero) return AddressClass::kUnspecified;
  if (a == kLoop) return AddressClass::kLoopback;
  const uint8_t* b = a.bytes.data();
  if (b[0] == 0xFF) return AddressClass::kMulticast;
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return AddressClass::kLinkLocal;
  if ((b[0] & 0xFE) == 0xFC) return AddressClass::kUniqueLocal;
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return AddressClass::kReserved;  // site-local
  if (In(a, V6({0x2001, 0xdb8}), 32)) return AddressClass::kReserved;         // documentation
  if (In(a, V6({0x100}), 64)) return AddressClass::kReserved;                 // discard-only
  if (In(a, V6({0x2001}), 32)) return AddressClass::kReserved;                // Teredo
  if (In(a, V6({}), 96) || In(a, V6({0, 0, 0, 0, 0, 0xffff}), 96)) {
    return AddressClass::kReserved;  // IPv4-compatible or -mapped: classed by the IPv4 part
  }
  return AddressClass::kPublic;
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress ip;
  if (inet_pton(AF_INET, buf, ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) == 1) {
    ip.v6 = true;
    return ip;
  }
  return std::nullopt;
}

IpAddress IpAddress::FromSockaddr(const sockaddr* sa) {
  IpAddress ip;
  if (sa->sa_family == AF_INET6) {
    ip.v6 = true;
    memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
  } else {
    memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
  }
  return ip;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<IpAddress> IpAddress::EmbeddedV4() const {
  if (!v6) return std::nullopt;
  auto tail = [&](size_t at) { return V4(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]); };
  if (In(*this, V6({0, 0, 0, 0, 0, 0xffff}), 96)) return tail(12);  // IPv4-mapped
  if (In(*this, V6({}), 96)) {                                      // IPv4-compatible
    IpAddress v4 = tail(12);
    // :: and ::1 are IPv6's own; ::0.0.0.2 and up carry an IPv4 address.
    if (v4.bytes[0] == 0 && v4.bytes[1] == 0 && v4.bytes[2] == 0 && v4.bytes[3] <= 1) {
      return std::nullopt;
    }
    return v4;
  }
  if (In(*this, V6({0x64, 0xff9b}), 96)) return tail(12);     // NAT64 well-known prefix
  if (In(*this, V6({0x64, 0xff9b, 1}), 48)) return tail(12);  // NAT64 local-use prefix
  if (In(*this, V6({0x2002}), 16)) return tail(2);            // 6to4
  return std::nullopt;
}

const char* AddressClassName(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic: return "public";
    case AddressClass::kLoopback: return "loopback";
    case AddressClass::kPrivate: return "private";
    case AddressClass::kLinkLocal: return "link-local";
    case AddressClass::kMetadata: return "cloud metadata";
    case AddressClass::kCgnat: return "carrier-grade NAT";
    case AddressClass::kUniqueLocal: return "unique local";
    case AddressClass::kMulticast: return "multicast";
    case AddressClass::kUnspecified: return "unspecified";
    case AddressClass::kBroadcast: return "broadcast";
    case AddressClass::kReserved: return "reserved";
  }
  return "unknown";
}

AddressClass Classify(const IpAddress& a) {
  if (!a.v6) return ClassifyV4(a);
  if (std::optional<IpAddress> v4 = a.EmbeddedV4()) {
    AddressClass inner = ClassifyV4(*v4);
    // NAT64 and 6to4 of a public IPv4 address are public; mapped and compatible forms
    // are never used on the wire and stay reserved.
    if (inner != AddressClass::kPublic) return inner;
  }
  return ClassifyV6(a);
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  size_t slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  std::optional<IpAddress> ip = IpAddress::Parse(addr);
  if (!ip) {
    return MakeError(ErrorCode::kInvalidArgument, "not an IP address or CIDR range: \"" +
                                                      std::string(text.substr(0, 64)) + "\"");
  }
  int max = ip->v6 ? 128 : 32;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix < 0 ||
        prefix > max) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "bad prefix length in \"" + std::string(text.substr(0, 64)) + "\"");
    }
  }
  Cidr c;
  c.prefix = prefix;
  c.base = *ip;
  for (int bit = prefix; bit < max; ++bit) {
    c.base.bytes[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return c;
}

bool Cidr::Contains(const IpAddress& a) const {
  IpAddress x = a;
  if (x.v6 && In(x, V6({0, 0, 0, 0, 0, 0xffff}), 96)) x = *x.EmbeddedV4();
  return In(x, base, prefix);
}

std::string Cidr::ToString() const { return base.ToString() + "/" + std::to_string(prefix); }

}  // namespace moat::net
