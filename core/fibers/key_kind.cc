#include "core/fibers/key_kind.h"

#include <dlfcn.h>

#include <cstring>

namespace gonet::core {

bool IsSanitizerRuntime(const char* path) {
  if (path == nullptr) return false;
  const char* slash = strrchr(path, '/');
  const char* base = slash != nullptr ? slash + 1 : path;
  // GCC's runtimes are lib<name>.so.N; clang's shared ones are libclang_rt.<name>-<arch>.so, and
  // every one of those (asan, tsan, ubsan, hwasan, memprof...) keeps per-OS-thread state.
  static constexpr const char* kPrefixes[] = {"libasan.",  "libtsan.",   "libmsan.",    "liblsan.",
                                              "libubsan.", "libhwasan.", "libclang_rt."};
  for (const char* prefix : kPrefixes) {
    if (strncmp(base, prefix, strlen(prefix)) == 0) return true;
  }
  return false;
}

KeyKind KeyKindOfCreator(const void* caller) {
  Dl_info info{};
  if (caller == nullptr || dladdr(caller, &info) == 0) return KeyKind::kProgram;
  return IsSanitizerRuntime(info.dli_fname) ? KeyKind::kSanitizer : KeyKind::kProgram;
}

}  // namespace gonet::core
