// The Hopper kernel (sm_90a): the same flash-attention forward as mma_kernel.cu, with warpgroup
// MMA (wgmma) and the tensor memory accelerator (TMA) instead of mma.sync and cp.async.
//
// One CTA is one warpgroup (128 threads) and computes 64 query rows of one (batch, head).
// Q and the key/value tiles arrive by TMA (cp.async.bulk.tensor): one thread issues one copy per
// 64-column panel into 128-byte-swizzled shared memory, and the copies complete on an mbarrier;
// tiles past the end of the sequence are zero-filled by the copy engine. The host encodes the
// three tensor maps from the shapes and pointers on every launch (no device access, no sync).
// S = Q K^T reads Q and K straight from shared memory through wgmma descriptors; O += P V takes P
// from registers (the accumulator layout of S is the register-A layout) and V from shared memory,
// transposed by the descriptor. Key/value tiles are double-buffered: the copy of tile j + 2 is
// issued as soon as every warp is done with tile j, and O += P V of tile j runs while the next
// tile's S = Q K^T is issued. With 64-dim heads and 128-key tiles a CTA needs 73 KB of shared
// memory, so three CTAs share a multiprocessor and overlap each other's softmax, MMAs and loads.
#include <cuda.h>  // CUtensorMap and its enums only: the encoder comes from cudaGetDriverEntryPointByVersion
#include <cudaTypedefs.h>

#include "device_common.cuh"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "wgmma_kernel.cu must be compiled for sm_90a only"
#endif

namespace podium::cuda {
namespace {

#define PODIUM_WGMMA_D32                                                                                      \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define PODIUM_WGMMA_D64                                                                                      \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "  \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define PODIUM_WGMMA_OUT32(d)                                                                          \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),         \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
      "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]),            \
      "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),            \
      "+f"(d[30]), "+f"(d[31])
#define PODIUM_WGMMA_OUT64(d)                                                                               \
  PODIUM_WGMMA_OUT32(d), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]),        \
      "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), \
      "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]),              \
      "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]),              \
      "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d (+)= A * B^T with A and B both K-major in shared memory (64 x N output).
template <typename T, int kN>
__device__ __forceinline__ void WgmmaSS(float (&d)[kN / 2], uint64_t a, uint64_t b, int accumulate);

// d += A * B with A in registers (one 64x16 fragment) and B MN-major in shared memory.
template <typename T, int kN>
__device__ __forceinline__ void WgmmaRS(float (&d)[kN / 2], const uint32_t (&a)[4], uint64_t b);

#define PODIUM_DEFINE_WGMMA_SS(T, PTX_TYPE, N, DLIST, OUTLIST, IA, IB, IP)                                 \
  template <>                                                                                             \
  __device__ __forceinline__ void WgmmaSS<T, N>(float (&d)[N / 2], uint64_t a, uint64_t b, int accumulate) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" IP ", 0;\n"                                          \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " " DLIST ", %" IA   \
                 ", %" IB ", p, 1, 1, 0, 0;\n}\n"                                                          \
                 : OUTLIST(d)                                                                             \
                 : "l"(a), "l"(b), "r"(accumulate));                                                      \
  }

#define PODIUM_DEFINE_WGMMA_RS(T, PTX_TYPE, N, DLIST, OUTLIST, IA0, IA1, IA2, IA3, IB)                      \
  template <>                                                                                             \
  __device__ __forceinline__ void WgmmaRS<T, N>(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b) {    \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"                                               \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " " DLIST ", {%" IA0 \
                 ", %" IA1 ", %" IA2 ", %" IA3 "}, %" IB ", p, 1, 1, 1;\n}\n"                              \
                 : OUTLIST(d)                                                                             \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                                   \
  }

PODIUM_DEFINE_WGMMA_SS(__half, "f16", 64, PODIUM_WGMMA_D32, PODIUM_WGMMA_OUT32, "32", "33", "34")
PODIUM_DEFINE_WGMMA_SS(__half, "f16", 128, PODIUM_WGMMA_D64, PODIUM_WGMMA_OUT64, "64", "65", "66")
PODIUM_DEFINE_WGMMA_SS(__nv_bfloat16, "bf16", 64, PODIUM_WGMMA_D32, PODIUM_WGMMA_OUT32, "32", "33", "34")
PODIUM_DEFINE_WGMMA_SS(__nv_bfloat16, "bf16", 128, PODIUM_WGMMA_D64, PODIUM_WGMMA_OUT64, "64", "65", "66")
PODIUM_DEFINE_WGMMA_RS(__half, "f16", 64, PODIUM_WGMMA_D32, PODIUM_WGMMA_OUT32, "32", "33", "34", "35", "36")
PODIUM_DEFINE_WGMMA_RS(__half, "f16", 128, PODIUM_WGMMA_D64, PODIUM_WGMMA_OUT64, "64", "65", "66", "67", "68")
PODIUM_DEFINE_WGMMA_RS(__nv_bfloat16, "bf16", 64, PODIUM_WGMMA_D32, PODIUM_WGMMA_OUT32, "32", "33", "34", "35",
                       "36")
PODIUM_DEFINE_WGMMA_RS(__nv_bfloat16, "bf16", 128, PODIUM_WGMMA_D64, PODIUM_WGMMA_OUT64, "64", "65", "66", "67",
                       "68")

__device__ __forceinline__ void WgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void WgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }

// Waits until at most kPending committed wgmma groups of this warpgroup are still running.
template <int kPending>
__device__ __forceinline__ void WgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// Keeps the compiler from moving accumulator accesses across the asynchronous MMA.
template <int kN>
__device__ __forceinline__ void PinRegisters(float (&d)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Keeps the P fragments alive (unmoved, unreused) until the MMA that reads them has finished.
template <int kN>
__device__ __forceinline__ void PinRegisters(uint32_t (&a)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(a[i][j])::"memory");
  }
}

__device__ __forceinline__ uint32_t SharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// A shared-memory matrix descriptor for the 128-byte swizzle; offsets in bytes. The start address
// sits in the low 14 bits (in 16-byte units), so a descriptor plus (offset >> 4) addresses
// `offset` bytes further on.
__device__ __forceinline__ uint64_t Descriptor(uint32_t address, uint32_t leading_offset, uint32_t stride_offset) {
  return static_cast<uint64_t>((address & 0x3FFFF) >> 4) | (static_cast<uint64_t>(leading_offset >> 4) << 16) |
         (static_cast<uint64_t>(stride_offset >> 4) << 32) | (1ull << 62);
}

// Starts S = Q K^T (64 x kTileN) as one wgmma group: four K-steps of 16 per 64-column panel.
// q and k are the descriptors of the tiles' first byte (K-major, leading 16, stride 1024).
template <typename T, int kDim, int kTileN>
__device__ __forceinline__ void IssueScores(float (&s)[kTileN / 2], uint64_t q, uint64_t k) {
  WgmmaFence();
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    const uint64_t a = q + (((kk / 4) * (kTileM * 128) + (kk % 4) * 32) >> 4);
    const uint64_t b = k + (((kk / 4) * (kTileN * 128) + (kk % 4) * 32) >> 4);
    WgmmaSS<T, kTileN>(s, a, b, kk > 0);
  }
  WgmmaCommit();
}

// Starts O += P V as one wgmma group, one K-step per 16 keys; V is read MN-major (transposed).
// v is the descriptor of the tile's first byte (leading kTileN * 128, stride 1024).
template <typename T, int kDim, int kTileN>
__device__ __forceinline__ void IssueValues(float (&o)[kDim / 2], const uint32_t (&p)[kTileN / 16][4], uint64_t v) {
  WgmmaFence();
#pragma unroll
  for (int kk = 0; kk < kTileN / 16; ++kk) WgmmaRS<T, kDim>(o, p[kk], v + ((kk * 16 * 128) >> 4));
  WgmmaCommit();
}

// ---------------------------------------------------------------------------------------------
// The tensor memory accelerator and its barriers
// ---------------------------------------------------------------------------------------------

// The tensor maps of q, k and v, viewed as [batch, heads, len, head_dim] tensors of 16-bit
// elements (dimension 0 = head_dim); a copy moves one box of 64 columns (128 bytes) by `rows`,
// 128-byte swizzled, and zero-fills rows past len.
struct TensorMaps {
  CUtensorMap q;  // boxes of kTileM rows
  CUtensorMap k;  // boxes of kTileN rows
  CUtensorMap v;
};

__device__ __forceinline__ void InitBarrier(uint64_t* barrier) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(SharedAddress(barrier)) : "memory");
}

// Makes the barrier initialisation visible to the copy engine.
__device__ __forceinline__ void FenceBarrierInit() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// The one arrival of this phase, announcing `bytes` to come from copies.
__device__ __forceinline__ void ArriveExpectBytes(uint64_t* barrier, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(SharedAddress(barrier)), "r"(bytes)
               : "memory");
}

// Waits until the phase with this parity has completed (all announced bytes have landed).
__device__ __forceinline__ void WaitBarrier(uint64_t* barrier, uint32_t parity) {
  const uint32_t address = SharedAddress(barrier);
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address), "r"(parity)
        : "memory");
  } while (done == 0);
}

// Copies the box at (column, row, head, batch) of `map` into shared memory at `destination`,
// completing on `barrier`.
__device__ __forceinline__ void CopyBox(void* destination, const CUtensorMap* map, uint64_t* barrier, int column,
                                        int row, int head, int batch) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes "
      "[%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(SharedAddress(destination)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(row), "r"(head), "r"(batch), "r"(SharedAddress(barrier))
      : "memory");
}

// Copies rows [row, row + kRows) x all kDim columns: one box per 64-column panel.
template <int kRows, int kDim>
__device__ __forceinline__ void CopyTile(uint8_t* destination, const CUtensorMap* map, uint64_t* barrier, int row,
                                         int head, int batch) {
#pragma unroll
  for (int panel = 0; panel < kDim / 64; ++panel) {
    CopyBox(destination + panel * (kRows * 128), map, barrier, panel * 64, row, head, batch);
  }
}

// The online-softmax step on one score tile: P = 2^(s * scale_log2 - row max), written as the
// A fragments of O += P V, and the factors by which the running output rows must be scaled.
// s[4j + e] holds row lane/4 + 8 * (e / 2), column 8j + 2 * (lane % 4) + (e % 2); the pair
// (s[2m], s[2m + 1]) is register m % 4 of fragment m / 4. Columns >= valid_keys do not exist.
template <typename T, int kTileN>
__device__ __forceinline__ void Softmax(float (&s)[kTileN / 2], int valid_keys, float scale_log2,
                                        float (&row_max)[2], float (&row_sum)[2], float (&alpha)[2],
                                        uint32_t (&p)[kTileN / 16][4]) {
  const int quad = threadIdx.x % 4;
  if (valid_keys < kTileN) {
#pragma unroll
    for (int i = 0; i < kTileN / 2; ++i) {
      if (8 * (i / 4) + 2 * quad + (i & 1) >= valid_keys) s[i] = -INFINITY;
    }
  }
  float new_max[2];
  float sum[2] = {0.f, 0.f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < kTileN / 8; ++j) tile_max = fmaxf(tile_max, fmaxf(s[4 * j + 2 * r], s[4 * j + 2 * r + 1]));
    new_max[r] = fmaxf(row_max[r], QuadMax(tile_max) * scale_log2);
    alpha[r] = FastExp2(row_max[r] - new_max[r]);
  }
#pragma unroll
  for (int m = 0; m < kTileN / 4; ++m) {
    const int r = m % 2;
    p[m / 4][m % 4] =
        Exp2Pair<T>(s[2 * m] * scale_log2 - new_max[r], s[2 * m + 1] * scale_log2 - new_max[r], sum[r]);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_sum[r] = row_sum[r] * alpha[r] + sum[r];
    row_max[r] = new_max[r];
  }
}

template <int kDim, int kTileN>
struct WgmmaShape {
  static constexpr int kQBytes = kTileM * kDim * 2;
  static constexpr int kKvBytes = kTileN * kDim * 2;
  static constexpr int kSmemBytes = kQBytes + 4 * kKvBytes + 1024;  // + room to align the tiles to 1 KB
  static constexpr int kMinBlocksPerSm = kDim == 128 ? 2 : (kTileN == 128 ? 3 : 4);
};

template <typename T, int kDim, int kTileN>
__global__ void __launch_bounds__(kThreads, (WgmmaShape<kDim, kTileN>::kMinBlocksPerSm))
    WgmmaAttentionKernel(const Params p, const __grid_constant__ TensorMaps maps) {
  using Shape = WgmmaShape<kDim, kTileN>;
  extern __shared__ uint8_t smem_raw[];
  __shared__ int first_bad_column;
  __shared__ uint64_t barriers[3];  // Q; key/value buffers 0 and 1
  uint8_t* const smem = smem_raw + ((1024 - (SharedAddress(smem_raw) & 1023)) & 1023);  // swizzle atoms: 1 KB
  uint8_t* const q_tile = smem;
  uint8_t* const k_tiles = smem + Shape::kQBytes;  // buffer b at + b * kKvBytes (b = 0, 1)
  uint8_t* const v_tiles = smem + Shape::kQBytes + 2 * Shape::kKvBytes;
  uint64_t* const q_full = barriers;
  uint64_t* const kv_full = barriers + 1;

  const int q0 = blockIdx.x * kTileM;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int64_t bh = static_cast<int64_t>(batch) * p.heads + head;
  const int rows = min(kTileM, p.q_len - q0);
  uint16_t* const out = static_cast<uint16_t*>(p.out) + (bh * p.q_len + q0) * kDim;
  const bool leader = threadIdx.x == 0;  // issues the copies

  if (leader) {  // Q does not depend on the mask: start it before the mask is checked
    InitBarrier(q_full);
    InitBarrier(kv_full);
    InitBarrier(kv_full + 1);
    FenceBarrierInit();
    ArriveExpectBytes(q_full, Shape::kQBytes);
    CopyTile<kTileM, kDim>(q_tile, &maps.q, q_full, q0, head, batch);
  }
  __syncthreads();  // the barriers are initialised before anyone waits on them

  const MaskRow mask_row = ReadMaskRow(p, batch, head, q0 / p.block_size, &first_bad_column);
  if (mask_row.malformed || mask_row.begin == mask_row.end) {
    WaitBarrier(q_full, 0);  // the Q copy lands before this CTA's shared memory is given to another
    // A malformed row gives NaN; a row without kept key blocks gives zeros, by contract.
    FillRows<kDim>(out, rows, mask_row.malformed ? Element<T>::kNanBits : 0);
    return;
  }

  auto copy_tile = [&](const KeyTiles<kTileN>& tile, int buffer) {  // by the leader
    uint64_t* const barrier = kv_full + buffer;
    ArriveExpectBytes(barrier, 2 * Shape::kKvBytes);
    CopyTile<kTileN, kDim>(k_tiles + buffer * Shape::kKvBytes, &maps.k, barrier, tile.start, head, batch);
    CopyTile<kTileN, kDim>(v_tiles + buffer * Shape::kKvBytes, &maps.v, barrier, tile.start, head, batch);
  };
  // `ahead` is the newest tile whose copy was issued: tile j + 1 while tile j is computed.
  KeyTiles<kTileN> ahead(mask_row, p.block_size, p.kv_len);
  int valid_keys = ahead.ValidKeys();  // of tile j
  if (leader) copy_tile(ahead, 0);
  bool has_next = ahead.Next();
  int next_valid_keys = ahead.ValidKeys();  // of tile j + 1, when has_next
  if (leader && has_next) copy_tile(ahead, 1);

  constexpr uint32_t kBufferStep = Shape::kKvBytes >> 4;  // from buffer 0 to 1, in descriptor units
  const uint64_t q_desc = Descriptor(SharedAddress(q_tile), 16, 1024);
  const uint64_t k_desc = Descriptor(SharedAddress(k_tiles), 16, 1024);
  const uint64_t v_desc = Descriptor(SharedAddress(v_tiles), kTileN * 128, 1024);
  uint32_t parities = 0;  // bit b: the parity of the next phase of kv_full[b]
  auto wait_tile = [&](int buffer) {
    WaitBarrier(kv_full + buffer, (parities >> buffer) & 1);
    parities ^= 1u << buffer;
  };
  // After tile j: moves `ahead` to tile j + 2 and, once every warp is done with buffer `buffer`,
  // copies that tile into it; shifts the per-tile state by one.
  auto advance = [&](int buffer) {
    const bool has_after = ahead.Next();
    if (has_after) {
      __syncthreads();
      if (leader) copy_tile(ahead, buffer);
    }
    valid_keys = next_valid_keys;
    next_valid_keys = ahead.ValidKeys();
    has_next = has_after;
  };

  float o[kDim / 2] = {};
  float s[kTileN / 2] = {};
  uint32_t p_frag[kTileN / 16][4];
  float row_max[2] = {-INFINITY, -INFINITY};  // rows (threadIdx.x / 32) * 16 + lane/4 (+ 8), log2 domain
  float row_sum[2] = {0.f, 0.f};               // this thread's partial sums
  int buffer = 0;
  // Per tile: S of tile j is ready; softmax; O += P V of tile j is issued together with S of tile
  // j + 1, so the tensor cores run both back to back while the warps wait for them once.
  WaitBarrier(q_full, 0);
  wait_tile(0);
  IssueScores<T, kDim, kTileN>(s, q_desc, k_desc);
  WgmmaWait<0>();
  PinRegisters(s);
  for (;;) {
    float alpha[2];
    Softmax<T, kTileN>(s, valid_keys, p.scale_log2, row_max, row_sum, alpha, p_frag);
#pragma unroll
    for (int i = 0; i < kDim / 2; ++i) o[i] *= alpha[(i / 2) % 2];
    PinRegisters(o);
    IssueValues<T, kDim, kTileN>(o, p_frag, v_desc + buffer * kBufferStep);
    if (!has_next) break;
    wait_tile(buffer ^ 1);
    IssueScores<T, kDim, kTileN>(s, q_desc, k_desc + (buffer ^ 1) * kBufferStep);
    // Both groups at once: waiting for O += P V alone (wait_group 1) makes ptxas serialise every
    // wgmma of the kernel (warning C7514).
    WgmmaWait<0>();
    PinRegisters(o);
    PinRegisters(p_frag);
    PinRegisters(s);
    advance(buffer);
    buffer ^= 1;
  }
  WgmmaWait<0>();
  PinRegisters(o);

  // Normalise, stage the 64 x kDim tile in shared memory (Q is no longer needed), store 16-byte chunks.
  __syncthreads();  // every warp's MMAs have finished reading Q
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float inv = 1.f / QuadSum(row_sum[r]);
    const int row = (threadIdx.x / 32) * 16 + lane / 4 + 8 * r;
#pragma unroll
    for (int j = 0; j < kDim / 8; ++j) {
      *reinterpret_cast<uint32_t*>(q_tile + SwizzledChunkOffset<kTileM>(row, j) + (lane % 4) * 4) =
          Element<T>::Pack(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv);
    }
  }
  __syncthreads();
  StoreTile<kTileM, kDim>(out, q_tile, rows);
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

// cuTensorMapEncodeTiled from the driver the runtime found (no link to libcuda); null if absent.
PFN_cuTensorMapEncodeTiled_v12000 TensorMapEncoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encoder = [] {
    void* function = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    const cudaError_t error =
        cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &function, 12000, cudaEnableDefault, &found);
    return error == cudaSuccess && found == cudaDriverEntryPointSuccess
               ? reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(function)
               : nullptr;
  }();
  return encoder;
}

// The map of one [batch, heads, len, head_dim] tensor (len >= 1), boxes of 64 columns x box_rows.
cudaError_t EncodeTensorMap(CUtensorMap* map, const void* data, const Params& p, int64_t len, int box_rows) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = TensorMapEncoder();
  if (encode == nullptr) return cudaErrorSymbolNotFound;
  const cuuint64_t row_bytes = static_cast<cuuint64_t>(p.head_dim) * 2;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(p.head_dim), static_cast<cuuint64_t>(len),
                              static_cast<cuuint64_t>(p.heads), static_cast<cuuint64_t>(p.batch)};
  const cuuint64_t strides[3] = {row_bytes, row_bytes * len, row_bytes * len * p.heads};  // bytes, dims 1..3
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_rows), 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  const CUresult result = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT16, 4, const_cast<void*>(data), dims, strides, box,
                                 element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                 CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return result == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

template <typename T, int kDim, int kTileN>
cudaError_t Launch(const Params& p, cudaStream_t stream) {
  using Shape = WgmmaShape<kDim, kTileN>;
  TensorMaps maps;
  // With kv_len 0 every mask row is empty or malformed and no key tile is ever copied; q stands in
  // for k and v so that the maps stay valid.
  const bool has_keys = p.kv_len > 0;
  const int64_t key_len = has_keys ? p.kv_len : p.q_len;
  cudaError_t error = EncodeTensorMap(&maps.q, p.q, p, p.q_len, kTileM);
  if (error == cudaSuccess) error = EncodeTensorMap(&maps.k, has_keys ? p.k : p.q, p, key_len, kTileN);
  if (error == cudaSuccess) error = EncodeTensorMap(&maps.v, has_keys ? p.v : p.q, p, key_len, kTileN);
  if (error != cudaSuccess) return error;
  auto* kernel = &WgmmaAttentionKernel<T, kDim, kTileN>;
  error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Shape::kSmemBytes);
  if (error != cudaSuccess) return error;
  const dim3 grid((p.q_len + kTileM - 1) / kTileM, p.heads, p.batch);
  kernel<<<grid, kThreads, Shape::kSmemBytes, stream>>>(p, maps);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchTyped(const Params& p, cudaStream_t stream) {
  if (p.head_dim == 128) return Launch<T, 128, 64>(p, stream);
  if (p.head_dim != 64) return cudaErrorInvalidValue;
  // One 128-key tile per 128 block; 64 blocks need 64-key tiles.
  return p.block_size == 128 ? Launch<T, 64, 128>(p, stream) : Launch<T, 64, 64>(p, stream);
}

}  // namespace

cudaError_t LaunchWgmmaKernel(const Params& p, ElementType type, cudaStream_t stream) {
  return type == ElementType::kFloat16 ? LaunchTyped<__half>(p, stream) : LaunchTyped<__nv_bfloat16>(p, stream);
}

}  // namespace podium::cuda
