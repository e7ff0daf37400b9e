/* peak - the single-precision FMA peak of this machine: the ceiling every GEMM figure in
 * `make bench` is measured against.
 *
 * Each thread runs 12 independent chains of a = a * b + c on full vectors and nothing else
 * (the loop counter aside). Twelve chains cover an FMA latency of 4-5 cycles on two FMA
 * pipes with room to spare, and the values converge to c / (1 - b), so no denormals and no
 * overflow slow the loop. Widths: AVX2+FMA (8 floats), the width of vae.h's GEMM kernel and
 * so "the" peak, and AVX-512F (16 floats) where the CPU has it, for comparison only.
 *
 * Like vae.h, this builds with plain `cc -O2` (no -m flags): each kernel is compiled with a
 * target attribute and only run when __builtin_cpu_supports says the CPU has the ISA.
 *
 * Timing matches tests/test_gemm.c's bench mode, so the ratios are like for like: 1 thread
 * by the thread's CPU time (a shared machine that deschedules us distorts it less), 2
 * threads by wall time. The contenders alternate and the median of the reps is reported.
 *
 *   make build/peak && build/peak [reps]
 *
 * Besides the table, it prints lines "@ peak <isa> <threads> <GFLOP/s>" for bench/run.sh.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 5))
#define PEAK_X86 1
#include <immintrin.h>
#endif

#define CHAINS 12

static double now(int wall)
{
    struct timespec t;
    clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Each kernel runs `iters` iterations of CHAINS vector FMAs and returns a sum of the chains,
 * which the caller keeps, so the compiler cannot drop the loop. */
typedef float (*peak_fn)(long iters);

#ifdef PEAK_X86
#define PEAK_STEP(F)                                                                   \
    F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)

/* One kernel per width, written once: V the vector type, W its floats, P the intrinsics'
 * prefix (_mm256 or _mm512). */
#define PEAK_KERNEL(NAME, TARGET, V, W, P)                                             \
    __attribute__((target(TARGET))) static float NAME(long iters)                      \
    {                                                                                  \
        V a0 = P##_set1_ps(0.0f), a1 = P##_set1_ps(1.0f), a2 = P##_set1_ps(2.0f),      \
          a3 = P##_set1_ps(3.0f), a4 = P##_set1_ps(4.0f), a5 = P##_set1_ps(5.0f),      \
          a6 = P##_set1_ps(6.0f), a7 = P##_set1_ps(7.0f), a8 = P##_set1_ps(8.0f),      \
          a9 = P##_set1_ps(9.0f), a10 = P##_set1_ps(10.0f), a11 = P##_set1_ps(11.0f);  \
        const V b = P##_set1_ps(0.999999f), c = P##_set1_ps(1e-7f);                    \
        float o[W];                                                                    \
        long k;                                                                        \
        for (k = 0; k < iters; k++) {                                                  \
            PEAK_STEP(PEAK_FMA_##P)                                                    \
        }                                                                              \
        a0 = P##_add_ps(P##_add_ps(P##_add_ps(a0, a1), P##_add_ps(a2, a3)),            \
                        P##_add_ps(P##_add_ps(a4, a5), P##_add_ps(a6, a7)));           \
        a0 = P##_add_ps(a0, P##_add_ps(P##_add_ps(a8, a9), P##_add_ps(a10, a11)));     \
        P##_storeu_ps(o, a0);                                                          \
        return o[0];                                                                   \
    }
#define PEAK_FMA__mm256(i) a##i = _mm256_fmadd_ps(a##i, b, c);
#define PEAK_FMA__mm512(i) a##i = _mm512_fmadd_ps(a##i, b, c);
PEAK_KERNEL(peak_avx2, "avx2,fma", __m256, 8, _mm256)
PEAK_KERNEL(peak_avx512, "avx512f", __m512, 16, _mm512)
#endif

typedef struct isa {
    const char *name, *label;
    peak_fn fn;
    int width;  /* floats per vector */
    int usable; /* the CPU has it */
} isa;

static volatile float g_sink;

/* GFLOP/s of one timed run: `threads` threads each run `iters` iterations. */
static double run(const isa *s, int threads, long iters)
{
    double t0, t;
    const int wall = threads > 1;
    float sum = 0;
    int ran = 1; /* threads the runtime really started */
    t0 = now(wall);
#ifdef _OPENMP
    if (threads > 1) {
        ran = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum, ran)
        {
            sum += s->fn(iters);
            ran += 1;
        }
    } else
#endif
        sum = s->fn(iters);
    t = now(wall) - t0;
    g_sink = sum;
    return (double)iters * ran * CHAINS * s->width * 2 / (t > 0 ? t : 1e-9) * 1e-9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    isa isas[2];
    int nisa = 0, reps = argc > 1 ? atoi(argv[1]) : 5, maxth = 1, i, th, r;
    double g[2][2][64];
    long iters[2];
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
#ifdef _OPENMP
    maxth = 2;
#endif
#ifdef PEAK_X86
    __builtin_cpu_init();
    isas[0].name = "avx2"; isas[0].label = "avx2+fma (8 floats)"; isas[0].fn = peak_avx2; isas[0].width = 8;
    isas[0].usable = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    isas[1].name = "avx512"; isas[1].label = "avx512f (16 floats)"; isas[1].fn = peak_avx512; isas[1].width = 16;
    isas[1].usable = __builtin_cpu_supports("avx512f");
    nisa = 2;
#endif
    for (i = 0; i < nisa; i++) {
        /* ~0.15 s per timed run, from a short calibration run */
        double gf;
        if (!isas[i].usable) continue;
        gf = run(&isas[i], 1, 2000000L);
        iters[i] = (long)(0.15 * gf * 1e9 / (2.0 * CHAINS * isas[i].width));
        if (iters[i] < 1000000L) iters[i] = 1000000L;
    }
    for (r = 0; r < reps; r++)
        for (i = 0; i < nisa; i++)
            for (th = 1; th <= maxth; th++)
                if (isas[i].usable) g[i][th - 1][r] = run(&isas[i], th, iters[i]);
    printf("FMA peak, single precision (%d independent FMA chains per thread; median of %d alternating reps;\n"
           "1 thread by thread CPU time, 2 threads by wall time)\n", CHAINS, reps);
    if (!nisa) printf("  not measured: no FMA kernel for this target (x86-64 with gcc or clang only)\n");
    for (i = 0; i < nisa; i++) {
        double m[2];
        if (!isas[i].usable) { printf("  %-20s  not supported by this CPU\n", isas[i].label); continue; }
        for (th = 1; th <= maxth; th++) {
            qsort(g[i][th - 1], (size_t)reps, sizeof(double), cmpd);
            m[th - 1] = g[i][th - 1][reps / 2];
        }
        printf("  %-20s  1 thread %6.1f GFLOP/s", isas[i].label, m[0]);
        if (maxth > 1) printf("   2 threads %6.1f GFLOP/s (%.2fx; best rep %.1f)", m[1], m[1] / m[0], g[i][1][reps - 1]);
        printf("%s\n", i == 0 ? "   <- \"peak\" below" : "");
        for (th = 1; th <= maxth; th++) printf("@ peak %s %d %.1f\n", isas[i].name, th, m[th - 1]);
    }
    if (maxth < 2) printf("  (built without OpenMP: 2 threads not measured)\n");
    return 0;
}
