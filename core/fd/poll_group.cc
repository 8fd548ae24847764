#include "core/fd/poll_group.h"

#include <new>

#include "core/fd/fd_table.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/poll/poll_desc.h"

namespace gonet::core {
namespace {

constexpr short kReadEvents = POLLIN | POLLRDNORM | POLLRDHUP;
constexpr short kWriteEvents = POLLOUT | POLLWRNORM;

// One call's sockets, their references and the watchers it registered.
class PollGroup {
 public:
  explicit PollGroup(Parker* me) : me_(me) {}
  ~PollGroup() {
    for (size_t i = 0; i < n_; ++i) {
      if (watching_[i]) pds_[i]->RemoveWatcher(me_);
      Ref(i).~FdRef();
    }
  }
  PollGroup(const PollGroup&) = delete;
  PollGroup& operator=(const PollGroup&) = delete;

  // False: this fd cannot be waited on here (the caller offloads).
  bool Add(int fd) {
    if (n_ == kMaxPollGroupSockets) return false;
    FdRef* ref = new (&refs_[n_]) FdRef();
    pds_[n_] = nullptr;
    watching_[n_] = false;
    ++n_;  // from here on the destructor releases it
    if (ref->Acquire(fd) != 0) return false;
    PollDesc* pd = ref->ArmedPollDesc();
    if (pd == nullptr) return false;
    pds_[n_ - 1] = pd;
    // The same fd twice in one call is watched once.
    for (size_t i = 0; i + 1 < n_; ++i) {
      if (pds_[i] == pd) return true;
    }
    if (!pd->AddWatcher(me_)) return false;  // another poll group waits on it
    watching_[n_ - 1] = true;
    return true;
  }

  bool AnyClosing() {
    for (size_t i = 0; i < n_; ++i) {
      if (Ref(i).closing() || pds_[i]->closing()) return true;
    }
    return false;
  }

 private:
  FdRef& Ref(size_t i) { return *std::launder(reinterpret_cast<FdRef*>(&refs_[i])); }

  Parker* me_;
  size_t n_ = 0;
  alignas(FdRef) unsigned char refs_[kMaxPollGroupSockets][sizeof(FdRef)];
  PollDesc* pds_[kMaxPollGroupSockets];
  bool watching_[kMaxPollGroupSockets];
};

IoResult FromProbe(int r) { return r < 0 ? IoResult::Err(-r) : IoResult::Ok(r); }

}  // namespace

IoResult WaitSockets(const pollfd* fds, size_t n, int64_t deadline_ns, PollProbe probe, void* ctx) {
  FiberTask* me = FiberScheduler::Current();
  if (me == nullptr || n > kMaxPollGroupSockets) return IoResult::Passthrough();
  PollGroup group(me);
  for (size_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    if ((fds[i].events & ~(kReadEvents | kWriteEvents)) != 0) return IoResult::Passthrough();
    if (!group.Add(fds[i].fd)) return IoResult::Passthrough();
  }
  ScopedWaitNote note(me, kWaitPoll);
  for (;;) {
    int r = probe(ctx);  // after the watchers are registered: see the header, step 3
    if (r != 0) return FromProbe(r);
    if (group.AnyClosing()) return IoResult::Passthrough();
    // poll is never restarted after a signal handler (signal(7)); fibers are not interrupted.
    if (me->Park(deadline_ns, WaitKind::kAlwaysEintr) == ParkResult::kTimedOut &&
        Nanotime() >= deadline_ns) {
      return FromProbe(probe(ctx));
    }
  }
}

}  // namespace gonet::core
