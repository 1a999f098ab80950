// TensorFlow.js import of the graph IR: kernels, the differentiable executor, parity check against onnxruntime.
export { compile, unsupportedOps, describeUnsupported, feedsToTf, outputsToIR } from './executor.js';
export type { Executable, CompileOptions, RunOptions, UnsupportedOp } from './executor.js';
export { checkModel, compareTensors } from './check.js';
export type { CheckOptions, CheckResult } from './check.js';
export { lookupKernel, registeredKernels, registerKernels } from './kernels.js';
export type { Kernel, KernelContext, NhwcSupport, TfTensor } from './registry.js';
export { toTf, fromTf, tfjsCanHold } from './convert.js';
export { gradientPolicy } from './gradients.js';
export { GraphBuilder, attr, seededDraws } from '../graph-builder.js';
