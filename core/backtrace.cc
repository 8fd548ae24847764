#include "core/backtrace.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

// Weak: gonet_core also links into programs without libunwind (unit tests, core-only sanitizer
// builds), which then take no backtraces. libgonet.so links it (preload/CMakeLists.txt).
#pragma weak _ULx86_64_init_local2
#pragma weak _ULx86_64_get_reg
#pragma weak _ULx86_64_get_proc_name
#pragma weak _ULx86_64_step

namespace gonet::core {

int SignalBacktrace(void* ucontext, uint64_t* pcs, uint64_t* offsets, char* names, size_t name_size,
                    int max) {
  if (ucontext == nullptr || max <= 0 || &unw_init_local2 == nullptr) return 0;
  unw_cursor_t cursor;
  // UNW_INIT_SIGNAL_FRAME: the context's pc is the interrupted instruction itself, not a return
  // address, so libunwind must not step back one byte to find its caller's frame.
  if (unw_init_local2(&cursor, static_cast<unw_context_t*>(ucontext), UNW_INIT_SIGNAL_FRAME) < 0) {
    return 0;
  }
  int n = 0;
  do {
    unw_word_t ip = 0;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0) break;
    pcs[n] = ip;
    unw_word_t off = 0;
    char* name = names + static_cast<size_t>(n) * name_size;
    name[0] = '\0';
    int r = unw_get_proc_name(&cursor, name, name_size, &off);
    if (r != 0 && r != -UNW_ENOMEM) {  // ENOMEM: the name was truncated, still worth showing
      name[0] = '\0';
      off = 0;
    }
    name[name_size - 1] = '\0';
    offsets[n] = off;
    ++n;
  } while (n < max && unw_step(&cursor) > 0);
  return n;
}

}  // namespace gonet::core
