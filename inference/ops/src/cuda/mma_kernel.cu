// The portable CUDA kernel: flash-attention forward with mma.sync tensor-core instructions
// (sm_75 and newer; on sm_75 each m16n8k16 is issued as two m16n8k8).
//
// One CTA of four warps computes 64 query rows (one query tile, inside one query block) of one
// (batch, head). Each warp owns 16 rows. Q stays in registers; key and value tiles of 64 keys are
// double-buffered in shared memory with cp.async, and only the key blocks kept by the CSR row are
// visited. Scores and probabilities live in registers (online softmax in the log2 domain).
#include <type_traits>

#include "device_common.cuh"

namespace podium::cuda {
namespace {

constexpr int kTileN = 64;  // keys per tile

template <int kDim>
struct MmaShape {
  static constexpr int kTileBytes = kTileM * kDim * 2;  // one 64 x kDim tile of 16-bit elements
  // K0, K1, V0, V1. Q is staged in K1 before the first tile and moved to registers.
  static constexpr int kSmemBytes = 4 * kTileBytes;
};

__device__ __forceinline__ uint32_t SharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void Ldmatrix4(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SharedAddress(smem)));
}

__device__ __forceinline__ void Ldmatrix4Trans(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SharedAddress(smem)));
}

// c += a * b for one m16n8k16 tile; fp32 accumulators.
template <typename T>
__device__ __forceinline__ void Mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

template <>
__device__ __forceinline__ void Mma<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(b0));
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[2]), "r"(a[3]), "r"(b1));
#endif
}

template <>
__device__ __forceinline__ void Mma<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                   uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)c;
  (void)a;
  (void)b0;
  (void)b1;
  __trap();  // the host never launches bf16 below sm_80
#endif
}

template <typename T, int kDim>
__global__ void __launch_bounds__(kThreads) MmaAttentionKernel(const Params p) {
  using Shape = MmaShape<kDim>;
  constexpr int kDimChunks = kDim / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) uint8_t smem[];
  __shared__ int first_bad_column;
  // Key tile b at k_tiles + b * kTileBytes, value tile b at v_tiles + b * kTileBytes (b = 0, 1).
  uint8_t* const k_tiles = smem;
  uint8_t* const v_tiles = smem + 2 * Shape::kTileBytes;
  uint8_t* const q_staging = k_tiles + Shape::kTileBytes;  // Q passes through K1 on its way to registers

  const int q0 = blockIdx.x * kTileM;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int64_t bh = static_cast<int64_t>(batch) * p.heads + head;
  const int rows = min(kTileM, p.q_len - q0);
  uint16_t* const out = static_cast<uint16_t*>(p.out) + (bh * p.q_len + q0) * kDim;

  const MaskRow mask_row = ReadMaskRow(p, batch, head, q0 / p.block_size, &first_bad_column);
  if (mask_row.malformed) {
    FillRows<kDim>(out, rows, Element<T>::kNanBits);
    return;
  }
  if (mask_row.begin == mask_row.end) {  // no kept key block: zeros, by contract
    FillRows<kDim>(out, rows, 0);
    return;
  }

  const uint16_t* const q = static_cast<const uint16_t*>(p.q) + (bh * p.q_len + q0) * kDim;
  const uint16_t* const k = static_cast<const uint16_t*>(p.k) + bh * p.kv_len * kDim;
  const uint16_t* const v = static_cast<const uint16_t*>(p.v) + bh * p.kv_len * kDim;
  KeyTiles<kTileN> tiles(mask_row, p.block_size, p.kv_len);

  auto load_tile = [&](uint8_t* buffers, const uint16_t* source, int buffer) {
    LoadTile<kTileN, kDim>(buffers + buffer * Shape::kTileBytes, source + static_cast<int64_t>(tiles.start) * kDim,
                           tiles.ValidKeys());
  };
  LoadTile<kTileM, kDim>(q_staging, q, rows);
  load_tile(k_tiles, k, 0);
  load_tile(v_tiles, v, 0);
  CommitCopies();
  WaitCopies<0>();
  __syncthreads();

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int quad = lane % 4;  // the thread's column pair inside an 8-column fragment

  // A fragments of this warp's 16 query rows, for each 16-wide step of the head dimension.
  uint32_t q_frag[kDim / 16][4];
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    Ldmatrix4(q_frag[kk], q_staging + SwizzledChunkOffset<kTileM>(warp * 16 + lane % 16, 2 * kk + lane / 16));
  }
  __syncthreads();  // K1 is free for the pipeline

  float o[kDim / 8][4] = {};
  float row_max[2] = {-INFINITY, -INFINITY};  // rows lane/4 and lane/4 + 8, log2 domain
  float row_sum[2] = {0.f, 0.f};               // this thread's partial sums
  int buffer = 0;
  for (;;) {
    const int valid_keys = tiles.ValidKeys();
    const bool has_next = tiles.Next();
    if (has_next) {
      load_tile(k_tiles, k, buffer ^ 1);
      load_tile(v_tiles, v, buffer ^ 1);
    }
    CommitCopies();
    WaitCopies<1>();
    __syncthreads();

    const uint8_t* const key_tile = k_tiles + buffer * Shape::kTileBytes;
    const uint8_t* const value_tile = v_tiles + buffer * Shape::kTileBytes;
    // S = Q K^T for 16 rows x 64 keys: eight 16x8 fragments.
    float s[kTileN / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < kDim / 16; ++kk) {
#pragma unroll
      for (int jp = 0; jp < kTileN / 16; ++jp) {
        uint32_t kb[4];
        Ldmatrix4(kb, key_tile + SwizzledChunkOffset<kTileN>(16 * jp + lane % 8 + (lane / 16) * 8,
                                                             2 * kk + (lane / 8) % 2));
        Mma<T>(s[2 * jp], q_frag[kk], kb[0], kb[1]);
        Mma<T>(s[2 * jp + 1], q_frag[kk], kb[2], kb[3]);
      }
    }

    if (valid_keys < kTileN) {  // the last tile of the sequence: keys past kv_len do not exist
#pragma unroll
      for (int j = 0; j < kTileN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (8 * j + 2 * quad + (e & 1) >= valid_keys) s[j][e] = -INFINITY;
        }
      }
    }

    // Online softmax; e / 2 selects the row (lane / 4 or lane / 4 + 8). P goes straight into the A
    // fragments of O += P V (the C layout of m16n8 is the A layout): fragment kk, register i holds
    // score fragment 2 kk + i / 2, row i % 2.
    float new_max[2];
    float alpha[2];
    float sum[2] = {0.f, 0.f};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < kTileN / 8; ++j) tile_max = fmaxf(tile_max, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
      new_max[r] = fmaxf(row_max[r], QuadMax(tile_max) * p.scale_log2);
      alpha[r] = FastExp2(row_max[r] - new_max[r]);
    }
    uint32_t p_frag[kTileN / 16][4];
#pragma unroll
    for (int j = 0; j < kTileN / 8; ++j) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float x0 = s[j][2 * r] * p.scale_log2 - new_max[r];
        const float x1 = s[j][2 * r + 1] * p.scale_log2 - new_max[r];
        uint32_t& pair = p_frag[j / 2][(j % 2) * 2 + r];
        if constexpr (std::is_same_v<T, __half>) {
          pair = Exp2PairHalf2(x0, x1, sum[r]);
        } else {
          pair = Exp2Pair<T>(x0, x1, sum[r]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      row_sum[r] = row_sum[r] * alpha[r] + sum[r];
      row_max[r] = new_max[r];
#pragma unroll
      for (int j = 0; j < kDim / 8; ++j) {
        o[j][2 * r] *= alpha[r];
        o[j][2 * r + 1] *= alpha[r];
      }
    }

    // O += P V.
#pragma unroll
    for (int kk = 0; kk < kTileN / 16; ++kk) {
#pragma unroll
      for (int jp = 0; jp < kDim / 16; ++jp) {
        uint32_t vb[4];
        Ldmatrix4Trans(vb, value_tile + SwizzledChunkOffset<kTileN>(16 * kk + lane % 8 + ((lane / 8) % 2) * 8,
                                                                    2 * jp + lane / 16));
        Mma<T>(o[2 * jp], p_frag[kk], vb[0], vb[1]);
        Mma<T>(o[2 * jp + 1], p_frag[kk], vb[2], vb[3]);
      }
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
    if (!has_next) break;
    buffer ^= 1;
  }

  // Normalise, stage the 64 x kDim tile in shared memory (K0 is free), store 16-byte chunks.
  uint8_t* const staging = k_tiles;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float inv = 1.f / QuadSum(row_sum[r]);
    const int row = warp * 16 + lane / 4 + 8 * r;
#pragma unroll
    for (int j = 0; j < kDimChunks; ++j) {
      *reinterpret_cast<uint32_t*>(staging + SwizzledChunkOffset<kTileM>(row, j) + quad * 4) =
          Element<T>::Pack(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
    }
  }
  __syncthreads();
  StoreTile<kTileM, kDim>(out, staging, rows);
}

template <typename T, int kDim>
cudaError_t Launch(const Params& p, cudaStream_t stream) {
  constexpr int kSmem = MmaShape<kDim>::kSmemBytes;
  auto* kernel = &MmaAttentionKernel<T, kDim>;
  if (kSmem > 48 * 1024) {
    const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
    if (error != cudaSuccess) return error;
  }
  const dim3 grid((p.q_len + kTileM - 1) / kTileM, p.heads, p.batch);
  kernel<<<grid, kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchMmaKernel(const Params& p, ElementType type, cudaStream_t stream) {
  const bool half = type == ElementType::kFloat16;
  if (p.head_dim == 64) return half ? Launch<__half, 64>(p, stream) : Launch<__nv_bfloat16, 64>(p, stream);
  if (p.head_dim == 128) return half ? Launch<__half, 128>(p, stream) : Launch<__nv_bfloat16, 128>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace podium::cuda
