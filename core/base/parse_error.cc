#include "core/base/parse_error.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace gonet::core {

void ParseError::Set(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vsnprintf(message_, kCapacity, format, args);
  va_end(args);
}

void ParseError::Prefix(const char* format, ...) noexcept {
  char old[kCapacity];
  memcpy(old, message_, kCapacity);
  va_list args;
  va_start(args, format);
  int n = vsnprintf(message_, kCapacity, format, args);
  va_end(args);
  if (n >= 0 && static_cast<size_t>(n) < kCapacity) {
    snprintf(message_ + n, kCapacity - n, "%s", old);
  }
}

const char* Quote(std::string_view text, char* out, size_t size) noexcept {
  if (size == 0) return out;
  size_t limit = ParseError::kMaxQuoted;
  if (limit > size - 1) limit = size - 1;
  bool cut = text.size() > limit;
  // Leave room for "..." when cutting.
  size_t keep = cut ? (limit >= 3 ? limit - 3 : 0) : text.size();
  size_t i = 0;
  for (; i < keep; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out[i] = (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (cut) {
    for (int d = 0; d < 3 && i < size - 1; ++d) out[i++] = '.';
  }
  out[i] = '\0';
  return out;
}

}  // namespace gonet::core
