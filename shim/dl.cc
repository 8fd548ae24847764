// dlopen in fibers mode: follow the objects it loads, so that their thread-local storage is per
// fiber too (core/fibers/fiber_tls.h).
//
// glibc's dlopen looks at its return address to learn who called it: a name without '/' is
// searched along the caller's RPATH and RUNPATH, "$ORIGIN" is the caller's directory, and the
// caller's namespace receives the object. An ordinary wrapper would make gonet the caller. So the
// entry is a few instructions of assembly that ask the route, with the program's arguments and
// its return address, where to jump: libc's dlopen itself (the return address still the
// program's) unless gonet can make the call and load the same file, in fibers mode:
//   - a path with '/' and no '$': DlopenFollowed calls libc's dlopen and adopts the new objects;
//   - a bare name whose search core can reproduce for that caller (dlopen_search.h): the same,
//     through DlopenFollowed for a caller with gonet's own search path, or DlopenAlongProgram
//     for the program with a RUNPATH of its own, which loads the file the program's search finds;
//   - the program's own $ORIGIN: DlopenAlongProgram loads the path it expands to.
// What glibc loads for any other caller is named before the jump when core can tell which file it
// will be, else at the next pthread_create (fiber_tls.h).
#include <dlfcn.h>

#include <climits>
#include <cstdio>
#include <cstring>

#include "core/base/base.h"
#include "core/fibers/dlopen_search.h"
#include "core/fibers/fiber_tls.h"
#include "core/runtime/runtime.h"
#include "shim/real.h"

namespace {

using DlopenFn = void* (*)(const char*, int);
// What the route answers: an address the entry jumps to (void (*)() converts to and from any
// function pointer type without a warning).
using JumpTarget = void (*)();

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

// The program called dlopen(name) and has a RUNPATH of its own: glibc answers with an object
// already loaded under that name before it searches, for any caller; then the program's search.
// Or the program called dlopen with its own $ORIGIN: the path it expands to.
extern "C" __attribute__((visibility("hidden"), used)) void* gonet_shim_dlopen_along_program(
    const char* file, int flags, const void* caller) {
  DlopenFn real = RealDlopen();
  if (real == nullptr) return nullptr;
  namespace search = gonet::core::dlopen_search;
  char path[PATH_MAX];
  search::ByName plan;
  {
    gonet::core::ErrnoGuard keep;
    plan = search::Plan(file, caller, path, sizeof path);
  }
  if (plan == search::ByName::kAlongProgramRunpath) {
    void* loaded = real(file, flags | RTLD_NOLOAD);
    if (loaded != nullptr) return loaded;
  } else if (plan != search::ByName::kProgramOrigin) {
    snprintf(path, sizeof path, "%s", file);  // changed under us: gonet's own search, as before
  }
  return gonet_shim_dlopen_followed(path, flags);
}

// Called by the assembly entry below with the program's arguments and its return address: where
// to jump with them, the return address as third argument (libc's dlopen, which ignores it, or
// one of the two above, which return to the program).
extern "C" __attribute__((visibility("hidden"), used)) JumpTarget gonet_shim_dlopen_route(
    const char* file, int, const void* caller) {
  if (gonet::core::mode() != gonet::core::RunMode::kFibers || file == nullptr) {
    return reinterpret_cast<JumpTarget>(RealDlopen());
  }
  if (strchr(file, '/') != nullptr && strchr(file, '$') == nullptr) {
    return reinterpret_cast<JumpTarget>(&gonet_shim_dlopen_followed);
  }
  gonet::core::ErrnoGuard keep;
  namespace search = gonet::core::dlopen_search;
  char path[PATH_MAX];
  switch (search::Plan(file, caller, path, sizeof path)) {
    case search::ByName::kAsGonet:
      return reinterpret_cast<JumpTarget>(&gonet_shim_dlopen_followed);
    case search::ByName::kAlongProgramRunpath:
    case search::ByName::kProgramOrigin:
      return reinterpret_cast<JumpTarget>(&gonet_shim_dlopen_along_program);
    case search::ByName::kCallersOwn:
      if (search::PredictCallersOwn(file, caller, path, sizeof path)) {
        gonet::core::fiber_tls::NameBeforeDlopen(path);
      }
      break;
  }
  return reinterpret_cast<JumpTarget>(RealDlopen());
}

#if defined(__x86_64__)
// At entry rsp is 8 mod 16 (the return address, the route's third argument, and again the third
// argument of where it jumps). The two pushes and
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
  mov (%rsp), %rdx
  test %rax, %rax
  jz 1f
  jmp *%rax
1:
  jmp gonet_shim_dlopen_followed
  .cfi_endproc
  .size dlopen, .-dlopen
)");
#endif
