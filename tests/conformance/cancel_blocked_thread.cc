// pthread_cancel of a thread blocked in recv or accept (cancellation points): the thread runs
// its cleanup handlers and pthread_join reports PTHREAD_CANCELED. With cancellation disabled the
// call is not cancelled; the request stays pending until the next cancellation point. The join
// is bounded, so a thread that ignores the cancel shows as "still blocked" instead of a hang.
#include <pthread.h>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

struct Job {
  int fd;
  bool accept;
  bool disable_cancel;
  Announcer parked;
  // Written by the thread, printed by main after the join (one ordered transcript).
  bool returned = false;
  long result = 0;
  int err = 0;
  bool cleanup_ran = false;
  bool survived_testcancel = false;
};

void Cleanup(void* arg) { static_cast<Job*>(arg)->cleanup_ran = true; }

void* Run(void* arg) {
  Job* job = static_cast<Job*>(arg);
  int old;
  if (job->disable_cancel) pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  pthread_cleanup_push(Cleanup, job);
  char buf[16];
  job->parked.Announce();
  job->result = job->accept ? accept(job->fd, nullptr, nullptr) : recv(job->fd, buf, sizeof buf, 0);
  job->err = errno;
  job->returned = true;
  if (job->result >= 0 && job->accept) close(static_cast<int>(job->result));
  if (job->disable_cancel) {
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    pthread_testcancel();
    job->survived_testcancel = true;
  }
  pthread_cleanup_pop(0);
  return nullptr;
}

void Join(pthread_t t, Job* job) {
  timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5;
  void* ret = nullptr;
  int rc = pthread_timedjoin_np(t, &ret, &deadline);
  if (rc == ETIMEDOUT) {
    Say("join: thread still blocked after 5 s");
    _exit(4);
  }
  const char* call = job->accept ? "accept" : "recv";
  if (!job->returned) {
    Say("%s: cancelled inside the call", call);
  } else if (job->result < 0) {
    Say("%s returned -> -1 %s", call, ErrnoName(job->err));
  } else {
    Say("%s returned -> %s", call, job->accept ? "a connection" : "data");
  }
  if (job->disable_cancel) {
    Say("cancelled at pthread_testcancel: %s", YesNo(!job->survived_testcancel));
  }
  Say("cleanup handler ran: %s", YesNo(job->cleanup_ran));
  Say("join -> %s", ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a normal return");
}

void Cancel(const char* what, Job* job, int peer_for_data) {
  Say("== %s", what);
  pthread_t t;
  Must(-pthread_create(&t, nullptr, Run, job), "pthread_create");
  job->parked.WaitParked();
  ShowRc(pthread_cancel(t), "pthread_cancel");
  if (job->disable_cancel) {
    // Cancelling did nothing to the blocked call; data ends it.
    SleepMs(50);
    if (job->accept) {
      close(TcpConnect(peer_for_data));
    } else {
      SendStr(peer_for_data, "data");
    }
  }
  Join(t, job);
}

}  // namespace

int main() {
  Pair p = TcpPair();
  Job recv_job{p.server, false, false, {}};
  Cancel("cancel a thread blocked in recv", &recv_job, -1);
  uint16_t port;
  int listener = TcpListener(4, &port);
  Job accept_job{listener, true, false, {}};
  Cancel("cancel a thread blocked in accept", &accept_job, -1);
  Job disabled_recv{p.server, false, true, {}};
  Cancel("cancel a thread blocked in recv with cancellation disabled", &disabled_recv, p.client);
  Job disabled_accept{listener, true, true, {}};
  Cancel("cancel a thread blocked in accept with cancellation disabled", &disabled_accept, port);

  Say("== the sockets still work after the cancellations");
  Show(send(p.client, "after", 5, 0), "send");
  char buf[16];
  Show(recv(p.server, buf, sizeof buf, 0), "recv");
  int c = TcpConnect(port);
  int a = ShowOk(accept(listener, nullptr, nullptr), "accept");
  close(a);
  close(c);
  close(listener);
  CloseBoth(p);
  return 0;
}
