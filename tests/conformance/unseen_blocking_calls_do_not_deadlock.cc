// A thread that blocks in something gonet cannot see, or that computes without ever making a
// call, must not stop the program's other threads either. In fibers mode with one worker (the
// runner sets GONET_WORKERS=1 for this scenario, issue #5) every thread is a fiber on the same
// worker; the calls below never reach gonet's hooks:
//   - stdio on a pipe: fgets and fflush make glibc's internal read and write, not the PLT ones;
//   - syscall(SYS_read, ...): a raw system call;
//   - a spin loop on an atomic flag that another thread sets.
// Each one holds its worker until another thread acts, and that thread is queued behind it: only
// the sysmon's handoff of the stuck worker to another OS thread lets the program finish. Natively
// and in every mode each stage completes with the same results.
//
// Every wait is bounded (alarm): a regression ends the run with SIGALRM instead of hanging.
#include <sys/syscall.h>

#include <atomic>
#include <thread>

#include "transcript.h"

using namespace conf;

namespace {

void StdioOnAPipe() {
  int fds[2];
  Must(pipe(fds), "pipe");
  FILE* in = fdopen(fds[0], "r");
  FILE* out = fdopen(fds[1], "w");
  if (in == nullptr || out == nullptr) Fail("fdopen");
  std::thread reader([&] {
    char line[64];
    for (int i = 0; i < 3; ++i) {
      if (fgets(line, sizeof line, in) == nullptr) Fail("fgets");
      Say("stdio: reader got %s", strtok(line, "\n"));
    }
    Say("stdio: reader at EOF -> %s", fgets(line, sizeof line, in) == nullptr ? "yes" : "no");
  });
  // The reader is (most likely) already blocked inside fgets when the writer starts.
  std::thread writer([&] {
    for (int i = 0; i < 3; ++i) {
      fprintf(out, "line %d\n", i);
      fflush(out);
    }
    fclose(out);
  });
  writer.join();
  reader.join();
  fclose(in);
}

void RawReadSyscall() {
  int fds[2];
  Must(pipe(fds), "pipe");
  std::atomic<bool> reading{false};
  long got = 0, put = 0;
  char c = 0;
  std::thread reader([&] {
    reading = true;
    got = syscall(SYS_read, fds[0], &c, 1);
  });
  std::thread writer([&] {
    while (!reading.load()) std::this_thread::yield();
    char k = 'k';
    put = syscall(SYS_write, fds[1], &k, 1);
  });
  writer.join();
  reader.join();
  // Printed after both joins: the two threads' order is the scheduler's, not the kernel's.
  Say("raw write -> %ld", put);
  Say("raw read -> %ld '%c'", got, c);
  close(fds[0]);
  close(fds[1]);
}

void SpinUntilAnotherThreadActs() {
  std::atomic<bool> flag{false};
  std::thread spinner([&] {
    unsigned long spins = 0;
    while (!flag.load(std::memory_order_acquire)) ++spins;  // never yields, never calls
    Say("spin: flag seen");
  });
  std::thread setter([&] { flag.store(true, std::memory_order_release); });
  setter.join();
  spinner.join();
}

}  // namespace

int main() {
  alarm(60);
  StdioOnAPipe();
  RawReadSyscall();
  SpinUntilAnotherThreadActs();
  Say("done");
  return 0;
}
