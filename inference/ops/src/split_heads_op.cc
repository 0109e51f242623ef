#include "split_heads_op.h"

#include <string>

namespace podium::split_heads {
namespace {

struct Job {
  const Problem* problem;
  const float* qkv;
  const float* q_weight;
  const float* k_weight;
  float* outputs[3];
  int64_t tokens_per_task;
};

void RunJobTask(void* job, size_t task) {
  const Job& j = *static_cast<const Job*>(job);
  const int64_t total = j.problem->batch * j.problem->tokens;
  const int64_t begin = static_cast<int64_t>(task) * j.tokens_per_task;
  const int64_t end = begin + j.tokens_per_task < total ? begin + j.tokens_per_task : total;
  RunCpu(*j.problem, j.qkv, j.q_weight, j.k_weight, j.outputs[0], j.outputs[1], j.outputs[2], begin, end);
}

}  // namespace

CallInputs ReadInputs(const Ort::KernelContext& context, const Attributes& attributes) {
  CallInputs inputs{context.GetInput(kQkv), context.GetInput(kQWeight), context.GetInput(kKWeight), {}};
  inputs.problem = DescribeProblem(inputs.qkv.GetTensorTypeAndShapeInfo().GetShape(),
                                   inputs.q_weight.GetTensorTypeAndShapeInfo().GetShape(),
                                   inputs.k_weight.GetTensorTypeAndShapeInfo().GetShape(), attributes);
  return inputs;
}

Attributes ReadAttributes(const OrtApi& api, const OrtKernelInfo* info) {
  Attributes attributes;
  attributes.heads = RequiredIntAttribute(
      api, info, "heads", std::string(kName) + ": the node has no int attribute heads; set it to the number of heads.");
  OptionalFloatAttribute(api, info, "epsilon", &attributes.epsilon);  // absent: the default
  CheckAttributes(attributes);
  return attributes;
}

OrtStatusPtr ORT_API_CALL InferOutputShapes(const OrtCustomOp*, OrtShapeInferContext* context) {
  return GuardStatus([&]() -> OrtStatusPtr {
    const OrtApi& api = Ort::GetApi();
    Ort::ShapeInferContext shapes(&api, context);
    OrtTensorTypeAndShapeInfo* qkv_info = nullptr;  // owned by the context
    if (OrtStatusPtr status = api.ShapeInferContext_GetInputTypeShape(context, kQkv, &qkv_info)) return status;
    const ONNXTensorElementDataType type = Ort::ConstTensorTypeAndShapeInfo(qkv_info).GetElementType();
    const Ort::ShapeInferContext::Shape& qkv = shapes.GetInputShape(kQkv);
    if (qkv.size() != 3) return nullptr;  // the kernel reports the rank when it runs
    const int64_t heads = shapes.GetAttrInt("heads");
    const bool known = qkv[2].IsInt() && qkv[2].AsInt() >= 0 && heads > 0 && qkv[2].AsInt() % (3 * heads) == 0;
    const Ort::ShapeInferContext::Shape out{qkv[0], heads, qkv[1], known ? qkv[2].AsInt() / (3 * heads) : -1};
    for (size_t i = 0; i < kOutputCount; ++i) {
      if (Ort::Status status = shapes.SetOutputShape(i, out, type); !status.IsOK()) return status.release();
    }
    return nullptr;
  }, kName);
}

OrtStatusPtr CpuKernel::ComputeV2(OrtKernelContext* context) {
  return GuardStatus([&]() -> OrtStatusPtr {
    Ort::KernelContext ctx(context);
    const CallInputs inputs = ReadInputs(ctx, attributes_);
    const Problem& problem = inputs.problem;
    Job job{&problem, inputs.qkv.GetTensorData<float>(), inputs.q_weight.GetTensorData<float>(),
            inputs.k_weight.GetTensorData<float>(), {}, 16};
    for (size_t i = 0; i < kOutputCount; ++i) {
      job.outputs[i] = ctx.GetOutput(i, problem.OutputShape()).GetTensorMutableData<float>();
    }
    if (problem.Empty()) return nullptr;
    const int64_t total = problem.batch * problem.tokens;
    ctx.ParallelFor(&RunJobTask, static_cast<size_t>((total + job.tokens_per_task - 1) / job.tokens_per_task), 0, &job);
    return nullptr;
  }, kName);
}

}  // namespace podium::split_heads
