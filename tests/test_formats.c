/* Tests for vae.h's data formats: CRC-32/Adler-32, inflate, gunzip, IDX, the PNG encoder, the
 * procedural shapes, CIFAR-10 batches, netpbm images, lists of images and padding.
 *
 * Build:  make build/test_formats && build/test_formats [--quick]   (make test-asan: sanitizers)
 * Uses:   gzip and python3's zlib as independent references; skipped where missing.
 * Optional: /usr/share/datasets/fashion-mnist/ (checked if present).
 * Prints "N passed, M failed" last; exit status 0 iff nothing failed. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
/* The largest single allocation since the last reset: decoders must not trust header sizes. */
static size_t g_alloc_max;
static void *test_malloc(size_t n)
{
    if (n > g_alloc_max) g_alloc_max = n;
    return malloc(n);
}
#define VAE_MALLOC(sz) test_malloc(sz)
#define VAE_FREE(p) free(p)
#define VAE_IMPLEMENTATION
#include "../vae.h"
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_pass, g_fail;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            g_pass++;                                                         \
        } else {                                                              \
            g_fail++;                                                         \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                       \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
        }                                                                     \
    } while (0)

static char g_dir[256];
static const char *g_py = "python3";

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (unsigned char *)malloc((size_t)n + 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *len = (size_t)n;
    return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    if (len && fwrite(data, 1, len, f) != len) {
        fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static int run(const char *cmd)
{
    int r = system(cmd);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Test inputs */

typedef struct {
    const char *name;
    unsigned char *data;
    size_t len;
} input_t;

static uint64_t g_rng = 12345;
static uint64_t rnd(void) { return vae__splitmix64(&g_rng); }

static unsigned char *gen_input(int kind, size_t len)
{
    unsigned char *d = (unsigned char *)malloc(len ? len : 1);
    size_t i;
    static const char *words[] = { "the", "variational", "autoencoder", "latent", "space", "of",
                                   "a", "gaussian", "prior", "decoder", "encoder", "loss", "kl",
                                   "divergence", "reconstruction", "and", "is", "with", "\n", ", " };
    switch (kind) {
    case 0: /* random */
        for (i = 0; i < len; i++) d[i] = (unsigned char)rnd();
        break;
    case 1: /* short repeating pattern */
        for (i = 0; i < len; i++) d[i] = (unsigned char)("abcabd"[i % 6]);
        break;
    case 2: /* zeros */
        memset(d, 0, len);
        break;
    case 3: /* text-like */
        i = 0;
        while (i < len) {
            const char *w = words[rnd() % 20];
            size_t k = strlen(w);
            if (k > len - i) k = len - i;
            memcpy(d + i, w, k);
            i += k;
            if (i < len) d[i++] = ' ';
        }
        break;
    case 4: /* skewed byte distribution: forces Huffman codes longer than the fast table */
        for (i = 0; i < len; i++) {
            uint64_t r = rnd();
            int tz = 0;
            while (tz < 31 && !((r >> tz) & 1)) tz++;
            d[i] = (unsigned char)(tz * 8 + (int)((r >> 40) & 7));
        }
        break;
    default: /* mixture: random runs, copies from far back, runs of a byte */
        i = 0;
        while (i < len) {
            uint64_t r = rnd();
            size_t k = 1 + (size_t)(r % 3000);
            int mode = (int)((r >> 20) % 4);
            if (k > len - i) k = len - i;
            if (mode == 0 || i < 40000) {
                size_t j;
                for (j = 0; j < k; j++) d[i + j] = (unsigned char)(rnd() & 0x3F);
            } else if (mode == 1) {
                size_t dist = 1 + (size_t)((r >> 32) % 40000), j;
                for (j = 0; j < k; j++) d[i + j] = d[i + j - dist];
            } else if (mode == 2) {
                memset(d + i, (int)(r >> 50) & 0xFF, k);
            } else {
                size_t j;
                for (j = 0; j < k; j++) d[i + j] = (unsigned char)words[(r >> 30) % 20][j % 2];
            }
            i += k;
        }
        break;
    }
    return d;
}

/* ------------------------------------------------------------------------ */
/* Bit writer for hand-crafted DEFLATE streams */

typedef struct {
    unsigned char buf[4096];
    size_t len;
    int nbit;
} bw_t;

static void bw_init(bw_t *b) { memset(b, 0, sizeof(*b)); }
static void bw_bits(bw_t *b, unsigned v, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        if (b->nbit == 0) b->buf[b->len++] = 0;
        if ((v >> i) & 1u) b->buf[b->len - 1] |= (unsigned char)(1u << b->nbit);
        b->nbit = (b->nbit + 1) & 7;
    }
}
static void bw_code(bw_t *b, unsigned code, int n) /* MSB first */
{
    int i;
    for (i = n - 1; i >= 0; i--) bw_bits(b, (code >> i) & 1u, 1);
}
static void canon(const unsigned char *lens, int n, unsigned *codes)
{
    unsigned cnt[16] = { 0 }, next[16], code = 0;
    int i, l;
    for (i = 0; i < n; i++) cnt[lens[i]]++;
    cnt[0] = 0;
    for (l = 1; l < 16; l++) {
        code = (code + cnt[l - 1]) << 1;
        next[l] = code;
    }
    for (i = 0; i < n; i++) codes[i] = lens[i] ? next[lens[i]]++ : 0;
}
/* Dynamic block header with a code-length code of sixteen 4-bit codes (0..15). */
static void bw_dyn_header(bw_t *b, int final, const unsigned char *ll, int nlit,
                          const unsigned char *dl, int ndist)
{
    static const int order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };
    int i;
    bw_bits(b, (unsigned)final, 1);
    bw_bits(b, 2, 2);
    bw_bits(b, (unsigned)(nlit - 257), 5);
    bw_bits(b, (unsigned)(ndist - 1), 5);
    bw_bits(b, 15, 4);
    for (i = 0; i < 19; i++) bw_bits(b, order[i] < 16 ? 4u : 0u, 3);
    for (i = 0; i < nlit; i++) bw_code(b, ll[i], 4);
    for (i = 0; i < ndist; i++) bw_code(b, dl[i], 4);
}

static int inflate_buf(const unsigned char *src, size_t n, unsigned char *dst, size_t cap,
                       size_t *outlen, char *err)
{
    size_t used;
    return vae__inflate(src, n, &used, dst, cap, outlen, err);
}

static void test_crafted(void)
{
    bw_t b;
    unsigned char out[64];
    char err[VAE__ERR_SIZE];
    size_t olen;
    int r;
    unsigned char ll[288], dl[32];
    unsigned lc[288], dc[32];

    /* Reserved block type 3 */
    bw_init(&b);
    bw_bits(&b, 1, 1);
    bw_bits(&b, 3, 2);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "block type"), "btype 3: r=%d %s", r, err);

    /* Empty input */
    r = inflate_buf(b.buf, 0, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "truncated"), "empty input: %s", err);

    /* Stored block with NLEN mismatch */
    {
        unsigned char s[] = { 1, 3, 0, 0xFC, 0xFE, 'a', 'b', 'c' };
        r = inflate_buf(s, sizeof(s), out, sizeof(out), &olen, err);
        CHECK(r == VAE__INFLATE_ERR && strstr(err, "NLEN"), "stored nlen: %s", err);
        s[4] = 0xFF;
        r = inflate_buf(s, sizeof(s), out, sizeof(out), &olen, err);
        CHECK(r == 0 && olen == 3 && memcmp(out, "abc", 3) == 0, "stored ok: r=%d %s", r, err);
        r = inflate_buf(s, sizeof(s) - 1, out, sizeof(out), &olen, err);
        CHECK(r == VAE__INFLATE_ERR && strstr(err, "truncated"), "stored truncated: %s", err);
        r = inflate_buf(s, sizeof(s), out, 2, &olen, err);
        CHECK(r == VAE__INFLATE_FULL, "stored full: r=%d", r);
    }

    /* Fixed block: 'a', then <len 3, dist d>, EOB. Fixed lit code for 'a' = 0x30+97 (8 bits),
     * len 3 = symbol 257 = 7-bit code 1, distance code d-1 (5 bits). */
    {
        int d;
        for (d = 1; d <= 2; d++) {
            bw_init(&b);
            bw_bits(&b, 1, 1);
            bw_bits(&b, 1, 2);
            bw_code(&b, 0x30 + 'a', 8);
            bw_code(&b, 1, 7);
            bw_code(&b, (unsigned)(d - 1), 5);
            bw_code(&b, 0, 7);
            r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
            if (d == 1)
                CHECK(r == 0 && olen == 4 && memcmp(out, "aaaa", 4) == 0, "fixed dist1: r=%d %s", r, err);
            else
                CHECK(r == VAE__INFLATE_ERR && strstr(err, "distance"), "fixed dist too far: r=%d %s", r, err);
        }
        /* length symbol 286 (fixed 8-bit code 0xC0 + 6) is invalid */
        bw_init(&b);
        bw_bits(&b, 1, 1);
        bw_bits(&b, 1, 2);
        bw_code(&b, 0x30 + 'a', 8);
        bw_code(&b, 0xC0 + 6, 8);
        bw_code(&b, 0, 5);
        bw_code(&b, 0, 7);
        r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
        CHECK(r == VAE__INFLATE_ERR, "fixed sym 286: r=%d", r);
        /* distance code 30 invalid */
        bw_init(&b);
        bw_bits(&b, 1, 1);
        bw_bits(&b, 1, 2);
        bw_code(&b, 0x30 + 'a', 8);
        bw_code(&b, 1, 7);
        bw_code(&b, 30, 5);
        bw_code(&b, 0, 7);
        r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
        CHECK(r == VAE__INFLATE_ERR && strstr(err, "distance"), "fixed dist 30: r=%d %s", r, err);
        /* Non-final fixed block with no successor: truncated */
        bw_init(&b);
        bw_bits(&b, 0, 1);
        bw_bits(&b, 1, 2);
        bw_code(&b, 0, 7);
        r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
        CHECK(r == VAE__INFLATE_ERR && strstr(err, "truncated"), "missing final block: %s", err);
    }

    /* Dynamic block, single distance code of length 1 (allowed by RFC 1951). */
    memset(ll, 0, sizeof(ll));
    memset(dl, 0, sizeof(dl));
    ll['a'] = 1;
    ll[256] = 2;
    ll[257] = 2;
    dl[0] = 1;
    canon(ll, 258, lc);
    canon(dl, 1, dc);
    bw_init(&b);
    bw_dyn_header(&b, 1, ll, 258, dl, 1);
    bw_code(&b, lc['a'], 1);
    bw_code(&b, lc[257], 2);
    bw_code(&b, dc[0], 1);
    bw_code(&b, lc[256], 2);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == 0 && olen == 4 && memcmp(out, "aaaa", 4) == 0, "dynamic single dist code: r=%d %s", r, err);
    /* ... but using the unassigned pattern '1' is an error */
    bw_init(&b);
    bw_dyn_header(&b, 1, ll, 258, dl, 1);
    bw_code(&b, lc['a'], 1);
    bw_code(&b, lc[257], 2);
    bw_code(&b, 1, 1);
    bw_code(&b, lc[256], 2);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "distance"), "unused dist code: r=%d %s", r, err);
    /* No distance codes at all but only literals: fine */
    {
        unsigned char dz[1] = { 0 };
        bw_init(&b);
        bw_dyn_header(&b, 1, ll, 258, dz, 1);
        bw_code(&b, lc['a'], 1);
        bw_code(&b, lc[256], 2);
        r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
        CHECK(r == 0 && olen == 1 && out[0] == 'a', "no dist codes: r=%d %s", r, err);
    }
    /* Single distance code of length 2: incomplete, rejected */
    dl[0] = 2;
    bw_init(&b);
    bw_dyn_header(&b, 1, ll, 258, dl, 1);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "incomplete"), "dist len2 single: %s", err);
    dl[0] = 1;
    /* Incomplete literal/length code */
    ll[257] = 0;
    bw_init(&b);
    bw_dyn_header(&b, 1, ll, 258, dl, 1);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "incomplete"), "incomplete litlen: %s", err);
    /* Over-subscribed literal/length code */
    ll[257] = 1;
    ll[256] = 1;
    bw_init(&b);
    bw_dyn_header(&b, 1, ll, 258, dl, 1);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "over-subscribed"), "oversubscribed litlen: %s", err);
    /* Missing end-of-block code */
    ll[256] = 0;
    ll['b'] = 1;
    bw_init(&b);
    bw_dyn_header(&b, 1, ll, 258, dl, 1);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "end-of-block"), "no EOB: %s", err);
    /* HLIT = 287 */
    bw_init(&b);
    bw_bits(&b, 1, 1);
    bw_bits(&b, 2, 2);
    bw_bits(&b, 30, 5);
    bw_bits(&b, 0, 5);
    bw_bits(&b, 15, 4);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "HLIT"), "HLIT 287: %s", err);
    /* Over-subscribed code-length code: four codes of length 1 */
    bw_init(&b);
    bw_bits(&b, 1, 1);
    bw_bits(&b, 2, 2);
    bw_bits(&b, 0, 5);
    bw_bits(&b, 0, 5);
    bw_bits(&b, 0, 4);
    bw_bits(&b, 1, 3);
    bw_bits(&b, 1, 3);
    bw_bits(&b, 1, 3);
    bw_bits(&b, 1, 3);
    bw_bits(&b, 0, 8);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "code-length"), "oversub clen: %s", err);
    /* Incomplete code-length code: one code of length 2 */
    bw_init(&b);
    bw_bits(&b, 1, 1);
    bw_bits(&b, 2, 2);
    bw_bits(&b, 0, 5);
    bw_bits(&b, 0, 5);
    bw_bits(&b, 0, 4);
    bw_bits(&b, 2, 3);
    bw_bits(&b, 0, 3);
    bw_bits(&b, 0, 3);
    bw_bits(&b, 0, 3);
    bw_bits(&b, 0, 8);
    r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
    CHECK(r == VAE__INFLATE_ERR && strstr(err, "code-length"), "incomplete clen: %s", err);
    /* Repeat-previous (16) as the very first code length */
    {
        static const int order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };
        int i;
        bw_init(&b);
        bw_bits(&b, 1, 1);
        bw_bits(&b, 2, 2);
        bw_bits(&b, 0, 5);
        bw_bits(&b, 0, 5);
        bw_bits(&b, 15, 4);
        /* symbols 16,17,18 and 0 get length 2 (complete: 4 x 1/4) */
        for (i = 0; i < 19; i++) bw_bits(&b, (order[i] >= 16 || order[i] == 0) ? 2u : 0u, 3);
        /* canonical order by symbol: 0 -> 00, 16 -> 01, 17 -> 10, 18 -> 11 */
        bw_code(&b, 1, 2);
        bw_bits(&b, 0, 2);
        bw_bits(&b, 0, 8);
        r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
        CHECK(r == VAE__INFLATE_ERR && strstr(err, "repeat"), "leading repeat: %s", err);
        /* 18 repeating past HLIT+HDIST (258 total): 0 x 138 twice = 276 > 258 */
        bw_init(&b);
        bw_bits(&b, 1, 1);
        bw_bits(&b, 2, 2);
        bw_bits(&b, 0, 5);
        bw_bits(&b, 0, 5);
        bw_bits(&b, 15, 4);
        for (i = 0; i < 19; i++) bw_bits(&b, (order[i] >= 16 || order[i] == 0) ? 2u : 0u, 3);
        bw_code(&b, 3, 2);
        bw_bits(&b, 127, 7);
        bw_code(&b, 3, 2);
        bw_bits(&b, 127, 7);
        r = inflate_buf(b.buf, b.len, out, sizeof(out), &olen, err);
        CHECK(r == VAE__INFLATE_ERR && strstr(err, "overruns"), "repeat overrun: %s", err);
    }
}

/* ------------------------------------------------------------------------ */
/* inflate / gunzip against gzip and python zlib */

static const char *GEN_PY =
    "import sys, zlib, gzip\n"
    "for path in sys.argv[1:]:\n"
    "    d = open(path, 'rb').read()\n"
    "    for lvl in (0, 1, 6, 9):\n"
    "        c = zlib.compressobj(lvl, zlib.DEFLATED, -15)\n"
    "        open(path + '.raw%d' % lvl, 'wb').write(c.compress(d) + c.flush())\n"
    "    for name, strat in (('fixed', zlib.Z_FIXED), ('huff', zlib.Z_HUFFMAN_ONLY), ('rle', zlib.Z_RLE)):\n"
    "        c = zlib.compressobj(6, zlib.DEFLATED, -15, 8, strat)\n"
    "        open(path + '.' + name, 'wb').write(c.compress(d) + c.flush())\n"
    "    c = zlib.compressobj(9, zlib.DEFLATED, -9, 1)\n"
    "    open(path + '.w9', 'wb').write(c.compress(d) + c.flush())\n"
    "    open(path + '.py0.gz', 'wb').write(gzip.compress(d, 0))\n"
    "    print(zlib.crc32(d), zlib.adler32(d))\n";

static const char *RAW_EXT[] = { "raw0", "raw1", "raw6", "raw9", "fixed", "huff", "rle", "w9" };
static const char *GZ_EXT[] = { "g1", "g9", "py0.gz" };

static int gunzip_eq(const unsigned char *gz, size_t gzlen, const unsigned char *want, size_t wantlen,
                     char *err)
{
    unsigned char *out = NULL;
    size_t olen = 0;
    int r = vae__gunzip(gz, gzlen, &out, &olen, (size_t)1 << 32, err);
    int ok = r == 0 && olen == wantlen && (wantlen == 0 || memcmp(out, want, wantlen) == 0);
    free(out);
    return ok;
}

static void test_gzip_roundtrips(input_t *in, int nin)
{
    char path[512], cmd[4096];
    char err[VAE__ERR_SIZE];
    int i, e;
    size_t off = 0;
    FILE *p;
    for (i = 0; i < nin; i++) {
        path_of(path, sizeof(path), in[i].name);
        write_file(path, in[i].data, in[i].len);
        snprintf(cmd, sizeof(cmd), "gzip -1 -c '%s' > '%s.g1' && gzip -9 -n -c < '%s' > '%s.g9'", path, path,
                 path, path);
        CHECK(run(cmd) == 0, "gzip failed: %s", cmd);
    }
    /* one python call for all inputs */
    off = (size_t)snprintf(cmd, sizeof(cmd), "%s %s/gen.py", g_py, g_dir);
    path_of(path, sizeof(path), "gen.py");
    write_file(path, GEN_PY, strlen(GEN_PY));
    for (i = 0; i < nin; i++) off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, " %s/%s", g_dir, in[i].name);
    p = popen(cmd, "r");
    CHECK(p != NULL, "popen python");
    if (!p) return;
    for (i = 0; i < nin; i++) {
        unsigned long crc = 0, ad = 0;
        int got = fscanf(p, "%lu %lu", &crc, &ad);
        CHECK(got == 2, "python output for %s", in[i].name);
        CHECK(vae__crc32(0, in[i].data, in[i].len) == (uint32_t)crc, "crc32 %s", in[i].name);
        CHECK(vae__adler32(1, in[i].data, in[i].len) == (uint32_t)ad, "adler32 %s", in[i].name);
        /* incremental checksums equal one-shot */
        if (in[i].len > 10) {
            size_t h = in[i].len / 3;
            uint32_t c = vae__crc32(vae__crc32(0, in[i].data, h), in[i].data + h, in[i].len - h);
            uint32_t a = vae__adler32(vae__adler32(1, in[i].data, h), in[i].data + h, in[i].len - h);
            CHECK(c == (uint32_t)crc && a == (uint32_t)ad, "incremental checksums %s", in[i].name);
        }
    }
    CHECK(pclose(p) == 0, "python gen.py failed");

    for (i = 0; i < nin; i++) {
        size_t cap = in[i].len + 16;
        unsigned char *dst = (unsigned char *)malloc(cap);
        for (e = 0; e < (int)(sizeof(RAW_EXT) / sizeof(RAW_EXT[0])); e++) {
            size_t clen, used = 0, olen = 0;
            unsigned char *c, *c2;
            int r;
            snprintf(path, sizeof(path), "%s/%s.%s", g_dir, in[i].name, RAW_EXT[e]);
            c = read_file(path, &clen);
            CHECK(c != NULL, "read %s", path);
            if (!c) continue;
            r = vae__inflate(c, clen, &used, dst, cap, &olen, err);
            CHECK(r == 0 && olen == in[i].len && used == clen && memcmp(dst, in[i].data, olen) == 0,
                  "inflate %s.%s: r=%d olen=%lu want=%lu used=%lu/%lu %s", in[i].name, RAW_EXT[e], r,
                  (unsigned long)olen, (unsigned long)in[i].len, (unsigned long)used, (unsigned long)clen,
                  r ? err : "");
            /* exact-size buffer works; one byte less reports FULL */
            r = vae__inflate(c, clen, &used, dst, in[i].len, &olen, err);
            CHECK(r == 0 && olen == in[i].len, "inflate exact cap %s.%s", in[i].name, RAW_EXT[e]);
            if (in[i].len > 0) {
                r = vae__inflate(c, clen, &used, dst, in[i].len - 1, &olen, err);
                CHECK(r == VAE__INFLATE_FULL, "inflate cap-1 %s.%s r=%d", in[i].name, RAW_EXT[e], r);
            }
            /* trailing bytes after the stream are not consumed */
            c2 = (unsigned char *)malloc(clen + 7);
            memcpy(c2, c, clen);
            memcpy(c2 + clen, "JUNK!!!", 7);
            r = vae__inflate(c2, clen + 7, &used, dst, cap, &olen, err);
            CHECK(r == 0 && used == clen && olen == in[i].len, "inflate with trailing junk %s.%s", in[i].name,
                  RAW_EXT[e]);
            free(c2);
            free(c);
        }
        free(dst);
        for (e = 0; e < (int)(sizeof(GZ_EXT) / sizeof(GZ_EXT[0])); e++) {
            size_t clen;
            unsigned char *c;
            snprintf(path, sizeof(path), "%s/%s.%s", g_dir, in[i].name, GZ_EXT[e]);
            c = read_file(path, &clen);
            CHECK(c != NULL, "read %s", path);
            if (!c) continue;
            CHECK(gunzip_eq(c, clen, in[i].data, in[i].len, err), "gunzip %s.%s: %s", in[i].name, GZ_EXT[e], err);
            free(c);
        }
    }
}

/* Multi-member, padding, garbage, limits, header fields. */
static void test_gzip_structure(input_t *in, int nin)
{
    char path[512], cmd[2048];
    char err[VAE__ERR_SIZE];
    unsigned char *gz, *out, *want;
    size_t gzlen, olen, wantlen = 0;
    int i, r;

    /* big first member, small last member: ISIZE hint too small -> must grow */
    snprintf(cmd, sizeof(cmd), "cat %s/%s.g9 %s/%s.g1 %s/%s.py0.gz %s/%s.g1 > %s/multi.gz", g_dir, in[nin - 1].name,
             g_dir, in[3].name, g_dir, in[0].name, g_dir, in[1].name, g_dir);
    CHECK(run(cmd) == 0, "cat multi");
    path_of(path, sizeof(path), "multi.gz");
    gz = read_file(path, &gzlen);
    {
        int order[4];
        size_t p = 0;
        order[0] = nin - 1;
        order[1] = 3;
        order[2] = 0;
        order[3] = 1;
        for (i = 0; i < 4; i++) wantlen += in[order[i]].len;
        want = (unsigned char *)malloc(wantlen);
        for (i = 0; i < 4; i++) {
            memcpy(want + p, in[order[i]].data, in[order[i]].len);
            p += in[order[i]].len;
        }
    }
    CHECK(gz && gunzip_eq(gz, gzlen, want, wantlen, err), "multi-member gunzip: %s", err);
    /* the same through the system gzip, to be sure the reference agrees */
    snprintf(cmd, sizeof(cmd), "gzip -dc %s/multi.gz > %s/multi.out", g_dir, g_dir);
    CHECK(run(cmd) == 0, "gzip -dc multi");
    /* maxout limits */
    r = vae__gunzip(gz, gzlen, &out, &olen, wantlen, err);
    CHECK(r == 0 && olen == wantlen, "maxout == size: %s", err);
    free(out);
    r = vae__gunzip(gz, gzlen, &out, &olen, wantlen - 1, err);
    CHECK(r != 0 && out == NULL && strstr(err, "limit"), "maxout == size-1: %s", err);
    r = vae__gunzip(gz, gzlen, &out, &olen, 0, err);
    CHECK(r != 0 && strstr(err, "limit"), "maxout 0: %s", err);
    {
        /* zero padding after the last member is accepted; other garbage is not */
        unsigned char *g2 = (unsigned char *)malloc(gzlen + 16);
        memcpy(g2, gz, gzlen);
        memset(g2 + gzlen, 0, 16);
        CHECK(gunzip_eq(g2, gzlen + 16, want, wantlen, err), "zero padding: %s", err);
        g2[gzlen + 5] = 'x';
        r = vae__gunzip(g2, gzlen + 16, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0 && strstr(err, "trailing garbage"), "trailing garbage: %s", err);
        g2[gzlen + 5] = 0;
        g2[gzlen] = 0x1F;
        g2[gzlen + 1] = 0x8B;
        r = vae__gunzip(g2, gzlen + 16, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0, "bogus second member: %s", err);
        free(g2);
    }
    free(gz);
    free(want);

    /* Header fields: FTEXT|FHCRC|FEXTRA|FNAME|FCOMMENT built by hand around a zlib raw stream */
    {
        unsigned char hdr[128], *raw, *full;
        size_t rawlen, h = 0, flen;
        uint32_t crc, hcrc;
        input_t *t = &in[3];
        snprintf(path, sizeof(path), "%s/%s.raw6", g_dir, t->name);
        raw = read_file(path, &rawlen);
        hdr[h++] = 0x1F;
        hdr[h++] = 0x8B;
        hdr[h++] = 8;
        hdr[h++] = 1 | 2 | 4 | 8 | 16;
        memset(hdr + h, 0, 6);
        h += 6;
        hdr[h++] = 5;
        hdr[h++] = 0;
        memcpy(hdr + h, "AB\3\0x", 5);
        h += 5;
        memcpy(hdr + h, "name.txt", 9);
        h += 9;
        memcpy(hdr + h, "a comment", 10);
        h += 10;
        hcrc = vae__crc32(0, hdr, h) & 0xFFFFu;
        hdr[h++] = (unsigned char)hcrc;
        hdr[h++] = (unsigned char)(hcrc >> 8);
        flen = h + rawlen + 8;
        full = (unsigned char *)malloc(flen);
        memcpy(full, hdr, h);
        memcpy(full + h, raw, rawlen);
        crc = vae__crc32(0, t->data, t->len);
        for (i = 0; i < 4; i++) {
            full[h + rawlen + (size_t)i] = (unsigned char)(crc >> (8 * i));
            full[h + rawlen + 4 + (size_t)i] = (unsigned char)((uint32_t)t->len >> (8 * i));
        }
        CHECK(gunzip_eq(full, flen, t->data, t->len, err), "all header flags: %s", err);
        path_of(path, sizeof(path), "hdr.gz");
        write_file(path, full, flen);
        snprintf(cmd, sizeof(cmd), "gzip -dc %s/hdr.gz | cmp -s - %s/%s", g_dir, g_dir, t->name);
        CHECK(run(cmd) == 0, "system gzip accepts our hand-built header");
        full[h - 1] ^= 1;
        r = vae__gunzip(full, flen, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0 && strstr(err, "header CRC"), "bad header crc: %s", err);
        full[h - 1] ^= 1;
        full[3] |= 0x20;
        r = vae__gunzip(full, flen, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0 && strstr(err, "reserved"), "reserved flag: %s", err);
        full[3] &= 0x1F;
        full[2] = 7;
        r = vae__gunzip(full, flen, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0 && strstr(err, "method"), "method 7: %s", err);
        full[2] = 8;
        full[0] = 0x1E;
        r = vae__gunzip(full, flen, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0 && strstr(err, "magic"), "bad magic: %s", err);
        full[0] = 0x1F;
        /* bad CRC / ISIZE */
        full[flen - 8] ^= 0x40;
        r = vae__gunzip(full, flen, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0 && strcmp(err, "gzip: CRC mismatch (file corrupt)") == 0, "bad crc: %s", err);
        full[flen - 8] ^= 0x40;
        full[flen - 4] ^= 1;
        r = vae__gunzip(full, flen, &out, &olen, (size_t)1 << 32, err);
        CHECK(r != 0 && strstr(err, "ISIZE mismatch"), "bad isize lower: %s", err);
        full[flen - 4] ^= 1;
        full[flen - 1] ^= 0x80; /* huge lying ISIZE: must not allocate 2 GB, just fail */
        r = vae__gunzip(full, flen, &out, &olen, (size_t)1 << 40, err);
        CHECK(r != 0 && strstr(err, "ISIZE mismatch"), "bad isize upper: %s", err);
        full[flen - 1] ^= 0x80;
        CHECK(gunzip_eq(full, flen, t->data, t->len, err), "restored: %s", err);
        free(full);
        free(raw);
    }
    {
        unsigned char tiny[] = { 0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3 };
        r = vae__gunzip(tiny, sizeof(tiny), &out, &olen, 100, err);
        CHECK(r != 0 && strstr(err, "truncated"), "tiny gzip: %s", err);
        r = vae__gunzip(tiny, 0, &out, &olen, 100, err);
        CHECK(r != 0, "zero-length gzip: %s", err);
    }
}

/* Truncation at every length and random bit flips. */
static void test_gzip_hostile(input_t *in, int nin)
{
    char path[512];
    char err[VAE__ERR_SIZE];
    static const char *files[][2] = { { "text30k", "g9" }, { "text30k", "fixed" }, { "skew", "raw9" },
                                       { "one", "g1" }, { "rep", "py0.gz" }, { "mix", "g1" } };
    int fi, i;
    unsigned long nflip = 0, nflip_ok = 0, ntrunc = 0;
    (void)nin;
    for (fi = 0; fi < (int)(sizeof(files) / sizeof(files[0])); fi++) {
        size_t clen, k, olen, used;
        unsigned char *c, *mut, *out, *dst;
        const input_t *t = NULL;
        int is_gz = strstr(files[fi][1], "g") == files[fi][1] || strstr(files[fi][1], ".gz") != NULL;
        size_t step;
        for (i = 0; i < nin; i++)
            if (strcmp(in[i].name, files[fi][0]) == 0) t = &in[i];
        snprintf(path, sizeof(path), "%s/%s.%s", g_dir, files[fi][0], files[fi][1]);
        c = read_file(path, &clen);
        CHECK(c != NULL && t != NULL, "read %s", path);
        if (!c || !t) continue;
        mut = (unsigned char *)malloc(clen + 1);
        dst = (unsigned char *)malloc(t->len * 2 + 64);
        /* Truncation: every prefix for small files, ~300 evenly spread for big ones */
        step = clen > 4000 ? clen / 300 : 1;
        for (k = 0; k < clen; k += step) {
            int r;
            memcpy(mut, c, k);
            if (is_gz) {
                out = NULL;
                r = vae__gunzip(mut, k, &out, &olen, (size_t)1 << 32, err);
                free(out);
            } else {
                r = vae__inflate(mut, k, &used, dst, t->len * 2 + 64, &olen, err);
            }
            ntrunc++;
            if (r == 0) {
                CHECK(0, "truncated %s at %lu/%lu decoded OK", path, (unsigned long)k, (unsigned long)clen);
            } else if (is_gz && k >= 18) {
                CHECK(strstr(err, "truncated") != NULL, "truncation message for %s at %lu: %s", path,
                      (unsigned long)k, err);
            }
        }
        /* Bit flips: 1..3 random bits per trial */
        for (k = 0; k < (fi == 5 ? 300u : 1500u); k++) {
            int nb = 1 + (int)(rnd() % 3), j, r;
            memcpy(mut, c, clen);
            for (j = 0; j < nb; j++) {
                size_t pos = (size_t)(rnd() % clen);
                mut[pos] ^= (unsigned char)(1u << (rnd() % 8));
            }
            if (is_gz) {
                out = NULL;
                r = vae__gunzip(mut, clen, &out, &olen, (size_t)1 << 32, err);
                if (r == 0) {
                    nflip_ok++;
                    /* header-only changes (mtime, OS, FNAME text...) may legitimately pass */
                    CHECK(olen == t->len && memcmp(out, t->data, olen) == 0, "bitflip gunzip produced wrong data");
                } else {
                    CHECK(err[0] != 0, "empty error message");
                }
                free(out);
            } else {
                r = vae__inflate(mut, clen, &used, dst, t->len * 2 + 64, &olen, err);
                if (r == 0) nflip_ok++;
                CHECK(olen <= t->len * 2 + 64 && used <= clen, "bitflip inflate bounds");
            }
            nflip++;
        }
        free(dst);
        free(mut);
        free(c);
    }
    /* Pure garbage into inflate (small caps), including streams starting with valid block headers */
    {
        unsigned char g[512], dst[300];
        size_t used, olen;
        int k, ok = 0;
        for (k = 0; k < 20000; k++) {
            size_t n = (size_t)(rnd() % sizeof(g)), j;
            for (j = 0; j < n; j++) g[j] = (unsigned char)rnd();
            if (n > 0 && (k & 1)) g[0] = (unsigned char)((g[0] & ~6u) | 4u); /* dynamic block */
            if (vae__inflate(g, n, &used, dst, (size_t)(rnd() % sizeof(dst)), &olen, err) == 0) ok++;
        }
        printf("  garbage: 20000 random streams, %d decoded without error\n", ok);
        CHECK(1, "garbage survived");
    }
    printf("  truncations tried: %lu, bit-flip trials: %lu (%lu still decoded, always to correct data for gzip)\n",
           ntrunc, nflip, nflip_ok);
}

/* ------------------------------------------------------------------------ */
/* IDX */

static void put32be(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void test_idx(void)
{
    unsigned char buf[4 + 12 + 2 * 3 * 5 + 1];
    uint32_t dims[4];
    const unsigned char *data;
    char err[VAE__ERR_SIZE];
    int nd, r, i;
    size_t n = sizeof(buf) - 1;
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = 8;
    buf[3] = 3;
    put32be(buf + 4, 2);
    put32be(buf + 8, 3);
    put32be(buf + 12, 5);
    for (i = 0; i < 30; i++) buf[16 + i] = (unsigned char)i;
    r = vae__idx_parse(buf, n, &nd, dims, &data, err);
    CHECK(r == 0 && nd == 3 && dims[0] == 2 && dims[1] == 3 && dims[2] == 5 && dims[3] == 1 && data == buf + 16,
          "idx valid: %s", err);
    r = vae__idx_parse(buf, n - 1, &nd, dims, &data, err);
    CHECK(r != 0 && strstr(err, "truncated") && strstr(err, "30") && strstr(err, "29"), "idx truncated: %s", err);
    buf[n] = 7;
    r = vae__idx_parse(buf, n + 1, &nd, dims, &data, err);
    CHECK(r != 0 && strstr(err, "trailing") && strstr(err, "31"), "idx trailing: %s", err);
    r = vae__idx_parse(buf, 10, &nd, dims, &data, err);
    CHECK(r != 0 && strstr(err, "header"), "idx truncated header: %s", err);
    r = vae__idx_parse(buf, 3, &nd, dims, &data, err);
    CHECK(r != 0, "idx 3 bytes: %s", err);
    buf[2] = 0x0D;
    r = vae__idx_parse(buf, n, &nd, dims, &data, err);
    CHECK(r != 0 && strstr(err, "type"), "idx float type: %s", err);
    buf[2] = 8;
    buf[1] = 1;
    r = vae__idx_parse(buf, n, &nd, dims, &data, err);
    CHECK(r != 0 && strstr(err, "magic"), "idx magic: %s", err);
    buf[1] = 0;
    buf[3] = 0;
    r = vae__idx_parse(buf, n, &nd, dims, &data, err);
    CHECK(r != 0 && strstr(err, "dimensions"), "idx 0 dims: %s", err);
    buf[3] = 5;
    r = vae__idx_parse(buf, n, &nd, dims, &data, err);
    CHECK(r != 0 && strstr(err, "dimensions"), "idx 5 dims: %s", err);
    /* huge dims: 4 x 0xFFFFFFFF overflows 64-bit size_t */
    {
        unsigned char h[20 + 4];
        h[0] = 0;
        h[1] = 0;
        h[2] = 8;
        h[3] = 4;
        for (i = 0; i < 4; i++) put32be(h + 4 + 4 * i, 0xFFFFFFFFu);
        r = vae__idx_parse(h, 20, &nd, dims, &data, err);
        CHECK(r != 0 && strstr(err, "overflow"), "idx huge dims: %s", err);
        h[3] = 1;
        put32be(h + 4, 0xFFFFFFFFu);
        r = vae__idx_parse(h, 8, &nd, dims, &data, err);
        CHECK(r != 0 && strstr(err, "4294967295"), "idx big 1-d: %s", err);
        put32be(h + 4, 3);
        h[8] = 1;
        h[9] = 2;
        h[10] = 3;
        r = vae__idx_parse(h, 11, &nd, dims, &data, err);
        CHECK(r == 0 && nd == 1 && dims[0] == 3 && data[2] == 3, "idx 1-d labels: %s", err);
    }
}

/* ------------------------------------------------------------------------ */
/* Fashion-MNIST */

static void test_fashion(void)
{
    static const char *dir = "/usr/share/datasets/fashion-mnist";
    static const char *names[4] = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" };
    static const uint32_t count[4] = { 60000, 60000, 10000, 10000 };
    int i;
    for (i = 0; i < 4; i++) {
        char path[512], cmd[1024], err[VAE__ERR_SIZE];
        unsigned char *gz, *out = NULL;
        size_t gzlen, olen = 0;
        double t0, t1;
        int r, nd;
        uint32_t dims[4];
        const unsigned char *data;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        gz = read_file(path, &gzlen);
        if (!gz) {
            printf("  (skipping %s: not present)\n", path);
            continue;
        }
        t0 = now_sec();
        r = vae__gunzip(gz, gzlen, &out, &olen, (size_t)1 << 31, err);
        t1 = now_sec();
        CHECK(r == 0, "gunzip %s: %s", names[i], err);
        if (r == 0) {
            FILE *p;
            unsigned long pycrc = 0;
            uint32_t crc;
            double t2, t3;
            printf("  %s: %lu -> %lu bytes in %.1f ms (%.0f MB/s)\n", names[i], (unsigned long)gzlen,
                   (unsigned long)olen, (t1 - t0) * 1e3, (double)olen / (t1 - t0) / 1e6);
            r = vae__idx_parse(out, olen, &nd, dims, &data, err);
            CHECK(r == 0, "idx %s: %s", names[i], err);
            if (i % 2 == 0)
                CHECK(r == 0 && nd == 3 && dims[0] == count[i] && dims[1] == 28 && dims[2] == 28, "dims %s", names[i]);
            else
                CHECK(r == 0 && nd == 1 && dims[0] == count[i], "dims %s", names[i]);
            if (i % 2 == 1 && r == 0) {
                uint32_t k;
                int maxl = 0;
                for (k = 0; k < dims[0]; k++)
                    if (data[k] > maxl) maxl = data[k];
                CHECK(maxl == 9, "labels 0..9 in %s", names[i]);
            }
            t2 = now_sec();
            crc = vae__crc32(0, out, olen);
            t3 = now_sec();
            if (i == 0) printf("  crc32 of %lu bytes: %.1f ms\n", (unsigned long)olen, (t3 - t2) * 1e3);
            snprintf(cmd, sizeof(cmd),
                     "gzip -dc %s | %s -c 'import zlib,sys; print(zlib.crc32(sys.stdin.buffer.read()))'", path,
                     g_py);
            p = popen(cmd, "r");
            if (p) {
                CHECK(fscanf(p, "%lu", &pycrc) == 1, "read crc from python");
                pclose(p);
            }
            CHECK((uint32_t)pycrc == crc, "fashion crc %s: ours %lu, python %lu", names[i], (unsigned long)crc, pycrc);
        }
        free(out);
        free(gz);
    }
}

/* ------------------------------------------------------------------------ */
/* PNG */

static const char *PNG_PY =
    "import sys, zlib, struct\n"
    "def dec(path):\n"
    "    d = open(path, 'rb').read()\n"
    "    assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'signature'\n"
    "    p = 8; idat = b''; ihdr = None; types = []\n"
    "    while p < len(d):\n"
    "        ln, = struct.unpack('>I', d[p:p+4]); t = d[p+4:p+8]; body = d[p+8:p+8+ln]\n"
    "        crc, = struct.unpack('>I', d[p+8+ln:p+12+ln])\n"
    "        assert zlib.crc32(t + body) == crc, 'chunk crc'\n"
    "        types.append(t)\n"
    "        if t == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)\n"
    "        elif t == b'IDAT': idat += body\n"
    "        p += 12 + ln\n"
    "    assert p == len(d) and types[0] == b'IHDR' and types[-1] == b'IEND', 'chunk layout'\n"
    "    w, h, bd, ct, cm, fm, im = ihdr\n"
    "    assert bd == 8 and cm == 0 and fm == 0 and im == 0, 'ihdr'\n"
    "    ch = {0: 1, 2: 3, 6: 4}[ct]\n"
    "    raw = zlib.decompress(idat)\n"
    "    stride = w * ch\n"
    "    assert len(raw) == h * (stride + 1), 'raw size'\n"
    "    out = bytearray(); prev = bytearray(stride); used = set()\n"
    "    for y in range(h):\n"
    "        f = raw[y*(stride+1)]; used.add(f)\n"
    "        line = bytearray(raw[y*(stride+1)+1:(y+1)*(stride+1)])\n"
    "        for x in range(stride):\n"
    "            a = line[x-ch] if x >= ch else 0; b = prev[x]; c = prev[x-ch] if x >= ch else 0\n"
    "            if f == 0: pr = 0\n"
    "            elif f == 1: pr = a\n"
    "            elif f == 2: pr = b\n"
    "            elif f == 3: pr = (a + b) // 2\n"
    "            elif f == 4:\n"
    "                pp = a + b - c; pa = abs(pp - a); pb = abs(pp - b); pc = abs(pp - c)\n"
    "                pr = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)\n"
    "            else: raise Exception('bad filter')\n"
    "            line[x] = (line[x] + pr) & 255\n"
    "        out += line; prev = line\n"
    "    open(path + '.raw', 'wb').write(bytes(out))\n"
    "    return '%d %d %d %s' % (w, h, ch, ''.join(str(f) for f in sorted(used)))\n"
    "for path in sys.argv[1:]:\n"
    "    try: print(dec(path))\n"
    "    except Exception as e: print('ERR', repr(e))\n";

static void test_png(void)
{
    struct {
        int w, h, ch, kind;
    } cases[] = { { 1, 1, 1, 0 },   { 1, 1, 3, 0 },    { 1, 1, 4, 1 },   { 37, 23, 1, 0 }, { 17, 9, 3, 0 },
                  { 5, 31, 4, 0 },  { 1, 50, 3, 1 },   { 50, 1, 1, 1 },  { 200, 150, 3, 1 },
                  { 64, 64, 4, 1 }, { 256, 256, 1, 1 }, { 101, 77, 1, 2 }, { 300, 300, 3, 0 } };
    int nc = (int)(sizeof(cases) / sizeof(cases[0])), i;
    char path[512], cmd[8192], err[VAE__ERR_SIZE];
    unsigned char *imgs[32];
    size_t off;
    FILE *p;
    path_of(path, sizeof(path), "png.py");
    write_file(path, PNG_PY, strlen(PNG_PY));
    off = (size_t)snprintf(cmd, sizeof(cmd), "%s %s", g_py, path);
    for (i = 0; i < nc; i++) {
        int w = cases[i].w, h = cases[i].h, ch = cases[i].ch, x, y, c;
        size_t n = (size_t)w * (size_t)h * (size_t)ch, pnglen, rawsize = (size_t)h * ((size_t)w * (size_t)ch + 1);
        unsigned char *png;
        int r;
        imgs[i] = (unsigned char *)malloc(n);
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++)
                for (c = 0; c < ch; c++) {
                    size_t k = ((size_t)y * (size_t)w + (size_t)x) * (size_t)ch + (size_t)c;
                    if (cases[i].kind == 0)
                        imgs[i][k] = (unsigned char)rnd();
                    else if (cases[i].kind == 1)
                        imgs[i][k] = (unsigned char)(c == 3 ? 255 - (x + y) : (x * (c + 1) + y * 2 + c * 40));
                    else
                        imgs[i][k] = 0;
                }
        if (cases[i].kind == 2) { /* shapes tile */
            unsigned char tile[28 * 28];
            for (y = 0; y + 28 <= h; y += 28)
                for (x = 0; x + 28 <= w; x += 28) {
                    int yy;
                    vae__shapes_image(tile, 28, 7, (uint64_t)(y * 10 + x));
                    for (yy = 0; yy < 28; yy++) memcpy(imgs[i] + (size_t)(y + yy) * (size_t)w + (size_t)x, tile + yy * 28, 28);
                }
        }
        r = vae__png_encode(imgs[i], w, h, ch, &png, &pnglen, err);
        CHECK(r == 0, "png encode %dx%dx%d: %s", w, h, ch, err);
        if (r) continue;
        printf("  png %3dx%-3d ch=%d %-6s raw %7lu -> png %7lu bytes\n", w, h, ch,
               cases[i].kind == 0 ? "random" : cases[i].kind == 1 ? "smooth" : "shapes", (unsigned long)rawsize,
               (unsigned long)pnglen);
        if (cases[i].kind == 0)
            CHECK(pnglen <= rawsize + 57 + 5 * (rawsize / 65535 + 1) + 6, "random png not much bigger than raw");
        else if (rawsize > 1000)
            CHECK(pnglen * 4 < rawsize, "smooth/shapes png compresses at least 4x (%lu vs %lu)", (unsigned long)pnglen,
                  (unsigned long)rawsize);
        snprintf(path, sizeof(path), "%s/img%d.png", g_dir, i);
        if (i % 2) {
            r = vae_png_write(path, imgs[i], w, h, ch, err);
            CHECK(r == 0, "vae_png_write: %s", err);
            {
                size_t flen;
                unsigned char *f = read_file(path, &flen);
                CHECK(f && flen == pnglen && memcmp(f, png, flen) == 0, "vae_png_write bytes == encode bytes");
                free(f);
            }
        } else {
            write_file(path, png, pnglen);
        }
        free(png);
        off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, " %s", path);
    }
    p = popen(cmd, "r");
    CHECK(p != NULL, "popen png.py");
    if (p) {
        for (i = 0; i < nc; i++) {
            char line[256];
            int w = 0, h = 0, ch = 0;
            if (!fgets(line, sizeof(line), p)) {
                CHECK(0, "png.py output missing for case %d", i);
                break;
            }
            CHECK(sscanf(line, "%d %d %d", &w, &h, &ch) == 3 && w == cases[i].w && h == cases[i].h &&
                      ch == cases[i].ch,
                  "png.py decode case %d: %s", i, line);
            {
                size_t rl;
                unsigned char *raw;
                snprintf(path, sizeof(path), "%s/img%d.png.raw", g_dir, i);
                raw = read_file(path, &rl);
                CHECK(raw && rl == (size_t)w * (size_t)h * (size_t)ch && memcmp(raw, imgs[i], rl) == 0,
                      "png pixels round-trip case %d", i);
                free(raw);
            }
        }
        pclose(p);
    }
    for (i = 0; i < nc; i++) free(imgs[i]);
    {
        unsigned char px[4] = { 1, 2, 3, 4 }, *png;
        size_t len;
        CHECK(vae__png_encode(px, 1, 1, 2, &png, &len, err) != 0 && strstr(err, "channels"), "png ch=2: %s", err);
        CHECK(vae__png_encode(px, 0, 1, 1, &png, &len, err) != 0, "png w=0: %s", err);
        CHECK(vae__png_encode(px, 1, -1, 1, &png, &len, err) != 0, "png h<0: %s", err);
        CHECK(vae__png_encode(NULL, 1, 1, 1, &png, &len, err) != 0, "png NULL: %s", err);
        CHECK(vae_png_write("/nonexistent-dir/x.png", px, 1, 1, 1, err) != 0, "png write bad path: %s", err);
    }
    /* the deflate compressor round-trips through our inflate on the test inputs */
}

static void test_deflate_roundtrip(input_t *in, int nin)
{
    int i;
    char err[VAE__ERR_SIZE];
    for (i = 0; i < nin; i++) {
        unsigned char *z, *back;
        size_t zl, used, bl;
        int r = vae__deflate(in[i].data, in[i].len, &z, &zl, err);
        CHECK(r == 0, "deflate %s", in[i].name);
        if (r) continue;
        back = (unsigned char *)malloc(in[i].len + 1);
        r = vae__inflate(z, zl, &used, back, in[i].len, &bl, err);
        CHECK(r == 0 && bl == in[i].len && used == zl && memcmp(back, in[i].data, bl) == 0,
              "deflate->inflate %s: %s", in[i].name, err);
        printf("  deflate %-8s %8lu -> %8lu\n", in[i].name, (unsigned long)in[i].len, (unsigned long)zl);
        free(back);
        free(z);
    }
}

/* ------------------------------------------------------------------------ */
/* Shapes */

/* CRC-32 of images 0..999 (seed 42, size 28) concatenated; pins the exact bytes so
 * any platform/compiler difference shows up. */
#define SHAPES_GOLDEN_CRC 0x8ef88164u
#define SHAPES_GOLDEN_LABELS_CRC 0x22d3a1b4u

static void test_shapes(void)
{
    unsigned char a[28 * 28], b[28 * 28];
    int counts[VAE__SHAPES_CLASSES] = { 0 }, i, diff = 0, border_bad = 0, faint = 0;
    double sum = 0;
    uint32_t crc = 0, lcrc = 0;
    char err[VAE__ERR_SIZE];
    double t0, t1;
    CHECK(vae__shapes_image(a, 7, 1, 1) == -1, "size 7 rejected");
    CHECK(vae__shapes_image(a, 1025, 1, 1) == -1, "size 1025 rejected");
    CHECK(vae__shapes_image(NULL, 28, 1, 1) == -1, "NULL rejected");
    for (i = 0; i < 1000; i++) {
        int la = vae__shapes_image(a, 28, 42, (uint64_t)i), lb, k, mx = 0;
        unsigned char lab = (unsigned char)la;
        lb = vae__shapes_image(b, 28, 42, (uint64_t)i);
        CHECK(la == lb && memcmp(a, b, sizeof(a)) == 0, "shapes deterministic %d", i);
        CHECK(la >= 0 && la < VAE__SHAPES_CLASSES, "label range");
        if (la >= 0 && la < VAE__SHAPES_CLASSES) counts[la]++;
        crc = vae__crc32(crc, a, sizeof(a));
        lcrc = vae__crc32(lcrc, &lab, 1);
        vae__shapes_image(b, 28, 42, (uint64_t)i + 1);
        if (memcmp(a, b, sizeof(a)) == 0) diff++;
        vae__shapes_image(b, 28, 43, (uint64_t)i);
        if (memcmp(a, b, sizeof(a)) == 0) diff++;
        for (k = 0; k < 28 * 28; k++) {
            sum += a[k];
            if (a[k] > mx) mx = a[k];
        }
        if (mx < 150) faint++;
        for (k = 0; k < 28; k++)
            if (a[k] || a[27 * 28 + k] || a[k * 28] || a[k * 28 + 27]) border_bad++;
    }
    CHECK(diff == 0, "neighbouring index/seed give different images (%d equal)", diff);
    CHECK(border_bad == 0, "shapes stay inside the 1-pixel border (%d violations)", border_bad);
    CHECK(faint == 0, "every image has a bright pixel (%d faint)", faint);
    printf("  shapes label counts:");
    for (i = 0; i < VAE__SHAPES_CLASSES; i++) {
        printf(" %d", counts[i]);
        CHECK(counts[i] > 80, "label %d occurs often enough (%d)", i, counts[i]);
    }
    printf("\n  shapes mean intensity: %.1f / 255; crc 0x%08lx labels 0x%08lx\n", sum / (1000.0 * 784),
           (unsigned long)crc, (unsigned long)lcrc);
    CHECK(sum / (1000.0 * 784) > 20 && sum / (1000.0 * 784) < 110, "mean intensity sane");
    if (SHAPES_GOLDEN_CRC != 0) {
        CHECK(crc == SHAPES_GOLDEN_CRC, "shapes golden CRC 0x%08lx", (unsigned long)crc);
        CHECK(lcrc == SHAPES_GOLDEN_LABELS_CRC, "shapes golden label CRC 0x%08lx", (unsigned long)lcrc);
    }
    /* other sizes */
    {
        static const int sizes[] = { 8, 9, 16, 64, 255, 1024 };
        int s;
        for (s = 0; s < (int)(sizeof(sizes) / sizeof(sizes[0])); s++) {
            int n = sizes[s], k, l, nz = 0;
            unsigned char *img = (unsigned char *)malloc((size_t)n * (size_t)n);
            l = vae__shapes_image(img, n, 5, 77);
            for (k = 0; k < n * n; k++) nz += img[k] != 0;
            CHECK(l >= 0 && nz > n * n / 20, "shapes size %d: label %d, %d lit pixels", n, l, nz);
            free(img);
        }
    }
    /* speed for a full 60000-image epoch */
    {
        unsigned acc = 0;
        t0 = now_sec();
        for (i = 0; i < 60000; i++) {
            vae__shapes_image(a, 28, 9, (uint64_t)i);
            acc += a[14 * 28 + 14];
        }
        t1 = now_sec();
        printf("  shapes: 60000 images 28x28 in %.0f ms (%u)\n", (t1 - t0) * 1e3, acc & 1);
    }
    /* 10 x 10 grid, each cell 28 px + 2 px gap, upscaled 3x, written for a visual check */
    {
        int cell = 30, gw = 10 * cell + 2, sc = 3, W = gw * sc, gx, gy, x, y;
        unsigned char *grid = (unsigned char *)calloc((size_t)gw * (size_t)gw, 1);
        unsigned char *big = (unsigned char *)malloc((size_t)W * (size_t)W * 3);
        for (gy = 0; gy < 10; gy++)
            for (gx = 0; gx < 10; gx++) {
                vae__shapes_image(a, 28, 2024, (uint64_t)(gy * 10 + gx));
                for (y = 0; y < 28; y++)
                    memcpy(grid + (size_t)(gy * cell + 2 + y) * (size_t)gw + (size_t)(gx * cell + 2), a + y * 28, 28);
            }
        for (y = 0; y < W; y++)
            for (x = 0; x < W; x++) {
                int gxx = x / sc, gyy = y / sc;
                unsigned char v = grid[gyy * gw + gxx];
                int gap = (gxx % cell) < 2 || (gyy % cell) < 2;
                unsigned char *o = big + ((size_t)y * (size_t)W + (size_t)x) * 3;
                o[0] = gap ? 90 : v;
                o[1] = gap ? 30 : v;
                o[2] = gap ? 30 : v;
            }
        CHECK(vae_png_write("/tmp/shapes_grid.png", big, W, W, 3, err) == 0, "write grid: %s", err);
        printf("  labels of grid rows:\n");
        for (gy = 0; gy < 10; gy++) {
            printf("   ");
            for (gx = 0; gx < 10; gx++) printf(" %d", vae__shapes_image(a, 28, 2024, (uint64_t)(gy * 10 + gx)));
            printf("\n");
        }
        free(grid);
        free(big);
    }
}

/* ------------------------------------------------------------------------ */
/* CIFAR-10 binary batches */

/* Pixel j of CIFAR record r in the synthetic files. */
static unsigned char cifar_px(int r, int j) { return (unsigned char)(r * 7 + j * 13 + (j >> 10) * 5); }

/* Writes records first..first+count-1 (label r % 10, or bad_label for record bad_at) to dir/name. */
static void write_cifar(const char *dir, const char *name, int first, int count, int bad_at, int bad_label)
{
    char path[512];
    unsigned char *buf = (unsigned char *)malloc((size_t)count * 3073);
    int r, j;
    for (r = 0; r < count; r++) {
        unsigned char *rec = buf + (size_t)r * 3073;
        rec[0] = (unsigned char)(first + r == bad_at ? bad_label : (first + r) % 10);
        for (j = 0; j < 3072; j++) rec[1 + j] = cifar_px(first + r, j);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(write_file(path, buf, (size_t)count * 3073) == 0, "cannot write %s", path);
    free(buf);
}

/* Whether d holds records first..first+n-1 as written by write_cifar. */
static int cifar_matches(const vae_data *d, int first, int n)
{
    int r, j;
    if (d->n != n || d->c != 3 || d->h != 32 || d->w != 32 || !d->labels) return 0;
    for (r = 0; r < n; r++) {
        if (d->labels[r] != (first + r) % 10) return 0;
        for (j = 0; j < 3072; j++)
            if (d->pixels[(size_t)r * 3072 + j] != cifar_px(first + r, j)) return 0;
    }
    return 1;
}

static void test_cifar(void)
{
    char dir[600], top[512], cmd[1200];
    vae_data d;
    vae_result r;
    snprintf(top, sizeof top, "%s/cifar", g_dir);
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", top);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(run(cmd) == 0, "mkdir %s", dir);
    write_cifar(dir, "data_batch_1.bin", 0, 3, -1, 0);
    write_cifar(dir, "data_batch_2.bin", 3, 4, -1, 0);
    write_cifar(dir, "test_batch.bin", 100, 2, -1, 0);

    r = vae_data_load_cifar(&d, dir, VAE_SPLIT_TRAIN);
    CHECK(r == VAE_OK && cifar_matches(&d, 0, 7), "cifar train: two batches, 7 records in order (%s)", d.error);
    vae_data_free(&d);
    r = vae_data_load_cifar(&d, dir, VAE_SPLIT_TEST);
    CHECK(r == VAE_OK && cifar_matches(&d, 100, 2), "cifar test batch (%s)", d.error);
    vae_data_free(&d);
    /* vae_data_load finds the batches in the directory itself and in cifar-10-batches-bin/ */
    r = vae_data_load(&d, dir, VAE_SPLIT_TRAIN);
    CHECK(r == VAE_OK && cifar_matches(&d, 0, 7), "vae_data_load detects CIFAR (%s)", d.error);
    vae_data_free(&d);
    r = vae_data_load(&d, top, VAE_SPLIT_TEST);
    CHECK(r == VAE_OK && cifar_matches(&d, 100, 2), "vae_data_load finds cifar-10-batches-bin/ (%s)", d.error);
    vae_data_free(&d);

    /* a truncated file: an error naming it, nothing left allocated */
    {
        char path[700];
        size_t len;
        unsigned char *b;
        snprintf(path, sizeof path, "%s/data_batch_2.bin", dir);
        b = read_file(path, &len);
        CHECK(b && write_file(path, b, len - 100) == 0, "truncate %s", path);
        r = vae_data_load_cifar(&d, dir, VAE_SPLIT_TRAIN);
        CHECK(r == VAE_ERROR_FORMAT && d.pixels == NULL && strstr(d.error, "data_batch_2.bin") && strstr(d.error, "3073"),
              "cifar truncated file: %s", d.error);
        CHECK(write_file(path, b, 0) == 0, "empty %s", path);
        r = vae_data_load_cifar(&d, dir, VAE_SPLIT_TRAIN);
        CHECK(r == VAE_ERROR_FORMAT && strstr(d.error, "data_batch_2.bin"), "cifar empty file: %s", d.error);
        free(b);
    }
    /* a label of 10 */
    write_cifar(dir, "data_batch_2.bin", 3, 4, 5, 10);
    r = vae_data_load_cifar(&d, dir, VAE_SPLIT_TRAIN);
    CHECK(r == VAE_ERROR_FORMAT && d.pixels == NULL && strstr(d.error, "data_batch_2.bin") && strstr(d.error, "record 2") &&
          strstr(d.error, "label 10"), "cifar bad label: %s", d.error);
    write_cifar(dir, "data_batch_2.bin", 3, 4, 3, 255);
    r = vae_data_load(&d, top, VAE_SPLIT_TRAIN);
    CHECK(r == VAE_ERROR_FORMAT && strstr(d.error, "label 255"), "cifar label 255 through vae_data_load: %s", d.error);
    /* a missing test batch */
    snprintf(cmd, sizeof cmd, "%s/test_batch.bin", dir);
    remove(cmd);
    r = vae_data_load_cifar(&d, dir, VAE_SPLIT_TEST);
    CHECK(r == VAE_ERROR_IO && strstr(d.error, "test_batch.bin"), "cifar missing test batch: %s", d.error);
    r = vae_data_load(&d, g_dir, VAE_SPLIT_TRAIN);
    CHECK(r == VAE_ERROR_IO && strstr(d.error, "CIFAR") && strstr(d.error, "idx3"),
          "no data at all names both formats: %s", d.error);
}

/* ------------------------------------------------------------------------ */
/* netpbm */

/* Decodes a string (size = strlen unless given) into out; returns the result. */
static vae_result pnm(const char *s, size_t size, unsigned char *out, size_t cap, int *w, int *h, int *c, char *err)
{
    return vae_pnm_decode((const unsigned char *)s, size ? size : strlen(s), out, cap, w, h, c, err);
}

static void test_pnm(void)
{
    unsigned char out[64];
    char err[VAE_ERROR_SIZE];
    int w, h, c, i;
    vae_result r;

    /* binary P5; the raster starts with bytes that look like whitespace and '#' */
    {
        static const char p5[] = "P5\n3 2\n255\n\n #\x00\xff\x80";
        r = pnm(p5, sizeof p5 - 1, out, sizeof out, &w, &h, &c, err);
        CHECK(r == VAE_OK && w == 3 && h == 2 && c == 1 && out[0] == '\n' && out[1] == ' ' && out[2] == '#' &&
              out[3] == 0 && out[4] == 255 && out[5] == 128, "P5 values: %s", err);
        r = pnm(p5, sizeof p5 - 2, out, sizeof out, &w, &h, &c, err);
        CHECK(r == VAE_ERROR_FORMAT && strstr(err, "truncated") && strstr(err, "6 bytes"), "P5 one byte short: %s", err);
        r = pnm(p5, sizeof p5 - 1, NULL, 0, &w, &h, &c, err);
        CHECK(r == VAE_OK && w == 3 && h == 2 && c == 1, "P5 header only: %s", err);
        r = pnm(p5, sizeof p5 - 1, out, 5, &w, &h, &c, err);
        CHECK(r == VAE_ERROR_INVALID_ARGUMENT, "P5 output too small: %s", err);
    }
    /* binary P6, comments in the header (also right after maxval), tabs and CRs */
    {
        static const char p6[] = "P6 # a comment\n#another\r2\t# w\n1\r\n255# last comment\n\x01\x02\x03\x04\x05\x06";
        r = pnm(p6, sizeof p6 - 1, out, sizeof out, &w, &h, &c, err);
        CHECK(r == VAE_OK && w == 2 && h == 1 && c == 3 && out[0] == 1 && out[2] == 3 && out[5] == 6, "P6 with comments: %s", err);
    }
    /* ASCII P2 and P3, comments between samples, maxval 15 scaled to 255 */
    r = pnm("P2\n# gray\n2 2\n15\n0 15\n# mid\n7\n\t8", 0, out, sizeof out, &w, &h, &c, err);
    CHECK(r == VAE_OK && w == 2 && h == 2 && c == 1 && out[0] == 0 && out[1] == 255 && out[2] == 119 && out[3] == 136,
          "P2 maxval 15: %s (%d %d %d %d)", err, out[0], out[1], out[2], out[3]);
    r = pnm("P3 1 2 255  10 20 30\n40 50 60\n", 0, out, sizeof out, &w, &h, &c, err);
    CHECK(r == VAE_OK && w == 1 && h == 2 && c == 3 && out[0] == 10 && out[3] == 40 && out[5] == 60, "P3: %s", err);
    r = pnm("P2 2 1 255 1", 0, out, sizeof out, &w, &h, &c, err);
    CHECK(r == VAE_ERROR_FORMAT && strstr(err, "truncated"), "P2 too few samples: %s", err);
    r = pnm("P2 2 1 255 1 x", 0, out, sizeof out, &w, &h, &c, err);
    CHECK(r == VAE_ERROR_FORMAT && strstr(err, "sample 1"), "P2 junk sample: %s", err);
    r = pnm("P2 2 1 255 1 2", 0, out, sizeof out, &w, &h, &c, err);
    CHECK(r == VAE_OK && out[1] == 2, "P2 last sample without a newline: %s", err);
    r = pnm("P2 2 1 100 1 101", 0, out, sizeof out, &w, &h, &c, err);
    CHECK(r == VAE_ERROR_FORMAT && strstr(err, "above maxval"), "P2 sample above maxval: %s", err);
    /* 16-bit binary: big-endian, scaled */
    {
        static const char p16[] = "P5 3 1 65535\n\xff\xff\x80\x00\x00\x01";
        r = pnm(p16, sizeof p16 - 1, out, sizeof out, &w, &h, &c, err);
        CHECK(r == VAE_OK && out[0] == 255 && out[1] == 128 && out[2] == 0, "P5 16-bit: %s (%d %d %d)", err, out[0], out[1], out[2]);
        r = pnm(p16, sizeof p16 - 2, out, sizeof out, &w, &h, &c, err);
        CHECK(r == VAE_ERROR_FORMAT && strstr(err, "truncated"), "P5 16-bit truncated: %s", err);
    }
    {
        static const char p5m[] = "P5 2 1 200\n\xc8\xc9";
        r = pnm(p5m, sizeof p5m - 1, out, sizeof out, &w, &h, &c, err);
        CHECK(r == VAE_ERROR_FORMAT && strstr(err, "201"), "P5 sample above maxval: %s", err);
    }
    /* bad magic and unsupported kinds */
    {
        static const char *bad[] = { "", "P", "P5", "XX 1 1 255 a", "P7\nWIDTH 1", "P4 8 1 \x01", "P1 1 1 1", "P5x 1 1 255 a", "p5 1 1 255 a", "P9 1 1 255 a" };
        for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
            r = pnm(bad[i], bad[i][0] ? 0 : 1, out, sizeof out, &w, &h, &c, err);
            CHECK(r == VAE_ERROR_FORMAT && (strstr(err, "P2, P3, P5 or P6") || strstr(err, "not supported")), "bad magic '%s': %s", bad[i], err);
        }
    }
    /* broken headers */
    {
        static const char *bad[] = { "P5 ", "P5 4", "P5 4 4", "P5 4 4 255", "P5 -1 4 255\n", "P5 4x4 255\n", "P5 0 4 255\n",
                                     "P5 4 0 255\n", "P5 1 1 0\n", "P5 1 1 65536\n\x01\x01", "P5 1 1 +9\n" };
        for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
            r = pnm(bad[i], 0, out, sizeof out, &w, &h, &c, err);
            CHECK(r == VAE_ERROR_FORMAT, "broken header '%s': %s", bad[i], err);
        }
    }
    /* huge dimensions: refused before anything is allocated, without overflow */
    {
        static const char *huge[] = { "P5 65536 65536 255\n\x01\x02\x03\x04", "P6 65536 65536 65535\n\x01\x02",
                                      "P3 65536 65536 255\n1 2 3", "P5 65537 1 255\n\x01",
                                      "P5 99999999999999999999999999 1 255\n\x01" };
        for (i = 0; i < (int)(sizeof huge / sizeof huge[0]); i++) {
            r = pnm(huge[i], 0, NULL, 0, &w, &h, &c, err);
            CHECK(r == VAE_ERROR_FORMAT && (strstr(err, "truncated") || strstr(err, "limit")), "huge '%.20s': %s", huge[i], err);
        }
        /* through the file loaders: the only allocation is the file itself */
        {
            char path[600], good[600];
            const char *paths[2];
            vae_data d;
            snprintf(path, sizeof path, "%s/huge.pgm", g_dir);
            snprintf(good, sizeof good, "%s/good.pgm", g_dir);
            CHECK(write_file(path, huge[0], strlen(huge[0])) == 0 && write_file(good, "P5 1 1 255\n\x07", 12) == 0, "write pgm");
            g_alloc_max = 0;
            r = vae_pnm_load(path, NULL, 0, &w, &h, &c, err);
            CHECK(r == VAE_ERROR_FORMAT && strstr(err, "huge.pgm") && g_alloc_max < 100, "load huge: %s (largest allocation %lu)",
                  err, (unsigned long)g_alloc_max);
            paths[0] = good; paths[1] = path;
            g_alloc_max = 0;
            r = vae_data_load_images(&d, paths, 2, NULL, NULL);
            CHECK(r == VAE_ERROR_FORMAT && strstr(d.error, "huge.pgm") && d.pixels == NULL && g_alloc_max < 100,
                  "images with a huge one: %s (largest allocation %lu)", d.error, (unsigned long)g_alloc_max);
        }
    }
    /* fuzz: truncations and byte changes of valid files never read out of bounds (ASan build)
       and, when accepted, give the size the header promised */
    {
        static const char *seeds[] = { "P5\n4 3\n255\n0123456789AB", "P6 # c\n2 2 255\nabcdefghijkl",
                                       "P2\n3 1\n9\n1 2 9\n", "P3 1 1 65535\n65535 0 1\n", "P5 2 1 65535\n\x01\x02\x03\x04" };
        int accepted = 0, wrong = 0, it;
        for (it = 0; it < 30000; it++) {
            const char *s = seeds[it % 5];
            size_t n = strlen(s), k;
            unsigned char *b = (unsigned char *)malloc(n ? n : 1), *o;
            memcpy(b, s, n);
            if (it % 3 == 0) n = (size_t)(rnd() % (n + 1));
            for (k = rnd() % 3; k > 0 && n; k--) b[rnd() % n] = rnd() % 3 ? (unsigned char)"0123456789 #\nP"[rnd() % 14] : (unsigned char)rnd();
            r = vae_pnm_decode(b, n, NULL, 0, &w, &h, &c, err);
            if (r == VAE_OK) {
                size_t need = (size_t)w * h * c;
                o = (unsigned char *)malloc(need);
                r = vae_pnm_decode(b, n, o, need, &w, &h, &c, err);
                accepted += r == VAE_OK;
                wrong += w < 1 || h < 1 || (c != 1 && c != 3) || (size_t)w * h * c != need;
                free(o);
            }
            free(b);
        }
        CHECK(accepted > 1000 && wrong == 0, "pnm fuzz: %d accepted, %d with a wrong size", accepted, wrong);
    }
}

/* ------------------------------------------------------------------------ */
/* lists of images, padding */

static void test_images(void)
{
    char a[600], b[600], cc[600], big[600];
    const char *paths[3];
    vae_data d;
    vae_result r;
    snprintf(a, sizeof a, "%s/a.pgm", g_dir);
    snprintf(b, sizeof b, "%s/b.ppm", g_dir);
    snprintf(cc, sizeof cc, "%s/c.pgm", g_dir);
    snprintf(big, sizeof big, "%s/big.pgm", g_dir);
    write_file(a, "P2 2 1 255 10 20", 16);
    write_file(b, "P6 2 1 255\n\x01\x02\x03\x04\x05\x06", 17);
    write_file(cc, "P5 2 1 255\n\x07\x08", 13);
    write_file(big, "P5 2 2 255\n\x07\x08\x09\x0a", 15);
    paths[0] = a; paths[1] = cc;
    r = vae_data_load_images(&d, paths, 2, NULL, NULL);
    CHECK(r == VAE_OK && d.n == 2 && d.c == 1 && d.h == 1 && d.w == 2 && !d.labels && d.pixels[0] == 10 && d.pixels[1] == 20 &&
          d.pixels[2] == 7 && d.pixels[3] == 8, "all gray: one channel (%s)", d.error);
    vae_data_free(&d);
    paths[0] = a; paths[1] = b; paths[2] = cc;
    r = vae_data_load_images(&d, paths, 3, NULL, NULL);
    /* (n, c, h, w): the RGB image's planes R = 1 4, G = 2 5, B = 3 6; gray repeated */
    CHECK(r == VAE_OK && d.n == 3 && d.c == 3 && d.h == 1 && d.w == 2 &&
          !memcmp(d.pixels, "\x0a\x14\x0a\x14\x0a\x14" "\x01\x04\x02\x05\x03\x06" "\x07\x08\x07\x08\x07\x08", 18),
          "gray and RGB: three planes each (%s)", d.error);
    vae_data_free(&d);
    paths[2] = big;
    r = vae_data_load_images(&d, paths, 3, NULL, NULL);
    CHECK(r == VAE_ERROR_FORMAT && d.pixels == NULL && strstr(d.error, "big.pgm") && strstr(d.error, "2x2"),
          "mixed sizes name the file: %s", d.error);
    paths[2] = "/nonexistent/x.pgm";
    r = vae_data_load_images(&d, paths, 3, NULL, NULL);
    CHECK(r == VAE_ERROR_IO && strstr(d.error, "x.pgm"), "missing file: %s", d.error);
    r = vae_data_load_images(&d, paths, 0, NULL, NULL);
    CHECK(r == VAE_ERROR_INVALID_ARGUMENT, "no files: %s", d.error);
}

static void test_pad(void)
{
    vae_data d;
    int i, y, x, k, ok = 1;
    memset(&d, 0, sizeof d);
    /* 2 images x 2 channels of 2x3, padded to 5x6: one row above (the odd one below), one column left */
    d.n = 2; d.c = 2; d.h = 2; d.w = 3;
    d.pixels = (unsigned char *)malloc(24);
    d.labels = (unsigned char *)malloc(2);
    for (i = 0; i < 24; i++) d.pixels[i] = (unsigned char)(i + 1);
    d.labels[0] = 4; d.labels[1] = 9;
    CHECK(vae_data_pad(&d, 1, 6) == VAE_ERROR_INVALID_ARGUMENT && d.h == 2 && d.pixels[0] == 1, "pad smaller is refused: %s", d.error);
    CHECK(vae_data_pad(&d, 5, 6) == VAE_OK && d.n == 2 && d.c == 2 && d.h == 5 && d.w == 6, "pad: %s", d.error);
    {   /* batches come out padded: image 1 then image 0, 2 x 5 x 6 floats each */
        const uint32_t idx[2] = { 1, 0 };
        float out[2 * 60];
        int im;
        vae_data_batch(&d, idx, 2, out);
        for (im = 0; im < 2; im++)
            for (k = 0; k < 2; k++)
                for (y = 0; y < 5; y++)
                    for (x = 0; x < 6; x++) {
                        int in = y >= 1 && y < 3 && x >= 1 && x < 4, plane = (1 - im) * 2 + k;
                        int want = in ? plane * 6 + (y - 1) * 3 + (x - 1) + 1 : 0;
                        ok &= out[((im * 2 + k) * 5 + y) * 6 + x] == want * (1.0f / 255.0f);
                    }
    }
    CHECK(ok && d.labels[0] == 4 && d.labels[1] == 9 && d.pixels[0] == 1, "pad: centred values, zeros around, labels kept, no copy");
    CHECK(vae_data_pad(&d, 5, 6) == VAE_OK && d.top == 1 && d.left == 1, "pad to the same size changes nothing");
    /* padding again places the images as padding the padded images would: 5x6 -> 8x9 adds 1 above, 1 left */
    CHECK(vae_data_pad(&d, 8, 9) == VAE_OK && d.top == 2 && d.left == 2 && d.src_h == 2 && d.src_w == 3, "pad twice: %s", d.error);
    {
        const uint32_t idx[1] = { 0 };
        float out[2 * 72];
        vae_data_batch(&d, idx, 1, out);
        CHECK(out[2 * 9 + 2] == 1 * (1.0f / 255.0f) && out[3 * 9 + 4] == 6 * (1.0f / 255.0f) && out[72 + 2 * 9 + 2] == 7 * (1.0f / 255.0f) &&
              out[2 * 9 + 1] == 0 && out[4 * 9 + 2] == 0, "pad twice: image at (2, 2)");
    }
    vae_data_free(&d);
    /* Fashion-MNIST 28x28 -> 32x32: two zero rows and columns on every side */
    if (vae_data_load(&d, "/usr/share/datasets/fashion-mnist", VAE_SPLIT_TEST) == VAE_OK) {
        const uint32_t idx[1] = { 0 };
        unsigned char first[784];
        float out[1024];
        memcpy(first, d.pixels, 784);
        CHECK(vae_data_pad(&d, 32, 32) == VAE_OK && d.n == 10000 && d.h == 32, "fashion-mnist pad: %s", d.error);
        vae_data_batch(&d, idx, 1, out);
        for (ok = 1, y = 0; y < 32; y++)
            for (x = 0; x < 32; x++)
                ok &= out[y * 32 + x] == (y >= 2 && y < 30 && x >= 2 && x < 30 ? first[(y - 2) * 28 + x - 2] * (1.0f / 255.0f) : 0.0f);
        CHECK(ok, "fashion-mnist image 0 centred in 32x32");
        /* to 250x250 (the conv250 preset) without holding 10000 padded images */
        CHECK(vae_data_pad(&d, 250, 250) == VAE_OK && d.pixels[0] == first[0] && d.top == 111 && d.left == 111,
              "fashion-mnist pad to 250: nothing copied (%s)", d.error);
        vae_data_free(&d);
    }
}

int main(int argc, char **argv)
{
    input_t in[12];
    int nin = 0, i;
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0, have_ref;
    char tmpl[] = "/tmp/vae_data_test_XXXXXX";
    if (!mkdtemp(tmpl)) {
        printf("cannot create temp dir\n");
        return 1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s", tmpl);
    if (access("/usr/bin/python3", X_OK) == 0) g_py = "/usr/bin/python3";

#define ADD(nm, kind, sz)                                                    \
    do {                                                                      \
        in[nin].name = nm;                                                    \
        in[nin].len = (sz);                                                  \
        in[nin].data = gen_input(kind, in[nin].len);                          \
        nin++;                                                                \
    } while (0)
    ADD("empty", 0, 0);
    ADD("one", 3, 1);
    ADD("rand", 0, 100000);
    ADD("text30k", 3, 30000);
    ADD("rep", 1, 1000000);
    ADD("zeros", 2, quick ? 300000 : 3000000);
    ADD("text", 3, quick ? 200000 : 2000000);
    ADD("skew", 4, 300000);
    ADD("small", 0, 77);
    ADD("mix", 5, quick ? 600000 : 6000000);

    /* gzip and python3's zlib are the independent references; a machine with only a C
       compiler and make skips the comparisons that need them. */
    have_ref = run("command -v gzip > /dev/null 2>&1 && command -v cmp > /dev/null 2>&1 && "
                   "python3 -c 'import zlib' > /dev/null 2>&1") == 0;
    printf("crafted deflate streams\n");
    test_crafted();
    if (have_ref) {
        printf("gzip/zlib round trips\n");
        test_gzip_roundtrips(in, nin);
        test_gzip_structure(in, nin);
        printf("hostile input\n");
        test_gzip_hostile(in, nin);
    } else {
        printf("skipped: gzip/zlib reference comparisons (install gzip and python3)\n");
    }
    printf("idx\n");
    test_idx();
    if (have_ref) {
        printf("fashion-mnist\n");
        test_fashion();
    }
    printf("deflate compressor\n");
    test_deflate_roundtrip(in, nin);
    if (have_ref) {
        printf("png\n");
        test_png();
    }
    printf("shapes\n");
    test_shapes();
    printf("cifar-10\n");
    test_cifar();
    printf("netpbm\n");
    test_pnm();
    printf("image lists, padding\n");
    test_images();
    test_pad();

    for (i = 0; i < nin; i++) free(in[i].data);
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (run(cmd) != 0) printf("(could not remove %s)\n", g_dir);
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
