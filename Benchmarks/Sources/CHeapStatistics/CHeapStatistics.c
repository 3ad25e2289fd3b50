#include "CHeapStatistics.h"

#if defined(__APPLE__)
#include <malloc/malloc.h>

void heap_statistics_use_one_arena(void) {}

size_t heap_bytes_in_use(void) {
    malloc_statistics_t statistics;
    malloc_zone_statistics(NULL, &statistics);
    return statistics.size_in_use;
}
#else
#include <malloc.h>

void heap_statistics_use_one_arena(void) {
    mallopt(M_ARENA_MAX, 1);
}

size_t heap_bytes_in_use(void) {
    // glibc: small chunks in use plus chunks mapped on their own, in the main arena only.
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
#endif
