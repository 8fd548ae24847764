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

// errno of the calling thread, looked up afresh. glibc declares __errno_location const, so the
// compiler may reuse one lookup for every errno access of a function, across calls. A fiber that
// parks in between and is then handed to another OS thread (fiber_scheduler.h, Handoff) would
// read and write the first thread's errno. A call through a volatile pointer is never reused.
inline int& FreshErrno() {
  static int* (*volatile lookup)() = &__errno_location;
  return *lookup();
}

template <typename... Args>
inline long Call(long nr, Args... args) {
  int& err = FreshErrno();
  int saved = err;
  long r = ::syscall(nr, Arg(args)...);
  if (r == -1) r = -err;
  err = saved;
  return r;
}

inline long Err(long r) { return r < 0 ? -r : 0; }

}  // namespace gonet::sys
