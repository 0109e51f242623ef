// SplitHeadsNorm's CUDA kernel: one group of lanes per row of head_dim values, 16-byte loads and
// stores, the sum of squares reduced by warp shuffles inside the group, float32 arithmetic and one
// rounding to the output type. Reads are in qkv's order; each row is written as one contiguous run.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "launch.h"

namespace podium::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
constexpr int kVectorOf = 16 / sizeof(T);  // elements in one 16-byte load

__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T FromFloat(float x);
template <>
__device__ __forceinline__ float FromFloat<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half FromFloat<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename T>
__device__ __forceinline__ void Unpack(const uint4& bits, float (&values)[kVectorOf<T>]) {
  const T* elements = reinterpret_cast<const T*>(&bits);
#pragma unroll
  for (int i = 0; i < kVectorOf<T>; ++i) values[i] = ToFloat(elements[i]);
}

// kLanes: lanes per row, a power of two with kLanes * kVectorOf<T> >= head_dim.
template <typename T, int kLanes>
__global__ void __launch_bounds__(kThreads) SplitHeadsNormKernel(const SplitHeadsParams p) {
  // 32-bit index arithmetic: rows < 2^26 (the contract), so thread indices stay below 2^31.
  constexpr int kVector = kVectorOf<T>;
  const uint32_t thread = blockIdx.x * kThreads + threadIdx.x;
  const uint32_t row = thread / kLanes;
  const int column = static_cast<int>(thread % kLanes) * kVector;
  const bool active = row < static_cast<uint32_t>(p.rows) && column < p.head_dim;

  float values[kVector];
  uint4 bits = make_uint4(0, 0, 0, 0);
  if (active) {
    bits = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.qkv) + static_cast<size_t>(row) * p.head_dim + column);
  }
  Unpack<T>(bits, values);

  // Every lane of the warp takes part in the shuffles; lanes past the end contribute zeros.
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < kVector; ++i) squares += values[i] * values[i];
#pragma unroll
  for (int offset = kLanes / 2; offset > 0; offset /= 2) squares += __shfl_xor_sync(0xffffffffu, squares, offset);
  if (!active) return;

  const uint32_t heads = static_cast<uint32_t>(p.heads), tokens = static_cast<uint32_t>(p.tokens);
  const uint32_t token = row / (3 * heads);  // rows run (token, part, head)
  const uint32_t part_head = row - token * 3 * heads;
  const uint32_t part = part_head / heads;  // 0 q, 1 k, 2 v
  const uint32_t head = part_head - part * heads;
  const uint32_t batch = token / tokens;
  const uint32_t position = token - batch * tokens;
  if (part < 2) {
    const float inverse = rsqrtf(squares / static_cast<float>(p.head_dim) + p.epsilon);
    float weights[kVector];
    Unpack<T>(*reinterpret_cast<const uint4*>(static_cast<const T*>(part == 0 ? p.q_weight : p.k_weight) + column),
              weights);
    T* elements = reinterpret_cast<T*>(&bits);
#pragma unroll
    for (int i = 0; i < kVector; ++i) elements[i] = FromFloat<T>(values[i] * inverse * weights[i]);
  }
  // A select, not p.out[part]: indexing the parameter array at run time copies all of p to local memory.
  void* const out = part == 0 ? p.out[0] : (part == 1 ? p.out[1] : p.out[2]);
  const size_t out_row = (static_cast<size_t>(batch) * heads + head) * tokens + position;
  *reinterpret_cast<uint4*>(static_cast<T*>(out) + out_row * p.head_dim + column) = bits;
}

template <typename T, int kLanes>
cudaError_t Launch(const SplitHeadsParams& params, cudaStream_t stream) {
  const int64_t threads = params.rows * kLanes;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  SplitHeadsNormKernel<T, kLanes><<<blocks, kThreads, 0, stream>>>(params);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchFor(const SplitHeadsParams& params, cudaStream_t stream) {
  const int vectors = (params.head_dim + kVectorOf<T> - 1) / kVectorOf<T>;
  if (vectors <= 4) return Launch<T, 4>(params, stream);
  if (vectors <= 8) return Launch<T, 8>(params, stream);
  if (vectors <= 16) return Launch<T, 16>(params, stream);
  return Launch<T, 32>(params, stream);
}

}  // namespace

cudaError_t LaunchSplitHeadsNorm(const SplitHeadsParams& params, ElementType type, cudaStream_t stream) {
  switch (type) {
    case ElementType::kFloat32:
      return LaunchFor<float>(params, stream);
    case ElementType::kBFloat16:
      return LaunchFor<__nv_bfloat16>(params, stream);
    case ElementType::kFloat16:
      break;
  }
  return LaunchFor<__half>(params, stream);
}

}  // namespace podium::cuda
