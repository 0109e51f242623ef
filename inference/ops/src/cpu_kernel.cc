#include "cpu_kernel.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

// The hot function is compiled three times, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and
// the baseline; the loader picks the clone the CPU supports. The helpers below are force-inlined
// into each clone and written with 16-float vectors (GCC/Clang vector extensions), which each
// clone maps to one zmm, two ymm or four xmm registers.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PODIUM_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PODIUM_CPU_CLONES
#endif
#define PODIUM_INLINE inline __attribute__((always_inline))

namespace podium::cpu {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kLanes = 16;     // floats per vector; matrix columns are padded to a multiple of it
constexpr int kTileRows = 4;   // rows of one register tile of the matrix products

typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t IntVec __attribute__((vector_size(kLanes * sizeof(int32_t))));

PODIUM_INLINE Vec Load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
PODIUM_INLINE void Store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

int RoundUp(int x, int multiple) { return (x + multiple - 1) / multiple * multiple; }

// Scratch for one task, kept per thread and reused across tasks and calls.
struct Workspace {
  std::vector<float> q;   // block_size x head_dim, the query block times scale * log2(e)
  std::vector<float> kt;  // head_dim x block_size, one key block transposed
  std::vector<float> v;   // block_size x padded head_dim, one value block
  std::vector<float> s;   // block_size x block_size, scores, then probabilities
  std::vector<float> o;   // block_size x padded head_dim, unnormalised output rows
  std::vector<float> m;   // running row max (log2 domain)
  std::vector<float> l;   // running row sum

  void Reserve(int block, int head_dim, int padded_dim) {
    q.resize(static_cast<size_t>(block) * head_dim);
    kt.resize(static_cast<size_t>(head_dim) * block);
    v.resize(static_cast<size_t>(block) * padded_dim);
    s.resize(static_cast<size_t>(block) * block);
    o.resize(static_cast<size_t>(block) * padded_dim);
    m.resize(block);
    l.resize(block);
  }
};

// C[M x N] = A[M x K] * B[K x N] (or C += ...); row-major; M % kTileRows == 0, N % kLanes == 0.
template <bool kAccumulate>
PODIUM_INLINE void Gemm(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n, int k) {
  for (int i0 = 0; i0 < m; i0 += kTileRows) {
    for (int j0 = 0; j0 < n; j0 += kLanes) {
      Vec acc[kTileRows];
      for (int i = 0; i < kTileRows; ++i) acc[i] = kAccumulate ? Load(c + (i0 + i) * ldc + j0) : Vec{};
      for (int kk = 0; kk < k; ++kk) {
        const Vec brow = Load(b + kk * ldb + j0);
        for (int i = 0; i < kTileRows; ++i) acc[i] += a[(i0 + i) * lda + kk] * brow;
      }
      for (int i = 0; i < kTileRows; ++i) Store(c + (i0 + i) * ldc + j0, acc[i]);
    }
  }
}

// 2^x for the softmax (x <= 0), lane-wise: relative error below 2e-7, exactly 0 below -126 (so
// -inf gives 0).
PODIUM_INLINE Vec Exp2(Vec x) {
  const Vec floor_value = Vec{} - 127.f;
  x = x < floor_value ? floor_value : x;
  const Vec shifter = Vec{} + 12582912.f;  // 1.5 * 2^23: x + shifter rounds x to an integer
  const Vec t = x + shifter;
  const Vec f = x - (t - shifter);  // in [-0.5, 0.5]
  IntVec n;
  std::memcpy(&n, &t, sizeof n);
  n -= 0x4B400000;  // the bits of the shifter: n is now round(x)
  // Taylor series of 2^f = e^(f ln 2) to degree 6.
  Vec p = Vec{} + 1.5403530e-4f;
  p = p * f + 1.3333558e-3f;
  p = p * f + 9.6181291e-3f;
  p = p * f + 5.5504109e-2f;
  p = p * f + 2.4022651e-1f;
  p = p * f + 6.9314718e-1f;
  p = p * f + 1.0f;
  IntVec bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += n << 23;
  std::memcpy(&p, &bits, sizeof p);
  return x < Vec{} - 126.f ? Vec{} : p;
}

PODIUM_INLINE float Exp2(float x) { return Exp2(Vec{} + x)[0]; }

// Max of x[0..n), n % kLanes == 0.
PODIUM_INLINE float RowMax(const float* x, int n) {
  Vec lanes = Load(x);
  for (int i = kLanes; i < n; i += kLanes) {
    const Vec y = Load(x + i);
    lanes = lanes < y ? y : lanes;
  }
  float result = lanes[0];
  for (int j = 1; j < kLanes; ++j) result = std::max(result, lanes[j]);
  return result;
}

// x[j] = 2^(x[j] - shift) in place; returns the sum. n % kLanes == 0.
PODIUM_INLINE float Exp2InPlace(float* x, int n, float shift) {
  Vec lanes{};
  for (int i = 0; i < n; i += kLanes) {
    const Vec e = Exp2(Load(x + i) - shift);
    Store(x + i, e);
    lanes += e;
  }
  float sum = 0.f;
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

PODIUM_INLINE void Scale(float* x, int n, float factor) {
  for (int i = 0; i < n; i += kLanes) Store(x + i, Load(x + i) * factor);
}

PODIUM_CPU_CLONES void RunTaskImpl(const Problem& p, const Tensors& t, int64_t task, Workspace& ws) {
  const int block = static_cast<int>(p.block_size);
  const int dim = static_cast<int>(p.head_dim);
  const int padded_dim = RoundUp(dim, kLanes);
  const int64_t q_block = task % p.q_blocks;
  const int64_t bh = task / p.q_blocks;  // batch * heads + head
  const int64_t head = bh % p.heads;
  const int64_t batch = bh / p.heads;

  const int64_t q0 = q_block * block;
  const int rows = static_cast<int>(std::min<int64_t>(block, p.q_len - q0));
  float* out = t.out + (bh * p.q_len + q0) * dim;

  const int64_t slice = p.MaskSlice(batch, head);
  const int32_t* row_ptr = t.row_ptr + slice * (p.q_blocks + 1);
  const int32_t* col_idx = t.col_idx + slice * p.nnz;
  const int32_t begin = row_ptr[q_block];
  const int32_t end = row_ptr[q_block + 1];
  if (begin == end) {  // no kept key block: the rows are zeros, by contract
    std::fill(out, out + static_cast<int64_t>(rows) * dim, 0.f);
    return;
  }

  ws.Reserve(block, dim, padded_dim);
  const int tile_rows = RoundUp(rows, kTileRows);
  const float q_scale = p.scale * kLog2e;  // scores come out in the log2 domain, for Exp2
  const float* q = t.q + (bh * p.q_len + q0) * dim;
  for (int i = 0; i < tile_rows; ++i) {
    for (int d = 0; d < dim; ++d) ws.q[i * dim + d] = i < rows ? q[i * dim + d] * q_scale : 0.f;
  }
  std::fill(ws.o.begin(), ws.o.begin() + static_cast<int64_t>(tile_rows) * padded_dim, 0.f);
  std::fill(ws.m.begin(), ws.m.end(), -std::numeric_limits<float>::infinity());
  std::fill(ws.l.begin(), ws.l.end(), 0.f);

  const float* k_slice = t.k + bh * p.kv_len * dim;
  const float* v_slice = t.v + bh * p.kv_len * dim;
  for (int32_t j = begin; j < end; ++j) {
    const int64_t k0 = static_cast<int64_t>(col_idx[j]) * block;
    const int keys = static_cast<int>(std::min<int64_t>(block, p.kv_len - k0));
    const float* k = k_slice + k0 * dim;
    const float* v = v_slice + k0 * dim;
    for (int d = 0; d < dim; ++d) {
      float* kt_row = ws.kt.data() + d * block;
      for (int n = 0; n < block; ++n) kt_row[n] = n < keys ? k[n * dim + d] : 0.f;
    }
    for (int n = 0; n < block; ++n) {
      float* v_row = ws.v.data() + n * padded_dim;
      for (int d = 0; d < padded_dim; ++d) v_row[d] = (n < keys && d < dim) ? v[n * dim + d] : 0.f;
    }

    Gemm<false>(ws.q.data(), dim, ws.kt.data(), block, ws.s.data(), block, tile_rows, block, dim);
    for (int i = 0; i < tile_rows; ++i) {
      float* s_row = ws.s.data() + i * block;
      for (int n = keys; n < block; ++n) s_row[n] = -std::numeric_limits<float>::infinity();
      const float m_new = std::max(ws.m[i], RowMax(s_row, block));
      const float alpha = Exp2(ws.m[i] - m_new);
      const float sum = Exp2InPlace(s_row, block, m_new);
      ws.l[i] = ws.l[i] * alpha + sum;
      ws.m[i] = m_new;
      Scale(ws.o.data() + i * padded_dim, padded_dim, alpha);
    }
    Gemm<true>(ws.s.data(), block, ws.v.data(), padded_dim, ws.o.data(), padded_dim, tile_rows, padded_dim, block);
  }

  for (int i = 0; i < rows; ++i) {
    const float inv = 1.f / ws.l[i];
    const float* o_row = ws.o.data() + i * padded_dim;
    for (int d = 0; d < dim; ++d) out[i * dim + d] = o_row[d] * inv;
  }
}

}  // namespace

int64_t TaskCount(const Problem& problem) { return problem.batch * problem.heads * problem.q_blocks; }

void RunTask(const Problem& problem, const Tensors& tensors, int64_t task) {
  thread_local Workspace workspace;
  RunTaskImpl(problem, tensors, task, workspace);
}

}  // namespace podium::cpu
