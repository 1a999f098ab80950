// src/export: fold passes, the fold pipeline, verification with onnxruntime-node, writing.
export { fold, writeFolded, speedup, PASSES, type FoldOptions, type FoldResult, type FoldReport, type FoldMetrics, type FoldEvent, type Objective } from './pipeline.js';
export { renderFoldMarkdown } from './report.js';
export { type FoldPass, type PassContext, type Candidate, passContext, runPass } from './pass.js';
export { removeIdentity, removeIdentityPass } from './remove-identity.js';
export { simplifyActivation, simplifyActivationPass } from './simplify-activation.js';
export { foldBatchNorm, foldBatchNormPass } from './fold-batchnorm.js';
export { mergeConv, mergeConvPass, planConvMerge } from './merge-conv.js';
export { mergeMatmul, mergeMatmulPass, planDenseMerge } from './merge-matmul.js';
export { absorbResidual, absorbResidualPass } from './absorb-residual.js';
export { splitPartial, splitPartialPass } from './split-partial.js';
export { pushBiasMap, pushBiasMapPass } from './push-bias-map.js';
export { foldThroughPool, foldThroughPoolPass } from './fold-through-pool.js';
export { deadCodePass } from './dead-code.js';
export { deadCode } from '../import/ir-edit.js';
export { staticShapes } from './shapes.js';
export { randomFeeds, compareOutputs, measureLatency, runModel } from './verify.js';
export { layerDepth, graphMacs, analyzeMetrics } from './metrics.js';
