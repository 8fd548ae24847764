// Message queues and System V semaphores between threads: a thread blocked in msgrcv, semop,
// mq_receive or mq_send (on a full queue) gets what another thread sends or frees later, with the
// kernel's answers (the message and its type or priority, a timeout from mq_timedreceive and
// semtimedop, IPC_NOWAIT's ENOMSG, EAGAIN on a full queue, EIDRM when the queue is removed under
// a waiter); msgrcv interrupted by a handler fails with EINTR even with SA_RESTART (System V IPC
// is never restarted), mq_receive restarts. Meanwhile another thread keeps running (a ticker).
// Registered ONE_WORKER: in fibers mode all of them share one worker.
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "deadline.h"
#include "parked.h"
#include "transcript.h"

using namespace conf;

namespace {

struct Msg {
  long type;
  char text[32];
};

std::atomic<bool> g_ticking{false};
std::atomic<int> g_ticks{0};

// Counts 5 ms sleeps while a wait is in progress: it must advance, as any other thread would.
class Ticker {
 public:
  Ticker() {
    g_ticks.store(0);
    g_ticking.store(true);
    thread_ = std::thread([] {
      while (g_ticking.load()) {
        usleep(5000);
        g_ticks.fetch_add(1);
      }
    });
  }
  // Waits (bounded) until the ticker has advanced a few times, then says whether it did.
  void SayAdvanced() {
    for (int i = 0; i < 400 && g_ticks.load() < 3; ++i) usleep(5000);
    Say("  another thread ran meanwhile: %s", YesNo(g_ticks.load() >= 3));
  }
  ~Ticker() {
    g_ticking.store(false);
    thread_.join();
  }

 private:
  std::thread thread_;
};

void SystemVMessages() {
  Say("== System V message queue");
  int q = Must(msgget(IPC_PRIVATE, IPC_CREAT | 0600), "msgget");
  Msg m{};
  Show(msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT), "msgrcv IPC_NOWAIT on an empty queue");
  Announcer parked;
  long got = 0;
  Msg in{};
  std::thread reader([&] {
    parked.Announce();
    got = msgrcv(q, &in, sizeof in.text, 0, 0);
  });
  {
    Ticker ticker;
    parked.WaitParked(50);
    ticker.SayAdvanced();
    Msg out{7, "hello"};
    ShowOk(msgsnd(q, &out, strlen(out.text) + 1, 0), "msgsnd");
    reader.join();
  }
  Say("  msgrcv -> %ld, type %ld, '%s'", got, in.type, in.text);
  // Removed under a waiter: EIDRM.
  parked.Reset();
  long removed = 0;
  int removed_err = 0;
  std::thread waiter([&] {
    Msg m2{};
    parked.Announce();
    removed = msgrcv(q, &m2, sizeof m2.text, 0, 0);
    removed_err = errno;
  });
  parked.WaitParked(50);
  ShowOk(msgctl(q, IPC_RMID, nullptr), "msgctl IPC_RMID");
  waiter.join();
  Say("  msgrcv on a removed queue -> %ld %s", removed, removed < 0 ? ErrnoName(removed_err) : "");
}

std::atomic<int> g_handled{0};
void OnSignal(int) { g_handled.fetch_add(1); }

void MsgrcvInterrupted() {
  Say("== msgrcv interrupted by a handler with SA_RESTART");
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  Must(sigaction(SIGUSR1, &sa, nullptr), "sigaction");
  int q = Must(msgget(IPC_PRIVATE, IPC_CREAT | 0600), "msgget");
  std::atomic<bool> done{false};
  Announcer parked;
  pthread_t target;
  long r = 0;
  int err = 0;
  std::thread reader([&] {
    target = pthread_self();
    Msg in{};
    parked.Announce();
    r = msgrcv(q, &in, sizeof in.text, 0, 0);
    err = errno;
    done.store(true);
  });
  parked.WaitParked(50);
  g_handled.store(0);
  while (!done.load()) {  // repeated until it returns: one signal lands inside the call
    pthread_kill(target, SIGUSR1);
    SleepMs(20);
  }
  reader.join();
  Say("  msgrcv -> %ld %s", r, r < 0 ? ErrnoName(err) : "");
  Say("  handler ran: %s", YesNo(g_handled.load() > 0));
  msgctl(q, IPC_RMID, nullptr);
}

void SystemVSemaphore() {
  Say("== System V semaphore");
  int s = Must(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600), "semget");
  sembuf down{0, -1, IPC_NOWAIT};
  Show(semop(s, &down, 1), "semop -1 IPC_NOWAIT at 0");
  timespec wait{0, 50 * 1000000};
  down.sem_flg = 0;
  Show(semtimedop(s, &down, 1, &wait), "semtimedop -1 at 0, 50 ms");
  Announcer parked;
  int taken = 0;
  std::thread taker([&] {
    sembuf d{0, -1, 0};
    parked.Announce();
    taken = semop(s, &d, 1);
  });
  {
    Ticker ticker;
    parked.WaitParked(50);
    ticker.SayAdvanced();
    sembuf up{0, 1, 0};
    ShowOk(semop(s, &up, 1), "semop +1");
    taker.join();
  }
  Say("  semop -1 (woken by +1) -> %d", taken);
  Say("  value now %d", semctl(s, 0, GETVAL));
  semctl(s, 0, IPC_RMID);
}

void PosixQueue() {
  Say("== POSIX message queue");
  char name[64];
  snprintf(name, sizeof name, "/gonet-conf-%d", static_cast<int>(getpid()));
  mq_attr attr{};
  attr.mq_maxmsg = 2;
  attr.mq_msgsize = 32;
  mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
  if (q == static_cast<mqd_t>(-1)) Fail("mq_open");
  mq_unlink(name);
  char buf[32];
  unsigned prio = 0;
  timespec soon = After(CLOCK_REALTIME, 0, 50);
  Stopwatch sw;
  Show(mq_timedreceive(q, buf, sizeof buf, &prio, &soon), "mq_timedreceive on an empty queue");
  Say("  returned %s", sw.Waited(50));
  Announcer parked;
  char in[32] = {};
  unsigned p = 0;
  ssize_t r = 0;
  std::thread reader([&] {
    parked.Announce();
    r = mq_receive(q, in, sizeof in, &p);
  });
  {
    Ticker ticker;
    parked.WaitParked(50);
    ticker.SayAdvanced();
    ShowOk(mq_send(q, "ping", 5, 3), "mq_send");
    reader.join();
  }
  Say("  mq_receive -> %zd, priority %u, '%s'", r, p, in);
  ShowOk(mq_send(q, "one", 4, 1), "mq_send");
  ShowOk(mq_send(q, "two", 4, 1), "mq_send");
  soon = After(CLOCK_REALTIME, 0, 50);
  Show(mq_timedsend(q, "three", 6, 1, &soon), "mq_timedsend on a full queue");
  parked.Reset();
  int sent = 0;
  std::thread sender([&] {
    parked.Announce();
    sent = mq_send(q, "four", 5, 1);
  });
  {
    Ticker ticker;
    parked.WaitParked(50);
    ticker.SayAdvanced();
    for (int i = 0; i < 3; ++i) {
      ssize_t r = mq_receive(q, buf, sizeof buf, &prio);
      Say("mq_receive -> %zd '%s'", r, r > 0 ? buf : "");
      if (i == 0) {
        sender.join();
        Say("  mq_send on a full queue (room made later) -> %d", sent);
      }
    }
  }
  mq_close(q);
}

}  // namespace

int main() {
  SystemVMessages();
  MsgrcvInterrupted();
  SystemVSemaphore();
  PosixQueue();
  return 0;
}
