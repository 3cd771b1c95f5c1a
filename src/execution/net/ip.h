// IP addresses for egress decisions: parsing (canonical text only), CIDR ranges, and the
// class of an address (public, loopback, private, metadata...). An IPv6 address that
// carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
// 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16) is classed by the IPv4 address too:
// ::ffff:127.0.0.1 is loopback, 64:ff9b::a9fe:a9fe is the cloud metadata address.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace moat::net {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4

  // Dotted quad or RFC 4291 text (no zone id); anything else is nullopt. URL hosts go
  // through libcurl first, which turns 0x7f.1 or 2130706433 into 127.0.0.1.
  static std::optional<IpAddress> Parse(std::string_view text);
  static IpAddress FromSockaddr(const sockaddr* sa);
  std::string ToString() const;
  // The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address.
  std::optional<IpAddress> EmbeddedV4() const;
  bool operator==(const IpAddress&) const = default;
};

enum class AddressClass {
  kPublic,
  kLoopback,     // 127.0.0.0/8, ::1
  kPrivate,      // 10/8, 172.16/12, 192.168/16
  kLinkLocal,    // 169.254/16, fe80::/10
  kMetadata,     // 169.254.169.254, fd00:ec2::254 (cloud instance metadata)
  kCgnat,        // 100.64.0.0/10
  kUniqueLocal,  // fc00::/7
  kMulticast,    // 224/4, ff00::/8
  kUnspecified,  // 0.0.0.0/8, ::
  kBroadcast,    // 255.255.255.255
  kReserved,     // 240/4, 192.0.0/24, benchmarking and documentation ranges, ...
};
const char* AddressClassName(AddressClass c);

// The most specific class of the address itself and of an IPv4 address inside it.
AddressClass Classify(const IpAddress& a);

struct Cidr {
  IpAddress base;  // host bits cleared
  int prefix = 0;
  // "10.0.0.0/8", "::1/128", or a single address (a /32 or /128).
  static Result<Cidr> Parse(std::string_view text);
  // An IPv4-mapped address is matched as its IPv4 address.
  bool Contains(const IpAddress& a) const;
  std::string ToString() const;
};

}  // namespace moat::net
