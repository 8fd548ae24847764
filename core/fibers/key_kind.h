// Which pthread keys gonet may destruct at a fiber's exit: the program's, not a sanitizer's.
//
// In fibers mode a pthread is a fiber, so thread-specific data is per fiber
// (FiberTask::GetSpecific/SetSpecific) and, as glibc does at thread exit, gonet runs the keys'
// destructors when the fiber ends. That is right for the program's keys. It is wrong for the key
// of a sanitizer runtime (AddressSanitizer, and LSan/MSan likewise), and crashed the ASan-built
// shim in fibers mode:
//   - libasan comes first in LD_PRELOAD, so its pthread_create interceptor wraps every
//     pthread_create before ours: each fiber starts in asan_thread_start, which makes the fiber
//     an ASan thread and stores its record under ASan's key (created through our
//     pthread_key_create hook when ASan starts, before gonet's constructor). ASan checks that the
//     slot is empty when a thread starts, so the values must stay per fiber: passing the key to
//     glibc (one value per worker) fails that check at the second fiber on a worker.
//   - the key's destructor is ASan's thread exit. Besides the fiber's own record it tears down
//     state of the OS thread: its dynamic-TLS tracking (DTLS_Destroy) and its alternate signal
//     stack. Run at a fiber's exit, that is the worker's state, which the worker keeps using; the
//     second fiber to end on a worker crashed in DTLS_Destroy.
// Rule: a key whose creator (pthread_key_create's return address, found with dladdr) lies in a
// sanitizer runtime (libasan, libtsan, libmsan, liblsan, libubsan, libhwasan, any libclang_rt.*)
// is a sanitizer key: per fiber like any key, but gonet never runs its destructor at fiber exit.
// The price: the sanitizer's record of each ended fiber is never freed (a few pages per fiber,
// only under a sanitizer). The worker's own value, if it has one, is glibc's and glibc destructs
// it when the worker exits.
//
// Why by creator, not by time ("keys created before gonet's runtime starts"): the program's own
// shared libraries run their constructors before the preloaded libgonet.so's (the loader
// initialises the main program's dependencies first), so a library's global key would be caught
// too and its destructor skipped. The creator does not depend on load order, and is cheap to
// find: keys are created rarely, and pthread_getspecific's path does not change at all.
//
// Limit: a sanitizer runtime linked into the executable (clang's default, -static-libasan) is
// the main program as far as dladdr can tell; its key is treated as a program key.
#pragma once

#include <cstdint>

namespace gonet::core {

enum class KeyKind : uint8_t {
  kProgram,    // per fiber, destructor run at fiber exit
  kSanitizer,  // per fiber, destructor never run by gonet
};

// The kind of a key created by the code at `caller` (pthread_key_create's return address).
// Thread rule: any thread; safe during loader start-up (dladdr takes the loader's recursive lock
// and allocates nothing).
KeyKind KeyKindOfCreator(const void* caller);

// True if `path` (an object's file name, as dladdr reports it) names a sanitizer runtime.
bool IsSanitizerRuntime(const char* path);

}  // namespace gonet::core
