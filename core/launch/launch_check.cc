#include "core/launch/launch_check.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/launch/native_elf.h"

namespace gonet::core {
namespace {

// Linux follows at most 4 levels of "#!" (BINPRM_MAX_RECURSION); deeper fails to exec anyway.
constexpr int kMaxScriptDepth = 4;

// Candidate fills `out` with dir/name (or name alone for an empty dir, as execvp does).
bool Candidate(std::string_view dir, std::string_view name, char* out, size_t size) {
  int n = dir.empty() ? snprintf(out, size, "%.*s", static_cast<int>(name.size()), name.data())
                      : snprintf(out, size, "%.*s/%.*s", static_cast<int>(dir.size()), dir.data(),
                                 static_cast<int>(name.size()), name.data());
  return n >= 0 && static_cast<size_t>(n) < size;
}

bool IsExecutableFile(const char* path, int* err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    *err = errno;
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = EACCES;
    return false;
  }
  if (access(path, X_OK) != 0) {
    *err = errno;
    return false;
  }
  return true;
}

// Reads exactly `size` bytes at `offset`; false on a short file or an error.
bool ReadAt(int fd, void* buf, size_t size, off_t offset) {
  char* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = pread(fd, p, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

// ReadElf reads the header and program headers of the ELF file open at `fd`: its machine, and
// whether it names an interpreter (PT_INTERP).
template <typename Ehdr, typename Phdr>
bool ReadElf(int fd, const char* path, bool* has_interp, int* machine, ParseError* e) {
  Ehdr eh;
  if (!ReadAt(fd, &eh, sizeof eh, 0)) {
    e->Set("refusing %s: truncated ELF header", path);
    return false;
  }
  *machine = eh.e_machine;
  *has_interp = false;
  if (eh.e_phentsize != sizeof(Phdr)) {
    e->Set("refusing %s: unexpected ELF program header size %u", path, eh.e_phentsize);
    return false;
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    if (!ReadAt(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof(Phdr)))) {
      e->Set("refusing %s: truncated ELF program headers", path);
      return false;
    }
    if (ph.p_type == PT_INTERP) *has_interp = true;
  }
  return true;
}

// Secure-execution mode: the loader ignores LD_PRELOAD for setuid/setgid programs and for
// programs with file capabilities.
ParseError CheckSecureExec(const char* path, const struct stat& st, const char* who) {
  ParseError e;
  if ((st.st_mode & S_ISUID) || ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP))) {
    e.Set(
        "refusing %s: it is %s; the dynamic loader ignores LD_PRELOAD for setuid/setgid "
        "programs (secure-execution mode), so gonet would silently not be loaded",
        who, (st.st_mode & S_ISUID) ? "setuid" : "setgid");
  } else if (getxattr(path, "security.capability", nullptr, 0) > 0) {
    e.Set(
        "refusing %s: it has file capabilities (security.capability); the dynamic loader "
        "ignores LD_PRELOAD for such programs (secure-execution mode)",
        who);
  }
  return e;
}

// An ELF file (head: its identification bytes, fd open on it, closed here): same byte order,
// class and machine as libgonet.so, and dynamically linked.
ParseError CheckElf(int fd, const unsigned char* head, const char* who) {
  ParseError e;
  bool has_interp = false;
  int machine = EM_NONE;
  bool read_ok = false;
  if (head[EI_DATA] != kNativeData) {
    close(fd);
    e.Set("refusing %s: it is an ELF program of another byte order than libgonet.so", who);
    return e;
  }
  if (head[EI_CLASS] == ELFCLASS64) {
    read_ok = ReadElf<Elf64_Ehdr, Elf64_Phdr>(fd, who, &has_interp, &machine, &e);
  } else if (head[EI_CLASS] == ELFCLASS32) {
    read_ok = ReadElf<Elf32_Ehdr, Elf32_Phdr>(fd, who, &has_interp, &machine, &e);
  } else {
    e.Set("refusing %s: unknown ELF class %u", who, head[EI_CLASS]);
  }
  close(fd);
  if (!read_ok) return e;
  if (head[EI_CLASS] != kNativeClass) {
    e.Set("refusing %s: it is a %d-bit program and libgonet.so is %d-bit", who,
          head[EI_CLASS] == ELFCLASS64 ? 64 : 32, kNativeClass == ELFCLASS64 ? 64 : 32);
    return e;
  }
  if (kNativeMachine != EM_NONE && machine != kNativeMachine) {
    e.Set("refusing %s: it is built for another machine (ELF e_machine %d, libgonet.so has %d)",
          who, machine, kNativeMachine);
    return e;
  }
  if (!has_interp) {
    e.Set(
        "refusing %s: it is statically linked (no ELF interpreter), so the dynamic loader never "
        "runs and LD_PRELOAD cannot load libgonet.so",
        who);
    return e;
  }
  return e;
}

ParseError Check(const char* path, int depth, const char* script) {
  ParseError e;
  // What the refusal is about: the program, or the interpreter of the script the user named.
  char who[PATH_MAX + 64];
  if (script == nullptr) {
    snprintf(who, sizeof who, "%s", path);
  } else {
    snprintf(who, sizeof who, "%s (the #! interpreter of %s)", path, script);
  }

  struct stat st;
  if (stat(path, &st) != 0) {
    // Let exec report it with the usual message (a script's missing interpreter, a race).
    return e;
  }
  if (e = CheckSecureExec(path, st, who); e.failed()) return e;

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // An execute-only file cannot be inspected; exec will still work, so do not refuse.
    return e;
  }
  unsigned char head[EI_NIDENT] = {};
  ssize_t got = pread(fd, head, sizeof head, 0);
  if (got >= 2 && head[0] == '#' && head[1] == '!') {
    char line[PATH_MAX + 3];
    ssize_t n = pread(fd, line, sizeof line - 1, 0);
    close(fd);
    if (n < 0) return e;
    line[n] = '\0';
    // "#!" [spaces] interpreter [spaces arg] newline, as the kernel's binfmt_script reads it.
    char* p = line + 2;
    while (*p == ' ' || *p == '\t') ++p;
    size_t len = strcspn(p, " \t\n");
    p[len] = '\0';
    if (*p == '\0' || depth >= kMaxScriptDepth) return e;
    return Check(p, depth + 1, script != nullptr ? script : path);
  }
  if (got < static_cast<ssize_t>(sizeof head) || memcmp(head, ELFMAG, SELFMAG) != 0) {
    close(fd);
    // Neither ELF nor "#!": exec fails with ENOEXEC and execvp hands the file to /bin/sh.
    if (depth >= kMaxScriptDepth) return e;
    return Check("/bin/sh", depth + 1, script != nullptr ? script : path);
  }
  return CheckElf(fd, head, who);
}

}  // namespace

ResolvedProgram ResolveProgram(std::string_view name, const char* path_env) noexcept {
  ResolvedProgram r;
  QuoteBuffer q;
  if (name.empty()) {
    r.exit_code = kExitNotFound;
    r.error.Set("empty program name");
    return r;
  }
  int err = ENOENT;
  if (name.find('/') != std::string_view::npos) {
    if (!Candidate({}, name, r.path, sizeof r.path)) {
      err = ENAMETOOLONG;
    } else if (IsExecutableFile(r.path, &err)) {
      return r;
    }
    r.exit_code = (err == ENOENT || err == ENOTDIR) ? kExitNotFound : kExitNotExecutable;
    r.error.Set("%s: %s", q(name), strerror(err));
    return r;
  }
  std::string_view dirs = path_env != nullptr ? path_env : "/bin:/usr/bin";
  bool saw_eacces = false;
  for (;;) {
    size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    if (Candidate(dir, name, r.path, sizeof r.path)) {
      if (IsExecutableFile(r.path, &err)) return r;
      saw_eacces = saw_eacces || err == EACCES;
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  r.path[0] = '\0';
  if (saw_eacces) {
    r.exit_code = kExitNotExecutable;
    r.error.Set("%s: permission denied (found in PATH, but not executable)", q(name));
  } else {
    r.exit_code = kExitNotFound;
    r.error.Set("%s: command not found in PATH", q(name));
  }
  return r;
}

ParseError CheckPreloadable(const char* path) noexcept { return Check(path, 0, nullptr); }

}  // namespace gonet::core
