#include "op_base.h"

namespace podium {

OrtStatusPtr MakeStatus(OrtErrorCode code, const std::string& message) {
  return Ort::GetApi().CreateStatus(code, message.c_str());
}

Attributes ReadAttributes(const OrtApi& api, const OrtKernelInfo* info) {
  Attributes attributes;
  if (OrtStatus* status = api.KernelInfoGetAttribute_int64(info, "block_size", &attributes.block_size)) {
    api.ReleaseStatus(status);
    throw ContractError(std::string(kOpName) + ": the node has no int attribute block_size; set it to 64 or 128.");
  }
  float scale = 0.f;
  if (OrtStatus* status = api.KernelInfoGetAttribute_float(info, "scale", &scale)) {
    api.ReleaseStatus(status);  // absent: 1/sqrt(head_dim)
  } else {
    attributes.has_scale = true;
    attributes.scale = scale;
  }
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
