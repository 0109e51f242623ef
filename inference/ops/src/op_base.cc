#include "op_base.h"

namespace podium {

OrtStatusPtr MakeStatus(OrtErrorCode code, const std::string& message) {
  return Ort::GetApi().CreateStatus(code, message.c_str());
}

int64_t RequiredIntAttribute(const OrtApi& api, const OrtKernelInfo* info, const char* name,
                             const std::string& missing) {
  int64_t value = 0;
  if (OrtStatus* status = api.KernelInfoGetAttribute_int64(info, name, &value)) {
    api.ReleaseStatus(status);
    throw ContractError(missing);
  }
  return value;
}

bool OptionalFloatAttribute(const OrtApi& api, const OrtKernelInfo* info, const char* name, float* value) {
  if (OrtStatus* status = api.KernelInfoGetAttribute_float(info, name, value)) {
    api.ReleaseStatus(status);
    return false;
  }
  return true;
}

Attributes ReadAttributes(const OrtApi& api, const OrtKernelInfo* info) {
  Attributes attributes;
  attributes.block_size = RequiredIntAttribute(
      api, info, "block_size", std::string(kOpName) + ": the node has no int attribute block_size; set it to 64 or 128.");
  attributes.has_scale = OptionalFloatAttribute(api, info, "scale", &attributes.scale);  // absent: 1/sqrt(head_dim)
  CheckAttributes(attributes);
  return attributes;
}

CallInputs ReadInputs(const Ort::KernelContext& context, const Attributes& attributes) {
  CallInputs inputs;
  for (size_t i = 0; i < kInputCount; ++i) {
    inputs.values.push_back(context.GetInput(i));
    inputs.shapes.push_back(inputs.values.back().GetTensorTypeAndShapeInfo().GetShape());
  }
  const auto& s = inputs.shapes;
  inputs.problem = DescribeProblem(s[kQuery], s[kKey], s[kValue], s[kRowPtr], s[kColIdx], attributes);
  return inputs;
}

OrtStatusPtr ORT_API_CALL InferOutputShape(const OrtCustomOp*, OrtShapeInferContext* context) {
  const OrtApi& api = Ort::GetApi();
  OrtTensorTypeAndShapeInfo* query = nullptr;  // owned by the context
  if (OrtStatusPtr status = api.ShapeInferContext_GetInputTypeShape(context, kQuery, &query)) return status;
  return api.ShapeInferContext_SetOutputTypeShape(context, 0, query);
}

}  // namespace podium
