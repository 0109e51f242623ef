// What the CPU and the CUDA registrations of BlockSparseAttention share: the op's signature (name,
// domain version, inputs), attribute reading, shape inference, and error statuses (MakeStatus and
// GuardStatus serve SplitHeadsNorm too).
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "contract.h"
#include "ort_api.h"

namespace podium {

// An ORT status carrying `message`; ownership passes to ONNX Runtime.
OrtStatusPtr MakeStatus(OrtErrorCode code, const std::string& message);

// Runs `body` (which returns an OrtStatusPtr) and turns any exception into a status whose message
// starts with the op's name.
template <typename Body>
OrtStatusPtr GuardStatus(Body&& body, const char* op = kOpName) noexcept {
  try {
    return body();
  } catch (const ContractError& e) {
    return MakeStatus(ORT_INVALID_ARGUMENT, e.what());
  } catch (const Ort::Exception& e) {
    return MakeStatus(e.GetOrtErrorCode(), std::string(op) + ": " + e.what());
  } catch (const std::exception& e) {
    return MakeStatus(ORT_FAIL, std::string(op) + ": " + e.what());
  }
}

// An int attribute of the node; throws ContractError(missing) when the node has none.
int64_t RequiredIntAttribute(const OrtApi& api, const OrtKernelInfo* info, const char* name,
                             const std::string& missing);

// A float attribute of the node, or false when the node has none.
bool OptionalFloatAttribute(const OrtApi& api, const OrtKernelInfo* info, const char* name, float* value);

// Reads block_size (required) and scale (optional) and checks them; throws ContractError.
Attributes ReadAttributes(const OrtApi& api, const OrtKernelInfo* info);

// Shapes of the five inputs of a call, and the Problem they describe; throws ContractError.
struct CallInputs {
  std::vector<Ort::ConstValue> values;
  std::vector<Shape> shapes;
  Problem problem;
};
CallInputs ReadInputs(const Ort::KernelContext& context, const Attributes& attributes);

// Output type and shape = those of q, so that graphs type-check at load time.
OrtStatusPtr ORT_API_CALL InferOutputShape(const OrtCustomOp* op, OrtShapeInferContext* context);

// The common part of the CPU and CUDA ops. TOp supplies GetExecutionProviderType() and
// kElementType; TKernel is constructible as TKernel(const Attributes&, ONNXTensorElementDataType)
// and may throw.
template <typename TOp, typename TKernel>
struct OpBase : Ort::CustomOpBase<TOp, TKernel, /*WithStatus=*/true> {
  OpBase() {
    this->start_ver_ = kSinceVersion;
    this->InferOutputShapeFn = &InferOutputShape;
  }

  const char* GetName() const { return kOpName; }
  size_t GetInputTypeCount() const { return kInputCount; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t index) const {
    return index >= kRowPtr ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 : TOp::kElementType;
  }
  ONNXTensorElementDataType GetOutputType(size_t) const { return TOp::kElementType; }

  OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const {
    return GuardStatus([&]() -> OrtStatusPtr {
      *kernel = new TKernel(ReadAttributes(api, info), TOp::kElementType);
      return nullptr;
    });
  }
};

}  // namespace podium
