#include "common/errno_name.h"

#include <string.h>

namespace examples {

std::string ErrnoName(int err) {
  // strerrorname_np (glibc >= 2.32) is thread-safe and locale-free, unlike strerror.
  if (const char* name = strerrorname_np(err)) return name;
  return "errno=" + std::to_string(err);
}

}  // namespace examples
