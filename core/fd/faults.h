// Fault injection at the operation boundary (after Go's net/internal/socktest): every socket
// call asks InjectFault first, in every mode, passthrough included. The rules and their counters
// live in FaultInjector (fault_injector.h); this file decides which calls they apply to.
//
//   - Only sockets are subject to faults: read/write on a file or pipe never are.
//   - A delay rule waits (parking the thread or fiber) and then runs the call.
//   - An errno rule fails the call without running it, except close: the kernel releases the
//     fd whatever close reports, so the fd is really closed and then the error is reported.
#pragma once

#include <sys/socket.h>

#include "core/base/base.h"
#include "core/faults/fault_injector.h"

namespace gonet::core {

FaultInjector& Faults();

// Returns Ok(0) to go on with the call, or Err(errno) to fail it. Cheap when no rule exists for
// op: one relaxed load.
// peer: the address a connect is going to (its port is the peer port a rule can filter on; the
// socket has no peer yet). nullptr: the fd's own local and peer ports.
IoResult InjectFault(FaultOp op, int fd, const sockaddr* peer = nullptr);

// Reads GONET_FAULT / GONET_FAULT_SEED (config.cc calls it at start-up).
void ConfigureFaultsFromEnv();

}  // namespace gonet::core

// First line of every core entry point that a fault rule can target.
#define GONET_INJECT_FAULT(op, fd)                                  \
  do {                                                              \
    ::gonet::core::IoResult gonet_fault =                           \
        ::gonet::core::InjectFault(::gonet::core::FaultOp::op, fd); \
    if (!gonet_fault.ok()) return gonet_fault;                      \
  } while (0)
