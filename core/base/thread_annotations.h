// Lock annotations checked by clang's -Wthread-safety (Abseil's thread_annotations.h); they
// compile to nothing under gcc, and still document who guards what.
#pragma once

#if defined(__clang__)
#define GONET_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GONET_THREAD_ANNOTATION(x)
#endif

#define GONET_CAPABILITY(x) GONET_THREAD_ANNOTATION(capability(x))
#define GONET_SCOPED_CAPABILITY GONET_THREAD_ANNOTATION(scoped_lockable)
#define GONET_GUARDED_BY(x) GONET_THREAD_ANNOTATION(guarded_by(x))
#define GONET_ACQUIRED_AFTER(...) GONET_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define GONET_ACQUIRE(...) GONET_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define GONET_RELEASE(...) GONET_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define GONET_REQUIRES(...) GONET_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
