// syscall(2) in fibers mode: private futex waits and wakes go to core (core/fibers/futex_call.h);
// every other system call, and every call in other modes, is made here with the syscall
// instruction itself, with glibc's syscall() convention (-1 and errno for -4095..-1). No dlsym:
// shim/real.cc falls back to syscall() while a dlsym is in progress.
#include <stdarg.h>
#include <sys/syscall.h>

#include "core/base/base.h"
#include "core/base/sys.h"
#include "core/fibers/futex_call.h"
#include "core/runtime/runtime.h"
#include "shim/abi.h"

#if defined(__x86_64__)  // sys::Syscall6; elsewhere sys::Call itself goes through syscall()

// syscall()'s convention reads six argument words whatever the caller passed (glibc's assembly
// loads the sixth from the caller's stack); with fewer, that word is the caller's own frame,
// which AddressSanitizer would report as a stack-buffer-underflow.
GONET_HOOK __attribute__((no_sanitize_address)) long syscall(long nr, ...) {
  long a[6];
  va_list ap;
  va_start(ap, nr);
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  long r;
  if (nr != SYS_futex || gonet::core::mode() != gonet::core::RunMode::kFibers ||
      !gonet::core::FutexCall(a, &r)) {
    r = gonet::core::ProgramSyscall(nr, a);
  }
  if (r < 0 && r > -4096) {
    gonet::sys::FreshErrno() = static_cast<int>(-r);
    return -1;
  }
  return r;
}
#endif
