// What `gonet dump` reads of the target from /proc: its threads and the syscall each is in, its
// mappings (a pc's module), and how to name what a waiter waits on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gonet::cli {

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
std::string ReadSmallFile(const std::string& path, int* err = nullptr);

// The receive and accept calls core makes as raw syscalls (io_ops.cc, conn_ops.cc): the only
// kernel waits a dump interrupts (dump.h says why).
bool SignalSafeSyscall(long nr);

bool SocketSyscall(long nr);

char SyscallOp(long nr);

// core/poll/parker.h WaitWhat.
const char* OpName(int op);

bool IsSocketOp(int op);

// gonet's own threads (workers, netpoller, sysmon...): never asked to walk the fibers.
bool GonetThread(const std::string& comm);

// Reads one thread's syscall line; false if it is gone or unreadable.
bool ReadSyscall(long pid, int tid, long* nr, unsigned long long* arg0, int* err = nullptr);

std::vector<Task> ReadTasks(long pid, bool* readable);

std::string FormatAddress(const unsigned char* raw, uint32_t len);

struct Mapping {
  uint64_t start, end, offset;
  std::string path;
};

std::vector<Mapping> ReadMaps(long pid);

// "path+0xOFF", OFF being pc's offset in the file: what addr2line -e path takes for the usual
// layouts (text's file offset equals its address), and the way to a name where the symbol
// tables have none (a stripped libc's internal functions get the nearest exported name).
std::string ModuleOf(const std::vector<Mapping>& maps, uint64_t pc);

std::string Demangle(const char* name);

}  // namespace gonet::cli
