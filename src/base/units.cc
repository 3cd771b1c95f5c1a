#include "base/units.h"

#include <cstdio>
#include <ctime>

#include <cctype>
#include <cmath>
#include <limits>

namespace moat {

namespace {

struct Split {
  double number = 0;
  std::string_view suffix;
  bool ok = false;
};

// Splits "12.5ms" into 12.5 and "ms". Only plain decimal digits and one dot are accepted.
Split SplitNumber(std::string_view text) {
  Split s;
  size_t i = 0;
  bool digits = false, dot = false;
  double value = 0, scale = 1;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = true;
      if (dot) {
        scale /= 10;
        value += (c - '0') * scale;
      } else {
        value = value * 10 + (c - '0');
      }
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return s;
  s.number = value;
  s.suffix = text.substr(i);
  s.ok = true;
  return s;
}

std::string Lower(std::string_view v) {
  std::string out(v);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<uint64_t> Scale(double number, double factor, std::string_view text) {
  double v = number * factor;
  if (!(v >= 0) || v >= 18446744073709549568.0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "value out of range: '" + std::string(text) + "'");
  }
  return static_cast<uint64_t>(std::llround(v));
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  Split s = SplitNumber(text);
  if (!s.ok)
    return MakeError(ErrorCode::kInvalidArgument, "not a size: '" + std::string(text) + "'");
  std::string u = Lower(s.suffix);
  double f = 0;
  if (u.empty() || u == "b")
    f = 1;
  else if (u == "k" || u == "kb" || u == "kib")
    f = 1024.0;
  else if (u == "m" || u == "mb" || u == "mib")
    f = 1024.0 * 1024;
  else if (u == "g" || u == "gb" || u == "gib")
    f = 1024.0 * 1024 * 1024;
  else if (u == "t" || u == "tb" || u == "tib")
    f = 1024.0 * 1024 * 1024 * 1024;
  else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "unknown size unit in '" + std::string(text) + "' (use K, M, G)");
  }
  return Scale(s.number, f, text);
}

Result<uint64_t> ParseDurationUs(std::string_view text) {
  Split s = SplitNumber(text);
  if (!s.ok) {
    return MakeError(ErrorCode::kInvalidArgument, "not a duration: '" + std::string(text) + "'");
  }
  std::string u = Lower(s.suffix);
  double f = 0;
  if (u.empty() || u == "s")
    f = 1e6;
  else if (u == "ms")
    f = 1e3;
  else if (u == "us")
    f = 1;
  else if (u == "m" || u == "min")
    f = 60e6;
  else if (u == "h")
    f = 3600e6;
  else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "unknown duration unit in '" + std::string(text) + "' (use ms, s, m)");
  }
  return Scale(s.number, f, text);
}

Result<uint64_t> ParseCount(std::string_view text) {
  Split s = SplitNumber(text);
  if (!s.ok)
    return MakeError(ErrorCode::kInvalidArgument, "not a number: '" + std::string(text) + "'");
  std::string u = Lower(s.suffix);
  double f = 0;
  if (u.empty())
    f = 1;
  else if (u == "k")
    f = 1e3;
  else if (u == "m")
    f = 1e6;
  else if (u == "g")
    f = 1e9;
  else if (u == "t")
    f = 1e12;
  else if (u.size() >= 2 && u.size() <= 3 && u[0] == 'e' &&
           u.find_first_not_of("0123456789", 1) == std::string::npos) {
    int exp = std::stoi(u.substr(1));  // "1e9", "2.5e10": a power of ten up to 10^18
    if (exp > 18) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "number too large: '" + std::string(text) + "'");
    }
    f = 1;
    for (int i = 0; i < exp; ++i) f *= 10;
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "unknown suffix in '" + std::string(text) + "' (use K, M, G or 1e9)");
  }
  return Scale(s.number, f, text);
}

std::string UtcNowIso(bool millis) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  if (millis) {
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
             t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1'000'000);
  } else {
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
  }
  return buf;
}

}  // namespace moat
