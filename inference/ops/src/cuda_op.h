// BlockSparseAttention on the CUDA execution provider: float16 and bfloat16, head_dim 64 or 128.
//
// Compute only checks shapes on the host and launches on the stream ONNX Runtime hands it: no
// allocation, no synchronisation, so it works under IO binding and CUDA graph capture. The block
// mask lives on the device and is checked by the kernel itself (cuda/device_common.cuh): a
// malformed row is never read out of bounds, its query rows are written as NaN, and the fault is
// recorded in a small mapped host buffer that the next Compute of the node reports as an error.
#pragma once

#include "cuda/launch.h"
#include "op_base.h"

namespace podium {

class CudaKernel {
 public:
  CudaKernel(const Attributes& attributes, ONNXTensorElementDataType type);
  ~CudaKernel();
  CudaKernel(const CudaKernel&) = delete;
  CudaKernel& operator=(const CudaKernel&) = delete;

  OrtStatusPtr ComputeV2(OrtKernelContext* context);

 private:
  // The fault an earlier launch found in its mask, as an error status (and clears it); or nullptr.
  OrtStatusPtr TakeEarlierFault(const Problem& problem);

  Attributes attributes_;
  cuda::ElementType type_;
  cuda::DeviceFault* fault_host_ = nullptr;    // mapped pinned host memory
  cuda::DeviceFault* fault_device_ = nullptr;  // the device's view of it
};

template <ONNXTensorElementDataType kType>
struct CudaOp : OpBase<CudaOp<kType>, CudaKernel> {
  static constexpr ONNXTensorElementDataType kElementType = kType;
  const char* GetExecutionProviderType() const { return "CUDAExecutionProvider"; }
};

}  // namespace podium
