// `gonet stats` and `gonet dump`: read a running program's live-stats segment (core/stats_shm.h)
// and run the dump protocol (core/dump.h) against it.
//
// Who may look: the segment is a 0600 file owned by the program's user. The CLI checks the
// owner before opening it, so that root's `gonet` works on anyone's program and anybody else's
// is refused with a message saying why, rather than with a bare EACCES.
//
// Stale segments: a program killed by a signal, or exec'd into a program without gonet, leaves
// its file behind. The file is live only while a process with its pid maps it (/proc/PID/maps),
// which also tells a reused pid from the original program.
#include "preload/cli_inspect.h"

#include <arpa/inet.h>
#include <cxxabi.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dump.h"
#include "core/duration.h"
#include "core/stats_shm.h"

namespace gonet::cli {
namespace {

using core::DumpArea;
using core::DumpSlot;
using core::ShmHeader;

constexpr int kExitUsage = 2;
constexpr int kExitFailed = 1;

// ParsePid accepts a positive decimal process id.
bool ParsePid(std::string_view s, long* pid) {
  if (s.empty() || s.size() > 9) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pid = v;
  return v > 0;
}

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string SegmentPath(long pid) {
  return std::string(core::kShmDir) + core::kShmPrefix + std::to_string(pid);
}

const char* ModeName(int mode) {
  switch (mode) {
    case 1:
      return "threads";
    case 2:
      return "fibers";
    case 3:
      return "passthrough";
    default:
      return "off";
  }
}

// Durations for people: 3 significant decimals are plenty for "how long has it waited".
std::string Seconds(int64_t ns) {
  char buf[32];
  if (ns < 0) ns = 0;
  if (ns < 1000000000) {
    snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
  } else {
    snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(ns) / 1e9);
  }
  return buf;
}

bool ProcessExists(long pid) { return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

// True when process pid has path mapped: the segment is its live one.
bool MapsSegment(long pid, const std::string& path) {
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/maps").c_str(), "r");
  if (f == nullptr) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f) != nullptr) {
    std::string_view l(line);
    while (!l.empty() && (l.back() == '\n')) l.remove_suffix(1);
    if (l.size() >= path.size() && l.substr(l.size() - path.size()) == path) found = true;
  }
  fclose(f);
  return found;
}

// Whether the segment at path was left behind: its process is gone, or a process with its pid
// does not map it (it exec'd a program without gonet, or the pid was reused). A file whose
// header is not complete yet belongs to a process creating it right now (created, not yet
// mapped): never stale while that pid lives.
bool IsStale(long pid, const std::string& path) {
  if (!ProcessExists(pid)) return true;
  if (MapsSegment(pid, path)) return false;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  uint64_t magic = 0;
  bool complete = pread(fd, &magic, sizeof magic, 0) == sizeof magic && magic == core::kShmMagic;
  close(fd);
  return complete;
}

std::string UserName(uid_t uid) {
  passwd* pw = getpwuid(uid);
  return pw != nullptr ? std::string(pw->pw_name) : "uid " + std::to_string(uid);
}

// A mapped, validated segment.
struct Segment {
  std::string path;
  int fd = -1;
  void* mem = nullptr;
  size_t size = 0;
  const ShmHeader* header = nullptr;

  ~Segment() {
    if (mem != nullptr) munmap(mem, size);
    if (fd >= 0) close(fd);
  }
  const char* Name(uint32_t i) const {
    return static_cast<const char*>(mem) + header->names_offset + i * core::kShmCounterNameSize;
  }
  int64_t Counter(uint32_t i) const {
    auto* c = reinterpret_cast<const std::atomic<int64_t>*>(static_cast<const char*>(mem) +
                                                            header->counters_offset);
    return c[i].load(std::memory_order_relaxed);
  }
  DumpArea* Area() const {
    return reinterpret_cast<DumpArea*>(static_cast<char*>(mem) + header->dump_offset);
  }
};

// Opens pid's segment, refusing another user's program and removing a stale file. Returns 0, or
// the exit status after printing why not.
int OpenSegment(const char* cmd, long pid, bool writable, Segment* seg) {
  seg->path = SegmentPath(pid);
  struct stat st;
  if (lstat(seg->path.c_str(), &st) != 0) {
    if (!ProcessExists(pid)) {
      fprintf(stderr, "gonet %s: no process %ld\n", cmd, pid);
    } else {
      fprintf(stderr,
              "gonet %s: process %ld does not run under gonet (no %s; a program started with "
              "`gonet run` publishes its counters there)\n",
              cmd, pid, seg->path.c_str());
    }
    return kExitFailed;
  }
  if (!S_ISREG(st.st_mode)) {
    fprintf(stderr, "gonet %s: %s is not a gonet segment\n", cmd, seg->path.c_str());
    return kExitFailed;
  }
  if (st.st_uid != getuid() && geteuid() != 0) {
    fprintf(stderr,
            "gonet %s: process %ld belongs to %s; only its own user or root may inspect it "
            "(you are %s)\n",
            cmd, pid, UserName(st.st_uid).c_str(), UserName(getuid()).c_str());
    return kExitFailed;
  }
  if (IsStale(pid, seg->path)) {
    bool removed = unlink(seg->path.c_str()) == 0;
    fprintf(
        stderr, "gonet %s: %s is stale: process %ld %s%s\n", cmd, seg->path.c_str(), pid,
        ProcessExists(pid) ? "does not use it (its pid was reused, or it exec'd)" : "has exited",
        removed ? "; removed it" : "");
    return kExitFailed;
  }
  seg->fd = open(seg->path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
  if (seg->fd < 0 || fstat(seg->fd, &st) != 0) {
    fprintf(stderr, "gonet %s: cannot open %s: %s\n", cmd, seg->path.c_str(), strerror(errno));
    return kExitFailed;
  }
  seg->size = static_cast<size_t>(st.st_size);
  if (seg->size < sizeof(ShmHeader)) {
    fprintf(stderr, "gonet %s: %s is too short to be a gonet segment\n", cmd, seg->path.c_str());
    return kExitFailed;
  }
  seg->mem = mmap(nullptr, seg->size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                  seg->fd, 0);
  if (seg->mem == MAP_FAILED) {
    seg->mem = nullptr;
    fprintf(stderr, "gonet %s: cannot map %s: %s\n", cmd, seg->path.c_str(), strerror(errno));
    return kExitFailed;
  }
  const auto* h = static_cast<const ShmHeader*>(seg->mem);
  bool ok = h->magic.load(std::memory_order_acquire) == core::kShmMagic &&
            h->version == core::kShmVersion && h->total_size <= seg->size &&
            h->names_offset + uint64_t{h->counter_count} * core::kShmCounterNameSize <= seg->size &&
            h->counters_offset + uint64_t{h->counter_count} * sizeof(int64_t) <= seg->size &&
            h->dump_offset + sizeof(DumpArea) <= seg->size;
  if (!ok) {
    fprintf(stderr, "gonet %s: %s has an unknown layout (version %u; this gonet reads %u)\n", cmd,
            seg->path.c_str(), h->version, core::kShmVersion);
    return kExitFailed;
  }
  seg->header = h;
  return 0;
}

// ---- stats ----

void PrintStatsText(const Segment& seg, const std::vector<int64_t>* previous) {
  const ShmHeader& h = *seg.header;
  printf("gonet stats: pid %d, mode %s, uptime %s\n", h.pid, ModeName(h.mode),
         Seconds(MonoNs() - h.start_mono_ns).c_str());
  for (uint32_t i = 0; i < h.counter_count; ++i) {
    int64_t v = seg.Counter(i);
    if (previous != nullptr) {
      printf("  %-26s %lld  (%+lld)\n", seg.Name(i), static_cast<long long>(v),
             static_cast<long long>(v - (*previous)[i]));
    } else {
      printf("  %-26s %lld\n", seg.Name(i), static_cast<long long>(v));
    }
  }
  fflush(stdout);
}

void PrintStatsJson(const Segment& seg) {
  const ShmHeader& h = *seg.header;
  printf("{\"pid\": %d, \"mode\": \"%s\", \"uptime_s\": %.3f, \"counters\": {", h.pid,
         ModeName(h.mode), static_cast<double>(MonoNs() - h.start_mono_ns) / 1e9);
  for (uint32_t i = 0; i < h.counter_count; ++i) {
    // Counter names are C identifiers (stats.h): nothing to escape.
    printf("%s\"%s\": %lld", i ? ", " : "", seg.Name(i), static_cast<long long>(seg.Counter(i)));
  }
  printf("}}\n");
  fflush(stdout);
}

// `gonet stats` alone: the caller's gonet processes (root: everyone's), and a sweep of the stale
// segments that programs killed by a signal left behind.
int ListCommand() {
  DIR* d = opendir(core::kShmDir);
  if (d == nullptr) {
    fprintf(stderr, "gonet stats: cannot read %s: %s\n", core::kShmDir, strerror(errno));
    return kExitFailed;
  }
  struct Live {
    long pid;
    std::string mode, uptime, comm;
  };
  std::vector<Live> live;
  std::vector<long> removed;
  size_t prefix = strlen(core::kShmPrefix);
  while (dirent* e = readdir(d)) {
    long pid = 0;
    if (strncmp(e->d_name, core::kShmPrefix, prefix) != 0 || !ParsePid(e->d_name + prefix, &pid)) {
      continue;
    }
    std::string path = SegmentPath(pid);
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (st.st_uid != getuid() && geteuid() != 0) continue;
    if (IsStale(pid, path)) {
      if (unlink(path.c_str()) == 0) removed.push_back(pid);
      continue;
    }
    Live l{pid, "?", "?", ""};
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      void* mem = mmap(nullptr, sizeof(ShmHeader), PROT_READ, MAP_SHARED, fd, 0);
      if (mem != MAP_FAILED) {
        const auto* h = static_cast<const ShmHeader*>(mem);
        if (h->magic.load(std::memory_order_acquire) == core::kShmMagic) {
          l.mode = ModeName(h->mode);
          l.uptime = Seconds(MonoNs() - h->start_mono_ns);
        }
        munmap(mem, sizeof(ShmHeader));
      }
      close(fd);
    }
    FILE* f = fopen(("/proc/" + std::to_string(pid) + "/comm").c_str(), "r");
    if (f != nullptr) {
      char comm[64] = "";
      if (fgets(comm, sizeof comm, f) != nullptr) l.comm = comm;
      while (!l.comm.empty() && l.comm.back() == '\n') l.comm.pop_back();
      fclose(f);
    }
    live.push_back(l);
  }
  closedir(d);
  std::sort(live.begin(), live.end(), [](const Live& a, const Live& b) { return a.pid < b.pid; });
  printf("%-8s %-12s %-12s %s\n", "PID", "MODE", "UPTIME", "COMMAND");
  for (const Live& l : live) {
    printf("%-8ld %-12s %-12s %s\n", l.pid, l.mode.c_str(), l.uptime.c_str(), l.comm.c_str());
  }
  if (!removed.empty()) {
    std::sort(removed.begin(), removed.end());
    fprintf(stderr,
            "gonet stats: removed %zu stale segment(s) of processes that exited:", removed.size());
    for (long pid : removed) fprintf(stderr, " %ld", pid);
    fprintf(stderr, "\n");
  }
  return 0;
}

const char kStatsUsage[] =
    "usage: gonet stats PID [--json] [--watch INTERVAL]\n"
    "       gonet stats\n"
    "  print the gonet counters of a running program (its own user or root only); without PID,\n"
    "  list your programs running under gonet and remove segments that killed ones left behind\n"
    "  --json             one JSON object: pid, mode, uptime_s, counters\n"
    "  --watch INTERVAL   print again every INTERVAL (e.g. 1s, 500ms) with deltas, until the\n"
    "                     program exits or Ctrl-C\n";

const char kDumpUsage[] =
    "usage: gonet dump PID\n"
    "  list every waiter of a running program (threads blocked or parked in socket calls, parked\n"
    "  fibers): fd, op or reason, peer, how long, and where (backtrace), without stopping it\n"
    "  (its own user or root only)\n";

bool IsHelp(std::string_view a) { return a == "-h" || a == "--help"; }

}  // namespace

int StatsCommand(int argc, char** argv) {
  if (argc == 0) return ListCommand();
  long pid = 0;
  bool json = false;
  int64_t watch_ns = 0;
  bool have_pid = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (IsHelp(a)) {
      fputs(kStatsUsage, stdout);
      return 0;
    }
    if (a == "--json") {
      json = true;
    } else if (a == "--watch" || a.rfind("--watch=", 0) == 0) {
      std::string_view text;
      if (a == "--watch") {
        if (i + 1 >= argc) {
          fprintf(stderr, "gonet stats: --watch needs an interval (e.g. 1s)\n");
          return kExitUsage;
        }
        text = argv[++i];
      } else {
        text = a.substr(8);
      }
      core::DurationResult d = core::ParseDuration(text);
      if (!d.ok() || d.ns <= 0) {
        fprintf(stderr, "gonet stats: bad --watch interval \"%.*s\" (e.g. 1s, 500ms)\n",
                static_cast<int>(text.size()), text.data());
        return kExitUsage;
      }
      watch_ns = d.ns;
    } else if (!have_pid && ParsePid(a, &pid)) {
      have_pid = true;
    } else {
      fprintf(stderr, "gonet stats: usage: gonet stats PID [--json] [--watch INTERVAL]\n");
      return kExitUsage;
    }
  }
  if (!have_pid) {
    fprintf(stderr, "gonet stats: usage: gonet stats PID [--json] [--watch INTERVAL]\n");
    return kExitUsage;
  }
  Segment seg;
  if (int rc = OpenSegment("stats", pid, /*writable=*/false, &seg)) return rc;
  std::vector<int64_t> previous;
  for (bool first = true;; first = false) {
    if (json) {
      PrintStatsJson(seg);
    } else {
      PrintStatsText(seg, first || watch_ns == 0 ? nullptr : &previous);
    }
    if (watch_ns == 0) return 0;
    previous.resize(seg.header->counter_count);
    for (uint32_t i = 0; i < seg.header->counter_count; ++i) previous[i] = seg.Counter(i);
    timespec ts{static_cast<time_t>(watch_ns / 1000000000),
                static_cast<long>(watch_ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    // The program unlinks its segment when it exits; a killed one just goes away.
    if (!ProcessExists(pid) || !MapsSegment(pid, seg.path)) {
      fprintf(stderr, "gonet stats: process %ld exited\n", pid);
      if (access(seg.path.c_str(), F_OK) == 0 && !ProcessExists(pid)) unlink(seg.path.c_str());
      return 0;
    }
    if (!json) printf("\n");
  }
}

// ---- dump ----

namespace {

// One thread of the target, from /proc/PID/task/TID/syscall: "NR arg0 ... arg5 sp pc" while in a
// syscall, "running" or "-1 sp pc" outside one.
struct Task {
  int tid = 0;
  long syscall = -1;
  unsigned long long arg0 = 0;
  std::string comm;
  bool signalled = false;
};

// The file's text without its trailing newlines; "" if it cannot be read (then *err says why).
std::string ReadSmallFile(const std::string& path, int* err = nullptr) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) {
    if (err != nullptr) *err = errno;
    return "";
  }
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  std::string s(buf);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The receive and accept calls core makes as raw syscalls (io_ops.cc, conn_ops.cc): the only
// kernel waits a dump interrupts (dump.h says why).
bool SignalSafeSyscall(long nr) {
  return nr == SYS_recvfrom || nr == SYS_recvmsg || nr == SYS_recvmmsg || nr == SYS_accept ||
         nr == SYS_accept4;
}

bool SocketSyscall(long nr) {
  return SignalSafeSyscall(nr) || nr == SYS_sendto || nr == SYS_sendmsg || nr == SYS_sendmmsg ||
         nr == SYS_connect;
}

char SyscallOp(long nr) {
  switch (nr) {
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_recvmmsg:
      return 'r';
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_sendmmsg:
      return 'w';
    case SYS_accept:
    case SYS_accept4:
      return 'a';
    case SYS_connect:
      return 'c';
    default:
      return '?';
  }
}

// core/parker.h WaitWhat.
const char* OpName(int op) {
  switch (op) {
    case 'r':
      return "recv";
    case 'w':
      return "send";
    case 'a':
      return "accept";
    case 'c':
      return "connect";
    case 'm':
      return "mutex";
    case 'v':
      return "condition variable";
    case 'l':
      return "rwlock";
    case 's':
      return "semaphore";
    case 'f':
      return "futex";
    case 'p':
      return "poll of several sockets";
    case 'z':
      return "sleep";
    case 'j':
      return "join";
    case 'o':
      return "offloaded call";
    default:
      return "?";
  }
}

bool IsSocketOp(int op) { return op == 'r' || op == 'w' || op == 'a' || op == 'c'; }

// gonet's own threads (workers, netpoller, sysmon...): never asked to walk the fibers.
bool GonetThread(const std::string& comm) { return comm.rfind("gonet-", 0) == 0; }

// Reads one thread's syscall line; false if it is gone or unreadable.
bool ReadSyscall(long pid, int tid, long* nr, unsigned long long* arg0, int* err = nullptr) {
  std::string sc = ReadSmallFile(
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall", err);
  if (sc.empty()) return false;
  char* end = nullptr;
  long n = strtol(sc.c_str(), &end, 10);
  if (end == sc.c_str()) {  // "running"
    *nr = -1;
    *arg0 = 0;
    return true;
  }
  *nr = n;
  *arg0 = strtoull(end, nullptr, 16);
  return true;
}

std::vector<Task> ReadTasks(long pid, bool* readable) {
  std::vector<Task> out;
  *readable = true;
  std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(task.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    long tid = 0;
    if (!ParsePid(e->d_name, &tid)) continue;
    Task t;
    t.tid = static_cast<int>(tid);
    int err = 0;
    if (!ReadSyscall(pid, t.tid, &t.syscall, &t.arg0, &err)) {
      // Needs ptrace-attach rights (refused e.g. under yama ptrace_scope >= 1 for a non-root
      // user); ENOENT is a thread that just exited.
      if (err == EACCES || err == EPERM) *readable = false;
      continue;
    }
    t.comm = ReadSmallFile(task + "/" + e->d_name + "/comm");
    out.push_back(t);
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const Task& a, const Task& b) { return a.tid < b.tid; });
  return out;
}

std::string FormatAddress(const unsigned char* raw, uint32_t len) {
  if (len < sizeof(sa_family_t)) return "-";
  sockaddr_storage ss{};
  memcpy(&ss, raw, std::min<size_t>(len, sizeof ss));
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  if (ss.ss_family == AF_UNIX) {
    auto* a = reinterpret_cast<sockaddr_un*>(&ss);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return "unix:(unnamed)";
    if (a->sun_path[0] == '\0') return "unix:@" + std::string(a->sun_path + 1, n - 1);
    return "unix:" + std::string(a->sun_path, strnlen(a->sun_path, n));
  }
  return "family " + std::to_string(ss.ss_family);
}

struct Mapping {
  uint64_t start, end, offset;
  std::string path;
};

std::vector<Mapping> ReadMaps(long pid) {
  std::vector<Mapping> out;
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/maps").c_str(), "r");
  if (f == nullptr) return out;
  char line[4096];
  while (fgets(line, sizeof line, f) != nullptr) {
    unsigned long long start = 0, end = 0, offset = 0;
    int path_at = 0;
    if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &start, &end, &offset, &path_at) < 3) {
      continue;
    }
    std::string path = path_at > 0 ? std::string(line + path_at) : "";
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    out.push_back({start, end, offset, path});
  }
  fclose(f);
  return out;
}

// "path+0xOFF", OFF being pc's offset in the file: what addr2line -e path takes for the usual
// layouts (text's file offset equals its address), and the way to a name where the symbol
// tables have none (a stripped libc's internal functions get the nearest exported name).
std::string ModuleOf(const std::vector<Mapping>& maps, uint64_t pc) {
  for (const Mapping& m : maps) {
    if (pc >= m.start && pc < m.end && !m.path.empty()) {
      char off[32];
      snprintf(off, sizeof off, "+0x%llx",
               static_cast<unsigned long long>(pc - m.start + m.offset));
      return m.path + off;
    }
  }
  return "?";
}

std::string Demangle(const char* name) {
  if (name[0] == '\0') return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (d == nullptr) return name;
  std::string s(d);
  free(d);
  return s;
}

int SendRequest(long pid, int tid, uint64_t seq) {
  siginfo_t si{};
  si.si_signo = SIGURG;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_ptr = reinterpret_cast<void*>(core::DumpSignalValue(seq));
  return static_cast<int>(syscall(SYS_rt_tgsigqueueinfo, pid, tid, SIGURG, &si));
}

// The dumper's bounds on waiting: a thread answers within microseconds, and one that does not (it
// blocks SIGURG, or left the call) is reported as such rather than waited for. The first answer
// also unwinds every fiber, which takes longer in a program with thousands.
constexpr int64_t kAnswerLimitNs = 500 * 1000000LL;
constexpr int64_t kCopyLimitNs = 5000 * 1000000LL;

// The request's state as the dumper sees it.
struct DumpView {
  const DumpArea* area;
  uint64_t seq;
  bool have_waits = false;
  std::vector<const core::DumpWait*> waits{};
  std::vector<const DumpSlot*> slots{};

  void ReadWaits() {
    have_waits = area->waits_done.load(std::memory_order_acquire) == seq;
    waits.clear();
    if (!have_waits) return;
    uint32_t n = std::min(area->waits_count.load(std::memory_order_relaxed), core::kDumpWaits);
    for (uint32_t i = 0; i < n; ++i) waits.push_back(&area->waits[i]);
  }
  void ReadSlots() {
    slots.clear();
    uint32_t used = std::min(area->used.load(std::memory_order_acquire), core::kDumpSlots);
    for (uint32_t i = 0; i < used; ++i) {
      if (area->slots[i].seq.load(std::memory_order_acquire) == seq) {
        slots.push_back(&area->slots[i]);
      }
    }
  }
  const DumpSlot* SlotOfThread(int tid) const {
    for (const DumpSlot* s : slots) {
      if (s->fiber == 0 && s->tid == tid) return s;
    }
    return nullptr;
  }
  const DumpSlot* SlotAt(int32_t i) const {
    if (i < 0 || static_cast<uint32_t>(i) >= core::kDumpSlots) return nullptr;
    const DumpSlot* s = &area->slots[i];
    return s->seq.load(std::memory_order_acquire) == seq ? s : nullptr;
  }
};

void PrintFrames(const DumpSlot& s, const std::vector<Mapping>& maps) {
  int frames = std::min(s.nframes, core::kDumpFrames);
  for (int i = 0; i < frames; ++i) {
    char name[core::kDumpNameSize + 1];
    memcpy(name, s.name[i], core::kDumpNameSize);
    name[core::kDumpNameSize] = '\0';
    std::string module = ModuleOf(maps, s.pc[i]);
    printf("  #%-2d 0x%016llx %s+0x%llx  %s\n", i, static_cast<unsigned long long>(s.pc[i]),
           Demangle(name).c_str(), static_cast<unsigned long long>(s.offset[i]), module.c_str());
  }
}

// "fd 5, op r (recv), waiting 1.2s" or "mutex, waiting 3.0ms": what a waiter waits on.
std::string WhatLine(int fd, int op, int64_t since_ns, int64_t now_ns) {
  std::string out;
  if (IsSocketOp(op)) {
    char buf[64];
    snprintf(buf, sizeof buf, "fd %d, op %c (%s)", fd, static_cast<char>(op), OpName(op));
    out = buf;
  } else if (op != 0) {
    out = OpName(op);
  } else {
    out = "parked";
  }
  if (since_ns != 0) out += ", waiting " + Seconds(now_ns - since_ns);
  return out;
}

void PrintAnswer(const DumpSlot& s, const std::vector<Mapping>& maps) {
  if (IsSocketOp(s.op)) {
    printf("  local %s  peer %s\n", FormatAddress(s.local, s.local_len).c_str(),
           FormatAddress(s.peer, s.peer_len).c_str());
  }
  PrintFrames(s, maps);
}

}  // namespace

int DumpCommand(int argc, char** argv) {
  if (argc == 1 && IsHelp(argv[0])) {
    fputs(kDumpUsage, stdout);
    return 0;
  }
  long pid = 0;
  if (argc != 1 || !ParsePid(argv[0], &pid)) {
    fprintf(stderr, "gonet dump: usage: gonet dump PID\n");
    return kExitUsage;
  }
  Segment seg;
  if (int rc = OpenSegment("dump", pid, /*writable=*/true, &seg)) return rc;
  const ShmHeader& h = *seg.header;
  // One dump at a time per program: the request number and slot counter are the dumper's.
  int64_t lock_until = MonoNs() + 2 * 1000000000LL;
  while (flock(seg.fd, LOCK_EX | LOCK_NB) != 0) {
    if (MonoNs() > lock_until) {
      fprintf(stderr, "gonet dump: another gonet dump of process %ld is in progress\n", pid);
      return kExitFailed;
    }
    usleep(10000);
  }
  DumpArea* area = seg.Area();
  const bool kernel_wait = (h.flags & core::kShmFlagKernelWait) != 0;
  const bool answering = kernel_wait || area->answering.load(std::memory_order_acquire) != 0;
  bool readable = true;
  std::vector<Task> tasks = ReadTasks(pid, &readable);
  uint64_t seq = area->seq.load(std::memory_order_relaxed) + 1;
  area->used.store(0, std::memory_order_relaxed);
  area->fibers_skip.store(0, std::memory_order_relaxed);
  area->seq.store(seq, std::memory_order_seq_cst);
  DumpView view{area, seq};

  int asked = 0;
  auto ask = [&](Task& t) {
    if (SendRequest(pid, t.tid, seq) == 0) {
      t.signalled = true;
      ++asked;
    }
  };
  // A thread asleep on its own published parker futex: gonet's wait, which resumes after the
  // request (dump.h). Read tid, addr, tid: an entry changing hands is not trusted.
  std::unordered_map<int, uint64_t> parker_of;
  for (uint32_t i = 0; i < core::kDumpParkers; ++i) {
    const core::DumpParker& p = area->parkers[i];
    int tid = p.tid.load(std::memory_order_acquire);
    if (tid == 0) continue;
    uint64_t addr = p.addr.load(std::memory_order_acquire);
    if (p.tid.load(std::memory_order_acquire) == tid) parker_of[tid] = addr;
  }
  auto on_own_futex = [&](int tid, long nr, unsigned long long arg0) {
    auto it = parker_of.find(tid);
    return nr == SYS_futex && it != parker_of.end() && it->second == arg0;
  };
  // Round one: one thread that is safe to interrupt copies the waiters (and walks the fibers).
  // Two rounds, so that a thread blocked in a receive that is not gonet's (a library's own
  // blocking socket, which would see the EINTR) is not signalled.
  if (answering) {
    Task* first = nullptr;
    for (Task& t : tasks) {
      if (!GonetThread(t.comm) && on_own_futex(t.tid, t.syscall, t.arg0)) {
        first = &t;
        break;
      }
    }
    if (first == nullptr && kernel_wait) {
      for (Task& t : tasks) {
        if (SignalSafeSyscall(t.syscall)) {
          first = &t;
          break;
        }
      }
    }
    if (first != nullptr) {
      ask(*first);
      int64_t copied_until = MonoNs() + kCopyLimitNs;
      while (first->signalled && area->waits_done.load(std::memory_order_acquire) != seq &&
             MonoNs() < copied_until) {
        usleep(1000);
      }
    }
  }
  view.ReadWaits();
  // Round two: every other thread the records show waiting, if /proc still shows it waiting
  // there (re-read now: it may have moved on since).
  std::vector<int> expected;  // threads asked that have a record, hence owe a slot
  for (const core::DumpWait* w : view.waits) {
    if (w->fiber != 0 || w->tid == 0) continue;
    auto t =
        std::find_if(tasks.begin(), tasks.end(), [&](const Task& x) { return x.tid == w->tid; });
    if (t == tasks.end()) continue;
    if (!t->signalled) {
      long nr = -1;
      unsigned long long arg0 = 0;
      if (!ReadSyscall(pid, t->tid, &nr, &arg0)) continue;
      bool safe = false;
      if (w->flags & core::kDumpWaitKernel) {
        safe = (w->flags & core::kDumpWaitHasTimeout) == 0 && SignalSafeSyscall(nr) &&
               static_cast<long long>(arg0) == w->fd;
      } else if (w->flags & core::kDumpWaitParker) {
        safe = nr == SYS_futex && arg0 == w->addr;
      }
      if (safe) ask(*t);
    }
    if (t->signalled) expected.push_back(t->tid);
  }
  // Wait (bounded) for every asked thread's answer.
  int64_t until = MonoNs() + kAnswerLimitNs;
  for (;;) {
    view.ReadSlots();
    bool all = std::all_of(expected.begin(), expected.end(),
                           [&](int tid) { return view.SlotOfThread(tid) != nullptr; });
    if (all || MonoNs() > until) break;
    usleep(2000);
  }
  std::vector<Mapping> maps = ReadMaps(pid);
  int64_t now = MonoNs();

  // Threads: the records, then threads /proc shows in a socket call that gonet has no record of.
  struct ThreadWaiter {
    Task* task;
    const core::DumpWait* wait;  // nullptr: seen in /proc only
  };
  std::vector<ThreadWaiter> threads;
  std::vector<const core::DumpWait*> fibers;
  for (const core::DumpWait* w : view.waits) {
    if (w->fiber != 0) {
      fibers.push_back(w);
      continue;
    }
    auto t =
        std::find_if(tasks.begin(), tasks.end(), [&](const Task& x) { return x.tid == w->tid; });
    if (t != tasks.end()) threads.push_back({&*t, w});
  }
  for (Task& t : tasks) {
    if (!SocketSyscall(t.syscall)) continue;
    bool known = std::any_of(threads.begin(), threads.end(),
                             [&](const ThreadWaiter& x) { return x.task->tid == t.tid; });
    if (!known) threads.push_back({&t, nullptr});
  }
  std::sort(threads.begin(), threads.end(),
            [](const ThreadWaiter& a, const ThreadWaiter& b) { return a.task->tid < b.task->tid; });
  std::sort(fibers.begin(), fibers.end(),
            [](const core::DumpWait* a, const core::DumpWait* b) { return a->fiber < b->fiber; });
  uint32_t more = view.have_waits ? area->waits_more.load(std::memory_order_relaxed) : 0;

  printf("gonet dump: pid %d, mode %s, uptime %s: %zu thread(s) and %zu fiber(s) waiting\n", h.pid,
         ModeName(h.mode), Seconds(now - h.start_mono_ns).c_str(), threads.size(),
         fibers.size() + more);
  if (!readable) {
    printf(
        "  (some threads' /proc/%ld/task/*/syscall could not be read: run as root, or allow "
        "ptrace of your own processes)\n",
        pid);
  }
  if (!answering) {
    printf(
        "  (mode %s: gonet does not answer dump requests in this process (no wait has parked "
        "yet, or passthrough); this dump lists kernel-blocked threads only, without "
        "backtraces)\n",
        ModeName(h.mode));
  } else if (!view.have_waits) {
    printf(
        "  (no thread could be asked safely, or none answered: waiters on the netpoller path "
        "and fibers are not listed; kernel-blocked threads are listed without backtraces)\n");
  }
  if (area->fibers_skip.load(std::memory_order_relaxed) != 0) {
    printf("  (fibers not listed: the thread asked was one of gonet's)\n");
  }
  for (const ThreadWaiter& x : threads) {
    const Task& t = *x.task;
    const core::DumpWait* w = x.wait;
    const DumpSlot* s = view.SlotOfThread(t.tid);
    printf("\n");
    if (s != nullptr) {
      printf("thread %d \"%s\": %s\n", t.tid, t.comm.c_str(),
             WhatLine(s->fd, s->op, s->since_ns, s->now_ns).c_str());
      PrintAnswer(*s, maps);
      continue;
    }
    int op = w != nullptr ? w->op : SyscallOp(t.syscall);
    int fd = w != nullptr ? w->fd : static_cast<int>(t.arg0);
    printf("thread %d \"%s\": %s\n", t.tid, t.comm.c_str(),
           WhatLine(fd, op, w != nullptr ? w->since_ns : 0, area->waits_now_ns).c_str());
    if (!answering) {
      printf("  (no backtrace in mode %s)\n", ModeName(h.mode));
    } else if (w == nullptr) {
      printf("  (no backtrace: not inside a gonet call, so not interrupted)\n");
    } else if ((w->flags & core::kDumpWaitKernel) && !SignalSafeSyscall(t.syscall)) {
      printf("  (no backtrace: interrupting a blocking %s could change its result)\n", OpName(op));
    } else if (w->flags & core::kDumpWaitHasTimeout) {
      printf(
          "  (no backtrace: the socket has SO_RCVTIMEO, and the restarted call would wait "
          "the whole timeout again)\n");
    } else if (t.signalled && area->used.load(std::memory_order_relaxed) >= core::kDumpSlots) {
      printf("  (no backtrace: a dump holds at most %u)\n", core::kDumpSlots);
    } else if (t.signalled) {
      printf("  (no answer within %s: the thread blocks SIGURG, or left the wait)\n",
             Seconds(kAnswerLimitNs).c_str());
    } else {
      printf("  (no backtrace: not asleep in the wait when asked, so not interrupted)\n");
    }
  }
  for (const core::DumpWait* w : fibers) {
    const DumpSlot* s = view.SlotAt(w->slot);
    printf("\nfiber %u: ", w->fiber);
    if (w->flags & core::kDumpWaitRunnable) {
      printf("runnable (queued to run)\n");
    } else {
      printf("%s\n",
             WhatLine(w->fd, w->op, w->since_ns, s != nullptr ? s->now_ns : area->waits_now_ns)
                 .c_str());
    }
    if (s != nullptr) {
      PrintAnswer(*s, maps);
    } else {
      printf("  (no backtrace: a dump unwinds at most %u fibers)\n", core::kDumpFiberSlots);
    }
  }
  if (more != 0) {
    printf("\n... and %u more fiber(s) or thread(s) waiting (a dump lists at most %u)\n", more,
           core::kDumpWaits);
  }
  if (threads.empty() && fibers.empty() && more == 0) printf("\n(nothing is waiting)\n");
  fflush(stdout);
  return 0;
}

}  // namespace gonet::cli
