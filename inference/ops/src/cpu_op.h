// BlockSparseAttention on the CPU execution provider: float32, any head_dim.
#pragma once

#include "op_base.h"

namespace podium {

class CpuKernel {
 public:
  CpuKernel(const Attributes& attributes, ONNXTensorElementDataType) : attributes_(attributes) {}
  OrtStatusPtr ComputeV2(OrtKernelContext* context);

 private:
  Attributes attributes_;
};

struct CpuOp : OpBase<CpuOp, CpuKernel> {
  static constexpr ONNXTensorElementDataType kElementType = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
};

}  // namespace podium
