// dlopen in fibers mode: follow the objects it loads, so that their thread-local storage is per
// fiber too (core/fibers/fiber_tls.h).
//
// glibc's dlopen looks at its return address to learn who called it: a name without '/' is
// searched along the caller's RUNPATH, "$ORIGIN" is the caller's directory, and the caller's
// namespace receives the object. An ordinary wrapper would make gonet the caller. So the entry
// is a few instructions of assembly that jump to libc's dlopen, with the program's own return
// address in place, unless the call is one whose answer cannot depend on the caller: fibers
// mode, and a path with '/' and no '$'. Only those calls go through DlopenFollowed, which calls
// libc's dlopen and then adopts the new objects' TLS. A bare name (no '/', no '$') from a caller
// whose search path core finds to be gonet's own (fiber_tls::SameDlopenSearchAsCaller) goes
// through DlopenNoticed, which calls libc's dlopen and then names the new objects with TLS on
// stderr before returning (their TLS stays one copy per worker). Objects loaded any other way
// are named at the next pthread_create.
#include <dlfcn.h>

#include <cstring>

#include "core/base/base.h"
#include "core/fibers/fiber_tls.h"
#include "core/runtime/runtime.h"
#include "shim/real.h"

namespace {

using DlopenFn = void* (*)(const char*, int);

DlopenFn RealDlopen() { return gonet::real::DlopenEntry(); }

}  // namespace

extern "C" __attribute__((visibility("hidden"), used)) void* gonet_shim_dlopen_followed(
    const char* file, int flags) {
  DlopenFn real = RealDlopen();
  if (real == nullptr) return nullptr;
  void* handle = real(file, flags);
  if (handle != nullptr && (flags & RTLD_NOLOAD) == 0) {
    gonet::core::ErrnoGuard keep;  // dlopen's errno is the program's
    gonet::core::fiber_tls::FollowDlopen();
  }
  return handle;
}

extern "C" __attribute__((visibility("hidden"), used)) void* gonet_shim_dlopen_noticed(
    const char* file, int flags) {
  DlopenFn real = RealDlopen();
  if (real == nullptr) return nullptr;
  void* handle = real(file, flags);
  if (handle != nullptr && (flags & RTLD_NOLOAD) == 0) {
    gonet::core::ErrnoGuard keep;
    gonet::core::fiber_tls::NoticeUnfollowedLoads();
  }
  return handle;
}

// Called by the assembly entry below with the program's arguments and its return address: where
// to jump with them (libc's dlopen, or one of the two above, which return to the program).
extern "C" __attribute__((visibility("hidden"), used)) DlopenFn gonet_shim_dlopen_route(
    const char* file, int, const void* caller) {
  if (gonet::core::mode() != gonet::core::RunMode::kFibers || file == nullptr ||
      strchr(file, '$') != nullptr) {
    return RealDlopen();
  }
  if (strchr(file, '/') != nullptr) return &gonet_shim_dlopen_followed;
  gonet::core::ErrnoGuard keep;
  if (gonet::core::fiber_tls::SameDlopenSearchAsCaller(caller)) return &gonet_shim_dlopen_noticed;
  return RealDlopen();
}

#if defined(__x86_64__)
// At entry rsp is 8 mod 16 (the return address, the route's third argument). The two pushes and
// the 8-byte pad keep the call aligned; then a jump to what the route chose: libc's dlopen (its
// return address is the program's again) or a path of ours, which returns to the program itself
// (nullptr, libc's dlopen not found: the followed path, which returns nullptr).
__asm__(R"(
  .text
  .globl dlopen
  .type dlopen, @function
dlopen:
  .cfi_startproc
  mov (%rsp), %rdx
  push %rdi
  .cfi_adjust_cfa_offset 8
  push %rsi
  .cfi_adjust_cfa_offset 8
  sub $8, %rsp
  .cfi_adjust_cfa_offset 8
  call gonet_shim_dlopen_route
  add $8, %rsp
  .cfi_adjust_cfa_offset -8
  pop %rsi
  .cfi_adjust_cfa_offset -8
  pop %rdi
  .cfi_adjust_cfa_offset -8
  test %rax, %rax
  jz 1f
  jmp *%rax
1:
  jmp gonet_shim_dlopen_followed
  .cfi_endproc
  .size dlopen, .-dlopen
)");
#endif
