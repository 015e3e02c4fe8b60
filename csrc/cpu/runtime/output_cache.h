// A cache of large buffers: the outputs fastconv._cpu hands to NumPy, and the scratch buffers
// that a kernel call needs beyond the per-thread scratch limit (scratch.h).
//
// Why: a fresh NumPy array of 100 MB is fresh memory from the OS, and the first write to each
// page costs a page fault (the kernel zeroes the page). On a VGG16 layer at batch 8 those faults
// cost more than the convolution itself: conv1_1 forward 24 ms as called vs 9 ms into reused
// memory (2 threads), and they do not get faster with more threads. A training loop asks for
// the same output sizes every step, so outputs of at least kMinBytes are taken from, and given
// back to, this cache of blocks keyed by their exact size: the pages stay mapped.
//
// The arrays are ordinary NumPy arrays whose base is a capsule; when the last reference goes,
// the capsule's destructor returns the block. Blocks beyond the byte limit (default 1 GiB,
// FASTCONV_OUTPUT_CACHE_MB, fastconv.set_output_cache_limit) are freed instead of kept.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastconv {

constexpr size_t kOutputCacheMinBytes = size_t(1) << 20;

// A block of at least `bytes` (64-byte aligned), reused when a block of this size is free.
void* output_cache_take(size_t bytes);
// Return a block from output_cache_take.
void output_cache_give(void* p);

// Byte limit of the free blocks kept; lowering it frees blocks at once. 0 disables the cache.
void output_cache_set_limit(size_t bytes);
size_t output_cache_limit();
// Bytes in free blocks now held, and in blocks handed out and not yet returned (arrays alive and
// scratch buffers held).
size_t output_cache_free_bytes();
size_t output_cache_used_bytes();
// Free every cached block.
void output_cache_clear();

}  // namespace fastconv
