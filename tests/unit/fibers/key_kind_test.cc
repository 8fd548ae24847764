// pthread keys in fibers mode (core/fibers/key_kind.h): a key a sanitizer runtime created is per fiber
// like the program's, but gonet never runs its destructor at fiber exit (that destructor is the
// sanitizer's thread exit and would tear down the worker's state); the program's keys keep
// theirs.
#include "core/fibers/key_kind.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <vector>

#include "core/fibers/fiber_scheduler.h"
#include "tests/unit/fiber_test_util.h"

namespace gonet::core {
namespace {

using fibertest::Go;
using fibertest::StartFibersMode;

TEST(KeyKind, SanitizerRuntimesAreRecognisedByTheirFileName) {
  EXPECT_TRUE(IsSanitizerRuntime("/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so"));
  EXPECT_TRUE(IsSanitizerRuntime("/lib/x86_64-linux-gnu/libasan.so.8"));
  EXPECT_TRUE(IsSanitizerRuntime("libtsan.so.2"));
  EXPECT_TRUE(IsSanitizerRuntime("/usr/lib/x86_64-linux-gnu/liblsan.so.0"));
  EXPECT_TRUE(IsSanitizerRuntime("/usr/lib/x86_64-linux-gnu/libubsan.so.1"));
  EXPECT_TRUE(
      IsSanitizerRuntime("/usr/lib/llvm-14/lib/clang/14/lib/linux/"
                         "libclang_rt.asan-x86_64.so"));
  EXPECT_FALSE(IsSanitizerRuntime("/work/main/build/libgonet.so"));
  EXPECT_FALSE(IsSanitizerRuntime("/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_FALSE(IsSanitizerRuntime("/opt/libasan.d/libserver.so"));  // only the file name counts
  EXPECT_FALSE(IsSanitizerRuntime("/usr/lib/libasanity.so"));
  EXPECT_FALSE(IsSanitizerRuntime(""));
  EXPECT_FALSE(IsSanitizerRuntime(nullptr));
}

void ProgramCode() {}

TEST(KeyKind, KeysCreatedByProgramCodeAreProgramKeys) {
  EXPECT_EQ(KeyKindOfCreator(reinterpret_cast<const void*>(&ProgramCode)), KeyKind::kProgram);
  EXPECT_EQ(KeyKindOfCreator(dlsym(RTLD_DEFAULT, "pthread_key_create")), KeyKind::kProgram);
  EXPECT_EQ(KeyKindOfCreator(nullptr), KeyKind::kProgram);
}

// Under the AddressSanitizer build of the unit tests (scripts/test.sh) libasan is loaded: code in
// it creates sanitizer keys. Without a sanitizer there is no such code to point at.
TEST(KeyKind, KeysCreatedByCodeInALoadedSanitizerRuntimeAreSanitizerKeys) {
  const void* asan_code = dlsym(RTLD_DEFAULT, "__asan_init");
  Dl_info info{};
  if (asan_code == nullptr || dladdr(asan_code, &info) == 0 ||
      !IsSanitizerRuntime(info.dli_fname)) {
    return;  // no shared sanitizer runtime in this build
  }
  EXPECT_EQ(KeyKindOfCreator(asan_code), KeyKind::kSanitizer);
}

std::atomic<int> g_program_destructed{0};
std::atomic<int> g_sanitizer_destructed{0};

TEST(KeyKind, BothKindsArePerFiberButOnlyProgramKeysAreDestructedAtFiberExit) {
  StartFibersMode();
  // Any valid indexes: the per-fiber table is gonet's own, not glibc's.
  const pthread_key_t program_key = 6;
  const pthread_key_t sanitizer_key = 7;
  FiberScheduler::NoteKeyDestructor(program_key, [](void*) { g_program_destructed.fetch_add(1); });
  FiberScheduler::NoteKeyDestructor(
      sanitizer_key, [](void*) { g_sanitizer_destructed.fetch_add(1); }, KeyKind::kSanitizer);
  constexpr int kFibers = 4;
  static int program_values[kFibers];
  static int sanitizer_values[kFibers];
  std::atomic<int> wrong{0};
  std::vector<FiberTask*> tasks;
  for (int i = 0; i < kFibers; ++i) {
    tasks.push_back(Go([&, i] {
      FiberTask* self = FiberScheduler::Current();
      // A fresh fiber starts with empty slots (a sanitizer checks that its own is empty).
      if (self->GetSpecific(program_key) != nullptr) wrong.fetch_add(1);
      if (self->GetSpecific(sanitizer_key) != nullptr) wrong.fetch_add(1);
      self->SetSpecific(program_key, &program_values[i]);
      self->SetSpecific(sanitizer_key, &sanitizer_values[i]);
      self->Yield();  // the other fibers set theirs meanwhile
      if (self->GetSpecific(program_key) != &program_values[i]) wrong.fetch_add(1);
      if (self->GetSpecific(sanitizer_key) != &sanitizer_values[i]) wrong.fetch_add(1);
    }));
  }
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(g_program_destructed.load(), kFibers);
  EXPECT_EQ(g_sanitizer_destructed.load(), 0);
  FiberScheduler::NoteKeyDestructor(program_key, nullptr);
  FiberScheduler::NoteKeyDestructor(sanitizer_key, nullptr);
}

// pthread_key_delete and a new pthread_key_create may hand the index to another creator: the
// kind follows the latest creation.
TEST(KeyKind, AKeyIndexCreatedAgainByTheProgramIsDestructedAgain) {
  StartFibersMode();
  const pthread_key_t key = 8;
  static std::atomic<int> destructed{0};
  FiberScheduler::NoteKeyDestructor(
      key, [](void*) { destructed.fetch_add(1); }, KeyKind::kSanitizer);
  FiberScheduler::NoteKeyDestructor(key, nullptr);  // pthread_key_delete
  FiberScheduler::NoteKeyDestructor(key, [](void*) { destructed.fetch_add(1); });
  static int value;
  FiberTask* t = Go([&] { FiberScheduler::Current()->SetSpecific(key, &value); });
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(destructed.load(), 1);
  FiberScheduler::NoteKeyDestructor(key, nullptr);
}

}  // namespace
}  // namespace gonet::core
