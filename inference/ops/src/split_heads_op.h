// SplitHeadsNorm for ONNX Runtime: the CPU kernel (float32) and the CUDA kernel (float32, float16, bfloat16).
// The contract is in split_heads.h and docs/ops.md.
#pragma once

#include "op_base.h"
#include "split_heads.h"

namespace podium::split_heads {

// The inputs of one call and the Problem they describe; throws ContractError.
struct CallInputs {
  Ort::ConstValue qkv, q_weight, k_weight;
  Problem problem;
};
CallInputs ReadInputs(const Ort::KernelContext& context, const Attributes& attributes);

// Reads heads (required) and epsilon (optional) and checks them; throws ContractError.
Attributes ReadAttributes(const OrtApi& api, const OrtKernelInfo* info);

// Outputs q, k, v: qkv's type, shape [batch, heads, tokens, head_dim] (unknown dims stay unknown).
OrtStatusPtr ORT_API_CALL InferOutputShapes(const OrtCustomOp* op, OrtShapeInferContext* context);

class CpuKernel {
 public:
  CpuKernel(const Attributes& attributes, ONNXTensorElementDataType) : attributes_(attributes) {}
  OrtStatusPtr ComputeV2(OrtKernelContext* context);

 private:
  Attributes attributes_;
};

// Defined in split_heads_cuda_op.cc, built with the CUDA kernels only.
class CudaKernel {
 public:
  CudaKernel(const Attributes& attributes, ONNXTensorElementDataType type) : attributes_(attributes), type_(type) {}
  OrtStatusPtr ComputeV2(OrtKernelContext* context);

 private:
  Attributes attributes_;
  ONNXTensorElementDataType type_;
};

template <typename TOp, typename TKernel>
struct OpBase : Ort::CustomOpBase<TOp, TKernel, /*WithStatus=*/true> {
  OpBase() {
    this->start_ver_ = kSinceVersion;
    this->InferOutputShapeFn = &InferOutputShapes;
  }

  const char* GetName() const { return kName; }
  size_t GetInputTypeCount() const { return kInputCount; }
  size_t GetOutputTypeCount() const { return kOutputCount; }
  ONNXTensorElementDataType GetInputType(size_t) const { return TOp::kElementType; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return TOp::kElementType; }

  OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const {
    return GuardStatus([&]() -> OrtStatusPtr {
      *kernel = new TKernel(ReadAttributes(api, info), TOp::kElementType);
      return nullptr;
    }, kName);
  }
};

struct CpuOp : OpBase<CpuOp, CpuKernel> {
  static constexpr ONNXTensorElementDataType kElementType = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
};

template <ONNXTensorElementDataType kType>
struct CudaOp : OpBase<CudaOp<kType>, CudaKernel> {
  static constexpr ONNXTensorElementDataType kElementType = kType;
  const char* GetExecutionProviderType() const { return "CUDAExecutionProvider"; }
};

}  // namespace podium::split_heads
