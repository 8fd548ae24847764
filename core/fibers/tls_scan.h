// TLS scan: at start-up in fibers mode, name the loaded objects whose thread-local storage the
// program's fibers will share.
//
// In fibers mode a pthread is a fiber on one of a few worker threads, and the CPU's thread
// pointer belongs to the worker: every __thread/thread_local variable exists once per worker,
// and all the fibers of that worker see the same copy (fiber_scheduler.h, "Limits of fibers
// mode"). gonet cannot give each fiber its own copy: compiled code reaches TLS through the
// thread pointer without calling anything gonet could interpose. So it says so, once, naming
// each object that declares TLS (a PT_TLS program header) and whose TLS gonet has not already
// made safe:
//
//   gonet: fibers mode: ./server declares 24 bytes of thread-local storage ...
//
// Objects that stay silent, and why:
//   - gonet itself (the object that contains this code, whatever its file is called): its TLS is
//     the worker's own (run queues, the re-entry depth, which fiber.cc swaps on every switch).
//   - glibc (libc, ld-linux, and the libpthread/libdl/librt/libm stubs): the per-thread state a
//     program relies on across a call that may park is errno, which fiber.cc swaps. The rest is
//     set and read inside one libc call that never parks (malloc's tcache, the resolver's _res,
//     dlerror, strerror's buffer), so one copy per worker behaves like one busy thread.
//     uselocale is the exception: README says so rather than warning every program.
//   - libstdc++: its TLS is the exception globals, which fiber.cc swaps, and std::call_once's
//     callable pointer, which is read before the callable runs (so before it could park).
//   - libgcc_s and libunwind: unwinder caches, used within one unwind that does not park.
//   - malloc replacements (jemalloc, tcmalloc, mimalloc): per-thread caches used within one
//     malloc or free, which never parks; sharing them is what a single thread would do.
//   - sanitizer runtimes (ASan, TSan, UBSan, LSan, HWASan): their per-thread state is told about
//     every switch (fiber.cc's sanitizer hooks) or is per-call bookkeeping.
// Everything else warns: the main program, and any library, since gonet cannot know whether it
// keeps per-connection state across a socket call (a buffer, a "current request" pointer).
//
// Limits: only the objects loaded when the runtime starts are scanned; a library dlopen'ed later
// is not (its TLS is shared all the same). The warning is printed by the process image that
// initialised gonet: a forked child does not repeat it, a program started by exec (a new image,
// which initialises gonet again) does. GONET_QUIET_TLS=1 silences it.
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
  kApplication,  // warn: its fibers share one copy per worker
  kGonet,        // gonet's own TLS, per worker by design
  kRuntime,      // a system runtime whose TLS gonet swaps or that is harmless per worker
};

TlsOwner ClassifyTlsObject(const TlsObject& object);

// Calls visit for every currently loaded object that has a PT_TLS program header, in the
// loader's order (the main program first). Returns how many were visited. Takes the loader's
// lock while it runs: visit must not dlopen or dlclose.
using TlsVisitor = void (*)(const TlsObject& object, void* context);
int ForEachTlsObject(TlsVisitor visit, void* context);

// The warning for one object, a single line ending in '\n', truncated to fit cap. Returns its
// length (at most cap - 1; a NUL follows).
size_t FormatTlsWarning(const TlsObject& object, char* buf, size_t cap);

// True if GONET_QUIET_TLS asks for silence (set, not empty, not "0").
bool TlsWarningSilenced();

// Runtime init, fibers mode only: one warning line on stderr per kApplication object, once per
// process (a forked child never repeats it), unless TlsWarningSilenced(). Never throws; takes no
// gonet lock; allocates nothing.
void WarnAboutThreadLocalStorage();

}  // namespace gonet::core
