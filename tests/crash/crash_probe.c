/* crash_probe: faults on purpose, for tests/crash/run_crash.py.
 *   gonet    a fault inside gonet: an invalid (non-NULL) iovec on the netpoller path, which
 *            gonet reads before the kernel could answer EFAULT (a known gonet limit, README)
 *   program  a fault in the program's own code
 *   own      the same, with the program's own SIGSEGV handler installed
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static void own(int s) {
  (void)s;
  write(1, "own handler ran\n", 16);
  _exit(5);
}
int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "gonet";
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  if (!strcmp(what, "gonet")) {
    /* an invalid (non-NULL) iovec on the netpoller path: gonet reads it and faults */
    struct msghdr m = {0};
    m.msg_iov = (struct iovec*)0x10;
    m.msg_iovlen = 1;
    write(sv[1], "x", 1);
    recvmsg(sv[0], &m, MSG_WAITALL);
  } else if (!strcmp(what, "program")) {
    *(volatile int*)0x10 = 1;
  } else if (!strcmp(what, "own")) {
    signal(SIGSEGV, own);
    *(volatile int*)0x10 = 1;
  }
  puts("no fault");
  return 0;
}
