// Raw system calls for core. Core talks to the kernel directly, never through the libc names the
// shim interposes, so it cannot recurse into a hook, and every call here preserves errno: the
// error comes back as a negative value (libuv's UV__ERR convention), errno is left untouched.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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

#if defined(__SANITIZE_THREAD__)
extern "C" void __sanitizer_syscall_pre_impl_close(long fd);
// ThreadSanitizer keeps its own table of open fds, fed by libc's close and dup2; a close it does
// not see leaves the number "open", and the number's reuse by another thread then reads as a
// data race between its two creations (seen in StressTest when a starved part started late).
// Tell it what libc's wrappers would have told it.
inline void TellThreadSanitizer(long nr, const long* a) {
  if (nr == SYS_close) __sanitizer_syscall_pre_impl_close(a[0]);
  if (nr == SYS_dup3 || nr == SYS_dup2) __sanitizer_syscall_pre_impl_close(a[1]);
}
#else
inline void TellThreadSanitizer(long, const long*) {}
#endif

#if defined(__x86_64__)
// The syscall instruction itself, as Go's runtime makes it: the kernel returns -errno in rax, so
// errno is never touched and there is no libc wrapper to go through. The kernel clobbers rcx and
// r11; "memory" because it reads and writes the buffers it is given.
inline long Syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

template <typename... Args>
inline long Call(long nr, Args... args) {
  static_assert(sizeof...(Args) <= 6, "a Linux system call takes at most six arguments");
  const long a[6] = {Arg(args)...};  // the rest are zero
  TellThreadSanitizer(nr, a);
  return Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
#else
template <typename... Args>
inline long Call(long nr, Args... args) {
  int& err = FreshErrno();
  int saved = err;
  long r = ::syscall(nr, Arg(args)...);
  if (r == -1) r = -err;
  err = saved;
  return r;
}
#endif

inline long Err(long r) { return r < 0 ? -r : 0; }

// The kernel's struct sigaction for rt_sigaction (glibc's differs: its sa_mask is 128 bytes and
// its restorer is glibc's own). With SIG_DFL or SIG_IGN no restorer is needed.
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

}  // namespace gonet::sys
