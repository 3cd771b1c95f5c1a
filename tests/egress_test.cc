// Egress policy (src/execution/net/): URL normalisation, address classes and rules, with
// the spellings that have let requests into internal networks elsewhere.
#include <gtest/gtest.h>

#include <string>

#include "execution/net/egress.h"
#include "execution/net/ip.h"

namespace moat::net {
namespace {

Url U(const std::string& text) {
  auto u = ParseUrl(text);
  EXPECT_TRUE(u.ok()) << text << ": " << (u.ok() ? "" : u.error().message);
  return u.ok() ? *u : Url{};
}

std::string Refusal(const std::string& text) {
  auto u = ParseUrl(text);
  EXPECT_FALSE(u.ok()) << text << " was accepted as " << (u.ok() ? u->ToString() : "");
  return u.ok() ? "" : u.error().message;
}

AddressClass C(const std::string& ip) {
  auto a = IpAddress::Parse(ip);
  EXPECT_TRUE(a.has_value()) << ip;
  return a ? Classify(*a) : AddressClass::kPublic;
}

TEST(Egress, Ipv4SpellingsBecomeOneAddress) {
  for (const char* spelling :
       {"http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f000001/",
        "http://0177.0.0.1/", "http://0x7f.1/", "http://127.000.000.001/", "http://0177.1/",
        "http://017700000001/"}) {
    Url u = U(spelling);
    EXPECT_TRUE(u.host_is_ip) << spelling;
    EXPECT_EQ(u.host, "127.0.0.1") << spelling;
    EXPECT_EQ(Classify(u.ip), AddressClass::kLoopback) << spelling;
  }
  EXPECT_EQ(U("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data").host, "169.254.169.254");
  EXPECT_NE(Refusal("http://999.1.1.1/").find("neither a name nor an IPv4 address"),
            std::string::npos);
}

TEST(Egress, NamesAreNormalised) {
  EXPECT_EQ(U("HTTPS://API.Example.COM./v1").host, "api.example.com");
  EXPECT_EQ(U("https://api.example.com./v1").ToString(), "https://api.example.com:443/v1");
  EXPECT_EQ(U("http://bücher.example/").host, "xn--bcher-kva.example");
  EXPECT_EQ(U("http://BÜCHER.example/").host, "xn--bcher-kva.example");
  EXPECT_EQ(U("http://a.example/x/../y/./z?q=1#frag").ToString(), "http://a.example:80/y/z?q=1");
  EXPECT_EQ(U("http://[::FFFF:7F00:1]:8080/").host, "::ffff:127.0.0.1");
  Refusal("http://a..example/");
  Refusal("http://example.com../");
  Refusal("http://exa mple.com/");
  Refusal("http://exa%00mple.com/");
}

TEST(Egress, UserInfoZonesBackslashesAndOtherSchemesAreRefused) {
  EXPECT_NE(Refusal("http://allowed.com@evil.com/").find("user info"), std::string::npos);
  Refusal("http://user:pw@allowed.com/");
  Refusal("http://:pw@allowed.com/");
  EXPECT_NE(Refusal("http://allowed.com\\@evil.com/").find("backslash"), std::string::npos);
  Refusal("http://[fe80::1%25eth0]/");
  Refusal("ftp://example.com/");
  Refusal("file:///etc/passwd");
  Refusal("gopher://example.com/");
  Refusal("http://example.com:0/");
  Refusal("http://example.com:65536/");
  Refusal("http://example.com/\n");
  Refusal(std::string("http://example.com/\0x", 22));
  Refusal("http://" + std::string(9000, 'a') + "/");
  // A fragment cannot hide the host.
  EXPECT_EQ(U("http://evil.com#@allowed.com").host, "evil.com");
}

TEST(Egress, AddressClasses) {
  EXPECT_EQ(C("8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(C("2606:4700::1111"), AddressClass::kPublic);
  EXPECT_EQ(C("127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(C("127.255.255.254"), AddressClass::kLoopback);
  EXPECT_EQ(C("::1"), AddressClass::kLoopback);
  EXPECT_EQ(C("10.1.2.3"), AddressClass::kPrivate);
  EXPECT_EQ(C("172.16.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(C("172.31.255.255"), AddressClass::kPrivate);
  EXPECT_EQ(C("172.32.0.1"), AddressClass::kPublic);
  EXPECT_EQ(C("192.168.1.1"), AddressClass::kPrivate);
  EXPECT_EQ(C("169.254.1.1"), AddressClass::kLinkLocal);
  EXPECT_EQ(C("fe80::1"), AddressClass::kLinkLocal);
  EXPECT_EQ(C("169.254.169.254"), AddressClass::kMetadata);
  EXPECT_EQ(C("fd00:ec2::254"), AddressClass::kMetadata);
  EXPECT_EQ(C("100.64.0.1"), AddressClass::kCgnat);
  EXPECT_EQ(C("100.127.255.255"), AddressClass::kCgnat);
  EXPECT_EQ(C("100.128.0.1"), AddressClass::kPublic);
  EXPECT_EQ(C("fc00::1"), AddressClass::kUniqueLocal);
  EXPECT_EQ(C("fdff::1"), AddressClass::kUniqueLocal);
  EXPECT_EQ(C("224.0.0.1"), AddressClass::kMulticast);
  EXPECT_EQ(C("ff02::1"), AddressClass::kMulticast);
  EXPECT_EQ(C("0.0.0.0"), AddressClass::kUnspecified);
  EXPECT_EQ(C("::"), AddressClass::kUnspecified);
  EXPECT_EQ(C("255.255.255.255"), AddressClass::kBroadcast);
  EXPECT_EQ(C("240.0.0.1"), AddressClass::kReserved);
  EXPECT_EQ(C("192.0.2.1"), AddressClass::kReserved);
  EXPECT_EQ(C("2001:db8::1"), AddressClass::kReserved);
}

TEST(Egress, Ipv4InsideIpv6IsClassedByTheIpv4Address) {
  EXPECT_EQ(C("::ffff:127.0.0.1"), AddressClass::kLoopback);  // IPv4-mapped
  EXPECT_EQ(C("::ffff:7f00:1"), AddressClass::kLoopback);
  EXPECT_EQ(C("::127.0.0.1"), AddressClass::kLoopback);  // IPv4-compatible
  EXPECT_EQ(C("::ffff:169.254.169.254"), AddressClass::kMetadata);
  EXPECT_EQ(C("64:ff9b::a9fe:a9fe"), AddressClass::kMetadata);  // NAT64
  EXPECT_EQ(C("64:ff9b::10.0.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(C("64:ff9b:1::7f00:1"), AddressClass::kLoopback);  // NAT64 local-use
  EXPECT_EQ(C("2002:c0a8:0101::1"), AddressClass::kPrivate);   // 6to4 of 192.168.1.1
  EXPECT_EQ(C("2002:7f00:1::"), AddressClass::kLoopback);
  // Mapped and compatible forms of public addresses never appear on the wire: refused.
  EXPECT_EQ(C("::ffff:8.8.8.8"), AddressClass::kReserved);
  EXPECT_EQ(C("::8.8.8.8"), AddressClass::kReserved);
  // NAT64 and 6to4 of a public address are public.
  EXPECT_EQ(C("64:ff9b::808:808"), AddressClass::kPublic);
  EXPECT_EQ(C("2002:808:808::1"), AddressClass::kPublic);
}

TEST(Egress, Cidrs) {
  auto c = Cidr::Parse("10.0.0.0/8");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Contains(*IpAddress::Parse("10.255.0.1")));
  EXPECT_FALSE(c->Contains(*IpAddress::Parse("11.0.0.1")));
  EXPECT_TRUE(c->Contains(*IpAddress::Parse("::ffff:10.1.1.1")));  // mapped: as IPv4
  auto one = Cidr::Parse("127.0.0.1");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->ToString(), "127.0.0.1/32");
  EXPECT_FALSE(one->Contains(*IpAddress::Parse("127.0.0.2")));
  auto v6 = Cidr::Parse("fd00::1/8");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->ToString(), "fd00::/8");
  EXPECT_TRUE(v6->Contains(*IpAddress::Parse("fdab::1")));
  EXPECT_FALSE(v6->Contains(*IpAddress::Parse("10.0.0.1")));
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                          "localhost/8", "", "127.1/32", "0x7f.0.0.1/32"}) {
    EXPECT_FALSE(Cidr::Parse(bad).ok()) << bad;
  }
}

TEST(Egress, RulesMatchHostPortPathAndMethod) {
  auto r = EgressRule::Parse("https://api.example.com/v1", {"get", "POST"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->Matches("GET", U("https://api.example.com/v1")));
  EXPECT_TRUE(r->Matches("POST", U("https://API.example.com./v1/chat?x=1")));
  EXPECT_FALSE(r->Matches("DELETE", U("https://api.example.com/v1/x")));
  EXPECT_FALSE(r->Matches("GET", U("http://api.example.com/v1")));        // scheme
  EXPECT_FALSE(r->Matches("GET", U("https://api.example.com:8443/v1")));  // port
  EXPECT_FALSE(r->Matches("GET", U("https://api.example.com/v10")));      // segment boundary
  EXPECT_FALSE(r->Matches("GET", U("https://api.example.com/v2")));
  EXPECT_FALSE(r->Matches("GET", U("https://api.example.com/v1/../admin")));  // normalised
  EXPECT_FALSE(r->Matches("GET", U("https://api.example.com/v1/%2e%2e/admin")));
  EXPECT_FALSE(r->Matches("GET", U("https://api.example.com/v1/..%2Fadmin")));
  EXPECT_FALSE(r->Matches("GET", U("https://api.example.com.evil.net/v1")));
  EXPECT_FALSE(r->Matches("GET", U("https://evil.net/v1")));

  auto wild = EgressRule::Parse("https://*.example.com");
  ASSERT_TRUE(wild.ok());
  EXPECT_TRUE(wild->Matches("GET", U("https://a.example.com/")));
  EXPECT_TRUE(wild->Matches("PUT", U("https://a.b.example.com/anything")));
  EXPECT_FALSE(wild->Matches("GET", U("https://example.com/")));
  EXPECT_FALSE(wild->Matches("GET", U("https://badexample.com/")));
  EXPECT_FALSE(wild->Matches("GET", U("https://a.example.com.evil.net/")));

  auto any = EgressRule::Parse("http://*:8080");
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->Matches("GET", U("http://whatever.test:8080/x")));
  EXPECT_TRUE(any->Matches("GET", U("http://10.0.0.1:8080/x")));  // the address check decides
  EXPECT_FALSE(any->Matches("GET", U("http://whatever.test/x")));

  auto ip = EgressRule::Parse("http://127.0.0.1:5000");
  ASSERT_TRUE(ip.ok());
  EXPECT_TRUE(ip->Matches("GET", U("http://2130706433:5000/")));
  auto idn = EgressRule::Parse("https://bücher.example");
  ASSERT_TRUE(idn.ok());
  EXPECT_TRUE(idn->Matches("GET", U("https://xn--bcher-kva.example/")));

  for (const char* bad :
       {"api.example.com", "ftp://x", "https://", "https://*x.example.com", "https://a.*.com",
        "https://user@host", "https://host:0", "https://host:99999", "https://host/a/../b",
        "https://host/%2e%2e", "https://[::1", "https://a..b",
        // Dot segments anywhere (found by fuzz/run_egress.sh: "/." never matched a URL).
        "http://7.ht7tt/.", "https://host/a/..", "https://host//a"}) {
    EXPECT_FALSE(EgressRule::Parse(bad).ok()) << bad;
  }
  EXPECT_FALSE(EgressRule::Parse("https://host", {"GET /"}).ok());
}

// Under a path prefix, nothing in the path may let a server read it as another path: path
// parameters (Tomcat and Spring read "/api/..;/admin" as "/admin"), double encoding, NUL
// and other encoded controls, backslashes, encoded dots and slashes, malformed escapes,
// overlong UTF-8 and characters that Unicode normalisation turns into dots or slashes.
TEST(Egress, APathPrefixRefusesPathsAServerCouldReadAsAnother) {
  auto r = EgressRule::Parse("http://h.example/api");
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const char* path : {"/api/..;/admin",
                           "/api/..;x=1/admin",
                           "/api/v1;jsessionid=1",
                           "/api/.;/admin",
                           "/api/..%3b/admin",
                           "/api/..%3B/admin",
                           "/api/%252e%252e/admin",
                           "/api/%252E./admin",
                           "/api/%25%32%65%25%32%65/admin",
                           "/api/%252f",
                           "/api/%255c",
                           "/api/x%2500",
                           "/api/x%00",
                           "/api/x%00.json",
                           "/api/x%0a",
                           "/api/x%7f",
                           "/api/..%5cadmin",
                           "/api/%5c..%5cadmin",
                           "/api/%2e%2e/admin",
                           "/api/.%2e/admin",
                           "/api/%2E./admin",
                           "/api/..%2fadmin",
                           "/api/a%2Fb",
                           "/api/%",
                           "/api/%zz",
                           "/api/%2",
                           "/api/%u002e%u002e/admin",
                           "/api/%c0%ae%c0%ae/admin",
                           "/api/%c0%af",
                           "/api/%e0%80%ae",
                           "/api/%ef%bc%8e%ef%bc%8e/admin",
                           "/api/%ef%bc%8f",
                           "/api/%ef%bc%bc",
                           "/api/%e2%80%a5/admin",
                           "/api/%ff"}) {
    std::string url = std::string("http://h.example") + path;
    auto u = ParseUrl(url);
    if (!u.ok()) continue;  // refused as a URL already: just as good
    EXPECT_FALSE(r->Matches("GET", *u)) << path << " as " << u->path;
  }
  for (const char* path : {"/api", "/api/", "/api/v1/items", "/api/a%20b", "/api/caf%C3%A9",
                           "/api/a.b", "/api/...", "/api/.well-known", "/api/x?q=a;b%00%252e%2f"}) {
    EXPECT_TRUE(r->Matches("GET", U(std::string("http://h.example") + path))) << path;
  }
  // A literal percent sign ("%25") is refused too: after one decode it starts an escape
  // for a server that decodes twice, whatever follows it.
  EXPECT_FALSE(r->Matches("GET", U("http://h.example/api/50%25")));
  // Without a path prefix the rule allows the whole host; the path is the server's.
  auto whole = EgressRule::Parse("http://h.example");
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(whole->Matches("GET", U("http://h.example/api/..;/admin")));
  // A rule's own prefix must be plain in the same way.
  for (const char* bad :
       {"http://h.example/api;x", "http://h.example/a%00", "http://h.example/a%252e",
        "http://h.example/a%3b", "http://h.example/a%", "http://h.example/%c0%ae"}) {
    EXPECT_FALSE(EgressRule::Parse(bad).ok()) << bad;
  }
}

TEST(Egress, PolicyDeniesByDefaultAndBlocksInternalAddresses) {
  EgressPolicy empty;
  auto why = empty.CheckUrl("GET", U("https://example.com/"));
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("allowlist is empty"), std::string::npos);

  EgressPolicy p;
  p.rules.push_back(*EgressRule::Parse("https://*"));
  EXPECT_FALSE(p.CheckUrl("GET", U("https://example.com/")).has_value());
  EXPECT_TRUE(p.CheckUrl("GET", U("http://example.com/")).has_value());
  // An allowed name is not enough: the address is checked after DNS.
  EXPECT_FALSE(p.CheckAddress(*IpAddress::Parse("93.184.216.34")).has_value());
  for (const char* internal :
       {"127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00:ec2::254", "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe", "::1", "0.0.0.0", "100.100.100.100", "fe80::1", "224.0.0.251"}) {
    auto d = p.CheckAddress(*IpAddress::Parse(internal));
    ASSERT_TRUE(d.has_value()) << internal;
    EXPECT_NE(d->find("grant its network"), std::string::npos) << *d;
  }
  // Unless that network is granted.
  p.granted_networks.push_back(*Cidr::Parse("127.0.0.0/8"));
  EXPECT_FALSE(p.CheckAddress(*IpAddress::Parse("127.0.0.1")).has_value());
  EXPECT_FALSE(p.CheckAddress(*IpAddress::Parse("::ffff:127.0.0.1")).has_value());
  EXPECT_TRUE(p.CheckAddress(*IpAddress::Parse("169.254.169.254")).has_value());
  EXPECT_TRUE(p.CheckAddress(*IpAddress::Parse("::1")).has_value());
}

}  // namespace
}  // namespace moat::net
