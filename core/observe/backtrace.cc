#include "core/observe/backtrace.h"

#include <ucontext.h>

#include <cstring>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

// Weak: gonet_core also links into programs without libunwind (unit tests, core-only sanitizer
// builds), which then take no backtraces. libgonet.so links it (preload/CMakeLists.txt).
#pragma weak _ULx86_64_init_local2
#pragma weak _ULx86_64_get_reg
#pragma weak _ULx86_64_get_proc_name
#pragma weak _ULx86_64_step

namespace gonet::core {
namespace {

// The symbol of the cursor's frame into name (empty if unknown), through cache if any.
uint64_t FrameSymbol(unw_cursor_t* cursor, uint64_t ip, char* name, size_t name_size,
                     SymbolCache* cache) {
  SymbolCache::Entry* e = nullptr;
  if (cache != nullptr && name_size <= SymbolCache::kNameSize) {
    e = &cache->entries[ip % SymbolCache::kEntries];
    if (e->gen == cache->gen && e->pc == ip) {
      memcpy(name, e->name, name_size);
      name[name_size - 1] = '\0';
      return e->offset;
    }
  }
  unw_word_t off = 0;
  name[0] = '\0';
  int r = unw_get_proc_name(cursor, name, name_size, &off);
  if (r != 0 && r != -UNW_ENOMEM) {  // ENOMEM: the name was truncated, still worth showing
    name[0] = '\0';
    off = 0;
  }
  name[name_size - 1] = '\0';
  if (e != nullptr) {  // direct-mapped: a collision replaces the older name
    e->gen = cache->gen;
    e->pc = ip;
    e->offset = off;
    memcpy(e->name, name, name_size);
  }
  return off;
}

int Walk(unw_cursor_t* cursor, uint64_t* pcs, uint64_t* offsets, char* names, size_t name_size,
         int max, SymbolCache* cache) {
  int n = 0;
  do {
    unw_word_t ip = 0;
    if (unw_get_reg(cursor, UNW_REG_IP, &ip) < 0 || ip == 0) break;
    pcs[n] = ip;
    offsets[n] =
        FrameSymbol(cursor, ip, names + static_cast<size_t>(n) * name_size, name_size, cache);
    ++n;
  } while (n < max && unw_step(cursor) > 0);
  return n;
}

}  // namespace

int SignalBacktrace(void* ucontext, uint64_t* pcs, uint64_t* offsets, char* names, size_t name_size,
                    int max) {
  if (ucontext == nullptr || max <= 0 || &unw_init_local2 == nullptr) return 0;
  unw_cursor_t cursor;
  // UNW_INIT_SIGNAL_FRAME: the context's pc is the interrupted instruction itself, not a return
  // address, so libunwind must not step back one byte to find its caller's frame.
  if (unw_init_local2(&cursor, static_cast<unw_context_t*>(ucontext), UNW_INIT_SIGNAL_FRAME) < 0) {
    return 0;
  }
  return Walk(&cursor, pcs, offsets, names, name_size, max, nullptr);
}

int FiberBacktrace(const void* saved_context, uint64_t* pcs, uint64_t* offsets, char* names,
                   size_t name_size, int max, SymbolCache* cache) {
#if defined(__x86_64__)
  if (saved_context == nullptr || max <= 0 || &unw_init_local2 == nullptr) return 0;
  // Boost.Context 1.74, x86_64 SysV (jump_x86_64_sysv_elf_gas.S; checked against the installed
  // libboost_context.so with objdump -d): jump_fcontext reserves 0x38 bytes below its return
  // address and stores mxcsr/x87 cw at +0, r12 +8, r13 +16, r14 +24, r15 +32, rbx +40, rbp +48;
  // the return address is at +56 and the caller's rsp after the return is fcontext + 64. Those
  // are all the registers a caller may rely on across the call, which is all the unwinder needs.
  const auto* f = static_cast<const uint64_t*>(saved_context);
  unw_context_t uc;
  memset(&uc, 0, sizeof uc);
  greg_t* g = uc.uc_mcontext.gregs;
  g[REG_R12] = static_cast<greg_t>(f[1]);
  g[REG_R13] = static_cast<greg_t>(f[2]);
  g[REG_R14] = static_cast<greg_t>(f[3]);
  g[REG_R15] = static_cast<greg_t>(f[4]);
  g[REG_RBX] = static_cast<greg_t>(f[5]);
  g[REG_RBP] = static_cast<greg_t>(f[6]);
  g[REG_RIP] = static_cast<greg_t>(f[7]);
  g[REG_RSP] = static_cast<greg_t>(reinterpret_cast<uintptr_t>(saved_context) + 64);
  unw_cursor_t cursor;
  // No UNW_INIT_SIGNAL_FRAME: the pc is a return address, as in a context unw_getcontext made.
  if (unw_init_local2(&cursor, &uc, 0) < 0) return 0;
  return Walk(&cursor, pcs, offsets, names, name_size, max, cache);
#else
  (void)saved_context, (void)pcs, (void)offsets, (void)names, (void)name_size, (void)max,
      (void)cache;
  return 0;
#endif
}

}  // namespace gonet::core
