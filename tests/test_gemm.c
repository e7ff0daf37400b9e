/* GEMM tests: every kernel this machine can run (scalar, SSE2, AVX2+FMA, NEON, WASM SIMD128)
 * against a double-precision triple loop, all transposes, alpha/beta, odd shapes, padded
 * leading dimensions, and 1 vs 2 vs 3 threads bit for bit. Also the GEMM benchmark.
 *
 *   make build/test_gemm && build/test_gemm     prints "N passed, M failed"
 *   build/test_gemm quick                       fewer random shapes (for emulators)
 *   build/test_gemm bench [reps] [--peak P1,P2] [--only square|mlp|conv]
 *                                               GFLOP/s per kernel (see "bench" below);
 *                                               build/gemm_bench is this file built with
 *                                               OpenBLAS alongside (make build/gemm_bench)
 *   build/test_gemm kernels                     the kernel chosen at run time, and the rest
 *
 * Other targets checked with the same file:
 *   qemu-x86_64 -cpu Nehalem ./gemm_test quick      (plain cc -O2 build: SSE2 fallback)
 *   make test-neon, make test-wasm                 (NEON under qemu, WASM SIMD128 under node)
 */
/* clock_gettime under -std=c99 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L
#endif
#define VAE_IMPLEMENTATION
#include "../vae.h"
#include <float.h>
#include <time.h>
#ifdef VAE_TEST_OPENBLAS
#include <cblas.h>
#endif

static int g_pass, g_fail;

static unsigned long long g_rng = 0x9E3779B97F4A7C15ULL;
static float rnd(void)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((g_rng >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}
static int rndi(int n)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((g_rng >> 33) % (unsigned long long)n);
}

static float *falloc(size_t n)
{
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void report(int ok, const char *what)
{
    char msg[VAE__ERR_SIZE];
    if (ok) { g_pass++; return; }
    g_fail++;
    vae__errf(msg, "FAIL: %s", what);
    if (g_fail <= 30) printf("%s\n", msg);
}

typedef struct prob {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    float *A, *B, *C0;
    float *bias;   /* NULL, or N values: C = bias + alpha op(A) op(B) (vae__gemm_bias) */
} prob;

static void prob_make(prob *p, int ta, int tb, int M, int N, int K, int pad, float alpha, float beta)
{
    size_t na, nb, nc, i;
    p->ta = ta; p->tb = tb; p->M = M; p->N = N; p->K = K; p->alpha = alpha; p->beta = beta;
    p->lda = (ta ? M : K) + (pad ? 1 + rndi(5) : 0);
    p->ldb = (tb ? K : N) + (pad ? 1 + rndi(5) : 0);
    p->ldc = N + (pad ? 1 + rndi(5) : 0);
    if (p->lda < 1) p->lda = 1;
    if (p->ldb < 1) p->ldb = 1;
    na = (size_t)(ta ? K : M) * p->lda;
    nb = (size_t)(tb ? N : K) * p->ldb;
    nc = (size_t)M * p->ldc;
    p->A = falloc(na); p->B = falloc(nb); p->C0 = falloc(nc); p->bias = NULL;
    for (i = 0; i < na; i++) p->A[i] = rnd();
    for (i = 0; i < nb; i++) p->B[i] = rnd();
    for (i = 0; i < nc; i++) p->C0[i] = beta == 0.0f ? NAN : rnd();
}

static void prob_free(prob *p) { free(p->A); free(p->B); free(p->C0); free(p->bias); }

/* A bias per column; C's old values must then play no part (NaN shows it if they do). */
static void prob_add_bias(prob *p)
{
    size_t i, nc = (size_t)p->M * p->ldc;
    p->bias = falloc((size_t)p->N);
    for (i = 0; i < (size_t)p->N; i++) p->bias[i] = 4.0f * rnd();
    for (i = 0; i < nc; i++) if (i % p->ldc < (size_t)p->N) p->C0[i] = NAN;
}

static float opA(const prob *p, int i, int k) { return p->ta ? p->A[(size_t)k * p->lda + i] : p->A[(size_t)i * p->lda + k]; }
static float opB(const prob *p, int k, int j) { return p->tb ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j]; }

/* Run vae__gemm and compare against a double-precision triple loop.
 * Bound: |err| <= (K + 4) eps (|alpha| sum|a b| + |beta c|), the classic
 * worst-case bound for recursive summation, plus exactness of padding. */
static int prob_check(const prob *p, const vae__gemm_ctx *ctx, float *out)
{
    size_t nc = (size_t)p->M * p->ldc;
    float *C = out ? out : falloc(nc);
    int i, j, k, ok = 1;
    memcpy(C, p->C0, nc * sizeof(float));
    vae__gemm_bias(ctx, p->ta, p->tb, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb, p->beta, p->bias,
                   C, p->ldc);
    for (i = 0; i < p->M && ok; i++) {
        for (j = 0; j < p->ldc; j++) {
            size_t ix = (size_t)i * p->ldc + j;
            if (j >= p->N) {
                /* padding column: must be untouched (NaN-safe bitwise check) */
                if (memcmp(&C[ix], &p->C0[ix], sizeof(float)) != 0) { ok = 0; break; }
                continue;
            } else {
                double s = 0, sa = 0, ref, mag, tol;
                for (k = 0; k < p->K && p->alpha != 0.0f; k++) {
                    double t = (double)opA(p, i, k) * opB(p, k, j);
                    s += t; sa += fabs(t);
                }
                ref = p->alpha * s;
                mag = fabs(p->alpha) * sa;
                if (p->bias) { ref += p->bias[j]; mag += fabs((double)p->bias[j]); }
                else if (p->beta != 0.0f) { ref += (double)p->beta * p->C0[ix]; mag += fabs((double)p->beta * p->C0[ix]); }
                tol = (p->K + 4) * (double)FLT_EPSILON * mag + 1e-30;
                if (!(fabs((double)C[ix] - ref) <= tol)) {
                    if (g_fail < 5)
                        printf("  mismatch at (%d,%d): got %.9g want %.9g tol %.3g\n", i, j, C[ix], ref, tol);
                    ok = 0; break;
                }
            }
        }
    }
    if (!out) free(C);
    return ok;
}

static const int g_dims[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15, 16, 17, 19, 23, 29, 31, 32, 33, 37, 41, 47, 53, 59, 61, 64, 67 };
#define NDIMS ((int)(sizeof(g_dims) / sizeof(g_dims[0])))

static void test_kernel(int kern, float *scratch, size_t sfl, int quick)
{
    static const float ab[][2] = { {1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 1.25f}, {2.0f, 0.0f}, {0.75f, -1.0f} };
    vae__gemm_ctx ctx;
    char what[200];
    int ta, tb, t, nrand = quick ? 25 : 80;
    ctx.threads = 1; ctx.scratch = scratch; ctx.scratch_floats = sfl; ctx.kernel = kern;
    for (ta = 0; ta < 2; ta++) {
        for (tb = 0; tb < 2; tb++) {
            for (t = 0; t < nrand; t++) {
                prob p;
                int M = g_dims[rndi(NDIMS)], N = g_dims[rndi(NDIMS)], K = g_dims[rndi(NDIMS)];
                const float *abv = ab[t % 5];
                prob_make(&p, ta, tb, M, N, K, t & 1, abv[0], abv[1]);
                if (t % 4 == 2) prob_add_bias(&p);
                snprintf(what, sizeof what, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g%s ld=%d,%d,%d",
                         vae__gemm_kernel_name(kern), ta, tb, M, N, K, abv[0], abv[1], p.bias ? " bias" : "",
                         p.lda, p.ldb, p.ldc);
                report(prob_check(&p, &ctx, NULL), what);
                prob_free(&p);
            }
            {
                /* shapes that cross MC, KC and NC block edges, the direct-A
                 * path (narrow N) and its partial edge sliver */
                static const int big[][3] = { {150, 40, 300}, {301, 37, 520}, {128, 20, 400}, {7, 2100, 9},
                                              {67, 1100, 70}, {13, 33, 600}, {290, 17, 3} };
                int b, nb = quick ? 3 : 7;
                for (b = 0; b < nb; b++) {
                    prob p;
                    prob_make(&p, ta, tb, big[b][0], big[b][1], big[b][2], b & 1, 1.5f, b & 1 ? 0.0f : 0.5f);
                    if (b == 0 || b == 2 || b == 4) prob_add_bias(&p);
                    snprintf(what, sizeof what, "%s big ta=%d tb=%d M=%d N=%d K=%d%s", vae__gemm_kernel_name(kern),
                             ta, tb, p.M, p.N, p.K, p.bias ? " bias" : "");
                    report(prob_check(&p, &ctx, NULL), what);
                    prob_free(&p);
                }
            }
        }
    }
    /* K == 0 (C = beta C) and alpha == 0 (A and B not used, NaN in them must not leak) */
    {
        prob p;
        prob_make(&p, 0, 0, 9, 11, 0, 1, 1.0f, 0.5f);
        snprintf(what, sizeof what, "%s K=0 beta=0.5", vae__gemm_kernel_name(kern));
        report(prob_check(&p, &ctx, NULL), what);
        prob_free(&p);
        prob_make(&p, 0, 0, 9, 11, 0, 1, 1.0f, 0.0f);
        snprintf(what, sizeof what, "%s K=0 beta=0 NaN C", vae__gemm_kernel_name(kern));
        report(prob_check(&p, &ctx, NULL), what);
        prob_free(&p);
        prob_make(&p, 0, 0, 9, 11, 0, 1, 1.0f, 0.5f);
        prob_add_bias(&p);
        snprintf(what, sizeof what, "%s K=0 bias", vae__gemm_kernel_name(kern));
        report(prob_check(&p, &ctx, NULL), what);
        prob_free(&p);
        prob_make(&p, 1, 1, 9, 11, 5, 0, 0.0f, 2.0f);
        p.A[3] = NAN;
        snprintf(what, sizeof what, "%s alpha=0", vae__gemm_kernel_name(kern));
        report(prob_check(&p, &ctx, NULL), what);
        prob_free(&p);
    }
}

/* Results must not depend on the thread count: bitwise equality. */
static void test_threads(float *scratch, size_t sfl)
{
    static const int sh[][3] = { {200, 300, 600}, {128, 400, 784}, {128, 784, 400}, {400, 784, 128},
                                 {128, 20, 400}, {67, 61, 59}, {301, 2100, 40}, {37, 1000, 300} };
    int s, ta, tb, kern;
    char what[200];
    for (kern = 0; kern < vae__gemm_kernel_count(); kern++) {
        if (!vae__gemm_kernel_available(kern)) continue;
        for (s = 0; s < (int)(sizeof sh / sizeof sh[0]); s++) {
            for (ta = 0; ta < 2; ta++) {
                for (tb = 0; tb < 2; tb++) {
                    prob p;
                    vae__gemm_ctx c1, c2;
                    float *o1, *o2;
                    size_t nc;
                    int ok;
                    if (kern == 0 && s != 5 && s != 4) continue; /* scalar: keep it short */
                    prob_make(&p, ta, tb, sh[s][0], sh[s][1], sh[s][2], s & 1, 1.25f, (s & 2) ? 0.0f : -0.5f);
                    if (s == 1 || s == 3 || s == 6) prob_add_bias(&p);
                    nc = (size_t)p.M * p.ldc;
                    o1 = falloc(nc); o2 = falloc(nc);
                    c1.threads = 1; c1.scratch = scratch; c1.scratch_floats = sfl; c1.kernel = kern;
                    c2 = c1; c2.threads = 2;
                    ok = prob_check(&p, &c1, o1);
                    ok &= prob_check(&p, &c2, o2);
                    ok &= memcmp(o1, o2, nc * sizeof(float)) == 0;
                    snprintf(what, sizeof what, "threads 1 vs 2 bit-identical %s ta=%d tb=%d M=%d N=%d K=%d",
                             vae__gemm_kernel_name(kern), ta, tb, p.M, p.N, p.K);
                    report(ok, what);
                    /* 3 threads (uneven slices), and 2 threads with scratch for
                     * only one slot (must drop to 1 thread, same bits) */
                    c2.threads = 3;
                    ok = prob_check(&p, &c2, o2) && memcmp(o1, o2, nc * sizeof(float)) == 0;
                    c2.threads = 2; c2.scratch_floats = vae__gemm_scratch_floats(1);
                    ok = ok && prob_check(&p, &c2, o2) && memcmp(o1, o2, nc * sizeof(float)) == 0;
                    snprintf(what, sizeof what, "threads 3 / 1-slot bit-identical %s ta=%d tb=%d M=%d N=%d K=%d",
                             vae__gemm_kernel_name(kern), ta, tb, p.M, p.N, p.K);
                    report(ok, what);
                    c2.scratch_floats = sfl;
                    /* and the no-scratch fallback, serial and threaded */
                    c1.scratch = NULL; c2.scratch = NULL;
                    ok = prob_check(&p, &c1, o1) && prob_check(&p, &c2, o2);
                    ok &= memcmp(o1, o2, nc * sizeof(float)) == 0;
                    snprintf(what, sizeof what, "fallback threads %s ta=%d tb=%d M=%d N=%d K=%d",
                             vae__gemm_kernel_name(kern), ta, tb, p.M, p.N, p.K);
                    report(ok, what);
                    free(o1); free(o2);
                    prob_free(&p);
                }
            }
        }
    }
}

/* Scratch NULL / too small -> no-memory fallback, equal to packed within tolerance. */
static void test_fallback(float *scratch, size_t sfl)
{
    int t;
    char what[200];
    for (t = 0; t < 40; t++) {
        prob p;
        vae__gemm_ctx c;
        float *o1, *o2;
        size_t nc, i;
        int ok = 1;
        prob_make(&p, t & 1, (t >> 1) & 1, g_dims[rndi(NDIMS)] * 3, g_dims[rndi(NDIMS)] * 2, g_dims[rndi(NDIMS)] * 5,
                  t & 4, 0.9f, (t & 8) ? 0.0f : 0.3f);
        if (t >= 32) prob_add_bias(&p);
        nc = (size_t)p.M * p.ldc;
        o1 = falloc(nc); o2 = falloc(nc);
        c.threads = 1; c.scratch = scratch; c.scratch_floats = sfl; c.kernel = -1;
        ok &= prob_check(&p, &c, o1);
        c.scratch = (t & 16) ? NULL : scratch;
        c.scratch_floats = (t & 16) ? sfl : 7; /* NULL, or far too small */
        ok &= prob_check(&p, &c, o2);
        for (i = 0; i < nc && ok; i++) {
            double d = fabs((double)o1[i] - o2[i]);
            if (memcmp(&o1[i], &o2[i], sizeof(float)) == 0) continue; /* incl. NaN padding */
            if (!(d <= 1e-4 * (1.0 + fabs((double)o1[i])))) ok = 0;
        }
        snprintf(what, sizeof what, "fallback (%s) vs packed ta=%d tb=%d M=%d N=%d K=%d",
                 (t & 16) ? "NULL" : "small", p.ta, p.tb, p.M, p.N, p.K);
        report(ok, what);
        free(o1); free(o2);
        prob_free(&p);
    }
}

static void test_public(void)
{
    /* vae_gemm: single thread, best kernel, malloc'd scratch */
    float A[6] = { 1, 2, 3, 4, 5, 6 }, B[6] = { 1, 0, -1, 2, 0.5f, 1 }, C[4];
    float want[4];
    /* A (2x3), B stored (2x3) -> transb: C = A B^T (2x2) */
    want[0] = 1 * 1 + 2 * 0 + 3 * -1;  want[1] = 1 * 2 + 2 * 0.5f + 3 * 1;
    want[2] = 4 * 1 + 5 * 0 + 6 * -1;  want[3] = 4 * 2 + 5 * 0.5f + 6 * 1;
    C[0] = C[1] = C[2] = C[3] = NAN;
    vae_gemm(0, 1, 2, 2, 3, 1.0f, A, 3, B, 3, 0.0f, C, 2);
    report(C[0] == want[0] && C[1] == want[1] && C[2] == want[2] && C[3] == want[3], "vae_gemm small");
    {
        prob p;
        vae__gemm_ctx c;
        float *o;
        prob_make(&p, 1, 0, 150, 90, 300, 1, 0.5f, 2.0f);
        o = falloc((size_t)p.M * p.ldc);
        memcpy(o, p.C0, (size_t)p.M * p.ldc * sizeof(float));
        vae_gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A, p.lda, p.B, p.ldb, p.beta, o, p.ldc);
        c.threads = 1; c.scratch = NULL; c.scratch_floats = 0; c.kernel = -1;
        {
            /* compare against the fallback path through prob_check's tolerance */
            float *o2 = falloc((size_t)p.M * p.ldc);
            size_t i;
            int ok = prob_check(&p, &c, o2);
            for (i = 0; i < (size_t)p.M * p.ldc && ok; i++)
                if (!(fabs((double)o[i] - o2[i]) <= 1e-4 * (1.0 + fabs((double)o2[i])))) ok = 0;
            report(ok, "vae_gemm vs fallback");
            free(o2);
        }
        free(o);
        prob_free(&p);
    }
    /* invalid arguments are a no-op */
    C[0] = 42.0f;
    vae_gemm(0, 0, 1, 1, 3, 1.0f, A, 2 /* lda < K */, B, 1, 0.0f, C, 1);
    report(C[0] == 42.0f, "vae_gemm invalid lda is a no-op");
    report(vae_gemm_kernel_name_active() != NULL && strcmp(vae_gemm_kernel_name_active(), "none") != 0,
           "active kernel name");
}

/* ------------------------------------------------------------------ bench */
/* GFLOP/s of every kernel this machine runs, side by side with OpenBLAS sgemm when built
 * with -DVAE_TEST_OPENBLAS, at 1 and 2 threads, on the shapes of issue 5: squares 64-1024,
 * the MLP's products, and every GEMM of the seed-002 conv preset (1x32x32, batch 32),
 * derived from the preset's layer list the way the conv layers call vae__gemm.
 *
 * The contenders alternate within each rep (the first one rotates) and the median rep is
 * reported, so noise from other jobs on a shared machine hits all of them. 1 thread is
 * timed in this thread's CPU time (other jobs that deschedule us distort it less); 2
 * threads need wall time. Each timed rep repeats the call for >= 40 ms. Every contender's
 * result is first checked against OpenBLAS (or the scalar kernel) so a broken kernel
 * cannot post a good time. With --peak P1,P2 (GFLOP/s at 1 and 2 threads, from
 * build/peak) each figure is also given as a percentage of the peak.
 * Lines starting with "@" are for bench/run.sh: "@ gemm <group> <MxNxK> <thr> <who> <median> <best>". */
static int g_wall = 0;
static double now(void)
{
    struct timespec t;
    clock_gettime(g_wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct bshape {
    int M, N, K, ta, tb;
    float beta;        /* as the model calls it: 1 where C accumulates (bias, dW over images) */
    char group[8];     /* square, mlp, conv */
    char what[2 * VAE_NAME_MAX + 16];
} bshape;

#define BENCH_MAX_SHAPES 64
#define BENCH_MAX_REPS 32
#define BENCH_OPENBLAS (-1) /* contender id of OpenBLAS; kernels are 0.. */

static void bshape_add(bshape *s, int *n, const char *group, const char *what, int M, int N, int K,
                       int ta, int tb, float beta)
{
    int i;
    for (i = 0; i < *n; i++) /* the same product twice is timed once, under both names */
        if (s[i].M == M && s[i].N == N && s[i].K == K && s[i].ta == ta && s[i].tb == tb && s[i].beta == beta &&
            strcmp(s[i].group, group) == 0) {
            size_t len = strlen(s[i].what);
            snprintf(s[i].what + len, sizeof s[i].what - len, ", %s", what);
            return;
        }
    if (*n >= BENCH_MAX_SHAPES) return;
    s[*n].M = M; s[*n].N = N; s[*n].K = K; s[*n].ta = ta; s[*n].tb = tb; s[*n].beta = beta;
    snprintf(s[*n].group, sizeof s[*n].group, "%s", group);
    snprintf(s[*n].what, sizeof s[*n].what, "%s", what);
    (*n)++;
}

/* The products one training step of the conv preset runs, per layer: forward, dW, dX.
 * Conv and ConvTranspose run on chunks of q images side by side (vae__conv_chunk, from the
 * model's planned work space: 16 or 32 images at batch 32), as vae__conv_* / vae__convt_*
 * call vae__gemm; dW takes beta = 1 after a layer's first chunk. Linear works on the whole
 * batch. dX is skipped where the layer's input is the model's input (the model computes no
 * gradient for it). */
static void bench_conv_shapes(bshape *s, int *n, int batch)
{
    char arch[VAE_ARCH_MAX], what[VAE_NAME_MAX + 8];
    vae_config c;
    vae_model m;
    int i, input_view = 1;
    vae_config_preset(&c, "conv");
    c.batch = batch;
    if (vae_arch_preset(arch, sizeof arch, "conv", 1, 32, 32, 0, 0) != VAE_OK ||
        vae_model_init(&m, arch, &c, VAE_INFERENCE) != VAE_OK) {
        printf("(could not build the conv preset: no conv shapes)\n");
        return;
    }
    for (i = 1; i < m.nlayers; i++) {
        const vae_layer *l = &m.layers[i], *p = &m.layers[i - 1];
        int dx = !input_view, in = (int)(p->c * p->h * p->w);
        if (l->op != VAE_OP_INPUT && l->op != VAE_OP_FLATTEN && l->op != VAE_OP_RESHAPE) input_view = 0;
        if (l->op == VAE_OP_CONV || l->op == VAE_OP_CONVT) {
            /* A convolution multiplies its R x K weights by K x N columns (K = channels x k x k on
             * the im2col side, N = q x positions): conv's forward is W cols and its dX is W^T dy;
             * ConvTranspose, the adjoint, has the two the other way round. */
            const int conv = l->op == VAE_OP_CONV, q = vae__conv_chunk(l, m.cols_floats, batch);
            const int R = conv ? l->c : l->in_c, K = (conv ? l->in_c : l->c) * l->k * l->k;
            const int N = q * (conv ? l->h * l->w : l->in_h * l->in_w);
            snprintf(what, sizeof what, "%s %s", l->name, conv ? "fwd" : "dX");
            if (conv || dx) bshape_add(s, n, "conv", what, R, N, K, 0, 0, 0.0f);
            snprintf(what, sizeof what, "%s dW", l->name);
            bshape_add(s, n, "conv", what, R, K, N, 0, 1, q < batch ? 1.0f : 0.0f);
            snprintf(what, sizeof what, "%s %s", l->name, conv ? "dX" : "fwd");
            if (!conv || dx) bshape_add(s, n, "conv", what, K, N, R, 1, 0, 0.0f);
        } else if (l->op == VAE_OP_LINEAR || l->op == VAE_OP_MULV) {
            snprintf(what, sizeof what, "%s fwd", l->name);
            bshape_add(s, n, "conv", what, batch, l->c, in, 0, 1, l->has_bias ? 1.0f : 0.0f);
            snprintf(what, sizeof what, "%s dW", l->name);   bshape_add(s, n, "conv", what, l->c, in, batch, 1, 0, 0.0f);
            snprintf(what, sizeof what, "%s dX", l->name);
            if (dx) bshape_add(s, n, "conv", what, batch, in, l->c, 0, 0, 0.0f);
        }
    }
    vae_model_free(&m);
}

/* One timed rep: seconds per call, over >= 40 ms. */
static double bench_time(int who, const vae__gemm_ctx *c, const bshape *s, const float *A, const float *B, float *C)
{
    int reps = 0, lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double t0 = now(), t;
    do {
#ifdef VAE_TEST_OPENBLAS
        if (who == BENCH_OPENBLAS)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                        s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N);
        else
#endif
            vae__gemm(c, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N);
        reps++;
    } while ((t = now() - t0) < 0.04);
    (void)who;
    return t / reps;
}

static const char *bench_name(int who) { return who == BENCH_OPENBLAS ? "openblas" : vae__gemm_kernel_name(who); }

static void bench_header(const int *who, int nwho, int have_peak)
{
    int w;
    printf("\n%-6s %-30s %-16s %-5s %3s", "group", "layer / use", "M x N x K", "ta tb", "thr");
    for (w = 0; w < nwho; w++) printf(have_peak ? " %12s" : " %8s", bench_name(who[w]));
    if (who[nwho - 1] == BENCH_OPENBLAS) printf("  %s/openblas", vae__gemm_kernel_name(vae__gemm_best_kernel()));
    printf("\n");
}

static void bench(int nrep, const double *peak, const char *only)
{
    bshape shapes[BENCH_MAX_SHAPES];
    int nsh = 0, s, r, th, w, nwho = 0, who[8], best = vae__gemm_best_kernel(), maxth = 1, k;
    static const int sq[] = { 64, 128, 256, 512, 1024 };
    size_t sfl = vae__gemm_scratch_floats(2);
    float *scratch = falloc(sfl);
    double t[8][BENCH_MAX_REPS];
    const char *group = "";
#ifdef _OPENMP
    maxth = 2;
#endif
    if (nrep < 1) nrep = 1;
    if (nrep > BENCH_MAX_REPS) nrep = BENCH_MAX_REPS;
    for (k = 0; k < 5; k++) bshape_add(shapes, &nsh, "square", "", sq[k], sq[k], sq[k], 0, 0, 0.0f);
    /* the seed-003 MLP at batch 128, with the transposes the model uses */
    bshape_add(shapes, &nsh, "mlp", "fwd x*W^T", 128, 400, 784, 0, 1, 1.0f);
    bshape_add(shapes, &nsh, "mlp", "dX = dY*W", 128, 784, 400, 0, 0, 0.0f);
    bshape_add(shapes, &nsh, "mlp", "dW = dY^T*X", 400, 784, 128, 1, 0, 0.0f);
    bshape_add(shapes, &nsh, "mlp", "fwd x*W^T", 128, 20, 400, 0, 1, 1.0f);
    bench_conv_shapes(shapes, &nsh, 32);
    for (k = 0; k < vae__gemm_kernel_count(); k++)
        if (vae__gemm_kernel_available(k)) who[nwho++] = k;
#ifdef VAE_TEST_OPENBLAS
    who[nwho++] = BENCH_OPENBLAS;
#endif
    printf("GEMM GFLOP/s: median of %d alternating reps; 1 thread by thread CPU time, 2 threads by wall time.\n", nrep);
    if (peak[0] > 0)
        printf("%% = of the measured AVX2 FMA peak for that thread count (%.1f / %.1f GFLOP/s).\n", peak[0], peak[1]);
    printf("square: C = A B. mlp: seed 003 at batch 128 (the model's transposes). conv: every product of one\n"
           "training step of the seed-002 conv preset at 1x32x32, batch 32 (conv/convt layers on chunks of images,\n"
           "linear layers per batch; beta = 1 where the layer accumulates into C).\n");
    for (s = 0; s < nsh; s++) {
        const bshape *sh = &shapes[s];
        size_t na = (size_t)sh->M * sh->K, nb = (size_t)sh->K * sh->N, nc = (size_t)sh->M * sh->N, i;
        float *A, *B, *C, *ref;
        double fl = 2.0 * sh->M * sh->N * sh->K;
        char dims[32];
        if (only && strcmp(only, sh->group) != 0) continue;
        if (strcmp(group, sh->group) != 0) { group = sh->group; bench_header(who, nwho, peak[0] > 0); }
        A = falloc(na); B = falloc(nb); C = falloc(nc); ref = falloc(nc);
        for (i = 0; i < na; i++) A[i] = rnd();
        for (i = 0; i < nb; i++) B[i] = rnd();
        snprintf(dims, sizeof dims, "%dx%dx%d", sh->M, sh->N, sh->K);
        /* validate: every contender against the scalar kernel (|a|, |b| <= 1, so the error
           of a K-term sum is within (K + 4) eps K) */
        {
            bshape z = *sh;
            vae__gemm_ctx c;
            double tol = (sh->K + 4) * (double)FLT_EPSILON * sh->K;
            z.beta = 0.0f;
            c.threads = 1; c.scratch = scratch; c.scratch_floats = sfl; c.kernel = 0;
            vae__gemm(&c, z.ta, z.tb, z.M, z.N, z.K, 1.0f, A, z.ta ? z.M : z.K, B, z.tb ? z.K : z.N, 0.0f, ref, z.N);
            for (w = 0; w < nwho; w++) {
                double err = 0;
                c.kernel = who[w];
                for (i = 0; i < nc; i++) C[i] = NAN;
#ifdef VAE_TEST_OPENBLAS
                openblas_set_num_threads(1);
                if (who[w] == BENCH_OPENBLAS)
                    cblas_sgemm(CblasRowMajor, z.ta ? CblasTrans : CblasNoTrans, z.tb ? CblasTrans : CblasNoTrans,
                                z.M, z.N, z.K, 1.0f, A, z.ta ? z.M : z.K, B, z.tb ? z.K : z.N, 0.0f, C, z.N);
                else
#endif
                    vae__gemm(&c, z.ta, z.tb, z.M, z.N, z.K, 1.0f, A, z.ta ? z.M : z.K, B, z.tb ? z.K : z.N, 0.0f, C, z.N);
                for (i = 0; i < nc; i++) {
                    double d = fabs((double)C[i] - ref[i]);
                    if (!(d <= err)) err = d; /* NaN sticks */
                }
                if (!(err <= tol)) printf("!! %s %s: max error %g against the scalar kernel (tolerance %g)\n",
                                          bench_name(who[w]), dims, err, tol);
            }
        }
        for (i = 0; i < nc; i++) C[i] = 0.0f;
        for (th = 1; th <= maxth; th++) {
            vae__gemm_ctx c;
            double med[8];
            g_wall = th > 1;
#ifdef VAE_TEST_OPENBLAS
            openblas_set_num_threads(th);
#endif
            c.threads = th; c.scratch = scratch; c.scratch_floats = sfl;
            for (w = 0; w < nwho; w++) { c.kernel = who[w]; bench_time(who[w], &c, sh, A, B, C); } /* warm up */
            for (r = 0; r < nrep; r++)
                for (k = 0; k < nwho; k++) {
                    w = (k + r) % nwho;
                    c.kernel = who[w];
                    t[w][r] = bench_time(who[w], &c, sh, A, B, C);
                }
            printf("%-6s %-30s %-16s %2d %2d %3d", sh->group, sh->what, dims, sh->ta, sh->tb, th);
            for (w = 0; w < nwho; w++) {
                qsort(t[w], (size_t)nrep, sizeof(double), cmpd);
                med[w] = fl / t[w][nrep / 2] * 1e-9;
                if (peak[0] > 0) printf(" %7.1f %3.0f%%", med[w], 100.0 * med[w] / peak[th - 1]);
                else printf(" %8.1f", med[w]);
            }
            if (who[nwho - 1] == BENCH_OPENBLAS)
                for (w = 0; w < nwho; w++)
                    if (who[w] == best) printf("  %7.0f%%", 100.0 * med[w] / med[nwho - 1]);
            printf("\n");
            for (w = 0; w < nwho; w++)
                printf("@ gemm %s %s %d %s %.2f %.2f\n", sh->group, dims, th, bench_name(who[w]), med[w],
                       fl / t[w][0] * 1e-9);
            fflush(stdout);
        }
        free(A); free(B); free(C); free(ref);
    }
#ifndef _OPENMP
    printf("(built without OpenMP: 2 threads not measured)\n");
#endif
    free(scratch);
}

/* What the report's machine section shows. */
static void kernels_info(void)
{
    int k;
    printf("%s (compiled:", vae_gemm_kernel_name_active());
    for (k = 0; k < vae__gemm_kernel_count(); k++)
        printf(" %s%s", vae__gemm_kernel_name(k), vae__gemm_kernel_available(k) ? "" : "(CPU lacks it)");
    printf(")\n");
#ifdef VAE_TEST_OPENBLAS
    printf("openblas %s, core %s\n", openblas_get_config(), openblas_get_corename());
#else
    printf("openblas not built in\n");
#endif
}

int main(int argc, char **argv)
{
    size_t sfl = vae__gemm_scratch_floats(2);
    float *scratch;
    int k, quick = 0;
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        /* bench [reps] [--peak P1,P2] [--only square|mlp|conv] */
        double peak[2] = { 0, 0 };
        const char *only = NULL;
        int reps = 5;
        for (k = 2; k < argc; k++) {
            if (strcmp(argv[k], "--peak") == 0 && k + 1 < argc) {
                if (sscanf(argv[++k], "%lf,%lf", &peak[0], &peak[1]) < 1) peak[0] = 0;
                if (peak[1] <= 0) peak[1] = 2 * peak[0];
            } else if (strcmp(argv[k], "--only") == 0 && k + 1 < argc) only = argv[++k];
            else reps = atoi(argv[k]);
        }
        bench(reps, peak, only);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "kernels") == 0) { kernels_info(); return 0; }
    if (argc > 1 && strcmp(argv[1], "quick") == 0) quick = 1; /* for slow emulators */
    scratch = falloc(sfl);
    printf("kernels:");
    for (k = 0; k < vae__gemm_kernel_count(); k++)
        printf(" %s%s", vae__gemm_kernel_name(k), vae__gemm_kernel_available(k) ? "" : "(unavailable)");
    printf("; active: %s; scratch %lu floats\n", vae_gemm_kernel_name_active(), (unsigned long)sfl);
    for (k = 0; k < vae__gemm_kernel_count(); k++)
        if (vae__gemm_kernel_available(k)) test_kernel(k, scratch, sfl, quick);
    test_threads(scratch, sfl);
    test_fallback(scratch, sfl);
    test_public();
#ifndef _OPENMP
    printf("(built without OpenMP: the thread tests ran serially)\n");
#endif
    printf("%d passed, %d failed\n", g_pass, g_fail);
    free(scratch);
    return g_fail != 0;
}
