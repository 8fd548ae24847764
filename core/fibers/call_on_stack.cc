#include "core/fibers/call_on_stack.h"

#include <cstdint>

extern "C" void gonet_call_on_stack(void* top, void (*fn)(void*), void* arg);

#if defined(__x86_64__)
// rbp holds the caller's rsp across the call (callee-saved); the CFA is rbp + 16 throughout.
__asm__(R"(
  .text
  .p2align 4
  .type gonet_call_on_stack, @function
  .hidden gonet_call_on_stack
gonet_call_on_stack:
  .cfi_startproc
  push %rbp
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %rbp, 0
  mov %rsp, %rbp
  .cfi_def_cfa_register %rbp
  mov %rdi, %rsp
  mov %rdx, %rdi
  call *%rsi
  mov %rbp, %rsp
  .cfi_def_cfa_register %rsp
  pop %rbp
  .cfi_adjust_cfa_offset -8
  .cfi_restore %rbp
  ret
  .cfi_endproc
  .size gonet_call_on_stack, .-gonet_call_on_stack
)");
#elif defined(__aarch64__)
// x29 (the frame pointer) holds the caller's sp across the call; the CFA is x29 + 16.
__asm__(R"(
  .text
  .p2align 2
  .type gonet_call_on_stack, %function
  .hidden gonet_call_on_stack
gonet_call_on_stack:
  .cfi_startproc
  stp x29, x30, [sp, #-16]!
  .cfi_def_cfa_offset 16
  .cfi_offset x29, -16
  .cfi_offset x30, -8
  mov x29, sp
  .cfi_def_cfa_register x29
  mov sp, x0
  mov x0, x2
  blr x1
  mov sp, x29
  .cfi_def_cfa sp, 16
  ldp x29, x30, [sp], #16
  .cfi_def_cfa_offset 0
  .cfi_restore x29
  .cfi_restore x30
  ret
  .cfi_endproc
  .size gonet_call_on_stack, .-gonet_call_on_stack
)");
#endif

namespace gonet::core {

bool CanCallOnStack() {
#if defined(__x86_64__) || defined(__aarch64__)
  return true;
#else
  return false;
#endif
}

void CallOnStack(void* top, void (*fn)(void*), void* arg) {
#if defined(__x86_64__) || defined(__aarch64__)
  auto aligned = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t{15});
  gonet_call_on_stack(aligned, fn, arg);
#else
  (void)top;
  fn(arg);
#endif
}

}  // namespace gonet::core
