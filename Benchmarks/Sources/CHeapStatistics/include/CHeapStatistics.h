#ifndef C_HEAP_STATISTICS_H
#define C_HEAP_STATISTICS_H

#include <stddef.h>

/// Makes every thread allocate from one arena, so that `heap_bytes_in_use` sees all allocations (glibc counts
/// the main arena only). Call before any thread starts.
void heap_statistics_use_one_arena(void);

/// Bytes of heap in use as the allocator counts them (chunk overhead included, freed chunks not).
size_t heap_bytes_in_use(void);

#endif
