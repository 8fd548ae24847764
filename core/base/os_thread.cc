#include "core/base/os_thread.h"

#include <atomic>

namespace gonet::core {
namespace {
std::atomic<ThreadCreateFn> g_create{nullptr};
__thread bool t_gonet_thread __attribute__((tls_model("initial-exec"))) = false;
}  // namespace

void MarkGonetThread() { t_gonet_thread = true; }
bool IsGonetThread() { return t_gonet_thread; }

void SetOsThreadCreate(ThreadCreateFn create) { g_create.store(create, std::memory_order_release); }

int CreateOsThread(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                   void* arg) {
  ThreadCreateFn create = g_create.load(std::memory_order_acquire);
  return (create != nullptr ? create : &pthread_create)(thread, attr, start, arg);
}

}  // namespace gonet::core
