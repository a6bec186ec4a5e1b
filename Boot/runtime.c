/*
 * Boot/runtime.c: the libc-shaped symbols the Embedded Swift stdlib expects,
 * and nothing else (EMBEDDED.md section 2). Compiled freestanding with
 * -mgeneral-regs-only so no FP/SIMD register is ever touched.
 *
 *   memcmp                         a byte loop (clang does not turn it into a
 *                                  call to itself under -fno-builtin); memset,
 *                                  memcpy and memmove (16 bytes per LDP/STP) are
 *                                  in Boot/vectors.S, in the vector table's spare room
 *   posix_memalign free            a bump allocator over [__heap_start, __heap_end):
 *                                  only boot-time Array/class construction uses it;
 *                                  page-sized memory comes from the frame allocator
 *   putchar                        forwards to the Swift console (UART from the DTB)
 */
#include <stddef.h>
#include <stdint.h>

/* The allocator's routines go with the small assembly pieces
 * (Linker/hv.ld puts .text.host before the 2 KiB-aligned vectors), into the
 * gap that alignment leaves, instead of after the table: the code ends that
 * much lower. memcmp and putchar keep sections of their own, which the link
 * drops when nothing calls them. */
#define BEFORE_VECTORS __attribute__((section(".text.host")))

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

extern char __heap_start[], __heap_end[];
static uintptr_t heap_next;

#define ENOMEM 12
#define EINVAL 22

BEFORE_VECTORS int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)))
        return EINVAL;
    if (!heap_next) heap_next = (uintptr_t)__heap_start;
    uintptr_t p = (heap_next + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (p < heap_next || size > (uintptr_t)__heap_end - p)
        return ENOMEM;
    heap_next = p + size;
    *out = (void *)p;
    return 0;
}

/* A bump allocator never reuses memory; boot-time objects live forever. */
BEFORE_VECTORS void free(void *p) { (void)p; }

BEFORE_VECTORS uint64_t hv_heap_used(void) {
    return heap_next ? heap_next - (uintptr_t)__heap_start : 0;
}

extern void hv_console_putc(uint8_t c);

int putchar(int c) {
    hv_console_putc((uint8_t)c);
    return c;
}
