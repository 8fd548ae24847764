// core/launch/: the launcher's reading of a program's files before it runs: gonet check's
// judgement and the loader's library search (this file), ELF files on disk (elf_file.h), whether
// LD_PRELOAD can reach the program at all (launch_check.h), this build's ELF identity
// (native_elf.h). Compiled into the gonet command only; nothing in libgonet.so calls it. May
// include: fibers/ (tls_scan.h's classification), base/ (core/README.md: Layers, LOCKING).
//
// Program check: whether, and how, a program can run under gonet, judged from its files alone
// (`gonet check`), so an operator knows before they try.
//
// Three steps, each a function here so that the CLI only prints:
//   1. ScanProgram: the program's ELF image (a #! script's interpreter, as the kernel would
//      run it) and the libraries the loader would load for it: DT_NEEDED breadth-first, each
//      looked up as ld.so(8) does (DT_RPATH of the object when it has no DT_RUNPATH and of the
//      executable, LD_LIBRARY_PATH, DT_RUNPATH, the ld.so.conf directories that ld.so.cache is
//      built from, the default directories), a soname loaded once;
//   2. the import families: which kinds of call the program and its libraries take from libc
//      (undefined .dynsym symbols), sorted into what gonet interposes (threads, sockets,
//      poll/epoll) and what it cannot see (io_uring, signalfd);
//   3. Assess: the verdict (fine, caveats, cannot run), a recommended mode with its reason,
//      the TLS fibers mode copies per fiber (tls_scan.h's classification, on PT_TLS read from the
//      files instead of from memory), and every caveat.
//
// What it cannot know: libraries loaded at run time (dlopen: Python's _socket module, plugins),
// and calls made by raw syscall(). The caveats say so where it matters.
//
// Launcher only: it allocates and reads files; never used inside libgonet.so.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/launch/elf_file.h"

namespace gonet::core {

enum class ImportFamily { kThreads, kSockets, kPoll, kIoUring, kSignalfd };
inline constexpr int kImportFamilies = 5;

// "threads", "sockets", "poll/epoll", "io_uring", "signalfd".
const char* ImportFamilyName(ImportFamily family);

// FamilyOf sorts one imported symbol; false when it belongs to none of the families.
bool FamilyOf(std::string_view symbol, ImportFamily* family);

// Where the loader looks for a DT_NEEDED name that has no '/'.
struct LibrarySearch {
  std::vector<std::string> ld_library_path;  // LD_LIBRARY_PATH at check time
  std::vector<std::string> system_dirs;      // ld.so.conf's directories, then the defaults
};

// The search of this machine: LD_LIBRARY_PATH from `ld_library_path` (may be null), the
// directories named by `ld_so_conf` (and the files it includes), then the loader's defaults.
LibrarySearch SystemLibrarySearch(const char* ld_library_path, const char* ld_so_conf);

// ReadLdSoConf returns the directories an ld.so.conf file names, following "include GLOB".
std::vector<std::string> ReadLdSoConf(const std::string& path);

struct LoadedObject {
  std::string name;      // as asked for (the program's path, or a DT_NEEDED name)
  ElfFile elf;           // elf.path: where it was found
  bool runtime = false;  // glibc, libstdc++, libgcc_s, ...: tls_scan.h's TlsOwner::kRuntime
};

struct ProgramScan {
  std::string program;  // the path given
  std::string image;    // the ELF the kernel runs: the program, or its #! interpreter
  std::string via;      // how image was reached ("#! interpreter of ..."), empty if direct
  std::vector<LoadedObject> objects;  // objects[0] is the image, then libraries in load order
  std::vector<std::string> missing;   // DT_NEEDED names the search did not find
};

// ScanProgram scans `path` (an existing file; see launch_check.h for finding it in PATH).
// `path_env` finds the command of a "#!/usr/bin/env NAME" script.
ProgramScan ScanProgram(const std::string& path, const LibrarySearch& search, const char* path_env);

enum class Verdict { kFine = 0, kCaveats = 1, kCannotRun = 2 };  // also gonet check's exit code

struct FamilyUse {
  std::vector<std::string> symbols;  // distinct, in the order first seen
  std::vector<std::string> objects;  // the objects importing them (file names)
  bool used() const { return !symbols.empty(); }
};

struct TlsShare {
  std::string object;  // its path
  uint64_t bytes = 0;
};

struct Assessment {
  Verdict verdict = Verdict::kFine;
  std::string refusal;  // why it cannot run under gonet (verdict kCannotRun)
  FamilyUse families[kImportFamilies];
  std::vector<TlsShare> tls;  // application objects with TLS (copied per fiber in fibers mode)
  std::string mode;           // recommended: "threads" or "fibers" (empty when kCannotRun)
  std::string reason;         // what the program looks like and why the mode suits it,
                              // starting "a ...": imports are evidence, not proof
  std::vector<std::string> caveats;  // each one sentence; any makes the verdict kCaveats
  std::vector<std::string> notes;    // worth knowing, not a caveat for the recommended mode
};

// Assess judges a scan. `refusal` is launch_check.h's CheckPreloadable message, or empty.
Assessment Assess(const ProgramScan& scan, const std::string& refusal);

}  // namespace gonet::core
