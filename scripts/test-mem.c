/*
 * scripts/test-mem.c: the board's memset, memcpy and memmove (Boot/vectors.S)
 * against byte-at-a-time references, run on QEMU by scripts/test-mem.sh.
 * Every destination and source alignment 0-15 with every size 0-64 and a few
 * larger ones (the struct sizes Swift zeroes and copies on the P2M paths
 * among them), each call in the middle of a random buffer so that a byte
 * written outside the range, or a source byte changed, fails as well as a
 * wrong byte inside it; memmove with destination and source in one buffer
 * 0-31 bytes apart both ways, so every overlap in both directions.
 * Compiled -fno-builtin: the references stay loops, the calls stay calls.
 */
#include <stddef.h>
#include <stdint.h>

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
uint64_t semihost(uint64_t op, uint64_t param);     /* test-mem.sh's start.S */

/* Boot/vectors.S's other entries call into the hypervisor; nothing here takes
 * an exception through them (the table is never installed). */
void hv_exception(void) {}
char hv_cpu_stacks[16];

#define SYS_WRITE0 0x04
#define GUARD 32                        /* untouched bytes around each call's range */
#define BUF (GUARD + 32 + 640 + GUARD)

static unsigned char dst[BUF] __attribute__((aligned(16)));
static unsigned char src[BUF] __attribute__((aligned(16)));
static unsigned char want[BUF], src_before[BUF];
static const size_t sizes[] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
    42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
    62, 63, 64, 88, 127, 128, 129, 255, 424, 616,
};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static uint64_t state = 0x9e3779b97f4a7c15ull;
static unsigned char random_byte(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (unsigned char)(state >> 24);
}
static void randomize(unsigned char *p, size_t n) { for (size_t i = 0; i < n; i++) p[i] = random_byte(); }
static void copy_bytes(unsigned char *d, const unsigned char *s, size_t n) { for (size_t i = 0; i < n; i++) d[i] = s[i]; }
static int same(const unsigned char *a, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) if (a[i] != b[i]) return 0;
    return 1;
}

static void say(const char *s) { semihost(SYS_WRITE0, (uint64_t)(uintptr_t)s); }
static void say_number(uint64_t v) {
    char text[24]; int i = 23; text[i] = 0;
    do { text[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    say(&text[i]);
}

static uint64_t checks, failures;
static void check(int ok, const char *what, size_t d, size_t s, size_t n, int c) {
    checks++;
    if (ok) return;
    if (++failures <= 10) {
        say("[FAIL] "); say(what); say(" dst+"); say_number(d); say(" src+"); say_number(s);
        say(" n="); say_number(n); say(" c="); say_number((uint64_t)c & 0xff); say("\n");
    }
}

static void test_memset(void) {
    static const int values[] = {0, 0xa5, 0x17f, -1};
    for (size_t d = 0; d < 16; d++)
        for (size_t k = 0; k < NSIZES; k++)
            for (size_t v = 0; v < 4; v++) {
                size_t n = sizes[k], span = GUARD + d + n + GUARD;
                randomize(dst, span);
                copy_bytes(want, dst, span);
                for (size_t i = 0; i < n; i++) want[GUARD + d + i] = (unsigned char)values[v];
                void *r = memset(dst + GUARD + d, values[v], n);
                check(r == dst + GUARD + d && same(dst, want, span), "memset", d, 0, n, values[v]);
            }
}

static void test_memcpy(void) {
    for (size_t d = 0; d < 16; d++)
        for (size_t s = 0; s < 16; s++)
            for (size_t k = 0; k < NSIZES; k++) {
                size_t n = sizes[k], dspan = GUARD + d + n + GUARD, sspan = GUARD + s + n + GUARD;
                randomize(dst, dspan);
                randomize(src, sspan);
                copy_bytes(want, dst, dspan);
                copy_bytes(want + GUARD + d, src + GUARD + s, n);
                copy_bytes(src_before, src, sspan);
                void *r = memcpy(dst + GUARD + d, src + GUARD + s, n);
                check(r == dst + GUARD + d && same(dst, want, dspan) && same(src, src_before, sspan),
                      "memcpy", d, s, n, 0);
            }
}

/* Destination and source 0-31 bytes apart in one buffer, either way round. */
static void test_memmove(void) {
    unsigned char *base = dst + GUARD;
    for (size_t d = 0; d < 32; d++)
        for (size_t s = 0; s < 32; s++)
            for (size_t k = 0; k < NSIZES; k++) {
                size_t n = sizes[k], span = GUARD + 32 + n + GUARD;
                randomize(dst, span);
                copy_bytes(want, dst, span);
                copy_bytes(src_before, base + s, n);      /* the source as it was */
                copy_bytes(want + GUARD + d, src_before, n);
                void *r = memmove(base + d, base + s, n);
                check(r == base + d && same(dst, want, span), "memmove", d, s, n, 0);
            }
}

uint64_t mem_test_main(void) {
    test_memset();
    test_memcpy();
    test_memmove();
    say("mem: "); say_number(checks - failures); say(" passed, "); say_number(failures); say(" failed\n");
    return failures != 0;
}
