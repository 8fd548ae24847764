#include "core/base/duration.h"

#include <cstdio>
#include <limits>

namespace gonet::core {
namespace {

constexpr int64_t kNanosecond = 1;
constexpr int64_t kMicrosecond = 1000 * kNanosecond;
constexpr int64_t kMillisecond = 1000 * kMicrosecond;
constexpr int64_t kSecond = 1000 * kMillisecond;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;

struct Unit {
  std::string_view name;
  int64_t ns;
};
// Both spellings of micro that Go accepts: U+00B5 (micro sign) and U+03BC (Greek mu).
constexpr Unit kUnits[] = {
    {"ns", kNanosecond},
    {"us", kMicrosecond},
    {"\xc2\xb5s", kMicrosecond},
    {"\xce\xbcs", kMicrosecond},
    {"ms", kMillisecond},
    {"s", kSecond},
    {"m", kMinute},
    {"h", kHour},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Terms are accumulated in unsigned 128 bits so that one overflow check per term is exact.
constexpr unsigned __int128 kMax = std::numeric_limits<int64_t>::max();

// One term's number, [0-9]*(\.[0-9]*)?, read off the front of *s.
struct Number {
  unsigned __int128 whole = 0;  // the integer part, capped at kMax + 1 (too_big)
  bool too_big = false;         // past kMax: overflows whatever the unit
  uint64_t frac = 0;            // the fraction is frac / scale
  uint64_t scale = 1;
  size_t digits = 0;
  size_t frac_digits = 0;
};

Number ScanNumber(std::string_view* s) {
  Number n;
  while (!s->empty() && IsDigit((*s)[0])) {
    n.whole = n.whole * 10 + static_cast<unsigned>((*s)[0] - '0');
    if (n.whole > kMax) n.too_big = true, n.whole = kMax + 1;
    s->remove_prefix(1);
    ++n.digits;
  }
  // Digits past 10^-18 cannot change a nanosecond count of any unit up to an hour, so they are
  // read and dropped.
  if (!s->empty() && (*s)[0] == '.') {
    s->remove_prefix(1);
    while (!s->empty() && IsDigit((*s)[0])) {
      if (n.scale < 1000000000000000000ull) {
        n.frac = n.frac * 10 + static_cast<unsigned>((*s)[0] - '0');
        n.scale *= 10;
      }
      s->remove_prefix(1);
      ++n.frac_digits;
    }
  }
  return n;
}

}  // namespace

DurationResult ParseDuration(std::string_view text) noexcept {
  DurationResult r;
  QuoteBuffer quote_text;
  QuoteBuffer quote_part;
  std::string_view s = text;
  if (s.empty()) {
    r.error.Set("empty duration (want e.g. 30s, 250ms, 1.5s, 2m)");
    return r;
  }
  if (s[0] == '-') {
    r.error.Set("negative duration \"%s\" (timeouts and delays must be >= 0)", quote_text(text));
    return r;
  }
  if (s[0] == '+') s.remove_prefix(1);
  if (s == "0") return r;
  if (s.empty()) {
    r.error.Set("invalid duration \"%s\": no number", quote_text(text));
    return r;
  }

  unsigned __int128 total = 0;
  while (!s.empty()) {
    std::string_view term_start = s;
    if (!(s[0] == '.' || IsDigit(s[0]))) {
      r.error.Set("invalid duration \"%s\": unexpected \"%s\" where a number should start",
                  quote_text(text), quote_part(s.substr(0, 1)));
      return r;
    }
    Number n = ScanNumber(&s);
    if (n.digits == 0 && n.frac_digits == 0) {
      r.error.Set("invalid duration \"%s\": \".\" without digits", quote_text(text));
      return r;
    }
    // The unit: everything up to the next number.
    size_t unit_len = 0;
    while (unit_len < s.size() && !(s[unit_len] == '.' || IsDigit(s[unit_len]))) ++unit_len;
    std::string_view number = term_start.substr(0, term_start.size() - s.size());
    if (unit_len == 0) {
      r.error.Set("missing unit after \"%s\" in duration \"%s\" (units: ns, us, ms, s, m, h)",
                  quote_part(number), quote_text(text));
      return r;
    }
    std::string_view unit_name = s.substr(0, unit_len);
    s.remove_prefix(unit_len);
    int64_t unit = 0;
    for (const Unit& u : kUnits) {
      if (u.name == unit_name) unit = u.ns;
    }
    if (unit == 0) {
      r.error.Set("unknown unit \"%s\" in duration \"%s\" (units: ns, us, ms, s, m, h)",
                  quote_part(unit_name), quote_text(text));
      return r;
    }
    unsigned __int128 term = n.whole * static_cast<unsigned __int128>(unit);
    term += static_cast<unsigned __int128>(n.frac) * static_cast<uint64_t>(unit) / n.scale;
    total += n.too_big ? kMax + 1 : term;
    if (n.too_big || total > kMax) {
      r.error.Set("duration \"%s\" is too long (the limit is about 292 years)", quote_text(text));
      return r;
    }
  }
  r.ns = static_cast<int64_t>(total);
  return r;
}

const char* FormatDuration(int64_t ns, char* out, size_t size) noexcept {
  if (size == 0) return out;
  // Built right to left, as Go's Duration.String does.
  char buf[kFormattedDurationSize];
  size_t w = sizeof buf;
  bool neg = ns < 0;
  uint64_t u = neg ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);

  // fmt_frac writes v's last `prec` digits as a fraction (dropping trailing zeros, and the dot
  // when nothing is left) and returns v / 10^prec.
  auto fmt_frac = [&](uint64_t v, int prec) {
    bool print = false;
    for (int i = 0; i < prec; ++i) {
      unsigned digit = static_cast<unsigned>(v % 10);
      print = print || digit != 0;
      if (print) buf[--w] = static_cast<char>('0' + digit);
      v /= 10;
    }
    if (print) buf[--w] = '.';
    return v;
  };
  auto fmt_int = [&](uint64_t v) {
    if (v == 0) {
      buf[--w] = '0';
      return;
    }
    while (v > 0) {
      buf[--w] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };

  if (u < static_cast<uint64_t>(kSecond)) {
    // Under a second: one of ns, µs (written "us", ASCII for logs), ms, with a fraction.
    int prec = 0;
    buf[--w] = 's';
    if (u == 0) {
      snprintf(out, size, "0s");
      return out;
    } else if (u < static_cast<uint64_t>(kMicrosecond)) {
      buf[--w] = 'n';
    } else if (u < static_cast<uint64_t>(kMillisecond)) {
      prec = 3;
      buf[--w] = 'u';
    } else {
      prec = 6;
      buf[--w] = 'm';
    }
    u = fmt_frac(u, prec);
    fmt_int(u);
  } else {
    buf[--w] = 's';
    u = fmt_frac(u, 9);
    fmt_int(u % 60);
    u /= 60;
    if (u > 0) {
      buf[--w] = 'm';
      fmt_int(u % 60);
      u /= 60;
      if (u > 0) {
        buf[--w] = 'h';
        fmt_int(u);
      }
    }
  }
  if (neg) buf[--w] = '-';
  snprintf(out, size, "%.*s", static_cast<int>(sizeof buf - w), buf + w);
  return out;
}

}  // namespace gonet::core
