// Exhaustion and hostile conditions, one behaviour per subcommand; each exits 0 when the
// program saw what the kernel promises (natively and under libgonet.so alike), 1 otherwise,
// and prints one line saying what it saw. Waits are for observable state; the only clocks are
// the SO_RCVTIMEO/SO_SNDTIMEO the behaviour itself is about, and a hang bound.
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

int Fail(const char* what) {
  std::printf("FAIL: %s (errno %s)\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "0");
  return 1;
}

int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

// A listener on 127.0.0.1 and its port.
int Listen(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 64) != 0) return -1;
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

int Dial(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// EMFILE reaches the program from socket and accept, and nothing leaks: once the program
// closes what it opened, the fd count is back where it was and sockets work again.
int FdLimitReachedReturnsEmfile() {
  uint16_t port;
  const int lfd = Listen(&port);
  const int client = Dial(port);  // pending in the backlog
  if (lfd < 0 || client < 0) return Fail("listen/dial");
  const int before = OpenFds();
  rlimit rl{static_cast<rlim_t>(before + 16), static_cast<rlim_t>(before + 16)};
  rlimit old;
  getrlimit(RLIMIT_NOFILE, &old);
  rl.rlim_max = old.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return Fail("setrlimit");
  std::vector<int> fds;
  for (;;) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  if (errno != EMFILE) return Fail("socket at the limit is not EMFILE");
  const int a = accept(lfd, nullptr, nullptr);
  if (a >= 0 || errno != EMFILE) return Fail("accept at the limit is not EMFILE");
  for (int fd : fds) close(fd);
  const int a2 = accept(lfd, nullptr, nullptr);
  if (a2 < 0) return Fail("accept after closing");
  if (send(client, "x", 1, 0) != 1) return Fail("send");
  char c;
  if (recv(a2, &c, 1, 0) != 1 || c != 'x') return Fail("recv after the limit");
  close(a2);
  if (OpenFds() != before) return Fail("fd count not back to its baseline");
  std::printf("ok: socket and accept failed with EMFILE at %zu sockets; fds back to %d\n",
              fds.size(), before);
  return 0;
}

std::atomic<long> g_handled{0};
void OnSignal(int) { g_handled.fetch_add(1); }

// A signal storm at a thread blocked in recv: with SA_RESTART the call restarts every time
// and returns the data when it comes; without, the first delivery returns EINTR.
int SignalStormWhileParked(bool restart) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGUSR1, &sa, nullptr);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return Fail("socketpair");
  std::atomic<bool> done{false};
  ssize_t got = 0;
  int err = 0;
  std::thread reader([&] {
    char c;
    got = recv(sv[0], &c, 1, 0);
    err = errno;
    done = true;
  });
  const pthread_t t = reader.native_handle();
  for (int i = 0; i < 20000 && !done; ++i) pthread_kill(t, SIGUSR1);
  if (restart && done) return Fail("recv returned during the storm despite SA_RESTART");
  if (restart) send(sv[1], "y", 1, 0);
  reader.join();
  if (restart ? got != 1 : (got != -1 || err != EINTR)) {
    errno = err;
    return Fail(restart ? "recv did not return the byte" : "recv did not return EINTR");
  }
  std::printf("ok: %s, handler ran\n",
              restart ? "SA_RESTART storm, recv got the byte" : "first signal returned EINTR");
  return 0;
}

// The peer resets the connection while a writer is blocked in send: the writer gets
// ECONNRESET or EPIPE (MSG_NOSIGNAL), never hangs.
int PeerResetsMidWrite() {
  uint16_t port;
  const int lfd = Listen(&port);
  const int w = Dial(port);
  const int peer = accept(lfd, nullptr, nullptr);
  if (w < 0 || peer < 0) return Fail("connect");
  std::atomic<bool> blocked{false};
  int err = 0;
  std::thread writer([&] {
    std::vector<char> buf(1 << 20, 'z');
    for (;;) {
      blocked = true;
      const ssize_t n = send(w, buf.data(), buf.size(), MSG_NOSIGNAL);
      if (n < 0) {
        err = errno;
        return;
      }
    }
  });
  // The writer is blocked once the peer's receive queue stops growing... reading nothing and
  // waiting for the first send to have begun is enough: the reset lands before or during it.
  while (!blocked) sched_yield();
  linger l{1, 0};
  setsockopt(peer, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(peer);
  writer.join();
  if (err != ECONNRESET && err != EPIPE) {
    errno = err;
    return Fail("writer did not see ECONNRESET/EPIPE");
  }
  std::printf("ok: writer saw a reset\n");
  return 0;
}

// A peer that never reads: the writer fills both buffers, then SO_SNDTIMEO ends its send with
// a partial count or EAGAIN.
int PeerNeverReadsSendTimesOut() {
  uint16_t port;
  const int lfd = Listen(&port);
  const int w = Dial(port);
  const int peer = accept(lfd, nullptr, nullptr);
  if (w < 0 || peer < 0) return Fail("connect");
  timeval tv{0, 200000};
  setsockopt(w, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::vector<char> buf(1 << 20, 'q');
  for (int i = 0; i < 1000; ++i) {
    const ssize_t n = send(w, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN) return Fail("send ended with something other than EAGAIN");
      std::printf("ok: send timed out with EAGAIN\n");
      return 0;
    }
  }
  return Fail("send never timed out");
}

// Close racing every operation: threads loop recv/send/accept on fds that the main thread
// closes under them; nothing crashes or hangs, and every call returns a result the kernel
// could have given.
int CloseRacesEveryOperation() {
  for (int round = 0; round < 200; ++round) {
    uint16_t port;
    const int lfd = Listen(&port);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    std::atomic<int> started{0};
    std::atomic<bool> bad{false};
    auto ok_err = [&](int e) {
      if (e != EBADF && e != EINVAL && e != ENOTSOCK && e != ECONNRESET && e != EPIPE &&
          e != ECONNABORTED)
        bad = true;
    };
    std::thread r([&] {
      ++started;
      char c;
      const ssize_t n = recv(sv[0], &c, 1, 0);
      if (n < 0) ok_err(errno);
    });
    std::thread s([&] {
      ++started;
      const ssize_t n = send(sv[1], "a", 1, MSG_NOSIGNAL);
      if (n < 0) ok_err(errno);
    });
    std::thread a([&] {
      ++started;
      const int fd = accept(lfd, nullptr, nullptr);
      if (fd < 0)
        ok_err(errno);
      else
        close(fd);
    });
    while (started < 3) sched_yield();
    // shutdown first: natively close() does not wake a thread blocked in the kernel, shutdown
    // does; under gonet close alone would also wake them.
    shutdown(lfd, SHUT_RDWR);
    shutdown(sv[0], SHUT_RDWR);
    close(sv[0]);
    close(sv[1]);
    close(lfd);
    r.join();
    s.join();
    a.join();
    if (bad) return Fail("an operation racing close returned an impossible errno");
  }
  std::printf("ok: 200 rounds of close racing recv/send/accept\n");
  return 0;
}

// fork while other threads are blocked in recv: the child can make its own blocking calls
// (fresh poller) and exit; the parent's threads still get their data afterwards.
int ForkWhileThreadsParked() {
  int sv[4][2];
  std::vector<std::thread> readers;
  std::atomic<int> got{0};
  for (auto& p : sv) {
    socketpair(AF_UNIX, SOCK_STREAM, 0, p);
    readers.emplace_back([&got, fd = p[0]] {
      char c;
      if (recv(fd, &c, 1, 0) == 1) ++got;
    });
  }
  const pid_t pid = fork();
  if (pid == 0) {
    int cp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, cp);
    std::thread t([&] { send(cp[1], "c", 1, 0); });
    char c;
    const ssize_t n = recv(cp[0], &c, 1, 0);
    t.join();
    _exit(n == 1 ? 0 : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  for (auto& p : sv) send(p[1], "p", 1, 0);
  for (auto& t : readers) t.join();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Fail("child failed");
  if (got != 4) return Fail("parent's readers did not all get their byte");
  std::printf("ok: child blocked and exited; 4 parent readers woke\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  alarm(120);  // hang bound: SIGALRM kills a stuck test
  const std::string t = argc > 1 ? argv[1] : "";
  if (t == "fd_limit_reached_returns_emfile") return FdLimitReachedReturnsEmfile();
  if (t == "signal_storm_while_parked_restarts") return SignalStormWhileParked(true);
  if (t == "signal_storm_while_parked_interrupts") return SignalStormWhileParked(false);
  if (t == "peer_resets_mid_write") return PeerResetsMidWrite();
  if (t == "peer_never_reads_send_times_out") return PeerNeverReadsSendTimesOut();
  if (t == "close_races_every_operation") return CloseRacesEveryOperation();
  if (t == "fork_while_threads_parked") return ForkWhileThreadsParked();
  std::fprintf(stderr, "usage: hostile_conditions BEHAVIOUR\n");
  return 2;
}
