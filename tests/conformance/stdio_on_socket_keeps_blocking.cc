// A stdio stream on a socket (fdopen + fgets/fputs/fwrite) keeps blocking behaviour, also after
// blocking socket calls on the same fd have waited: stdio reads and writes go to the kernel
// through libc's internal calls, so the open file itself must still be blocking. fgets waits for
// a line sent in pieces, a big fwrite to a slow reader completes, and EOF and a SO_RCVTIMEO
// timeout show as feof/ferror.
#include <string>
#include <thread>
#include <vector>

#include "loopback.h"
#include "parked.h"

using namespace conf;

int main() {
  Pair p = TcpPair();
  {
    // A blocking recv that waits first, so gonet has armed the fd before stdio uses it.
    Announcer parked;
    std::thread sender([&] {
      parked.WaitParked(30);
      SendStr(p.client, "w");
    });
    char c;
    parked.Announce();
    Show(recv(p.server, &c, 1, 0), "blocking recv before stdio");
    sender.join();
  }
  FILE* in = fdopen(p.server, "r");
  FILE* out = fdopen(Must(dup(p.server), "dup"), "w");
  if (in == nullptr || out == nullptr) Fail("fdopen");

  Say("== fgets waits for a line sent in pieces");
  std::thread pieces([&] {
    SleepMs(50);
    SendStr(p.client, "hel");
    SleepMs(50);
    SendStr(p.client, "lo\nsecond line\n");
  });
  char line[256];
  char* r = fgets(line, sizeof line, in);
  Say("fgets -> %s", r ? line : "NULL");
  r = fgets(line, sizeof line, in);
  Say("fgets -> %s", r ? line : "NULL");
  pieces.join();

  Say("== fputs + fflush reach the peer");
  Show(fputs("reply line\n", out), "fputs");
  Show(fflush(out), "fflush");
  char buf[64];
  long n = Show(recv(p.client, buf, 11, MSG_WAITALL), "peer recv 11");
  Say("peer got '%.*s'", static_cast<int>(n > 0 ? n - 1 : 0), buf);

  Say("== a big fwrite to a slow reader completes");
  std::vector<char> data(4 << 20);
  Pattern(data.data(), data.size());
  bool same = false;
  std::thread reader([&] {
    SleepMs(50);
    std::vector<char> got(data.size());
    RecvExactly(p.client, got.data(), got.size());
    same = got == data;
  });
  Show(static_cast<long>(fwrite(data.data(), 1, data.size(), out)), "fwrite 4 MiB");
  Show(fflush(out), "fflush");
  Say("ferror(out): %s", YesNo(ferror(out)));
  reader.join();
  Say("reader got the same bytes: %s", YesNo(same));

  Say("== fgets with SO_RCVTIMEO: a timeout is a stream error");
  SetTimeout(p.server, SO_RCVTIMEO, 150);
  Stopwatch sw;
  errno = 0;
  r = fgets(line, sizeof line, in);
  int err = errno;
  Say("fgets -> %s, errno %s, ferror %s, feof %s, %s", r ? "a line" : "NULL",
      err ? ErrnoName(err) : "0", YesNo(ferror(in)), YesNo(feof(in)), sw.Waited(150));
  clearerr(in);
  SetTimeout(p.server, SO_RCVTIMEO, 0);

  Say("== fgets at EOF");
  SendStr(p.client, "last");
  shutdown(p.client, SHUT_WR);
  r = fgets(line, sizeof line, in);
  Say("fgets -> %s", r ? line : "NULL");
  r = fgets(line, sizeof line, in);
  Say("fgets -> %s, feof %s, ferror %s", r ? line : "NULL", YesNo(feof(in)), YesNo(ferror(in)));
  Say("socket blocking: %s", YesNo(!HasNonblock(p.server)));
  fclose(in);
  fclose(out);
  close(p.client);
  return 0;
}
