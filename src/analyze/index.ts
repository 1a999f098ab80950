// The audit library: census of activations, APL/NAPL, core network, params/MACs, report rendering.
export { audit, SCHEMA_VERSION } from './audit.js';
export type { AuditOptions, AuditReport, AuditSummary, LayerRow, ModelInfo, TensorInfo, InferShapesFn } from './audit.js';
export { census, censusOf } from './census.js';
export type {
  ActivationLayer, Census, CensusOptions, ActivationKind, ActivationForm, OtherNonlinearOp, OtherNonlinearKind, MergeOp, OpaqueOp,
} from './census.js';
export { pathLength, pathLengthOf } from './path-length.js';
export type { PathLengthOptions, PathLengthResult, OutputPathLength, PathCounts, PathDistribution } from './path-length.js';
export { coreNetwork } from './core.js';
export type { CoreNetwork, CoreNode } from './core.js';
export { cost, nodeMacs } from './cost.js';
export type { CostReport, CostOptions, NodeCost } from './cost.js';
export { propagate } from './propagate.js';
export type { Propagation, PropagateOptions, LayerLayout } from './propagate.js';
export { renderTable, renderMarkdown } from './render.js';
