#include "core/faults/fault_spec.h"

#include <string.h>  // strerrorname_np (glibc >= 2.32), strcasecmp via <strings.h>
#include <strings.h>

#include <cerrno>

#include "core/base/duration.h"

namespace gonet::core {
namespace {

constexpr const char* kOpNames[kFaultOpCount] = {"socket", "connect", "accept",
                                                 "read",   "write",   "close"};
constexpr const char kOpList[] =
    "socket, connect, accept, read, write, close; read covers the recv family, write the send "
    "family";

// glibc's errno table has no gaps this large; 4095 is the kernel's MAX_ERRNO.
constexpr int kMaxErrno = 4095;

struct ErrnoAlias {
  const char* name;
  int err;
};
// Second names of one value: strerrorname_np returns only the first.
constexpr ErrnoAlias kErrnoAliases[] = {
    {"EWOULDBLOCK", EWOULDBLOCK},
    {"EDEADLOCK", EDEADLOCK},
    {"ENOTSUP", ENOTSUP},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// ParseUint64 accepts decimal digits only, without sign or spaces, and refuses overflow.
bool ParseUint64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    unsigned d = static_cast<unsigned>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// ParseProbability accepts "0", "1", "0.25", ".5", "1.0": a plain decimal in [0, 1].
// No exponent and no locale, unlike strtod.
bool ParseProbability(std::string_view s, double* out) {
  double v = 0;
  size_t digits = 0;
  size_t i = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i, ++digits) v = v * 10 + (s[i] - '0');
  if (i < s.size() && s[i] == '.') {
    double place = 0.1;
    for (++i; i < s.size() && IsDigit(s[i]); ++i, ++digits, place /= 10) v += (s[i] - '0') * place;
  }
  if (digits == 0 || i != s.size()) return false;
  *out = v;
  return true;
}

// NextField splits `rest` at the next ':' and returns what came before it.
std::string_view NextField(std::string_view* rest) {
  size_t colon = rest->find(':');
  std::string_view field = rest->substr(0, colon);
  rest->remove_prefix(colon == std::string_view::npos ? rest->size() : colon + 1);
  return field;
}

}  // namespace

const char* FaultOpName(FaultOp op) noexcept {
  size_t i = static_cast<size_t>(op);
  return i < kFaultOpCount ? kOpNames[i] : "?";
}

int ErrnoFromName(std::string_view name) noexcept {
  if (name.empty() || name.size() > 32) return 0;
  char buf[33];
  memcpy(buf, name.data(), name.size());
  buf[name.size()] = '\0';
  for (const ErrnoAlias& a : kErrnoAliases) {
    if (strcasecmp(buf, a.name) == 0) return a.err;
  }
  for (int err = 1; err <= kMaxErrno; ++err) {
    const char* known = strerrorname_np(err);
    if (known != nullptr && strcasecmp(buf, known) == 0) return err;
  }
  return 0;
}

const char* ErrnoName(int err) noexcept {
  const char* name = err > 0 ? strerrorname_np(err) : nullptr;
  return name != nullptr ? name : "E?";
}

namespace {

// The rule's first field: which operation it targets.
ParseError ParseOpField(std::string_view op, FaultRule* rule) noexcept {
  ParseError e;
  QuoteBuffer q;
  bool op_found = false;
  for (size_t i = 0; i < kFaultOpCount; ++i) {
    if (op == kOpNames[i]) rule->op = static_cast<FaultOp>(i), op_found = true;
  }
  if (op.empty()) {
    e.Set("missing op (ops: %s)", kOpList);
  } else if (!op_found) {
    e.Set("unknown op \"%s\" (ops: %s)", q(op), kOpList);
  }
  return e;
}

// The second field: an errno (name or number) to fail with, or delay=DURATION.
ParseError ParseActionField(std::string_view op, std::string_view action,
                            FaultRule* rule) noexcept {
  ParseError e;
  QuoteBuffer q;
  if (action.empty()) {
    e.Set("\"%s\" needs an action: an errno name (e.g. ECONNREFUSED) or delay=DURATION", q(op));
    return e;
  }
  if (action.substr(0, 6) == "delay=") {
    DurationResult d = ParseDuration(action.substr(6));
    if (!d.ok()) {
      e.Set("bad delay: %s", d.error.message());
      return e;
    }
    rule->delay_ns = d.ns;
    return e;
  }
  uint64_t number = 0;
  int err = 0;
  if (ParseUint64(action, &number)) {
    if (number > 0 && number <= kMaxErrno && strerrorname_np(static_cast<int>(number))) {
      err = static_cast<int>(number);
    }
  } else {
    err = ErrnoFromName(action);
  }
  if (err == 0) {
    e.Set("unknown errno \"%s\" (want a name like ECONNREFUSED, or delay=DURATION)", q(action));
    return e;
  }
  rule->err = err;
  return e;
}

// One KEY=VALUE field after the action (its value present where the key needs one).
ParseError ParseQualifier(std::string_view field, std::string_view key, std::string_view value,
                          bool* port_seen, FaultRule* rule) noexcept {
  ParseError e;
  QuoteBuffer q;
  QuoteBuffer q2;
  if (key == "p") {
    double p = 0;
    if (!ParseProbability(value, &p) || p > 1) {
      e.Set("bad probability \"%s\" in \"%s\" (want a decimal from 0 to 1, e.g. p=0.1)", q(value),
            q2(field));
      return e;
    }
    rule->trigger = FaultTrigger::kProbability;
    rule->probability = p;
  } else if (key == "n") {
    uint64_t n = 0;
    if (!ParseUint64(value, &n) || n == 0) {
      e.Set("bad count \"%s\" in \"%s\" (want an integer >= 1)", q(value), q2(field));
      return e;
    }
    rule->trigger = FaultTrigger::kFirstN;
    rule->count = n;
  } else if (key == "after") {
    uint64_t k = 0;
    if (!ParseUint64(value, &k)) {
      e.Set("bad count \"%s\" in \"%s\" (want an integer >= 0)", q(value), q2(field));
      return e;
    }
    rule->trigger = FaultTrigger::kAfterK;
    rule->count = k;
  } else if (key == "port") {
    uint64_t port = 0;
    if (*port_seen) {
      e.Set("\"%s\": port= given twice", q(field));
    } else if (!ParseUint64(value, &port) || port == 0 || port > 65535) {
      e.Set("bad port \"%s\" in \"%s\" (want 1..65535)", q(value), q2(field));
    } else if (rule->op == FaultOp::kSocket) {
      e.Set("\"%s\" does not apply to socket (a new socket has no port yet)", q(field));
    } else {
      rule->port = static_cast<uint16_t>(port);
      *port_seen = true;
    }
  } else if (key == "delay") {
    e.Set("\"%s\": delay= must come right after the op (OP:delay=DURATION)", q(field));
  } else {
    e.Set("unknown field \"%s\" (fields: p=, n=, after=, port=)", q(field));
  }
  return e;
}

}  // namespace

ParseError ParseFaultRule(std::string_view text, FaultRule* out) noexcept {
  ParseError e;
  QuoteBuffer q;
  QuoteBuffer q2;
  FaultRule rule;
  std::string_view rest = text;

  std::string_view op = NextField(&rest);
  if (e = ParseOpField(op, &rule); e.failed()) return e;
  if (e = ParseActionField(op, NextField(&rest), &rule); e.failed()) return e;

  std::string_view trigger_field;  // the first trigger seen, to name it in a conflict
  bool port_seen = false;
  while (!rest.empty()) {
    std::string_view field = NextField(&rest);
    size_t eq = field.find('=');
    std::string_view key = field.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1);
    if (field.empty()) {
      e.Set("empty field after \"%s\"", q(text.substr(0, text.size() - rest.size())));
      return e;
    }
    bool is_trigger = key == "p" || key == "n" || key == "after";
    if (is_trigger && !trigger_field.empty()) {
      e.Set("\"%s\" conflicts with \"%s\": give at most one of p=, n=, after=", q(field),
            q2(trigger_field));
      return e;
    }
    if (eq == std::string_view::npos && (is_trigger || key == "port")) {
      e.Set("\"%s\" needs a value (%s=...)", q(field), q2(key));
      return e;
    }
    if (e = ParseQualifier(field, key, value, &port_seen, &rule); e.failed()) return e;
    if (is_trigger) trigger_field = field;
  }
  // A trailing ':' leaves an empty last field that the loop above cannot see.
  if (!text.empty() && text.back() == ':') {
    e.Set("empty field after \"%s\"", q(text.substr(0, text.size() - 1)));
    return e;
  }
  *out = rule;
  return e;
}

FaultSpecResult ParseFaultSpecs(std::string_view text) noexcept {
  FaultSpecResult r;
  QuoteBuffer q;
  size_t index = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t semi = rest.find(';');
    std::string_view spec = rest.substr(0, semi);
    rest.remove_prefix(semi == std::string_view::npos ? rest.size() : semi + 1);
    if (spec.empty()) continue;
    ++index;
    if (r.specs.size == kMaxFaultRules) {
      r.error.Set("more than %zu fault specs", kMaxFaultRules);
      r.specs.size = 0;
      return r;
    }
    r.error = ParseFaultRule(spec, &r.specs.rules[r.specs.size]);
    if (r.error.failed()) {
      r.error.Prefix("fault spec %zu \"%s\": ", index, q(spec));
      r.specs.size = 0;
      return r;
    }
    ++r.specs.size;
  }
  return r;
}

ParseError ParseFaultSeed(std::string_view text, uint64_t* seed) noexcept {
  ParseError e;
  QuoteBuffer q;
  if (!ParseUint64(text, seed)) {
    e.Set("bad fault seed \"%s\" (want a decimal integer from 0 to 18446744073709551615)", q(text));
  }
  return e;
}

}  // namespace gonet::core
