// What a sanitizer's pthread_create interceptor does for a new thread, done by gonet's own threads.
//
// gonet's OS threads (fiber workers and spare machines, the sysmon, offload helpers, the
// netpoller driver) are created with libc's pthread_create, found with dlsym(RTLD_NEXT) from
// libgonet.so, which skips libasan (it comes first in LD_PRELOAD): they must not become fibers,
// and so they miss ASan's interceptor too. That interceptor clears the new thread's stack shadow,
// and it matters: glibc hands a new thread a cached stack, and in a forked child the stacks of the
// parent's other threads, whose shadow still marks the redzones of the frames they had. ASan's
// instrumented prologues only poison a frame's redzones (the previous epilogue is trusted to have
// cleared the rest), so a local that lands on a stale redzone is reported as a
// stack-buffer-overflow. Seen: the sysmon restarted in a forked child of an ASan-built shim in
// fibers mode, at sigfillset on its first local.
#pragma once

namespace gonet::core {

// Call first in the start routine of a thread created with libc's pthread_create. Under
// AddressSanitizer, clears the shadow of this thread's whole stack block (stack, static TLS,
// thread descriptor; the live frames' redzones too, which only loses checks in those frames).
// Does nothing in other builds.
void SanitizerThreadStart();

}  // namespace gonet::core
