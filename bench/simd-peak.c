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

static double fma256(void) {
  __m256 acc[ACC], a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
  for (int k = 0; k < ACC; k++) acc[k] = _mm256_set1_ps((float)k);
  double t = now();
  for (long i = 0; i < N / ACC; i++) {
#pragma GCC unroll 12
    for (int k = 0; k < ACC; k++) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  }
  t = now() - t;
  float s = 0;
  for (int k = 0; k < ACC; k++) s += _mm256_cvtss_f32(acc[k]);
  if (s == 12345.f) puts("");
  return (double)(N / ACC) * ACC * 8 / t / 1e9;
}

static double muladd128(void) {
  __m128 acc[ACC], a = _mm_set1_ps(0.999f), b = _mm_set1_ps(1e-7f);
  for (int k = 0; k < ACC; k++) acc[k] = _mm_set1_ps((float)k);
  double t = now();
  for (long i = 0; i < N / ACC; i++) {
#pragma GCC unroll 12
    for (int k = 0; k < ACC; k++) acc[k] = _mm_add_ps(_mm_mul_ps(acc[k], a), b);
  }
  t = now() - t;
  float s = 0;
  for (int k = 0; k < ACC; k++) s += _mm_cvtss_f32(acc[k]);
  if (s == 12345.f) puts("");
  return (double)(N / ACC) * ACC * 4 / t / 1e9;
}

int main(void) {
  printf("one core, peak multiply-accumulates:\n");
  printf("  256-bit FMA (AVX2, native kernels)       %6.1f GMAC/s\n", fma256());
  printf("  128-bit mul + add (wasm SIMD in V8)      %6.1f GMAC/s\n", muladd128());
  return 0;
}
