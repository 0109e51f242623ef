// The interface between the CUDA op (host C++) and the CUDA kernels (.cu files).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace podium::cuda {

// A malformed block-mask row found by a kernel. It lives in mapped pinned host memory, so the
// kernel writes it without any copy or synchronisation and the host reads it at its next call.
// One 16-byte record, written with one vector store.
struct alignas(16) DeviceFault {
  int32_t kind_and_head;  // CsrFaultKind in the low 8 bits; (head + 1) << 8, 0 for a shared mask
  int32_t batch;
  int32_t index;          // position in the row_ptr row or the col_idx row
  int32_t value;          // the offending entry
};

enum class ElementType { kFloat16, kBFloat16, kFloat32 };  // kFloat32: SplitHeadsNorm only

// Everything a kernel needs; passed by value as the kernel parameter. Tensors are contiguous:
// q and out [batch, heads, q_len, head_dim], k and v [batch, heads, kv_len, head_dim],
// row_ptr [batch * mask_heads, q_blocks + 1], col_idx [batch * mask_heads, nnz].
struct Params {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  const int32_t* row_ptr;
  const int32_t* col_idx;
  DeviceFault* fault;
  int32_t batch;
  int32_t heads;
  int32_t q_len;
  int32_t kv_len;
  int32_t head_dim;
  int32_t block_size;
  int32_t q_blocks;
  int32_t kv_blocks;
  int32_t nnz;
  int32_t mask_heads;
  float scale_log2;  // softmax scale * log2(e): the kernels use exp2
};

struct Device {
  int ordinal = 0;
  int major = 0;  // compute capability
  int minor = 0;
};

// The device current on this thread (the one ONNX Runtime runs the node on).
cudaError_t CurrentDevice(Device* device);

// Launches on `stream`; no allocation, no synchronisation. head_dim must be 64 or 128, block_size
// 64 or 128, bf16 needs compute capability 8.0. Compute capability 9.0 gets the wgmma kernel
// (when built with sm_90a), every other device the mma.sync one; PODIUM_BSA_KERNEL=mma forces the
// mma.sync kernel on 9.0 too (to test it there). Returns the launch error, if any.
cudaError_t LaunchBlockSparseAttention(const Params& params, ElementType type, const Device& device,
                                       cudaStream_t stream);

// SplitHeadsNorm (split_heads.h): qkv [rows / (3 * heads), 3 * heads * head_dim] → q, k, v
// [batch, heads, tokens, head_dim]; q and k RMS-normalised. head_dim a multiple of 8, at most 256
// (float16, bfloat16) or 128 (float32); every pointer 16-byte aligned.
struct SplitHeadsParams {
  const void* qkv;
  const void* q_weight;
  const void* k_weight;
  void* out[3];     // q, k, v
  int64_t rows;     // batch * tokens * 3 * heads
  int64_t tokens;
  int32_t heads;
  int32_t head_dim;
  float epsilon;
};

// Launches on `stream`; no allocation, no synchronisation. Returns the launch error, if any.
cudaError_t LaunchSplitHeadsNorm(const SplitHeadsParams& params, ElementType type, cudaStream_t stream);

// Implemented in mma_kernel.cu and wgmma_kernel.cu.
cudaError_t LaunchMmaKernel(const Params& params, ElementType type, cudaStream_t stream);
cudaError_t LaunchWgmmaKernel(const Params& params, ElementType type, cudaStream_t stream);

}  // namespace podium::cuda
