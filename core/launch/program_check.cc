#include "core/launch/program_check.h"

#include <cxxabi.h>
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>

#include "core/fibers/tls_scan.h"

namespace gonet::core {
namespace {

// The loader's built-in directories after ld.so.cache (glibc's SYSTEM_DIRS on Debian:
// multiarch first).
#if defined(__x86_64__)
#define GONET_TRIPLET "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define GONET_TRIPLET "aarch64-linux-gnu"
#elif defined(__riscv)
#define GONET_TRIPLET "riscv64-linux-gnu"
#elif defined(__powerpc64__)
#define GONET_TRIPLET "powerpc64le-linux-gnu"
#elif defined(__s390x__)
#define GONET_TRIPLET "s390x-linux-gnu"
#endif
constexpr const char* kDefaultDirs[] = {
#ifdef GONET_TRIPLET
    "/lib/" GONET_TRIPLET,
    "/usr/lib/" GONET_TRIPLET,
#endif
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
};

// Linux follows at most 4 levels of "#!" (BINPRM_MAX_RECURSION), as launch_check.cc does.
constexpr int kMaxScriptDepth = 4;

struct FamilyEntry {
  const char* name;
  ImportFamily family;
  bool prefix;  // a mangled C++ name or a family of suffixed variants
};

// What each family means for gonet: threads (pthread_create and its C/C++ wrappers) are what
// fibers mode turns into fibers; sockets and poll/epoll are what the netpoller parks; io_uring
// and signalfd are calls gonet does not interpose at all.
constexpr FamilyEntry kFamilies[] = {
    {"pthread_create", ImportFamily::kThreads, false},
    {"thrd_create", ImportFamily::kThreads, false},
    {"_ZNSt6thread15_M_start_thread", ImportFamily::kThreads, true},  // std::thread
    {"socket", ImportFamily::kSockets, false},
    {"socketpair", ImportFamily::kSockets, false},
    {"accept", ImportFamily::kSockets, false},
    {"accept4", ImportFamily::kSockets, false},
    {"connect", ImportFamily::kSockets, false},
    {"recv", ImportFamily::kSockets, false},
    {"recvfrom", ImportFamily::kSockets, false},
    {"recvmsg", ImportFamily::kSockets, false},
    {"recvmmsg", ImportFamily::kSockets, false},
    {"send", ImportFamily::kSockets, false},
    {"sendto", ImportFamily::kSockets, false},
    {"sendmsg", ImportFamily::kSockets, false},
    {"sendmmsg", ImportFamily::kSockets, false},
    {"__recv_chk", ImportFamily::kSockets, false},
    {"__recvfrom_chk", ImportFamily::kSockets, false},
    {"poll", ImportFamily::kPoll, false},
    {"ppoll", ImportFamily::kPoll, false},
    {"__poll_chk", ImportFamily::kPoll, false},
    {"__ppoll_chk", ImportFamily::kPoll, false},
    {"select", ImportFamily::kPoll, false},
    {"pselect", ImportFamily::kPoll, false},
    {"epoll_create", ImportFamily::kPoll, false},
    {"epoll_create1", ImportFamily::kPoll, false},
    {"epoll_ctl", ImportFamily::kPoll, false},
    {"epoll_wait", ImportFamily::kPoll, false},
    {"epoll_pwait", ImportFamily::kPoll, false},
    {"epoll_pwait2", ImportFamily::kPoll, false},
    {"io_uring_", ImportFamily::kIoUring, true},  // liburing's API
    {"signalfd", ImportFamily::kSignalfd, false},
};

bool Contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

void AddUnique(std::vector<std::string>* list, const std::string& s) {
  if (!Contains(*list, s)) list->push_back(s);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsRuntimeObject(const ElfFile& elf) {
  TlsObject object;
  object.path = elf.path.c_str();
  return ClassifyTlsObject(object) == TlsOwner::kRuntime;
}

// The first file named `name` in `dirs` that is a native ELF object, as the loader skips
// objects of another class or machine. Empty if none.
std::string FindIn(const std::vector<std::string>& dirs, const std::string& name,
                   const std::string& origin_of, ElfFile* found) {
  for (const std::string& raw : dirs) {
    std::string dir = ExpandOrigin(raw, origin_of);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), R_OK) != 0) continue;
    ElfFile elf = ReadElfFile(candidate);
    if (!elf.is_elf || !elf.native) continue;
    *found = std::move(elf);
    return candidate;
  }
  return {};
}

// The ELF the kernel runs for `path`, following "#!" lines (and "#!/usr/bin/env NAME" through
// PATH, as env does). Sets *via to how it was reached.
std::string FollowScripts(const std::string& path, const char* path_env, std::string* via) {
  std::string current = path;
  for (int depth = 0; depth < kMaxScriptDepth; ++depth) {
    std::ifstream in(current, std::ios::binary);
    std::string line;
    if (!in || !std::getline(in, line)) return current;
    if (line.size() >= 4 && line.compare(0, 4, "\177ELF") == 0) return current;
    if (line.compare(0, 2, "#!") != 0) {
      // Neither ELF nor "#!": execvp hands it to /bin/sh.
      *via = "run by /bin/sh (" + path + " is neither ELF nor a #! script)";
      return "/bin/sh";
    }
    size_t start = line.find_first_not_of(" \t", 2);
    if (start == std::string::npos) return current;
    size_t end = line.find_first_of(" \t\r", start);
    std::string interpreter = line.substr(start, end - start);
    std::string arg;
    if (end != std::string::npos) {
      size_t arg_start = line.find_first_not_of(" \t", end);
      if (arg_start != std::string::npos) {
        arg = line.substr(arg_start, line.find_first_of(" \t\r", arg_start) - arg_start);
      }
    }
    *via = "the #! interpreter of " + path;
    current = interpreter;
    if (BaseName(interpreter) == "env" && !arg.empty() && arg[0] != '-' &&
        arg.find('/') == std::string::npos) {
      std::string dirs = path_env != nullptr ? path_env : "/bin:/usr/bin";
      size_t from = 0;
      for (;;) {
        size_t colon = dirs.find(':', from);
        std::string dir = dirs.substr(from, colon - from);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + arg;
        if (access(candidate.c_str(), X_OK) == 0) {
          current = candidate;
          *via = "the #! interpreter of " + path + " (through env)";
          break;
        }
        if (colon == std::string::npos) break;
        from = colon + 1;
      }
    }
  }
  return current;
}

// A C++ symbol as a reader knows it ("std::thread::_M_start_thread"), without its parameters.
std::string DisplayName(const std::string& symbol) {
  if (symbol.compare(0, 2, "_Z") != 0) return symbol;
  int status = 0;
  char* demangled = abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status);
  if (demangled == nullptr) return symbol;
  std::string name = demangled;
  free(demangled);
  return name.substr(0, name.find('('));
}

std::string JoinFirst(const std::vector<std::string>& list, size_t max) {
  std::string out;
  for (size_t i = 0; i < list.size() && i < max; ++i) {
    if (i > 0) out += ", ";
    out += list[i];
  }
  if (list.size() > max) out += ", ...";
  return out;
}

}  // namespace

const char* ImportFamilyName(ImportFamily family) {
  switch (family) {
    case ImportFamily::kThreads:
      return "threads";
    case ImportFamily::kSockets:
      return "sockets";
    case ImportFamily::kPoll:
      return "poll/epoll";
    case ImportFamily::kIoUring:
      return "io_uring";
    case ImportFamily::kSignalfd:
      return "signalfd";
  }
  return "?";
}

bool FamilyOf(std::string_view symbol, ImportFamily* family) {
  for (const FamilyEntry& e : kFamilies) {
    if (e.prefix ? symbol.starts_with(e.name) : symbol == e.name) {
      *family = e.family;
      return true;
    }
  }
  return false;
}

namespace {

// ld.so.conf files including each other would loop; ldconfig itself stops at a depth too.
constexpr int kMaxIncludeDepth = 8;

std::vector<std::string> ReadLdSoConfAt(const std::string& path, int depth) {
  std::vector<std::string> dirs;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    size_t end = line.find_last_not_of(" \t\r");
    line = line.substr(start, end - start + 1);
    if (line.compare(0, 8, "include ") == 0 || line.compare(0, 8, "include\t") == 0) {
      std::string pattern = line.substr(line.find_first_not_of(" \t", 8));
      if (pattern[0] != '/') {  // relative to the including file's directory
        size_t slash = path.rfind('/');
        if (slash != std::string::npos) pattern = path.substr(0, slash + 1) + pattern;
      }
      glob_t g;
      if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) {
          if (depth >= kMaxIncludeDepth) break;
          for (std::string& d : ReadLdSoConfAt(g.gl_pathv[i], depth + 1)) AddUnique(&dirs, d);
        }
      }
      globfree(&g);
      continue;
    }
    AddUnique(&dirs, line);
  }
  return dirs;
}

}  // namespace

std::vector<std::string> ReadLdSoConf(const std::string& path) { return ReadLdSoConfAt(path, 0); }

LibrarySearch SystemLibrarySearch(const char* ld_library_path, const char* ld_so_conf) {
  LibrarySearch search;
  if (ld_library_path != nullptr) {
    std::string list = ld_library_path;
    size_t from = 0;
    for (;;) {
      // The loader splits LD_LIBRARY_PATH on ':' and ';'; an empty entry is the cwd.
      size_t sep = list.find_first_of(":;", from);
      search.ld_library_path.push_back(list.substr(from, sep - from));
      if (sep == std::string::npos) break;
      from = sep + 1;
    }
    if (list.empty()) search.ld_library_path.clear();
  }
  if (ld_so_conf != nullptr) search.system_dirs = ReadLdSoConf(ld_so_conf);
  for (const char* d : kDefaultDirs) AddUnique(&search.system_dirs, d);
  return search;
}

ProgramScan ScanProgram(const std::string& path, const LibrarySearch& search,
                        const char* path_env) {
  ProgramScan scan;
  scan.program = path;
  scan.image = FollowScripts(path, path_env, &scan.via);
  LoadedObject main;
  main.name = scan.image;
  main.elf = ReadElfFile(scan.image);
  main.runtime = false;
  scan.objects.push_back(std::move(main));
  if (!scan.objects[0].elf.is_elf || !scan.objects[0].elf.error.empty()) return scan;

  // Breadth-first, as the loader maps DT_NEEDED (ld.so's _dl_map_object_deps).
  std::deque<size_t> queue = {0};
  while (!queue.empty()) {
    size_t requester = queue.front();
    queue.pop_front();
    std::vector<std::string> needed = scan.objects[requester].elf.needed;
    for (const std::string& name : needed) {
      bool loaded = false;
      for (const LoadedObject& o : scan.objects) {
        loaded = loaded || o.name == name || o.elf.soname == name;
      }
      if (loaded || Contains(scan.missing, name)) continue;
      ElfFile elf;
      std::string found;
      const ElfFile& req = scan.objects[requester].elf;
      const ElfFile& exe = scan.objects[0].elf;
      if (name.find('/') != std::string::npos) {
        elf = ReadElfFile(name);
        if (elf.is_elf && elf.native) found = name;
      } else {
        // ld.so(8): DT_RPATH (of the object, then of the executable) only if the object has no
        // DT_RUNPATH; LD_LIBRARY_PATH; DT_RUNPATH; the cache's directories; the defaults.
        if (req.runpath.empty()) found = FindIn(req.rpath, name, req.path, &elf);
        if (found.empty() && req.runpath.empty() && requester != 0) {
          found = FindIn(exe.rpath, name, exe.path, &elf);
        }
        if (found.empty()) found = FindIn(search.ld_library_path, name, req.path, &elf);
        if (found.empty()) found = FindIn(req.runpath, name, req.path, &elf);
        if (found.empty()) found = FindIn(search.system_dirs, name, req.path, &elf);
      }
      if (found.empty()) {
        scan.missing.push_back(name);
        continue;
      }
      LoadedObject object;
      object.name = name;
      object.runtime = IsRuntimeObject(elf);
      object.elf = std::move(elf);
      scan.objects.push_back(std::move(object));
      queue.push_back(scan.objects.size() - 1);
    }
  }
  return scan;
}

namespace {

// What the program and its libraries import, and the TLS fibers mode would handle.
struct ImportFacts {
  bool accepts = false;         // the program itself accepts connections
  bool starts_threads = false;  // the program itself starts threads
  bool epoll = false;           // someone waits in epoll
  bool dlopen = false;          // someone loads modules at run time
  bool uring_library = false;   // liburing is loaded
};

ImportFacts CollectImports(const ProgramScan& scan, Assessment* a) {
  ImportFacts f;
  for (const LoadedObject& o : scan.objects) {
    if (o.elf.tls_bytes > 0) {
      TlsObject t;
      t.path = o.elf.path.c_str();
      t.tls_bytes = o.elf.tls_bytes;
      if (ClassifyTlsObject(t) == TlsOwner::kApplication) {
        a->tls.push_back({o.elf.path, o.elf.tls_bytes});
      }
    }
    // glibc's, libstdc++'s own imports are its internals (libstdc++ imports pthread_create for
    // std::thread whether or not the program starts one); the program's calls into them count.
    if (o.runtime) continue;
    for (const std::string& symbol : o.elf.imports) {
      f.dlopen = f.dlopen || symbol == "dlopen";
      ImportFamily family;
      if (!FamilyOf(symbol, &family)) continue;
      FamilyUse& use = a->families[static_cast<int>(family)];
      AddUnique(&use.symbols, DisplayName(symbol));
      AddUnique(&use.objects, BaseName(o.elf.path));
      // A thread-per-connection server accepts connections and starts threads itself; libcurl's
      // accept (FTP's active mode) does not make curl a server, and a pthread_create in
      // libkrb5support or libselinux does not give socat or ssh a thread per connection.
      // (A server whose library starts its threads is judged a server without threads:
      // threads mode, which is never the wrong choice.)
      bool own = &o == &scan.objects[0];
      f.accepts = f.accepts || (own && (symbol == "accept" || symbol == "accept4"));
      f.starts_threads = f.starts_threads || (own && family == ImportFamily::kThreads);
      f.epoll = f.epoll || symbol.starts_with("epoll_wait") || symbol.starts_with("epoll_pwait");
    }
  }
  for (const LoadedObject& o : scan.objects) {
    f.uring_library = f.uring_library || BaseName(o.elf.path).starts_with("liburing.");
  }
  return f;
}

// The recommended mode and why.
void Recommend(const ImportFacts& f, Assessment* a) {
  const FamilyUse& sockets = a->families[static_cast<int>(ImportFamily::kSockets)];
  a->mode = "threads";
  if (!sockets.used()) {
    a->reason =
        "a program without sockets of its own: threads mode is the safe default, with nothing "
        "for gonet to manage";
    std::string c =
        "neither the program nor its libraries import a socket call, so gonet has nothing to "
        "do";
    if (f.dlopen)
      c += " unless a module it loads at run time (f.dlopen) does (those are not inspected)";
    a->caveats.push_back(c + ".");
  } else if (f.accepts && f.starts_threads && !f.epoll) {
    a->mode = "fibers";
    a->reason =
        "a thread-per-connection server (it accepts connections and starts threads, with no "
        "epoll loop): fibers mode runs each connection's thread as a fiber on a few worker "
        "threads";
  } else if (f.accepts && f.epoll) {
    a->reason =
        "an event-driven server (it accepts, and waits in epoll over its own non-blocking "
        "sockets): gonet stays out of its way, and deadlines, stats and faults still apply; "
        "fibers mode would gain nothing";
  } else if (f.accepts) {
    a->reason =
        "a server that starts no threads of its own (one connection at a time, or a process "
        "per connection): fibers mode would have no threads to multiplex";
  } else {
    a->reason =
        "a client (it connects, it does not accept): threads mode gives it deadlines, stats and "
        "faults; fibers mode pays off for servers with a thread per connection";
  }
}

// What gonet cannot see or what differs under it.
void AddCaveats(const ProgramScan& scan, const ImportFacts& f, Assessment* a) {
  const FamilyUse& uring = a->families[static_cast<int>(ImportFamily::kIoUring)];
  const FamilyUse& sigfd = a->families[static_cast<int>(ImportFamily::kSignalfd)];
  std::string tls_list;
  for (const TlsShare& t : a->tls) {
    if (!tls_list.empty()) tls_list += ", ";
    tls_list += t.object + " (" + std::to_string(t.bytes) + " bytes)";
  }
  if (!tls_list.empty()) {
    a->notes.push_back("thread-local storage of " + tls_list +
                       " is per fiber in fibers mode: gonet copies it at every switch (README: "
                       "\"Thread-local storage in fibers mode\"); a library the program "
                       "dlopens by bare name would keep one copy per worker.");
  }
  if (uring.used() || f.uring_library) {
    a->caveats.push_back("it uses io_uring (" +
                         (uring.used() ? JoinFirst(uring.symbols, 3) : std::string("liburing")) +
                         "): I/O submitted through a ring bypasses libc, so gonet neither sees "
                         "nor parks it (no deadlines, faults or stats for it).");
  }
  if (sigfd.used()) {
    std::string s =
        "it reads signals with signalfd, which depends on per-thread signal masks; in fibers "
        "mode masks are per worker thread, not per fiber (README, fibers-mode limits)";
    (a->mode == "fibers" ? a->caveats : a->notes).push_back(s + ".");
  }
  for (const std::string& m : scan.missing) {
    a->caveats.push_back("library " + m +
                         " was not found where the loader would look: the program would not "
                         "start, with or without gonet.");
  }
  for (const LoadedObject& o : scan.objects) {
    if (!o.elf.error.empty()) {
      a->caveats.push_back(o.elf.path + ": " + o.elf.error + ".");
    }
  }
}

}  // namespace

Assessment Assess(const ProgramScan& scan, const std::string& refusal) {
  Assessment a;
  if (!refusal.empty()) {
    a.verdict = Verdict::kCannotRun;
    a.refusal = refusal;
    return a;
  }
  const ElfFile& image = scan.objects[0].elf;
  if (!image.is_elf || !image.error.empty()) {
    a.verdict = Verdict::kCannotRun;
    a.refusal = scan.image + ": " + (image.error.empty() ? "not an ELF program" : image.error);
    return a;
  }
  ImportFacts facts = CollectImports(scan, &a);
  Recommend(facts, &a);
  AddCaveats(scan, facts, &a);
  if (!a.caveats.empty()) a.verdict = Verdict::kCaveats;
  return a;
}

}  // namespace gonet::core
