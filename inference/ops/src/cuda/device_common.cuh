// Device helpers shared by the mma.sync and the wgmma kernels: the checked walk over one CSR row,
// tile loads into swizzled shared memory, fills, and small numeric helpers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cstdint>

#include "../contract.h"
#include "launch.h"

namespace podium::cuda {

constexpr int kThreads = 128;  // one warpgroup / four warps per CTA
constexpr int kTileM = 64;     // query rows per CTA

// ---------------------------------------------------------------------------------------------
// Element types
// ---------------------------------------------------------------------------------------------

template <typename T>
struct Element;

template <>
struct Element<__half> {
  static constexpr uint16_t kNanBits = 0x7E00;
  __device__ static uint32_t Pack(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};

template <>
struct Element<__nv_bfloat16> {
  static constexpr uint16_t kNanBits = 0x7FC0;
  __device__ static uint32_t Pack(float lo, float hi) {
#if __CUDA_ARCH__ >= 800
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
#else
    (void)lo;
    (void)hi;
    __trap();  // the host never launches bf16 below sm_80
    return 0;
#endif
  }
};

// ---------------------------------------------------------------------------------------------
// Numerics
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ float FastExp2(float x) {  // exp2(-inf) = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// 2^x0, 2^x1 (x <= 0) as a packed pair of T, exponentials in float32; adds both to sum.
template <typename T>
__device__ __forceinline__ uint32_t Exp2Pair(float x0, float x1, float& sum) {
  const float e0 = FastExp2(x0);
  const float e1 = FastExp2(x1);
  sum += e0 + e1;
  return Element<T>::Pack(e0, e1);
}

// The same for float16 with one ex2.approx.f16x2 for both: half the special-function work, and the
// result is already the packed P that the second MMA reads. Its error (from rounding x to float16)
// stays below that of rounding P to float16 where P matters. It pays where the exponentials bound
// the speed (the mma.sync kernel: one exp per 256 MMA flops with 64-dim heads, and the
// special-function unit does 16 a clock per SM); the wgmma kernel is bound by instruction issue
// instead, and its extra conversions made it slower there.
__device__ __forceinline__ uint32_t Exp2PairHalf2(float x0, float x1, float& sum) {
  const uint32_t x = Element<__half>::Pack(x0, x1);
  uint32_t e;
  asm("ex2.approx.f16x2 %0, %1;" : "=r"(e) : "r"(x));
  const float2 pair = __half22float2(*reinterpret_cast<const __half2*>(&e));
  sum += pair.x + pair.y;
  return e;
}

// Max and sum over the four threads of a quad (they share one row of an MMA fragment).
__device__ __forceinline__ float QuadMax(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float QuadSum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// ---------------------------------------------------------------------------------------------
// Asynchronous copies (cp.async on sm_80+, plain loads below)
// ---------------------------------------------------------------------------------------------

// 16 bytes from global to shared memory; zeros when !valid (src must still be a mapped address).
__device__ __forceinline__ void CopyChunk(void* dst, const void* src, bool valid) {
#if __CUDA_ARCH__ >= 800
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
#else
  *reinterpret_cast<uint4*>(dst) = valid ? *reinterpret_cast<const uint4*>(src) : make_uint4(0, 0, 0, 0);
#endif
}

__device__ __forceinline__ void CommitCopies() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most `kPending` committed groups are still in flight (this thread's copies).
template <int kPending>
__device__ __forceinline__ void WaitCopies() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}

// ---------------------------------------------------------------------------------------------
// Swizzled tiles
//
// A tile of `rows` x `cols` 16-bit elements is stored as panels of 64 columns; each panel holds
// `rows` rows of 128 bytes, and the eight 16-byte chunks of row r sit at chunk ^ (r % 8). This is
// the 128-byte-swizzle layout wgmma reads (K-major for Q and K, MN-major for V), and it keeps
// ldmatrix free of bank conflicts for the mma.sync kernel.
// ---------------------------------------------------------------------------------------------

template <int kRows>
__device__ __forceinline__ int SwizzledChunkOffset(int row, int chunk) {  // in bytes
  return (chunk >> 3) * (kRows * 128) + row * 128 + (((chunk & 7) ^ (row & 7)) << 4);
}

// Loads rows [0, kRows) x cols [0, kCols) of a row-major global tile; rows >= valid_rows become zeros.
template <int kRows, int kCols>
__device__ __forceinline__ void LoadTile(uint8_t* smem, const uint16_t* global, int valid_rows) {
  constexpr int kChunksPerRow = kCols / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile must split evenly over the CTA");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int chunk_id = threadIdx.x + i * kThreads;
    const int row = chunk_id / kChunksPerRow;
    const int chunk = chunk_id % kChunksPerRow;
    const bool valid = row < valid_rows;
    const uint16_t* src = global + (valid ? row * kCols + chunk * 8 : 0);
    CopyChunk(smem + SwizzledChunkOffset<kRows>(row, chunk), src, valid);
  }
}

// Stores rows [0, valid_rows) of a swizzled shared tile to a row-major global tile.
template <int kRows, int kCols>
__device__ __forceinline__ void StoreTile(uint16_t* global, const uint8_t* smem, int valid_rows) {
  constexpr int kChunksPerRow = kCols / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int chunk_id = threadIdx.x + i * kThreads;
    const int row = chunk_id / kChunksPerRow;
    const int chunk = chunk_id % kChunksPerRow;
    if (row < valid_rows) {
      *reinterpret_cast<uint4*>(global + row * kCols + chunk * 8) =
          *reinterpret_cast<const uint4*>(smem + SwizzledChunkOffset<kRows>(row, chunk));
    }
  }
}

// Writes `bits` into every element of rows [0, valid_rows) of a row-major global tile.
template <int kCols>
__device__ __forceinline__ void FillRows(uint16_t* global, int valid_rows, uint16_t bits) {
  const uint32_t pair = (static_cast<uint32_t>(bits) << 16) | bits;
  const uint4 value = make_uint4(pair, pair, pair, pair);
  const int chunks = valid_rows * (kCols / 8);
  for (int c = threadIdx.x; c < chunks; c += kThreads) reinterpret_cast<uint4*>(global)[c] = value;
}

// ---------------------------------------------------------------------------------------------
// The block mask
// ---------------------------------------------------------------------------------------------

// The kept key blocks of one query block, after the checks: [begin, end) in its col_idx row.
struct MaskRow {
  const int32_t* col_idx;  // the col_idx row of the slice
  int begin;
  int end;
  bool malformed;
};

__device__ __forceinline__ void RecordFault(DeviceFault* fault, podium::CsrFaultKind kind, int batch, int head,
                                            int index, int value) {
  const int kind_and_head = static_cast<int>(kind) | ((head + 1) << 8);
  asm volatile("st.global.v4.s32 [%0], {%1, %2, %3, %4};\n" ::"l"(fault), "r"(kind_and_head), "r"(batch),
               "r"(index), "r"(value)
               : "memory");
  __threadfence_system();
}

// Reads and checks the CSR row of query block `row` for (batch, head), with the same rules as the
// host check (contract.cc): every index is checked before it is used, so a malformed mask never
// reads outside row_ptr or col_idx. The whole CTA must call it (it synchronises); every thread gets
// the same answer. A fault is recorded in params.fault.
__device__ inline MaskRow ReadMaskRow(const Params& p, int batch, int head, int row, int* shared_first_bad) {
  const int slice = batch * p.mask_heads + (p.mask_heads > 1 ? head : 0);
  const int32_t* row_ptr = p.row_ptr + static_cast<int64_t>(slice) * (p.q_blocks + 1);
  MaskRow result;
  result.col_idx = p.col_idx + static_cast<int64_t>(slice) * p.nnz;
  result.begin = __ldg(row_ptr + row);
  result.end = __ldg(row_ptr + row + 1);

  podium::CsrFaultKind kind = podium::CsrFaultKind::kNone;
  int index = 0;
  int value = 0;
  if (row == 0 && result.begin != 0) {
    kind = podium::CsrFaultKind::kRowPtrStart;
    value = result.begin;
  } else if (result.begin < 0 || result.begin > p.nnz) {
    kind = podium::CsrFaultKind::kRowPtrOutOfRange;
    index = row;
    value = result.begin;
  } else if (result.end < 0 || result.end > p.nnz) {
    kind = podium::CsrFaultKind::kRowPtrOutOfRange;
    index = row + 1;
    value = result.end;
  } else if (result.end < result.begin) {
    kind = podium::CsrFaultKind::kRowPtrDecreasing;
    index = row + 1;
    value = result.end;
  }

  if (kind == podium::CsrFaultKind::kNone) {  // uniform across the CTA
    if (threadIdx.x == 0) *shared_first_bad = INT_MAX;
    __syncthreads();
    for (int j = result.begin + threadIdx.x; j < result.end; j += kThreads) {
      const int c = __ldg(result.col_idx + j);
      const bool bad = c < 0 || c >= p.kv_blocks || (j > result.begin && c <= __ldg(result.col_idx + j - 1));
      if (bad) atomicMin(shared_first_bad, j);
    }
    __syncthreads();
    const int first_bad = *shared_first_bad;
    if (first_bad != INT_MAX) {
      const int c = __ldg(result.col_idx + first_bad);
      kind = (c < 0 || c >= p.kv_blocks) ? podium::CsrFaultKind::kColumnOutOfRange
                                         : podium::CsrFaultKind::kColumnsNotIncreasing;
      index = first_bad;
      value = c;
    }
  }
  result.malformed = kind != podium::CsrFaultKind::kNone;
  if (result.malformed && threadIdx.x == 0) {
    RecordFault(p.fault, kind, batch, p.mask_heads > 1 ? head : -1, index, value);
  }
  return result;
}

// Walks the key tiles (of kTileN keys) of the kept blocks of one checked mask row, in order. A
// block of 128 keys is two tiles of 64; tiles that start at or past kv_len are skipped. The index
// of the next kept block is read one block ahead, so that moving to it never waits for memory.
template <int kTileN>
struct KeyTiles {
  const int32_t* col_idx;
  int j;       // position in col_idx
  int end;
  int block_size;
  int kv_len;
  int start;   // first key of the current tile
  int block_start;
  int next_block_start;  // first key of the block at j + 1 (when j + 1 < end)

  __device__ KeyTiles(const MaskRow& row, int block_size_, int kv_len_)
      : col_idx(row.col_idx), j(row.begin), end(row.end), block_size(block_size_), kv_len(kv_len_) {
    block_start = __ldg(col_idx + j) * block_size;
    start = block_start;
    next_block_start = j + 1 < end ? __ldg(col_idx + j + 1) * block_size : 0;
  }

  // Keys of the current tile that exist (the last tile of the sequence may be partial).
  __device__ int ValidKeys() const { return min(kTileN, kv_len - start); }

  // Moves to the next tile; false when the row is done.
  __device__ bool Next() {
    const int next = start + kTileN;
    if (next < block_start + block_size && next < kv_len) {
      start = next;
      return true;
    }
    if (++j >= end) return false;
    block_start = next_block_start;
    start = block_start;
    if (j + 1 < end) next_block_start = __ldg(col_idx + j + 1) * block_size;
    return true;
  }
};

}  // namespace podium::cuda
