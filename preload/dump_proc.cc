#include "preload/dump_proc.h"

#include <arpa/inet.h>
#include <cxxabi.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "preload/inspect_segment.h"

namespace gonet::cli {

// The file's text without its trailing newlines; "" if it cannot be read (then *err says why).
std::string ReadSmallFile(const std::string& path, int* err) {
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

// core/poll/parker.h WaitWhat.
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
      return "poll (poll, select or epoll_wait on the netpoller)";
    case 'z':
      return "sleep";
    case 'j':
      return "join";
    case 'o':
      return "offloaded call";
    case 'g':
      return "signal (sigsuspend or pause)";
    default:
      return "?";
  }
}

bool IsSocketOp(int op) { return op == 'r' || op == 'w' || op == 'a' || op == 'c'; }

// gonet's own threads (workers, netpoller, sysmon...): never asked to walk the fibers.
bool GonetThread(const std::string& comm) { return comm.rfind("gonet-", 0) == 0; }

// Reads one thread's syscall line; false if it is gone or unreadable.
bool ReadSyscall(long pid, int tid, long* nr, unsigned long long* arg0, int* err) {
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

}  // namespace gonet::cli
