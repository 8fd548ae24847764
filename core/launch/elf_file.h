// ElfFile: what `gonet check` needs to know about one ELF file on disk, read without running it.
//
// The dynamic loader decides a program's fate under LD_PRELOAD from a few parts of its ELF
// files: the interpreter (PT_INTERP: no interpreter, no loader, no preload), the libraries it
// asks for (DT_NEEDED, searched along DT_RPATH/DT_RUNPATH), the functions it imports from them
// (undefined symbols of .dynsym: the calls libgonet.so could interpose), and its thread-local
// storage (PT_TLS: the copy that fibers mode would share per worker; tls_scan.h reads the same
// header from memory in a running program). ReadElfFile reads exactly those, from the section
// headers where the loader itself reads the dynamic segment (they describe the same bytes, and
// every Debian object has them; a file stripped of them is reported as such).
//
// Launcher only: it allocates (std::string, std::vector) and must not run inside libgonet.so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gonet::core {

struct ElfFile {
  std::string path;
  bool is_elf = false;               // the file starts with the ELF magic
  bool native = false;               // same class, byte order and machine as this build of gonet
  std::string interpreter;           // PT_INTERP, empty for a static executable or a library
  uint64_t tls_bytes = 0;            // PT_TLS p_memsz: one copy of its __thread/thread_local data
  std::vector<std::string> needed;   // DT_NEEDED, in order
  std::vector<std::string> rpath;    // DT_RPATH entries (':'-split), $ORIGIN not yet expanded
  std::vector<std::string> runpath;  // DT_RUNPATH entries
  std::string soname;                // DT_SONAME, for libraries
  std::vector<std::string> imports;  // undefined, non-local symbols of .dynsym, in table order
  std::string error;                 // why it could not be read; empty when it was
};

// ReadElfFile reads `path`. A file that is not ELF has is_elf == false and no error; a file
// that is ELF but cannot be read (truncated, another class) has an error.
ElfFile ReadElfFile(const std::string& path);

// ExpandOrigin replaces $ORIGIN and ${ORIGIN} in a DT_RPATH/DT_RUNPATH entry by the directory
// of the object that carries it, as the loader does (ld.so(8), "Dynamic string tokens").
std::string ExpandOrigin(const std::string& entry, const std::string& object_path);

}  // namespace gonet::core
