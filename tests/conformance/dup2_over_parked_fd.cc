// dup2() over an fd another thread is blocked on: natively the blocked recv keeps waiting on the
// old file (here until the old peer sends), under gonet the implicit close evicts it with EBADF,
// like close(). The runner compares the preloaded transcript with
// dup2_over_parked_fd.gonet.expected. Afterwards the fd number refers to the new socket in both.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

int main() {
  Say("== dup2 over an fd another thread is blocked in recv on");
  Pair old_conn = TcpPair();
  Pair new_conn = TcpPair();
  SetTimeout(old_conn.server, SO_RCVTIMEO, 2000);
  Announcer parked;
  long r = 0;
  int err = 0;
  char got[16] = {};
  std::thread reader([&] {
    parked.Announce();
    r = recv(old_conn.server, got, sizeof got, 0);
    err = errno;
  });
  parked.WaitParked();
  int fd = old_conn.server;
  Show(dup2(new_conn.server, fd) == fd ? 0 : -1, "dup2(new, parked fd)");
  // Natively this is what ends the blocked recv: it still reads the old connection.
  SendStr(old_conn.client, "old");
  reader.join();
  if (r < 0) {
    Say("parked recv after dup2 -> -1 %s", ErrnoName(err));
  } else {
    Say("parked recv after dup2 -> %ld '%.*s'", r, static_cast<int>(r), got);
  }

  Say("== the fd number now names the new connection");
  SendStr(new_conn.client, "new");
  char buf[16];
  long n = Show(recv(fd, buf, sizeof buf, 0), "recv on the fd");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  Show(send(fd, "back", 4, 0), "send on the fd");
  n = Show(recv(new_conn.client, buf, sizeof buf, 0), "new peer recv");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  close(fd);
  close(new_conn.server);
  close(new_conn.client);
  close(old_conn.client);
  return 0;
}
