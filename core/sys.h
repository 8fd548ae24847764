// Raw system calls for core. Core talks to the kernel directly, never through the libc names the
// shim interposes, so it cannot recurse into a hook, and every call here preserves errno: the
// error comes back as a negative value (libuv's UV__ERR convention), errno is left untouched.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <type_traits>

namespace gonet::sys {

template <typename T>
inline long Arg(T a) {
  if constexpr (std::is_null_pointer_v<T>) {
    return 0;
  } else if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<long>(a);
  } else {
    return static_cast<long>(a);
  }
}

template <typename... Args>
inline long Call(long nr, Args... args) {
  int saved = errno;
  long r = ::syscall(nr, Arg(args)...);
  if (r == -1) r = -errno;
  errno = saved;
  return r;
}

inline long Err(long r) { return r < 0 ? -r : 0; }

}  // namespace gonet::sys
