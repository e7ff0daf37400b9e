/* Tests and a small benchmark for vae.h's elementwise kernels (Adam, SGD, sum of squares,
 * fused BCE + sigmoid, sigmoid / tanh / SiLU, and the exp / log1p behind them): every kernel
 * this machine can run against its scalar twin and a double-precision reference.
 *
 *   make build/test_elem && build/test_elem
 *   build/test_elem bench    ns/element, scalar twin vs the dispatched kernel (median of runs)
 *   build/test_elem big      adds the n = 50M sum-of-squares check (200 MB)
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L
#endif
#define VAE_IMPLEMENTATION
#include "../vae.h"
#include <float.h>
#include <time.h>

static int g_pass, g_fail;

static void report(int ok, const char *fmt, ...)
{
    char msg[VAE__ERR_SIZE];
    va_list ap;
    if (ok) { g_pass++; return; }
    g_fail++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_fail <= 40) printf("FAIL: %s\n", msg);
}

static unsigned long long g_rng = 0x9E3779B97F4A7C15ULL;
static double rndu(void)   /* [0, 1) */
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}
static float rnds(float a) { return (float)((rndu() * 2 - 1) * a); }

static float *falloc(size_t n)
{
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static int same(float a, float b) { return fbits(a) == fbits(b) || (a != a && b != b); }

/* |y - ref| in units of the float ulp at ref (2^-149 in the subnormals). */
static double ulp_err(float y, double ref)
{
    int e;
    double u;
    if (y != y || ref != ref) return (y != y && ref != ref) ? 0 : 1e30;
    if (isinf(ref) || fabs(ref) > FLT_MAX) return (isinf(y) && (y > 0) == (ref > 0)) ? 0 : 1e30;
    if (isinf(y)) return 1e30;
    frexp(ref, &e);
    u = ldexp(1.0, (e - 24 < -149) ? -149 : e - 24);
    return fabs((double)y - ref) / u;
}
/* ulp distance between two floats */
static double ulp_diff(float a, float b) { return ulp_err(a, (double)b); }

/* ---- the kernel table ---------------------------------------------------------- */
typedef void (*adam_fn)(float *, const float *, float *, float *, size_t, float, float, float, float, float, float, float);
typedef void (*sgd_fn)(float *, const float *, float *, size_t, float, float, float);
typedef double (*sumsq_fn)(const float *, size_t);
typedef double (*bce_fn)(const float *, const float *, float *, float *, size_t, float);
typedef void (*map_fn)(float *, const float *, size_t);

/* Apply the raw vector exp / log1p of a kernel to an array whose length is a multiple of 8. */
static void exp_scalar_arr(float *y, const float *x, size_t n)
{ size_t i; for (i = 0; i < n; i++) y[i] = vae__elem_exp_scalar(x[i]); }
static void log1p_scalar_arr(float *y, const float *x, size_t n)
{ size_t i; for (i = 0; i < n; i++) y[i] = vae__elem_log1p_scalar(x[i]); }
#define TEST_ARR(S, ATTR, LD, ST, W) \
static ATTR void exp_##S##_arr(float *y, const float *x, size_t n) \
{ size_t i; for (i = 0; i < n; i += W) ST(y + i, vae__elem_exp_##S(LD(x + i))); } \
static ATTR void log1p_##S##_arr(float *y, const float *x, size_t n) \
{ size_t i; for (i = 0; i < n; i += W) ST(y + i, vae__elem_log1p_##S(LD(x + i))); }
#ifdef VAE__ELEM_HAVE_SSE2
TEST_ARR(sse2, , _mm_loadu_ps, _mm_storeu_ps, 4)
#endif
#ifdef VAE__ELEM_HAVE_AVX2
TEST_ARR(avx2, VAE__GEMM_AVX2_ATTR, _mm256_loadu_ps, _mm256_storeu_ps, 8)
#endif
#ifdef VAE__ELEM_HAVE_NEON
TEST_ARR(neon, , vld1q_f32, vst1q_f32, 4)
#endif
#ifdef VAE__ELEM_HAVE_WASM
TEST_ARR(wasm, , wasm_v128_load, wasm_v128_store, 4)
#endif

typedef struct kern {
    const char *name;
    int level;          /* vae__elem_kernel() value needed */
    adam_fn adam; sgd_fn sgd; sumsq_fn sumsq; bce_fn bce;
    map_fn sig, tanh_, silu, exp_, log1p_;
} kern;

#define KROW(S, L) { #S, L, vae__adam_update_##S, vae__sgd_update_##S, vae__sumsq_##S, vae__bce_logits_##S, \
    vae__sigmoid_forward_##S, vae__tanh_forward_##S, vae__silu_forward_##S, exp_##S##_arr, log1p_##S##_arr },
static const kern g_kernels[] = {
    KROW(scalar, 0)
#ifdef VAE__ELEM_HAVE_SSE2
    KROW(sse2, 1)
#endif
#ifdef VAE__ELEM_HAVE_NEON
    KROW(neon, 1)
#endif
#ifdef VAE__ELEM_HAVE_WASM
    KROW(wasm, 1)
#endif
#ifdef VAE__ELEM_HAVE_AVX2
    KROW(avx2, 2)
#endif
};
#define NK ((int)(sizeof g_kernels / sizeof g_kernels[0]))
static int kern_ok(int k) { return g_kernels[k].level <= vae__elem_kernel(); }

/* ---- double references ------------------------------------------------------------ */
static double ref_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
static double ref_bce(const float *l, const float *t, size_t n)
{
    long double s = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double L = l[i];
        s += (long double)((L > 0 ? L : 0) - L * t[i] + log1p(exp(-fabs(L))));
    }
    return (double)s;
}

/* ---- exp / log1p sweeps ------------------------------------------------------------- */
#define SWEEP_CHUNK 4096
/* Every `stride`-th float bit pattern in [lo_bits, hi_bits] for positive floats (neg: the negated
 * values), run through kernel k's function, error against the double reference. */
static double sweep(int k, int which, uint32_t lo_bits, uint32_t hi_bits, uint32_t stride, int neg,
                    double *worst_x)
{
    float x[SWEEP_CHUNK], y[SWEEP_CHUNK];
    double worst = 0;
    uint64_t b = lo_bits;
    const kern *K = &g_kernels[k];
    while (b <= hi_bits) {
        size_t n = 0, i;
        for (; n < SWEEP_CHUNK && b <= hi_bits; n++, b += stride) x[n] = neg ? -bitsf((uint32_t)b) : bitsf((uint32_t)b);
        while (n % 8) { x[n] = x[n - 1]; n++; }
        (which ? K->log1p_ : K->exp_)(y, x, n);
        for (i = 0; i < n; i++) {
            double r = which ? log1p((double)x[i]) : exp((double)x[i]);
            double e = ulp_err(y[i], r);
            if (e > worst) { worst = e; *worst_x = x[i]; }
        }
    }
    return worst;
}

static void test_math(void)
{
    int k;
    for (k = 0; k < NK; k++) {
        double wx = 0, e1, e2, e3, e4, e5;
        float x[8], y[8];
        if (!kern_ok(k)) continue;
        /* exp over [-110, 90] (both signs), stride 7 bit patterns: ~300M / 7 values */
        e1 = sweep(k, 0, 0, fbits(110.0f), 61, 1, &wx);
        e2 = sweep(k, 0, 0, fbits(90.0f), 61, 0, &wx);
        printf("  %-6s exp   max %.3f ulp (x = %.9g)\n", g_kernels[k].name, e1 > e2 ? e1 : e2, wx);
        report(e1 <= 2 && e2 <= 2, "%s exp max ulp %g / %g", g_kernels[k].name, e1, e2);
        /* log1p over (-1, 0) and [0, FLT_MAX], denser on the BCE domain [0, 1] */
        e3 = sweep(k, 1, 0, fbits(1.0f) - 1, 67, 1, &wx);
        e4 = sweep(k, 1, 0, fbits(FLT_MAX), 251, 0, &wx);
        e5 = sweep(k, 1, 0, fbits(1.0f), 61, 0, &wx);
        if (e4 < e3) e4 = e3;
        if (e4 < e5) e4 = e5;
        printf("  %-6s log1p max %.3f ulp (x = %.9g)\n", g_kernels[k].name, e4, wx);
        report(e4 <= 2, "%s log1p max ulp %g", g_kernels[k].name, e4);
        /* specials */
        x[0] = INFINITY; x[1] = -INFINITY; x[2] = NAN; x[3] = 88.72f; x[4] = 88.73f; x[5] = -103.98f;
        x[6] = -87.4f; x[7] = 0.0f;
        g_kernels[k].exp_(y, x, 8);
        report(isinf(y[0]) && y[0] > 0 && y[1] == 0 && y[2] != y[2] && isfinite(y[3]) && y[3] > 3e38f &&
               isinf(y[4]) && y[5] == 0 && y[6] > 0 && y[6] < FLT_MIN && y[7] == 1,
               "%s exp specials", g_kernels[k].name);
        x[0] = NAN; x[1] = 1e-40f; x[2] = -1e-40f; x[3] = 1e-30f; x[4] = 3e38f; x[5] = -0.9999999f;
        x[6] = 1.0f; x[7] = 0.0f;
        g_kernels[k].log1p_(y, x, 8);
        report(y[0] != y[0] && y[1] == 1e-40f && y[2] == -1e-40f && y[3] == 1e-30f && fabs(y[4] - log(3e38)) < 1e-5 &&
               ulp_err(y[5], log1p((double)x[5])) <= 1 && y[6] == (float)log(2.0) && y[7] == 0,
               "%s log1p specials", g_kernels[k].name);
    }
}

/* ---- activations ------------------------------------------------------------------- */
static const size_t g_lens[] = { 0, 1, 7, 8, 9, 31, 1000003 };
#define NLEN ((int)(sizeof g_lens / sizeof g_lens[0]))

static void fill_extreme(float *x, size_t n)
{
    static const float ex[] = { 1e4f, -1e4f, 0.0f, -0.0f, 1e-30f, -1e-30f, 1e-40f, -1e-40f, 88.0f, -88.0f,
                                100.0f, -100.0f, 17.0f, -17.0f, 9.0f, -9.0f, 1e-3f, -1e-3f, 0.55f, -0.55f };
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned r = (unsigned)(rndu() * 10);
        x[i] = r == 0 ? ex[(size_t)(rndu() * (sizeof ex / sizeof ex[0]))] : r < 5 ? rnds(8) : rnds(30);
    }
}

static void test_act(void)
{
    int k, li, a;
    const char *an[3] = { "sigmoid", "tanh", "silu" };
    size_t N = 1000003 + 1;
    float *x = falloc(N), *y = falloc(N), *ys = falloc(N), *yc = falloc(N);
    fill_extreme(x, N);
    for (a = 0; a < 3; a++) {
        for (k = 0; k < NK; k++) {
            const kern *K = &g_kernels[k];
            map_fn f = a == 0 ? K->sig : a == 1 ? K->tanh_ : K->silu;
            map_fn fs = a == 0 ? g_kernels[0].sig : a == 1 ? g_kernels[0].tanh_ : g_kernels[0].silu;
            double mref = 0, mabs = 0, mtw = 0;
            int bad = 0, split_bad = 0;
            if (!kern_ok(k)) continue;
            for (li = 0; li < NLEN; li++) {
                size_t n = g_lens[li], i, off = li & 1;   /* odd lengths use x + 1: unaligned */
                const float *xs = x + off;
                f(y, xs, n);
                fs(ys, xs, n);
                for (i = 0; i < n; i++) {
                    double X = xs[i], r = a == 0 ? ref_sigmoid(X) : a == 1 ? tanh(X) : X * ref_sigmoid(X);
                    /* SiLU below x ~ -87 multiplies a subnormal sigmoid (few significant
                     * bits) by x: inherent to x * sigmoid(x) in float, measured absolutely */
                    int sub = a == 2 && fabs(r) < 1e-36;
                    double e = sub ? fabs(y[i] - r) / 1e-36 : ulp_err(y[i], r), d = fabs(y[i] - r);
                    double tw = sub ? 0 : ulp_diff(y[i], ys[i]);
                    if (y[i] != y[i] || isinf(y[i])) bad++;
                    if (e > mref) mref = e;
                    if (a == 0 && d > mabs) mabs = d;
                    if (tw > mtw) mtw = tw;
                }
                /* chunk-split invariance: random chunks, bit-identical */
                for (i = 0; i < n;) {
                    size_t c = 1 + (size_t)(rndu() * 37);
                    if (c > n - i) c = n - i;
                    f(yc + i, xs + i, c);
                    i += c;
                }
                for (i = 0; i < n; i++) if (!same(yc[i], y[i])) split_bad++;
            }
            /* in place */
            memcpy(yc, x, 1000 * sizeof(float));
            f(yc, yc, 1000);
            f(y, x, 1000);
            report(memcmp(yc, y, 1000 * sizeof(float)) == 0, "%s %s in place", K->name, an[a]);
            printf("  %-6s %-7s max %.2f ulp vs double (abs %.2g), %.2f ulp vs scalar twin\n", K->name, an[a], mref, mabs, mtw);
            report(!bad, "%s %s: %d non-finite outputs", K->name, an[a], bad);
            report(split_bad == 0, "%s %s: %d elements differ after chunk split", K->name, an[a], split_bad);
            report(mref <= (a == 0 ? 2.5 : 3), "%s %s ulp %g", K->name, an[a], mref);
            report(a != 0 || mabs <= 1e-7, "%s sigmoid abs err %g", K->name, mabs);
            /* both are within their bound of the true value, possibly on opposite sides */
            report(mtw <= (a == 0 ? 4 : 6), "%s %s vs twin %g ulp", K->name, an[a], mtw);
        }
    }
    free(x); free(y); free(ys); free(yc);
}

/* ---- BCE ----------------------------------------------------------------------------------- */
static void test_bce(void)
{
    int k, li, img;
    size_t N = 1000003 + 1;
    float *l = falloc(N), *t = falloc(N), *p = falloc(N), *dl = falloc(N), *p2 = falloc(N), *dl2 = falloc(N);
    size_t i;
    fill_extreme(l, N);
    for (i = 0; i < N; i++) { double r = rndu(); t[i] = r < 0.4 ? 0.0f : r < 0.5 ? 1.0f : (float)rndu(); }
    for (k = 0; k < NK; k++) {
        const kern *K = &g_kernels[k];
        double mrel = 0, mtw = 0, mp = 0, mdl = 0;
        int bad = 0, split_bad = 0, det_bad = 0;
        if (!kern_ok(k)) continue;
        for (li = 0; li < NLEN; li++) {
            size_t n = g_lens[li], off = li & 1;
            const float *L = l + off, *T = t + off;
            float scale = 1.0f / 128;
            double s = K->bce(L, T, p, dl, n, scale), r = ref_bce(L, T, n);
            double st = g_kernels[0].bce(L, T, p2, dl2, n, scale), rel = r > 0 ? fabs(s - r) / r : fabs(s);
            if (rel > mrel) mrel = rel;
            rel = st > 0 ? fabs(s - st) / st : fabs(s);
            if (rel > mtw) mtw = rel;
            if (K->bce(L, T, p2, NULL, n, scale) != s) det_bad++;
            for (i = 0; i < n; i++) {
                double pr = ref_sigmoid(L[i]), d = fabs(p[i] - pr);
                double dr = ((double)p[i] - T[i]) * scale;
                if (p[i] != p[i] || !(p[i] >= 0 && p[i] <= 1) || dl[i] != dl[i]) bad++;
                if (d > mp) mp = d;
                if (fabs(dl[i] - dr) > mdl) mdl = fabs(dl[i] - dr);
                if (!same(p2[i], p[i])) bad++;   /* the dl == NULL call gives the same p */
            }
            /* chunk split: p and dl bit-identical, the sum within rounding */
            for (i = 0; i < n;) {
                size_t c = 1 + (size_t)(rndu() * 45);
                if (c > n - i) c = n - i;
                K->bce(L + i, T + i, p2 + i, dl2 + i, c, scale);
                i += c;
            }
            for (i = 0; i < n; i++) if (!same(p2[i], p[i]) || !same(dl2[i], dl[i])) split_bad++;
        }
        /* 128 images of 784 pixels, image-like targets: per-image relative error */
        for (img = 0; img < 128; img++) {
            float *L = l + img * 784, *T = t + img * 784;
            double s, r;
            for (i = 0; i < 784; i++) { L[i] = rnds(12); T[i] = (float)(rndu() < 0.5 ? 0 : rndu()); }
            s = K->bce(L, T, p, dl, 784, 1.0f);
            r = ref_bce(L, T, 784);
            if (fabs(s - r) / r > mrel) mrel = fabs(s - r) / r;
        }
        fill_extreme(l, 128 * 784);
        printf("  %-6s bce   rel err %.2g vs double, %.2g vs scalar twin, sigmoid abs %.2g, dl abs %.2g\n",
               K->name, mrel, mtw, mp, mdl);
        report(mrel < 1e-6, "%s bce rel err %g", K->name, mrel);
        report(mtw < 1e-6, "%s bce vs twin %g", K->name, mtw);
        report(mp <= 1e-7, "%s bce sigmoid err %g", K->name, mp);
        report(mdl <= 1e-7, "%s bce dl err %g", K->name, mdl);
        report(!bad, "%s bce: %d bad outputs", K->name, bad);
        report(!split_bad, "%s bce: %d differ after chunk split", K->name, split_bad);
        report(!det_bad, "%s bce not deterministic", K->name);
        {   /* extremes: exact values */
            float L[6] = { 1e4f, -1e4f, 0.0f, 1e-40f, -1e30f, 1e30f }, T[6] = { 1, 0, 0.5f, 0, 0, 1 }, P[6], D[6];
            double s = K->bce(L, T, P, D, 6, 1.0f);
            report(P[0] == 1 && P[1] == 0 && P[2] == 0.5f && P[3] == 0.5f && P[4] == 0 && P[5] == 1 &&
                   fabs(s - 2 * log(2.0)) < 1e-7, "%s bce extremes (sum %.9g)", K->name, s);
            L[0] = NAN;
            s = K->bce(L, T, P, D, 6, 1.0f);
            report(s != s, "%s bce NaN logit must give NaN", K->name);
        }
    }
    free(l); free(t); free(p); free(dl); free(p2); free(dl2);
}

/* ---- sum of squares ---------------------------------------------------------------- */
static void test_sumsq(int big)
{
    int k, li;
    size_t N = big ? 50000000 : 4000037, i;
    float *x = falloc(N);
    long double ref = 0;
    double s0;
    for (i = 0; i < N; i++) x[i] = rnds(3) * (float)(rndu() < 0.01 ? 1e3 : 1);
    for (i = 0; i < N; i++) ref += (long double)x[i] * x[i];
    s0 = vae__sumsq_scalar(x, N);
    for (k = 0; k < NK; k++) {
        const kern *K = &g_kernels[k];
        double s, rel;
        int diff = 0;
        if (!kern_ok(k)) continue;
        s = K->sumsq(x, N);
        rel = fabs(s - (double)ref) / (double)ref;
        printf("  %-6s sumsq n=%lu rel err %.2g\n", K->name, (unsigned long)N, rel);
        report(rel < 1e-12, "%s sumsq rel %g", K->name, rel);
        report(s == s0, "%s sumsq differs from the scalar twin", K->name);
        for (li = 0; li < NLEN; li++) {
            size_t n = g_lens[li];
            long double r = 0;
            for (i = 0; i < n; i++) r += (long double)x[i + 1] * x[i + 1];
            s = K->sumsq(x + 1, n);
            if (s != vae__sumsq_scalar(x + 1, n) || fabs(s - (double)r) > 1e-12 * (double)r) diff++;
        }
        report(!diff, "%s sumsq short lengths", K->name);
        {
        float keep = x[5];
        x[5] = INFINITY;
        report(isinf(K->sumsq(x, 64)), "%s sumsq inf", K->name);
        x[5] = NAN;
        s = K->sumsq(x, 64);
        report(s != s, "%s sumsq nan", K->name);
        x[5] = keep;
        }
    }
    free(x);
}

/* ---- optimizers ----------------------------------------------------------------- */
static void test_opt(void)
{
    size_t N = 1000003 + 2, i;
    float *p0 = falloc(N), *g = falloc(N), *p = falloc(N), *m = falloc(N), *v = falloc(N);
    float *ps = falloc(N), *ms = falloc(N), *vs = falloc(N), *pc = falloc(N), *mc = falloc(N), *vc = falloc(N);
    double *pd = (double *)malloc(N * sizeof(double)), *md = (double *)malloc(N * sizeof(double));
    double *vd = (double *)malloc(N * sizeof(double)), *pm = (double *)malloc(N * sizeof(double));
    char *ill = (char *)malloc(N);
    int k, li, variant;
    if (!pd || !md || !vd || !pm || !ill) exit(2);
    for (i = 0; i < N; i++) {
        p0[i] = rnds(0.1f);
        g[i] = rnds(1.0f) * (float)pow(10.0, -4 * rndu());   /* gradients over 4 decades */
        if (rndu() < 0.01) g[i] = 0;
    }
    for (variant = 0; variant < 3; variant++) {   /* Adam + L2, AdamW, Adam plain */
        float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = variant == 2 ? 0.0f : 0.01f;
        for (k = 0; k < NK; k++) {
            const kern *K = &g_kernels[k];
            double maxtw = 0, maxref = 0;
            int split_bad = 0, step, ndiff = 0, nill = 0;
            if (!kern_ok(k)) continue;
            for (li = 0; li < NLEN; li++) {
                size_t n = g_lens[li], off = li & 1;
                memcpy(p, p0, N * 4); memset(m, 0, N * 4); memset(v, 0, N * 4);
                memcpy(ps, p0, N * 4); memset(ms, 0, N * 4); memset(vs, 0, N * 4);
                memcpy(pc, p0, N * 4); memset(mc, 0, N * 4); memset(vc, 0, N * 4);
                for (i = 0; i < n; i++) { pd[i] = p0[i + off]; md[i] = vd[i] = 0; pm[i] = fabs(pd[i]); ill[i] = 0; }
                for (step = 1; step <= 5; step++) {
                    double bc1 = 1.0 - pow((double)b1, step), bc2 = 1.0 - pow((double)b2, step);
                    float ss = (float)((double)lr / bc1), bs = (float)sqrt(bc2);
                    float decay = variant == 1 ? (float)(1.0 - (double)lr * wd) : 1.0f, l2 = variant == 1 ? 0.0f : wd;
                    /* gradient varies per step */
                    const float *gs = g + off + (size_t)(step & 1);
                    size_t c;
                    K->adam(p + off, gs, m + off, v + off, n, b1, b2, ss, bs, eps, l2, decay);
                    g_kernels[0].adam(ps + off, gs, ms + off, vs + off, n, b1, b2, ss, bs, eps, l2, decay);
                    for (i = 0; i < n;) {
                        c = 1 + (size_t)(rndu() * 29);
                        if (c > n - i) c = n - i;
                        K->adam(pc + off + i, gs + i, mc + off + i, vc + off + i, c, b1, b2, ss, bs, eps, l2, decay);
                        i += c;
                    }
                    for (i = 0; i < n; i++) {
                        double d = (double)gs[i] + (double)l2 * pd[i];
                        /* g + l2 p cancelling: Adam normalises the step, so the float
                         * rounding of d decides its sign; such elements are ill-conditioned */
                        if (fabs(d) * 1e3 < fabs(gs[i]) + fabs(l2 * pd[i])) ill[i] = 1;
                        pd[i] *= variant == 1 ? 1.0 - (double)lr * wd : 1.0;
                        md[i] = md[i] * b1 + d * (1.0 - b1);
                        vd[i] = vd[i] * b2 + d * d * (1.0 - b2);
                        pd[i] -= ((double)lr / bc1) * md[i] / (sqrt(vd[i]) / sqrt(bc2) + eps);
                        if (fabs(pd[i]) > pm[i]) pm[i] = fabs(pd[i]);
                    }
                }
                for (i = 0; i < n; i++) {
                    double tw = fabs(p[off + i] - ps[off + i]) / (5 * 2e-6 * lr + 5 * 1.2e-7 * pm[i]);
                    double e = fabs(p[off + i] - pd[i]);
                    if (!same(p[off + i], ps[off + i]) || !same(m[off + i], ms[off + i]) || !same(v[off + i], vs[off + i])) ndiff++;
                    /* 5 steps of size ~lr: per step, two roundings of p (decay, update), each half
                     * an ulp of the largest |p| seen, plus a relative 2e-6 of the step */
                    e /= 5 * 2e-6 * lr + 5 * 1.2e-7 * pm[i];
                    if (ill[i]) nill++;
                    else { if (e > maxref) maxref = e; if (tw > maxtw) maxtw = tw; }
                    if (!same(pc[off + i], p[off + i]) || !same(mc[off + i], m[off + i]) || !same(vc[off + i], v[off + i])) split_bad++;
                }
                report(p[off + n] == p0[off + n] && (off == 0 || p[0] == p0[0]), "%s adam wrote outside the range", K->name);
            }
            /* bit-identical unless the compiler contracts mul+add into FMA (gcc's default
             * -ffp-contract=fast outside ISO C does, even inside intrinsics) */
            printf("  %-6s adam%s: %d elems differ from twin (max %.2f of tolerance), err vs double %.2f of tolerance"
                   " (%d ill-conditioned skipped)\n",
                   K->name, variant == 0 ? "+L2" : variant == 1 ? "W  " : "   ", ndiff, maxtw, maxref, nill);
            report(maxtw <= 1, "%s adam vs twin %g of tolerance", K->name, maxtw);
            report(maxref <= 1, "%s adam vs double %g", K->name, maxref);
            report(!split_bad, "%s adam chunk split: %d differ", K->name, split_bad);
        }
    }
    for (variant = 0; variant < 3; variant++) {   /* no momentum, momentum, momentum + wd */
        float lr = 0.01f, wd = variant == 2 ? 1e-3f : 0.0f, mom = 0.9f;
        for (k = 0; k < NK; k++) {
            const kern *K = &g_kernels[k];
            double maxref = 0;
            int split_bad = 0, step, ndiff = 0;
            if (!kern_ok(k)) continue;
            for (li = 0; li < NLEN; li++) {
                size_t n = g_lens[li], off = li & 1;
                float *buf = variant ? m : NULL, *bufs = variant ? ms : NULL, *bufc = variant ? mc : NULL;
                memcpy(p, p0, N * 4); memset(m, 0, N * 4);
                memcpy(ps, p0, N * 4); memset(ms, 0, N * 4);
                memcpy(pc, p0, N * 4); memset(mc, 0, N * 4);
                for (i = 0; i < n; i++) { pd[i] = p0[i + off]; md[i] = 0; pm[i] = 1e-12; }
                for (step = 1; step <= 5; step++) {
                    const float *gs = g + off + (size_t)(step & 1);
                    size_t c;
                    K->sgd(p + off, gs, buf ? buf + off : NULL, n, lr, wd, mom);
                    g_kernels[0].sgd(ps + off, gs, bufs ? bufs + off : NULL, n, lr, wd, mom);
                    for (i = 0; i < n;) {
                        c = 1 + (size_t)(rndu() * 29);
                        if (c > n - i) c = n - i;
                        K->sgd(pc + off + i, gs + i, bufc ? bufc + off + i : NULL, c, lr, wd, mom);
                        i += c;
                    }
                    for (i = 0; i < n; i++) {
                        double d = gs[i] + (double)wd * pd[i];
                        if (variant) d = md[i] = mom * md[i] + d;
                        pd[i] -= lr * d;
                        /* per step: rounding of p, and of d / the momentum buffer (carried on) */
                        pm[i] += 1.2e-7 * (fabs(pd[i]) + 2 * step * lr * (fabs(d) + fabs(gs[i])));
                    }
                }
                for (i = 0; i < n; i++) {
                    double e = fabs(p[off + i] - pd[i]) / pm[i];
                    if (!same(p[off + i], ps[off + i]) || (variant && !same(m[off + i], ms[off + i]))) ndiff++;
                    if (e > maxref) maxref = e;
                    if (!same(pc[off + i], p[off + i]) || (variant && !same(mc[off + i], m[off + i]))) split_bad++;
                }
            }
            printf("  %-6s sgd%d: %d elems differ from twin, err vs double %.2f of tolerance\n", K->name, variant, ndiff, maxref);
            report(maxref <= 1, "%s sgd vs double %g", K->name, maxref);
            report(!split_bad, "%s sgd chunk split: %d differ", K->name, split_bad);
        }
    }
    free(p0); free(g); free(p); free(m); free(v); free(ps); free(ms); free(vs); free(pc); free(mc); free(vc);
    free(pd); free(md); free(vd); free(pm); free(ill);
}

/* ---- benchmark ------------------------------------------------------------------------ */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static volatile double g_sink;

/* the library's loops before this fragment, for comparison */
static void old_adam(float *p, const float *g, float *mm, float *vv, size_t n, float b1, float b2,
                     float step_size, float bc2_sqrt, float eps)
{
    size_t i;
    for (i = 0; i < n; i++) {
        float d = g[i], denom;
        mm[i] = mm[i] * b1 + d * (1.0f - b1);
        vv[i] = vv[i] * b2 + d * d * (1.0f - b2);
        denom = sqrtf(vv[i]) / bc2_sqrt + eps;
        p[i] -= step_size * mm[i] / denom;
    }
}
static double old_bce(const float *l, const float *t, const float *p, float *dl, size_t D, float rscale)
{
    double r = 0;
    size_t j;
    for (j = 0; j < D; j++) {
        r += (double)((l[j] > 0 ? l[j] : 0.0f) - l[j] * t[j] + log1pf(expf(-fabsf(l[j]))));
        if (dl) dl[j] = (p[j] - t[j]) * rscale;
    }
    return r;
}
static void old_sigmoid(float *y, const float *x, size_t n)
{ size_t i; for (i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i])); }

#define RUNS 9
#define BENCH(label, n, stmt) { \
    double ts_[RUNS]; int r_; \
    for (r_ = 0; r_ < RUNS; r_++) { double t0_ = now(); stmt; ts_[r_] = now() - t0_; } \
    qsort(ts_, RUNS, sizeof(double), cmpd); \
    printf("  %-28s %8.3f ns/elem\n", label, ts_[RUNS / 2] * 1e9 / (double)(n)); }

static void bench(void)
{
    size_t NA = 652824, NB = 128 * 784, i;
    float *p = falloc(NA), *g = falloc(NA), *m = falloc(NA), *v = falloc(NA), *y = falloc(NA);
    float *l = falloc(NB), *t = falloc(NB), *pp = falloc(NB), *dl = falloc(NB);
    int k, best = 0, img;
    char lab[64];
    for (i = 0; i < NA; i++) { p[i] = rnds(0.1f); g[i] = rnds(1e-2f); m[i] = 0; v[i] = 0; }
    for (i = 0; i < NB; i++) { l[i] = rnds(10); t[i] = (float)rndu(); }
    for (k = 0; k < NK; k++) if (kern_ok(k)) best = k;
    printf("bench: best kernel %s; Adam/SGD/sumsq/activations n = %lu, BCE 128 x 784 (per image calls)\n",
           g_kernels[best].name, (unsigned long)NA);
    BENCH("adam plain C loop (libm sqrtf)", NA, old_adam(p, g, m, v, NA, 0.9f, 0.999f, 1e-3f, 0.5f, 1e-8f));
    for (k = 0; k < NK; k++) {
        const kern *K = &g_kernels[k];
        if (!kern_ok(k) || (k != 0 && k != best)) continue;
        sprintf(lab, "adam %s", K->name);
        BENCH(lab, NA, K->adam(p, g, m, v, NA, 0.9f, 0.999f, 1e-3f, 0.5f, 1e-8f, 0.0f, 1.0f));
        sprintf(lab, "sgd+momentum %s", K->name);
        BENCH(lab, NA, K->sgd(p, g, m, NA, 1e-3f, 0.0f, 0.9f));
        sprintf(lab, "sumsq %s", K->name);
        BENCH(lab, NA, g_sink = K->sumsq(g, NA));
    }
    BENCH("bce plain C loop (libm expf+log1pf)", NB, for (img = 0; img < 128; img++) g_sink = old_bce(l + img * 784, t + img * 784, pp + img * 784, dl + img * 784, 784, 1.0f / 128));
    for (k = 0; k < NK; k++) {
        const kern *K = &g_kernels[k];
        if (!kern_ok(k) || (k != 0 && k != best)) continue;
        sprintf(lab, "bce+sigmoid %s", K->name);
        BENCH(lab, NB, for (img = 0; img < 128; img++) g_sink = K->bce(l + img * 784, t + img * 784, pp + img * 784, dl + img * 784, 784, 1.0f / 128));
    }
    BENCH("sigmoid plain C loop (libm expf)", NA, old_sigmoid(y, p, NA));
    for (k = 0; k < NK; k++) {
        const kern *K = &g_kernels[k];
        if (!kern_ok(k) || (k != 0 && k != best)) continue;
        sprintf(lab, "sigmoid %s", K->name);
        BENCH(lab, NA, K->sig(y, p, NA));
        sprintf(lab, "tanh %s", K->name);
        BENCH(lab, NA, K->tanh_(y, p, NA));
        sprintf(lab, "silu %s", K->name);
        BENCH(lab, NA, K->silu(y, p, NA));
    }
    free(p); free(g); free(m); free(v); free(y); free(l); free(t); free(pp); free(dl);
}

int main(int argc, char **argv)
{
    int k;
    printf("elem kernels compiled:");
    for (k = 0; k < NK; k++) printf(" %s%s", g_kernels[k].name, kern_ok(k) ? "" : "(unavailable)");
    printf("; dispatch level %d\n", vae__elem_kernel());
    if (argc > 1 && strcmp(argv[1], "bench") == 0) { bench(); return 0; }
    {   /* the dispatchers reach the best kernel */
        float x[3] = { -1, 0, 2 }, y[3], z[3];
        int best = 0;
        for (k = 0; k < NK; k++) if (kern_ok(k)) best = k;
        vae__sigmoid_forward(y, x, 3); g_kernels[best].sig(z, x, 3);
        report(!memcmp(y, z, sizeof y), "dispatcher reaches the best kernel");
        vae__tanh_forward(y, x, 3); vae__silu_forward(z, x, 3);
        report(y[1] == 0 && z[1] == 0 && vae__sumsq(x, 3) == 5.0, "dispatchers");
        {
            float p[3] = { 1, 1, 1 }, g[3] = { 1, -1, 0 }, m[3] = { 0, 0, 0 }, v[3] = { 0, 0, 0 }, t[3] = { 0, 0, 1 };
            vae__adam_update(p, g, m, v, 3, 0.9f, 0.999f, 0.01f, 1.0f, 1e-8f, 0.0f, 1.0f);
            vae__sgd_update(p, g, NULL, 3, 0.5f, 0.0f, 0.0f);
            report(p[0] < 0.5f && p[1] > 1.5f && p[2] == 1.0f, "dispatchers: optimizers");
            report(fabs(vae__bce_logits(x, t, y, z, 3, 1.0f) - ref_bce(x, t, 3)) < 1e-6, "dispatchers: bce");
        }
    }
    test_math();
    test_act();
    test_bce();
    test_sumsq(argc > 1 && strcmp(argv[1], "big") == 0);
    test_opt();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
