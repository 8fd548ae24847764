// Where gonet's own fds sit: the stats segment's (core/stats/stats_shm.h, "The fd"), and the
// netpoller's epoll instance and break eventfd (core/poll/netpoller_epoll.cc). The kernel gives
// every new fd the lowest free number, which is the program's: natively the program's next
// socket would have had it, and a program that audits its fds (libdbus's tests list
// /proc/self/fd before and after each case, and fail on a number that appeared) sees a new one
// appear at its first blocking wait. So each is moved at once to a number the program does not
// allocate:
//   - a soft RLIMIT_NOFILE above kOwnFdFloor: the lowest free number from kOwnFdFloor (clear of
//     select's FD_SETSIZE, and the kernel's fd table stays small); the program gets EMFILE one
//     fd earlier for each, and only if it ever reaches numbers that high;
//   - otherwise, when the caller may raise the soft limit (no other thread can see it: the
//     library's constructor, a fork child), at the soft limit itself, the limit raised by one for
//     that F_DUPFD and put back: the program keeps every number it could have;
//   - otherwise the highest free number below the soft limit (within 64 of it).
// Where none can be had, the fd stays where the kernel put it.
#pragma once

namespace gonet::core {

// gonet's own fds go no higher than this when the soft limit allows them above it.
inline constexpr int kOwnFdFloor = 1024;

// Whether the soft RLIMIT_NOFILE may be raised for an instant: only where no other thread runs
// (another one could see the raised limit in getrlimit, or get one fd past its real limit).
enum class RaiseLimit { kNever, kAlone };

// A close-on-exec copy of src at a number out of the program's way (above), or -1. src stays
// open. Raw syscalls only: async-signal-safe.
int PlaceOutOfTheWay(int src, RaiseLimit raise);

// Moves a fd gonet just opened out of the program's way: returns the new number (fd closed), or
// fd itself when no number could be had.
int MoveOutOfTheWay(int fd, RaiseLimit raise);

}  // namespace gonet::core
