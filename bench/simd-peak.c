// Peak multiply-accumulate rate of one core for 256-bit FMA (what onnxruntime and PyTorch use on AVX2 CPUs) and
// for 128-bit multiply + add (what V8 emits for wasm SIMD's f32x4.mul / f32x4.add; wasm in Node 20 has no FMA):
// 12 independent accumulators per loop, enough to hide the latency of either.
//   gcc -O2 -mavx2 -mfma -ffp-contract=off bench/simd-peak.c -o /tmp/simd-peak && /tmp/simd-peak
// (-ffp-contract=off: gcc would otherwise fuse the 128-bit mul + add into an FMA that wasm cannot express)
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#define N 200000000L
#define ACC 12

// GMAC/s of ACC independent chains acc = STEP(acc, a, b) over VEC (LANES floats); the sum of the
// accumulators is printed-if-equal so that the compiler keeps the loop.
#define PEAK(name, VEC, LANES, SET1, STEP, FIRST)                                    \
  static double name(void) {                                                       \
    VEC acc[ACC], a = SET1(0.999f), b = SET1(1e-7f);                               \
    for (int k = 0; k < ACC; k++) acc[k] = SET1((float)k);                         \
    double t = now();                                                              \
    for (long i = 0; i < N / ACC; i++) {                                           \
      _Pragma("GCC unroll 12") for (int k = 0; k < ACC; k++) acc[k] = STEP(acc[k], a, b); \
    }                                                                              \
    t = now() - t;                                                                 \
    float s = 0;                                                                   \
    for (int k = 0; k < ACC; k++) s += FIRST(acc[k]);                              \
    if (s == 12345.f) puts("");                                                    \
    return (double)(N / ACC) * ACC * LANES / t / 1e9;                              \
  }

#define MULADD128(x, a, b) _mm_add_ps(_mm_mul_ps(x, a), b)
PEAK(fma256, __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32)
PEAK(muladd128, __m128, 4, _mm_set1_ps, MULADD128, _mm_cvtss_f32)

int main(void) {
  printf("one core, peak multiply-accumulates:\n");
  printf("  256-bit FMA (AVX2, native kernels)       %6.1f GMAC/s\n", fma256());
  printf("  128-bit mul + add (wasm SIMD in V8)      %6.1f GMAC/s\n", muladd128());
  return 0;
}
