// How a TCP connection ends, as recv and connect see it: an orderly shutdown or close reads as
// EOF (0, again and again); a close with unread data or with SO_LINGER 0 sends a RST that reads
// as ECONNRESET (also for a reader already blocked in recv); connect to a port where nothing
// listens is refused.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void EofAfter(const char* how, bool use_shutdown) {
  Say("== EOF after peer %s", how);
  Pair p = TcpPair();
  char buf[64];
  Show(send(p.client, "abc", 3, 0), "send 3");
  if (use_shutdown) {
    Show(shutdown(p.client, SHUT_WR), "shutdown(SHUT_WR)");
  } else {
    Show(close(p.client), "close");
  }
  Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 64 waitall");
  Show(recv(p.server, buf, sizeof buf, 0), "recv");
  Show(recv(p.server, buf, sizeof buf, 0), "recv again");
  Show(read(p.server, buf, sizeof buf), "read");
  if (use_shutdown) {
    // A half-closed peer still reads what we send.
    Show(send(p.server, "back", 4, 0), "send back over the half-open connection");
    Show(recv(p.client, buf, sizeof buf, 0), "peer recv");
    close(p.client);
  }
  close(p.server);
}

void ResetReadsAsEconnreset(const char* how, bool linger0) {
  Say("== ECONNRESET after peer %s", how);
  Pair p = TcpPair();
  char buf[64];
  if (linger0) {
    linger l{1, 0};
    Must(setsockopt(p.client, SOL_SOCKET, SO_LINGER, &l, sizeof l), "SO_LINGER");
  } else {
    Show(send(p.server, "unread", 6, 0), "send 6 the peer never reads");
    WaitQueued(p.client, 6);
  }
  Show(close(p.client), "peer close");
  Show(recv(p.server, buf, sizeof buf, 0), "recv");
  Show(recv(p.server, buf, sizeof buf, 0), "recv after the reset was reported");
  Show(send(p.server, "x", 1, MSG_NOSIGNAL), "send after the reset");
  close(p.server);
}

void ResetWakesBlockedReader() {
  Say("== a reader blocked in recv sees ECONNRESET");
  Pair p = TcpPair();
  Announcer parked;
  std::thread reader([&] {
    char buf[64];
    parked.Announce();
    Show(recv(p.server, buf, sizeof buf, 0), "blocked recv");
  });
  parked.WaitParked();
  linger l{1, 0};
  Must(setsockopt(p.client, SOL_SOCKET, SO_LINGER, &l, sizeof l), "SO_LINGER");
  close(p.client);
  reader.join();
  close(p.server);
}

void EofWakesBlockedReader() {
  Say("== a reader blocked in recv sees EOF");
  Pair p = TcpPair();
  Announcer parked;
  std::thread reader([&] {
    char buf[64];
    parked.Announce();
    Show(recv(p.server, buf, sizeof buf, 0), "blocked recv");
  });
  parked.WaitParked();
  close(p.client);
  reader.join();
  close(p.server);
}

void Refused() {
  Say("== connect to a bound port nobody listens on");
  // Keeping the port bound (not listening) means no parallel test can take it meanwhile.
  int holder = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
  sockaddr_in sa = Loopback(0);
  Must(bind(holder, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "bind");
  sa = Loopback(LocalPort(holder));
  int fd = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
  Show(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "blocking connect");
  int err = -1;
  socklen_t len = sizeof err;
  Show(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), "getsockopt(SO_ERROR)");
  Say("SO_ERROR = %s", err == 0 ? "0" : ErrnoName(err));
  Show(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "blocking connect again");
  close(fd);

  fd = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
  SetTimeout(fd, SO_SNDTIMEO, 2000);
  Show(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect with SO_SNDTIMEO");
  close(fd);
  close(holder);
}

}  // namespace

int main() {
  EofAfter("shutdown(SHUT_WR)", true);
  EofAfter("close", false);
  EofWakesBlockedReader();
  ResetReadsAsEconnreset("close with unread data", false);
  ResetReadsAsEconnreset("close with SO_LINGER 0", true);
  ResetWakesBlockedReader();
  Refused();
  return 0;
}
