/* GEMM tests: every kernel this machine can run (scalar, SSE2, AVX2+FMA, NEON, WASM SIMD128)
 * against a double-precision triple loop, all transposes, alpha/beta, odd shapes, padded
 * leading dimensions, and 1 vs 2 vs 3 threads bit for bit. Also a small benchmark.
 *
 *   make build/test_gemm && build/test_gemm     prints "N passed, M failed"
 *   build/test_gemm quick                       fewer random shapes (for emulators)
 *   build/test_gemm bench [reps] [all | shape]  GFLOP/s, median of reps ("make bench" adds
 *                                               OpenBLAS alongside when it is installed)
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
    p->A = falloc(na); p->B = falloc(nb); p->C0 = falloc(nc);
    for (i = 0; i < na; i++) p->A[i] = rnd();
    for (i = 0; i < nb; i++) p->B[i] = rnd();
    for (i = 0; i < nc; i++) p->C0[i] = beta == 0.0f ? NAN : rnd();
}

static void prob_free(prob *p) { free(p->A); free(p->B); free(p->C0); }

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
    vae__gemm(ctx, p->ta, p->tb, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb, p->beta, C, p->ldc);
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
                if (p->beta != 0.0f) { ref += (double)p->beta * p->C0[ix]; mag += fabs((double)p->beta * p->C0[ix]); }
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
                snprintf(what, sizeof what, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g ld=%d,%d,%d",
                         vae__gemm_kernel_name(kern), ta, tb, M, N, K, abv[0], abv[1], p.lda, p.ldb, p.ldc);
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
                    snprintf(what, sizeof what, "%s big ta=%d tb=%d M=%d N=%d K=%d", vae__gemm_kernel_name(kern),
                             ta, tb, p.M, p.N, p.K);
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
/* Single-thread runs are timed in this thread's CPU time, so other jobs on
 * this shared 2-core machine (which deschedule us) distort them less;
 * multi-thread runs need wall time. */
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

typedef struct bshape { int M, N, K, ta, tb; const char *what; } bshape;

/* Seconds per call, timed over >= 40 ms. */
static double time_ours(const vae__gemm_ctx *c, const bshape *s, const float *A, const float *B, float *C)
{
    int reps = 0;
    double t0 = now(), t;
    do {
        vae__gemm(c, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->ta ? s->M : s->K, B, s->tb ? s->K : s->N,
                  0.0f, C, s->N);
        reps++;
    } while ((t = now() - t0) < 0.04);
    return t / reps;
}

#ifdef VAE_TEST_OPENBLAS
static double time_blas(const bshape *s, const float *A, const float *B, float *C)
{
    int reps = 0;
    double t0 = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                    s->M, s->N, s->K, 1.0f, A, s->ta ? s->M : s->K, B, s->tb ? s->K : s->N, 0.0f, C, s->N);
        reps++;
    } while ((t = now() - t0) < 0.04);
    return t / reps;
}
#endif

static void bench(int nrep, int all, int only)
{
    static const bshape shapes[] = {
        { 256, 256, 256, 0, 0, "square" }, { 512, 512, 512, 0, 0, "square" }, { 1024, 1024, 1024, 0, 0, "square" },
        { 128, 400, 784, 0, 1, "fwd X*W^T" }, { 128, 784, 400, 0, 0, "dX=dY*W" }, { 400, 784, 128, 1, 0, "dW=dY^T*X" },
        { 128, 20, 400, 0, 1, "fwd X*W^T" },
        { 128, 400, 784, 0, 0, "NN" }, { 400, 784, 128, 0, 0, "NN" }, { 128, 20, 400, 0, 0, "NN" },
    };
    int nsh = (int)(sizeof shapes / sizeof shapes[0]), s, kern, r, th;
    size_t sfl = vae__gemm_scratch_floats(2);
    float *scratch = falloc(sfl);
    double *t1 = (double *)malloc(sizeof(double) * nrep), *t2 = (double *)malloc(sizeof(double) * nrep);
    int maxth = 1;
#ifdef _OPENMP
    maxth = 2;
#endif
#ifdef VAE_TEST_OPENBLAS
    openblas_set_num_threads(1);
#endif
    printf("best kernel: %s   (median of %d reps; GFLOP/s; thr=1 by thread CPU time, thr=2 by wall time)\n",
           vae_gemm_kernel_name_active(), nrep);
    for (s = 0; s < nsh; s++) {
        const bshape *sh = &shapes[s];
        if (only >= 0 && s != only) continue;
        size_t na = (size_t)sh->M * sh->K, nb = (size_t)sh->K * sh->N, i;
        float *A = falloc(na), *B = falloc(nb), *C = falloc((size_t)sh->M * sh->N);
        double fl = 2.0 * sh->M * sh->N * sh->K;
        for (i = 0; i < na; i++) A[i] = rnd();
        for (i = 0; i < nb; i++) B[i] = rnd();
        for (th = 1; th <= maxth; th++) {
            if (th > 1 && !(sh->M == 1024)) continue;
#ifdef VAE_TEST_OPENBLAS
            openblas_set_num_threads(th);
#endif
            g_wall = th > 1;
            for (kern = 0; kern < vae__gemm_kernel_count(); kern++) {
                vae__gemm_ctx c;
                double mo, mb = 0;
                if (!vae__gemm_kernel_available(kern)) continue;
                if (!all && kern != vae__gemm_best_kernel() && (sh->M >= 512 || th > 1)) continue;
                c.threads = th; c.scratch = scratch; c.scratch_floats = sfl; c.kernel = kern;
                time_ours(&c, sh, A, B, C); /* warm up */
                for (r = 0; r < nrep; r++) {
                    t1[r] = time_ours(&c, sh, A, B, C);
#ifdef VAE_TEST_OPENBLAS
                    if (kern == vae__gemm_best_kernel()) t2[r] = time_blas(sh, A, B, C);
#endif
                }
                qsort(t1, (size_t)nrep, sizeof(double), cmpd);
                mo = fl / t1[nrep / 2] * 1e-9;
                printf("%4d x %4d x %4d ta=%d tb=%d %-10s thr=%d %-6s %6.1f", sh->M, sh->N, sh->K, sh->ta, sh->tb,
                       sh->what, th, vae__gemm_kernel_name(kern), mo);
                /* wall time suffers from other jobs on the machine: show the best rep too */
                if (th > 1) printf(" (best %6.1f)", fl / t1[0] * 1e-9);
#ifdef VAE_TEST_OPENBLAS
                if (kern == vae__gemm_best_kernel()) {
                    qsort(t2, (size_t)nrep, sizeof(double), cmpd);
                    mb = fl / t2[nrep / 2] * 1e-9;
                    printf("   openblas %6.1f   ratio %5.1f%%", mb, 100.0 * mo / mb);
                    if (th > 1) printf(" (openblas best %6.1f)", fl / t2[0] * 1e-9);
                }
#endif
                (void)mb;
                printf("\n");
                fflush(stdout);
            }
        }
        free(A); free(B); free(C);
    }
    free(t1); free(t2); free(scratch);
}

int main(int argc, char **argv)
{
    size_t sfl = vae__gemm_scratch_floats(2);
    float *scratch;
    int k, quick = 0;
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        /* bench [reps] [all | shape-index] */
        int all = argc > 3 && strcmp(argv[3], "all") == 0;
        bench(argc > 2 ? atoi(argv[2]) : 5, all, argc > 3 && !all ? atoi(argv[3]) : -1);
        return 0;
    }
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
