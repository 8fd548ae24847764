// How gonet can make a program's dlopen of a bare name itself, so that fibers mode follows what it
// loads (fiber_tls.h: per-fiber TLS of dlopen'ed objects).
//
// glibc's dlopen of a name without '/' searches along its caller's paths: the DT_RPATH chain of
// the caller and of the objects that loaded it (when the caller has no DT_RUNPATH), then
// LD_LIBRARY_PATH, then the caller's DT_RUNPATH, then ld.so.cache and the default directories
// (not with DF_1_NODEFLIB). Inside each directory it first tries the hardware-capability
// subdirectories (glibc-hwcaps/x86-64-v4..., and glibc 2.36's legacy tls/ and x86_64/). The
// caller is read from dlopen's return address, so gonet's own call is searched along gonet's
// paths. The rule, by caller:
//
//   kAsGonet            glibc reports the same search path for the caller as for gonet
//                       (RTLD_DI_SERINFO), in the base namespace: gonet calls dlopen(name) and
//                       loads the same file, and the file's own later searches are the same too.
//   kAlongProgramRunpath  the caller is the program itself, and its path is gonet's with
//                       directories of its own added in one run (its DT_RUNPATH, after
//                       LD_LIBRARY_PATH): gonet finds the file as glibc would, walking the
//                       program's path up to the end of that run (Plan), and
//                       dlopens that path; if no directory up to there has it, the rest of the
//                       search (ld.so.cache, default directories) is gonet's own, and gonet calls
//                       dlopen(name). Dependencies of the new object search the same way either
//                       way: a DT_RPATH chain passes through the program whoever loads it, and a
//                       DT_RUNPATH is never inherited. Left to glibc (kCallersOwn) when any
//                       directory of the walk has hardware-capability subdirectories, which
//                       RTLD_DI_SERINFO does not list and whose choice depends on the CPU.
//   kProgramOrigin      the program's name with $ORIGIN (or ${ORIGIN}): its directory, as glibc
//                       expands it for the program (from /proc/self/exe), makes it a path.
//   kCallersOwn         anything else (a library with a path of its own, another namespace, code
//                       outside any object, another library's $ORIGIN, $LIB or $PLATFORM, a
//                       set-user-ID program's $ORIGIN): only glibc, called with the program's
//                       return address, can search for it.
//
// Before gonet loads by path, it asks glibc for an object already loaded under that name
// (RTLD_NOLOAD): glibc matches loaded names before it searches, for any caller.
#pragma once

#include <cstddef>

namespace gonet::core::dlopen_search {

enum class ByName {
  kAsGonet,
  kAlongProgramRunpath,
  kProgramOrigin,
  kCallersOwn,
};

// How a dlopen of `name`, a bare name (no '/') or one with '$', from the code at `caller` (a
// return address) can be made by gonet. For kAlongProgramRunpath and kProgramOrigin, path (cap
// bytes) receives what gonet passes to dlopen: the file found among the program's directories up
// to the end of its own run, or name itself when none of them has it; the expanded path. Safe
// from any thread; allocates; loads nothing.
ByName Plan(const char* name, const void* caller, char* path, size_t cap);

// For kCallersOwn from a library: the file glibc's search will open for name when it can be told
// ahead of the call (a name with that library's $ORIGIN; a bare name found in a directory of the
// library's own path, before those it shares with gonet's, among which ld.so.cache is searched),
// written to path; false otherwise. Only to name the file before glibc loads it (fiber_tls.h).
bool PredictCallersOwn(const char* name, const void* caller, char* path, size_t cap);

}  // namespace gonet::core::dlopen_search
