// poll, ppoll, select, pselect and epoll_wait over 1, 2 and 64 sockets, with and without a pipe
// in the set: a wait with a far timeout returns when one socket becomes readable, with the
// kernel's revents / fd sets / events; a wait with a short timeout and nothing ready returns 0
// with nothing set. Issue 13: in fibers mode a poll of several sockets ran on a helper thread
// each time (stunnel: a thread per connection again); now it parks on the netpoller, and only
// sets with fds gonet cannot arm (the pipe) take a helper.
//
// No result depends on timing: the writer acts after the waiter announced itself (the sleep only
// makes it likely that the waiter is already asleep), and every woken wait has a far timeout.
#include <poll.h>
#include <sys/epoll.h>
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
  }
  return s;
}

void CloseSet(Set& s) {
  for (int fd : s.mine) close(fd);
  for (int fd : s.peers) close(fd);
  if (s.pipe_r >= 0) {
    close(s.pipe_r);
    close(s.pipe_w);
  }
}

std::vector<int> WaitFds(const Set& s) {
  std::vector<int> fds = s.mine;
  if (s.pipe_r >= 0) fds.push_back(s.pipe_r);
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

// One wait for readability over fds with timeout_ms; prints the result and what was ready.
void WaitOnce(Api api, const std::vector<int>& fds, int timeout_ms, const char* label) {
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
  if (r < 0) {
    Say("%s %s -> -1 %s", ApiName(api), label, ErrnoName(err));
  } else {
    Say("%s %s -> %ld [%s]", ApiName(api), label, r, Positions(fds, revents).c_str());
  }
}

void Scenario(Api api, int sockets, bool with_pipe) {
  Set s = MakeSet(sockets, with_pipe);
  std::vector<int> fds = WaitFds(s);
  char label[96];
  snprintf(label, sizeof label, "%d socket(s)%s", sockets, with_pipe ? " + pipe" : "");

  // Nothing ready: a short timeout expires.
  std::thread idle([&] {
    std::string l = std::string(label) + ", nothing ready, 30ms";
    WaitOnce(api, fds, 30, l.c_str());
  });
  idle.join();

  // The last socket becomes readable while a thread waits.
  std::atomic<bool> announced{false};
  std::thread waiter([&] {
    announced.store(true);
    std::string l = std::string(label) + ", last socket written";
    WaitOnce(api, fds, kFarMs, l.c_str());
  });
  while (!announced.load()) SleepMs(1);
  SleepMs(30);
  Must(write(s.peers.back(), "x", 1), "write");
  waiter.join();

  // The pipe (if any) becomes readable while a thread waits.
  if (with_pipe) {
    char c;
    Must(read(s.mine.back(), &c, 1), "read");
    announced.store(false);
    std::thread pipe_waiter([&] {
      announced.store(true);
      std::string l = std::string(label) + ", pipe written";
      WaitOnce(api, fds, kFarMs, l.c_str());
    });
    while (!announced.load()) SleepMs(1);
    SleepMs(30);
    Must(write(s.pipe_w, "x", 1), "write pipe");
    pipe_waiter.join();
  }
  CloseSet(s);
}

}  // namespace

int main() {
  alarm(240);  // a lost wake-up ends the run instead of hanging it
  for (Api api : {Api::kPoll, Api::kPpoll, Api::kSelect, Api::kPselect, Api::kEpoll}) {
    for (int n : {1, 2, 64}) {
      Scenario(api, n, false);
      Scenario(api, n, true);
    }
  }
  return 0;
}
