// flock, lockf and fcntl(F_SETLKW / F_OFD_SETLKW) block until the holder (another process)
// releases, then succeed; the errors they give at once are the kernel's. Issue 13: in fibers mode
// a thread waiting for a file lock held its worker's OS thread (the program's other threads on
// that worker, here the one that asks the holder to release, waited for the sysmon's handoff);
// now the wait runs on an offload helper and the fiber parks.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>

#include <atomic>
#include <thread>

#include "transcript.h"

using namespace conf;

namespace {

enum class Kind { kFlock, kLockf, kSetlkw, kOfdSetlkw };
const char* Name(Kind k) {
  switch (k) {
    case Kind::kFlock:
      return "flock(LOCK_EX)";
    case Kind::kLockf:
      return "lockf(F_LOCK)";
    case Kind::kSetlkw:
      return "fcntl(F_SETLKW)";
    default:
      return "fcntl(F_OFD_SETLKW)";
  }
}

int Lock(Kind k, int fd, bool wait) {
  struct flock l = {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  switch (k) {
    case Kind::kFlock:
      return flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
    case Kind::kLockf:
      return lockf(fd, wait ? F_LOCK : F_TLOCK, 0);
    case Kind::kSetlkw:
      return fcntl(fd, wait ? F_SETLKW : F_SETLK, &l);
    default:
      return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &l);
  }
}

// A child process takes the lock and holds it until told to let go (a byte on a pipe).
void WaitForTheHolder(Kind k, const char* path) {
  int go[2], held[2];
  Must(pipe(go), "pipe");
  Must(pipe(held), "pipe");
  pid_t child = fork();
  if (child == 0) {
    int fd = open(path, O_RDWR);
    if (fd < 0 || Lock(k, fd, true) != 0) _exit(1);
    char c = 'h';
    if (write(held[1], &c, 1) != 1) _exit(1);
    if (read(go[0], &c, 1) != 1) _exit(1);
    _exit(0);  // the lock goes with the process
  }
  char c;
  Must(read(held[0], &c, 1), "read held");
  int fd = Must(open(path, O_RDWR), "open");
  Show(Lock(k, fd, false), "%s: try while another process holds it", Name(k));
  std::atomic<bool> announced{false};
  std::thread waiter([&] {
    announced.store(true);
    Show(Lock(k, fd, true), "%s: wait for the holder", Name(k));
  });
  // Another thread of the program runs meanwhile and tells the holder to let go.
  std::thread releaser([&] {
    while (!announced.load()) SleepMs(1);
    SleepMs(50);
    Say("%s: another thread runs while the lock is held", Name(k));
    Must(write(go[1], "g", 1), "write go");
  });
  releaser.join();
  waiter.join();
  int status = 0;
  waitpid(child, &status, 0);
  close(fd);
  for (int p : {go[0], go[1], held[0], held[1]}) close(p);
}

}  // namespace

int main() {
  alarm(120);  // a lost wake-up ends the run instead of hanging it
  char path[] = "/tmp/conf_file_locks_XXXXXX";
  int fd = Must(mkstemp(path), "mkstemp");
  close(fd);
  for (Kind k : {Kind::kFlock, Kind::kLockf, Kind::kSetlkw, Kind::kOfdSetlkw}) {
    WaitForTheHolder(k, path);
  }
  // Errors the kernel gives at once, whatever the waiting flavour.
  Show(flock(-1, LOCK_EX), "flock(-1, LOCK_EX)");
  Show(lockf(-1, F_LOCK, 0), "lockf(-1, F_LOCK)");
  int rd = Must(open(path, O_RDONLY), "open");
  struct flock l = {};
  l.l_type = F_WRLCK;
  Show(fcntl(rd, F_SETLKW, &l), "fcntl(F_SETLKW, write lock on a read-only fd)");
  l.l_type = 77;
  Show(fcntl(rd, F_SETLKW, &l), "fcntl(F_SETLKW, bad l_type)");
  close(rd);
  unlink(path);
  return 0;
}
