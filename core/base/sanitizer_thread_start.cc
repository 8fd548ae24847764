#include "core/base/sanitizer_thread_start.h"

#include <dlfcn.h>
#include <pthread.h>

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace gonet::core {

#if defined(__SANITIZE_ADDRESS__)
// Not instrumented: its own frame lies on the stale shadow. glibc's pthread_attr_getstack, not
// ASan's interceptor, which would check its writes to our locals against that same shadow.
// The one dlsym(RTLD_NEXT) outside shim/real.cc (core/README.md, Layers): core cannot name
// shim/real.h, nothing of gonet interposes this function, and core's unit tests run gonet's
// threads with no shim that could register it.
__attribute__((no_sanitize_address, noinline)) void SanitizerThreadStart() {
  using GetStackFn = int (*)(const pthread_attr_t*, void**, size_t*);
  static GetStackFn get_stack =
      reinterpret_cast<GetStackFn>(dlsym(RTLD_NEXT, "pthread_attr_getstack"));
  pthread_attr_t attr;
  if (get_stack == nullptr || pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* low = nullptr;
  size_t size = 0;
  if (get_stack(&attr, &low, &size) == 0) __asan_unpoison_memory_region(low, size);
  pthread_attr_destroy(&attr);
}
#else
void SanitizerThreadStart() {}
#endif

}  // namespace gonet::core
