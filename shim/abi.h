// Translating core's IoResult to the C ABI: on failure errno is written once, here, and -1
// returned; on success errno is untouched (STYLE.md §5).
#pragma once

#include <cerrno>

#include "core/base/base.h"

namespace gonet::shim {

template <typename Ret = ssize_t>
inline Ret ToCAbi(const core::IoResult& r) {
  if (r.err != 0) {
    errno = r.err;
    return static_cast<Ret>(-1);
  }
  return static_cast<Ret>(r.n);
}

}  // namespace gonet::shim

// Every hook is exported under its libc name (libgonet.map) and nothing else is.
#define GONET_HOOK extern "C" __attribute__((visibility("default")))
