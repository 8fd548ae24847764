// Message queues and System V semaphores in fibers mode: msgrcv, msgsnd, semop, semtimedop,
// mq_receive, mq_timedreceive, mq_send, mq_timedsend. Their objects are the kernel's, shared with
// other processes, and have no readiness gonet's netpoller could wait for (a POSIX queue's
// descriptor is pollable, but its calls would still block in the kernel), so a call that would
// wait is offloaded (core/fibers/syscall_offload.h): the fiber parks, a helper thread waits in the
// kernel, and the kernel's answer (the message, EIDRM, E2BIG, a timeout) is the program's.
//
// The call is first made without waiting, exactly as the blocking call would begin: IPC_NOWAIT
// for the System V calls (on every operation of a semop), an absolute timeout already past for a
// POSIX queue (the Epoch: valid, and earlier than any clock reading). A message, a completed
// operation or any error other than "would wait" is the answer at once; only "would wait"
// (ENOMSG, EAGAIN, ETIMEDOUT) goes to the helper, with the program's own arguments. The probe's
// errno is not the program's: it is put back before the real call.
//
// Signals follow the kernel on the helper: the System V calls always fail with EINTR after a
// handler, the POSIX queue calls restart after an SA_RESTART handler (signal(7)); all but semop
// and semtimedop are cancellation points (POSIX), offloaded as such.
#include <mqueue.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "core/fibers/syscall_offload.h"
#include "shim/abi.h"
#include "shim/next.h"

namespace core = gonet::core;

namespace {

const timespec kPast{};  // the Epoch: mq_timed* fail with ETIMEDOUT at once if they would wait

// The same operations with IPC_NOWAIT on each; false if sops holds more than the kernel takes.
constexpr size_t kMaxSops = 500;  // SEMOPM, the kernel's default limit
bool NoWait(const sembuf* sops, size_t n, sembuf* out) {
  if (n == 0 || n > kMaxSops) return false;
  for (size_t i = 0; i < n; ++i) {
    out[i] = sops[i];
    out[i].sem_flg = static_cast<short>(out[i].sem_flg | IPC_NOWAIT);
  }
  return true;
}

bool AllNoWait(const sembuf* sops, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if ((sops[i].sem_flg & IPC_NOWAIT) == 0) return false;
  }
  return true;
}

}  // namespace

GONET_HOOK ssize_t msgrcv(int id, void* msgp, size_t size, long type, int flags) {
  if (!core::InFiber() || (flags & IPC_NOWAIT)) return NEXT(msgrcv)(id, msgp, size, type, flags);
  int saved = errno;
  ssize_t r = NEXT(msgrcv)(id, msgp, size, type, flags | IPC_NOWAIT);
  if (r >= 0 || errno != ENOMSG) return r;
  errno = saved;
  return core::OffloadCancelPoint(NEXT(msgrcv), id, msgp, size, type, flags);
}

GONET_HOOK int msgsnd(int id, const void* msgp, size_t size, int flags) {
  if (!core::InFiber() || (flags & IPC_NOWAIT)) return NEXT(msgsnd)(id, msgp, size, flags);
  int saved = errno;
  int r = NEXT(msgsnd)(id, msgp, size, flags | IPC_NOWAIT);
  if (r == 0 || errno != EAGAIN) return r;
  errno = saved;
  return core::OffloadCancelPoint(NEXT(msgsnd), id, msgp, size, flags);
}

GONET_HOOK int semtimedop(int id, struct sembuf* sops, size_t n, const struct timespec* timeout) {
  sembuf probe[kMaxSops];
  if (!core::InFiber() || AllNoWait(sops, n) || !NoWait(sops, n, probe)) {
    return NEXT(semtimedop)(id, sops, n, timeout);
  }
  int saved = errno;
  int r = NEXT(semtimedop)(id, probe, n, nullptr);
  if (r == 0 || errno != EAGAIN) return r;
  errno = saved;
  return core::OffloadCall(NEXT(semtimedop), id, sops, n, timeout);
}

GONET_HOOK int semop(int id, struct sembuf* sops, size_t n) {
  if (!core::InFiber()) return NEXT(semop)(id, sops, n);
  return semtimedop(id, sops, n, nullptr);  // glibc's semop is semtimedop without a timeout
}

// The probe and the offload for one POSIX queue call: probe() is the call with a past deadline.
template <typename Probe, typename Wait>
auto QueueCall(Probe probe, Wait wait) -> decltype(probe()) {
  int saved = errno;
  auto r = probe();
  if (r >= 0 || errno != ETIMEDOUT) return r;
  errno = saved;
  return wait();
}

GONET_HOOK ssize_t mq_timedreceive(mqd_t q, char* buf, size_t len, unsigned* prio,
                                   const struct timespec* abs_timeout) {
  if (!core::InFiber()) return NEXT(mq_timedreceive)(q, buf, len, prio, abs_timeout);
  return QueueCall([&] { return NEXT(mq_timedreceive)(q, buf, len, prio, &kPast); },
                   [&] {
                     return core::OffloadCancelPoint(NEXT(mq_timedreceive), q, buf, len, prio,
                                                     abs_timeout);
                   });
}

GONET_HOOK ssize_t mq_receive(mqd_t q, char* buf, size_t len, unsigned* prio) {
  if (!core::InFiber()) return NEXT(mq_receive)(q, buf, len, prio);
  return QueueCall([&] { return NEXT(mq_timedreceive)(q, buf, len, prio, &kPast); },
                   [&] { return core::OffloadCancelPoint(NEXT(mq_receive), q, buf, len, prio); });
}

GONET_HOOK int mq_timedsend(mqd_t q, const char* msg, size_t len, unsigned prio,
                            const struct timespec* abs_timeout) {
  if (!core::InFiber()) return NEXT(mq_timedsend)(q, msg, len, prio, abs_timeout);
  return QueueCall(
      [&] { return NEXT(mq_timedsend)(q, msg, len, prio, &kPast); },
      [&] { return core::OffloadCancelPoint(NEXT(mq_timedsend), q, msg, len, prio, abs_timeout); });
}

GONET_HOOK int mq_send(mqd_t q, const char* msg, size_t len, unsigned prio) {
  if (!core::InFiber()) return NEXT(mq_send)(q, msg, len, prio);
  return QueueCall([&] { return NEXT(mq_timedsend)(q, msg, len, prio, &kPast); },
                   [&] { return core::OffloadCancelPoint(NEXT(mq_send), q, msg, len, prio); });
}
