// TLS scan: which loaded objects declare thread-local storage, and whose TLS must stay per OS
// thread in fibers mode.
//
// In fibers mode a pthread is a fiber on one of a few worker threads, and the CPU's thread
// pointer belongs to the worker. fiber_tls.h gives each fiber its own copy of the TLS of every
// object that declares it (a PT_TLS program header), except the objects classified here as
// gonet's or a runtime's, whose TLS stays one copy per worker OS thread, and why:
//   - gonet itself (the object that contains this code, whatever its file is called): its TLS is
//     the worker's own (run queues, the current fiber, the re-entry depth that fiber.cc swaps).
//   - glibc (libc, ld-linux, and the libpthread/libdl/librt/libm stubs): the per-thread state a
//     program relies on across a call that may park is errno, which fiber.cc swaps. The rest is
//     set and read inside one libc call that never parks (malloc's tcache, dlerror, strerror's
//     buffer; the resolver's _res and h_errno, whose offloaded calls take turns on the worker's
//     _res and copy h_errno back: resolver_offload.h) and some of it must never follow a fiber
//     to another OS thread (the tcache), so one copy per worker behaves like one busy thread.
//     uselocale is the exception: README says so rather than warning every program.
//   - libstdc++: its TLS is the exception globals, which fiber.cc swaps, and std::call_once's
//     callable pointer, which is read before the callable runs (so before it could park).
//   - libgcc_s and libunwind: unwinder caches, used within one unwind that does not park.
//   - malloc replacements (jemalloc, tcmalloc, mimalloc): per-thread caches used within one
//     malloc or free, which never parks; sharing them is what a single thread would do.
//   - sanitizer runtimes (ASan, TSan, UBSan, LSan, HWASan): their per-thread state is told about
//     every switch (fiber.cc's sanitizer hooks) or is per-call bookkeeping.
// Everything else is the application's (the main program, and any other library): per fiber.
//
// What is still shared is named on stderr, one line per object (FormatTlsWarning), by
// fiber_tls.cc: an object dlopen'ed along a library's own search path, or every application object
// when the operator asked for GONET_FIBER_TLS=shared. The warning is printed by the process
// image that initialised gonet: a forked child does not repeat it, a program started by exec
// (a new image, which initialises gonet again) does. GONET_QUIET_TLS=1 silences it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gonet::core {

struct TlsObject {
  const char* path = "";        // as the loader names it; the main program by its argv[0]
  uint64_t tls_bytes = 0;       // the PT_TLS segment's p_memsz: the size of one copy
  bool contains_gonet = false;  // the object holds this code (libgonet.so, or a test binary)
};

enum class TlsOwner {
  kApplication,  // per fiber (fiber_tls.h)
  kGonet,        // gonet's own TLS, per worker by design
  kRuntime,      // a system runtime whose TLS gonet swaps or that is harmless per worker
};

TlsOwner ClassifyTlsObject(const TlsObject& object);

// Calls visit for every currently loaded object that has a PT_TLS program header, in the
// loader's order (the main program first). Returns how many were visited. Takes the loader's
// lock while it runs: visit must not dlopen or dlclose.
using TlsVisitor = void (*)(const TlsObject& object, void* context);
int ForEachTlsObject(TlsVisitor visit, void* context);

// The warning for one object whose TLS fibers share, a single line ending in '\n', truncated to
// fit cap; why says what made it shared ("it was dlopen'ed by name ..."). Returns its length (at
// most cap - 1; a NUL follows).
size_t FormatTlsWarning(const TlsObject& object, const char* why, char* buf, size_t cap);

// True if GONET_QUIET_TLS asks for silence (set, not empty, not "0").
bool TlsWarningSilenced();

}  // namespace gonet::core
