// poll, ppoll, select, pselect and epoll_wait over 0, 1, 2 and 64 sockets, with and without a
// pipe and an eventfd in the set: a wait with a far timeout returns when one socket, the pipe or
// the eventfd becomes readable, with the kernel's revents / fd sets / events; a wait with a short
// timeout and nothing ready returns 0 with nothing set; several threads waiting on one pipe are
// all woken by one write; a signal ends a wait with EINTR. Issue 13: in fibers mode a poll of
// several sockets ran on a helper thread each time (stunnel: a thread per connection again), and so
// did every set naming a pipe (stunnel's signal pipe) and every epoll_wait; now they all park on
// the netpoller (the pipe and eventfd through private copies, epoll_wait on the program's epoll fd
// itself), and the last line shows that no wait took a helper thread (gonet-offload; natively there
// are none either). The suite runs fibers mode on one worker, where a wait that held the worker
// would stall the writer.
//
// No result depends on timing: the writer acts after the waiter announced itself (the sleep only
// makes it likely that the waiter is already asleep), and every woken wait has a far timeout.
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "transcript.h"

using namespace conf;

namespace {

constexpr int kFarMs = 60000;

struct Set {
  std::vector<int> mine;   // the waiter's ends
  std::vector<int> peers;  // the writer's ends
  int pipe_r = -1, pipe_w = -1;
  int event = -1;  // an eventfd
};

Set MakeSet(int sockets, bool with_pipe) {
  Set s;
  for (int i = 0; i < sockets; ++i) {
    int sv[2];
    Must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
    s.mine.push_back(sv[0]);
    s.peers.push_back(sv[1]);
  }
  if (with_pipe) {
    int p[2];
    Must(pipe(p), "pipe");
    s.pipe_r = p[0];
    s.pipe_w = p[1];
    s.event = Must(eventfd(0, EFD_CLOEXEC), "eventfd");
  }
  return s;
}

void CloseSet(Set& s) {
  for (int fd : s.mine) close(fd);
  for (int fd : s.peers) close(fd);
  if (s.pipe_r >= 0) {
    close(s.pipe_r);
    close(s.pipe_w);
    close(s.event);
  }
}

std::vector<int> WaitFds(const Set& s) {
  std::vector<int> fds = s.mine;
  if (s.pipe_r >= 0) {
    fds.push_back(s.pipe_r);
    fds.push_back(s.event);
  }
  return fds;
}

// Which positions of the waited-on fds are ready, as "2:IN" entries.
std::string Positions(const std::vector<int>& fds, const std::vector<short>& revents) {
  std::string out;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (revents[i] == 0) continue;
    char item[64];
    snprintf(item, sizeof item, "%s%zu:%s%s%s", out.empty() ? "" : ",", i,
             (revents[i] & POLLIN) ? "IN" : "", (revents[i] & POLLOUT) ? "OUT" : "",
             (revents[i] & ~(POLLIN | POLLOUT)) ? "+other" : "");
    out += item;
  }
  return out.empty() ? "-" : out;
}

enum class Api { kPoll, kPpoll, kSelect, kPselect, kEpoll };
const char* ApiName(Api a) {
  switch (a) {
    case Api::kPoll:
      return "poll";
    case Api::kPpoll:
      return "ppoll";
    case Api::kSelect:
      return "select";
    case Api::kPselect:
      return "pselect";
    default:
      return "epoll_wait";
  }
}

// One wait for readability over fds with timeout_ms; prints the result and what was ready (or
// leaves the line in *out).
void WaitOnce(Api api, const std::vector<int>& fds, int timeout_ms, const char* label,
              std::string* out = nullptr) {
  std::vector<short> revents(fds.size(), 0);
  long r = 0;
  int err = 0;
  switch (api) {
    case Api::kPoll:
    case Api::kPpoll: {
      std::vector<pollfd> p;
      for (int fd : fds) p.push_back(pollfd{fd, POLLIN, 0});
      if (api == Api::kPoll) {
        r = poll(p.data(), p.size(), timeout_ms);
      } else {
        timespec t = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
        r = ppoll(p.data(), p.size(), &t, nullptr);
      }
      err = errno;
      for (size_t i = 0; i < p.size(); ++i) revents[i] = p[i].revents;
      break;
    }
    case Api::kSelect:
    case Api::kPselect: {
      fd_set rs;
      FD_ZERO(&rs);
      int maxfd = -1;
      for (int fd : fds) {
        FD_SET(fd, &rs);
        if (fd > maxfd) maxfd = fd;
      }
      if (api == Api::kSelect) {
        timeval t = {timeout_ms / 1000, (timeout_ms % 1000) * 1000L};
        r = select(maxfd + 1, &rs, nullptr, nullptr, &t);
      } else {
        timespec t = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
        r = pselect(maxfd + 1, &rs, nullptr, nullptr, &t, nullptr);
      }
      err = errno;
      for (size_t i = 0; i < fds.size(); ++i) revents[i] = FD_ISSET(fds[i], &rs) ? POLLIN : 0;
      break;
    }
    case Api::kEpoll: {
      int ep = Must(epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
      for (size_t i = 0; i < fds.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(i);
        Must(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev), "epoll_ctl");
      }
      std::vector<epoll_event> out(fds.size());
      r = epoll_wait(ep, out.data(), static_cast<int>(out.size()), timeout_ms);
      err = errno;
      for (long i = 0; i < r; ++i) revents[out[i].data.u32] = static_cast<short>(out[i].events);
      close(ep);
      break;
    }
  }
  char line[512];
  if (r < 0) {
    snprintf(line, sizeof line, "%s %s -> -1 %s", ApiName(api), label, ErrnoName(err));
  } else {
    snprintf(line, sizeof line, "%s %s -> %ld [%s]", ApiName(api), label, r,
             Positions(fds, revents).c_str());
  }
  if (out != nullptr) {
    *out = line;
  } else {
    Say("%s", line);
  }
}

// Runs one wait on a thread once it is likely asleep, after `act` makes something readable.
template <typename Act>
void WakeOne(Api api, const std::vector<int>& fds, const std::string& label, Act act) {
  std::atomic<bool> announced{false};
  std::thread waiter([&] {
    announced.store(true);
    WaitOnce(api, fds, kFarMs, label.c_str());
  });
  while (!announced.load()) SleepMs(1);
  SleepMs(30);
  act();
  waiter.join();
}

void Scenario(Api api, int sockets, bool with_unmanaged) {
  Set s = MakeSet(sockets, with_unmanaged);
  std::vector<int> fds = WaitFds(s);
  char label[96];
  snprintf(label, sizeof label, "%d socket(s)%s", sockets,
           with_unmanaged ? " + pipe + eventfd" : "");

  // Nothing ready: a short timeout expires.
  std::thread idle([&] {
    std::string l = std::string(label) + ", nothing ready, 30ms";
    WaitOnce(api, fds, 30, l.c_str());
  });
  idle.join();

  // The last socket becomes readable while a thread waits.
  if (sockets > 0) {
    WakeOne(api, fds, std::string(label) + ", last socket written",
            [&] { Must(write(s.peers.back(), "x", 1), "write"); });
    char c;
    Must(read(s.mine.back(), &c, 1), "read");
  }

  // The pipe, then the eventfd (if any), becomes readable while a thread waits.
  if (with_unmanaged) {
    WakeOne(api, fds, std::string(label) + ", pipe written",
            [&] { Must(write(s.pipe_w, "x", 1), "write pipe"); });
    char c;
    Must(read(s.pipe_r, &c, 1), "read pipe");
    WakeOne(api, fds, std::string(label) + ", eventfd written", [&] {
      uint64_t one = 1;
      Must(write(s.event, &one, sizeof one), "write eventfd");
    });
  }
  CloseSet(s);
}

// Four threads, each with a socket of its own, wait on one pipe together: one write wakes all.
void SharedPipe(Api api) {
  constexpr int kWaiters = 4;
  int p[2];
  Must(pipe(p), "pipe");
  std::vector<Set> sets;
  for (int i = 0; i < kWaiters; ++i) sets.push_back(MakeSet(1, false));
  std::atomic<int> announced{0};
  std::vector<std::string> lines(kWaiters);
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      std::vector<int> fds = {sets[i].mine[0], p[0]};
      announced.fetch_add(1);
      std::string l = "shared pipe, waiter " + std::to_string(i);
      WaitOnce(api, fds, kFarMs, l.c_str(), &lines[i]);
    });
  }
  while (announced.load() < kWaiters) SleepMs(1);
  SleepMs(30);
  Must(write(p[1], "x", 1), "write pipe");
  for (std::thread& t : waiters) t.join();
  for (const std::string& l : lines) Say("%s", l.c_str());
  for (Set& s : sets) CloseSet(s);
  close(p[0]);
  close(p[1]);
}

void OnSignal(int) {}

// A signal to the waiting thread ends the wait with EINTR, even with SA_RESTART (signal(7): these
// calls are never restarted). The signal is sent until the wait returns, so one that arrives
// before the thread is in the call only delays the result.
void Interrupted(Api api) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  Must(sigaction(SIGUSR1, &sa, nullptr), "sigaction");
  Set s = MakeSet(2, true);
  std::vector<int> fds = WaitFds(s);
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    WaitOnce(api, fds, kFarMs, "2 socket(s) + pipe + eventfd, signal to the thread");
    done.store(true);
  });
  while (!done.load()) {
    pthread_kill(waiter.native_handle(), SIGUSR1);
    SleepMs(20);
  }
  waiter.join();
  CloseSet(s);
}

// OS threads of this process named gonet-offload: the helpers that run waits gonet could not
// park. None exist natively, and none may under gonet either.
int OffloadHelpers() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = {};
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE* f = fopen(path, "r");
    if (f == nullptr) continue;
    if (fgets(comm, sizeof comm, f) != nullptr && strncmp(comm, "gonet-offload", 13) == 0) ++n;
    fclose(f);
  }
  closedir(d);
  return n;
}

}  // namespace

int main() {
  alarm(240);  // a lost wake-up ends the run instead of hanging it
  for (Api api : {Api::kPoll, Api::kPpoll, Api::kSelect, Api::kPselect, Api::kEpoll}) {
    Scenario(api, 0, true);
    for (int n : {1, 2, 64}) {
      Scenario(api, n, false);
      Scenario(api, n, true);
    }
    SharedPipe(api);
    Interrupted(api);
  }
  Say("offload helper threads: %d", OffloadHelpers());
  return 0;
}
