// The resolver's res_* calls from a fiber (shim/resolver.cc): the call runs on an offload helper
// (syscall_offload.h) while the fiber parks, and looks as if it ran on the calling thread.
//
// What "as on the calling thread" takes, beyond errno (which Offload carries):
//   - h_errno, where these calls report failure: glibc's, one per OS thread (the fibers of a
//     worker share the worker's; the helper has its own). The helper starts from the caller's
//     value and the caller takes the helper's after the call, as errno is carried, so a call
//     that succeeds without touching it leaves the program's as it was.
//   - the state. The n-forms (res_nquery, res_nsearch, res_nquerydomain, res_nsend) take it as
//     an argument, and glibc binds it to no thread (resolv_context.c's
//     __resolv_context_get_override only wraps the pointer), so they run as they are.
//     res_query, res_search, res_querydomain and res_send use the calling thread's _res (what
//     __res_state() returns: glibc's __resp, one per OS thread). glibc's own entry runs on the
//     helper with the helper's __resp aimed at the caller's _res for the call, and put back
//     after: glibc then initialises that state on first use, reloads a changed
//     /etc/resolv.conf, and keeps the fields the program set (options, nsaddr_list), exactly as
//     on the calling thread. Why not hand the caller's _res to the n-form instead? The n-forms
//     skip glibc's maybe_init (resolv_context.c): the first-use initialisation (that part
//     res_ninit reproduces) and the reload of a resolv.conf that changed since (which no public
//     call reproduces). glibc's resolver calls back into no program code meanwhile (the query and
//     response hooks are gone since 2.26), so no program code sees the helper's __resp changed.
//     The shim finds __resp (real::ResStateSlot); where it cannot, these four run inline on the
//     worker, as before.
//
// One state, one call at a time: the fibers of a worker share its _res, where the program's
// threads each had their own (glibc's TLS is per worker: tls_scan.h). Two of them in res_query at
// once would have two helpers use one _res (its open sockets, its query IDs) at once, which never
// happens natively. So a call on the worker's _res (every non-reentrant call, and an n-form given
// &_res) holds a lock for that state for its duration: a fiber-parking mutex (fiber_sync.h), one
// of kStateLocks chosen by the state's address. Calls on other states run in parallel.
//
// LOCKING: a state lock is a program-level wait (a fiber parks on it), taken before the offload
// and released after it; nothing else is taken under it but the offload pool's leaf spinlock.
#pragma once

#include <resolv.h>

namespace gonet::core {

// Where the calling OS thread keeps its resolver-state pointer (glibc's __resp); the shim finds
// it (core does not resolve libc symbols).
using ResStateSlotFn = res_state* (*)();

// fn(arg) on a helper while the calling fiber parks, h_errno carried both ways (above). statp:
// the state the call uses (an n-form's argument, or the caller's _res); it is locked if it is
// the worker's _res. thread_slot: for a non-reentrant call, the helper's __resp names statp
// during fn (nullptr for an n-form). Called outside a fiber, it runs fn inline.
long OffloadResolver(long (*fn)(void*), void* arg, res_state statp, ResStateSlotFn thread_slot);

// An n-form: OffloadStateCall(real_res_nquery, statp, name, cls, type, answer, anslen).
template <typename Fn, typename... Args>
int OffloadStateCall(Fn fn, res_state statp, Args... args) {
  auto call = [&] { return static_cast<long>(fn(statp, args...)); };
  using Call = decltype(call);
  return static_cast<int>(OffloadResolver(
      [](void* c) -> long { return (*static_cast<Call*>(c))(); }, &call, statp, nullptr));
}

// A call on the calling thread's _res: OffloadThreadStateCall(slot, real_res_query, name, ...).
template <typename Fn, typename... Args>
int OffloadThreadStateCall(ResStateSlotFn thread_slot, Fn fn, Args... args) {
  auto call = [&] { return static_cast<long>(fn(args...)); };
  using Call = decltype(call);
  return static_cast<int>(
      OffloadResolver([](void* c) -> long { return (*static_cast<Call*>(c))(); }, &call,
                      __res_state(), thread_slot));
}

}  // namespace gonet::core
