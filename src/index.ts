// linfold's library API: everything the CLI does, typed.
//   import { loadModel, audit, linearize, fold, saveModel } from 'linfold';
export { LinfoldError } from './errors.js';
export { writeFileAtomic } from './files.js';
export { LINEARIZE_DEFAULTS, HEAL_DEFAULTS, SWEEP_DEFAULTS } from './train/defaults.js';
export { FOLD_DEFAULTS } from './export/defaults.js';

// import: ONNX ⇄ graph IR, shape inference, onnxruntime bridge, the TensorFlow.js executor
export { loadModel, loadModelWithShapes, saveModel, encodeModel, decodeModel, recordedOriginal, type SaveOptions } from './import/onnx-io.js';
export { Graph, type Model, type Node, type ValueInfo, type Attr, type Shape, type Dim } from './import/ir.js';
export { Tensor, type DType } from './import/tensor.js';
export { inferShapes } from './import/shape-inference.js';
export { foldConstants } from './import/constant-folding.js';
export { ortSession, runOrt } from './import/ort.js';
export { randomFeeds, type FeedOptions } from './import/random.js';
export { makeBatchSymbolic, freeBatch, describeBatch, type BatchResult, type BatchRewrite, type BatchOptions } from './import/batch.js';
export { compile, unsupportedOps, type Executable, type CompileOptions } from './import/tfjs/executor.js';
export { checkModel, type CheckOptions, type CheckResult } from './import/tfjs/check.js';

// analyze: census, path lengths, cost, reports
export { audit, census, pathLength, cost, renderTable, renderMarkdown, type AuditReport, type AuditOptions } from './analyze/index.js';
export { renderHtmlReport } from './report/html.js';

// train: linearizable activations, data, the fine-tuning loop, backends
export { makeLinearizable, type Slope, type LinearizableOptions } from './train/linearizable.js';
export { linearize, type LinearizeOptions, type LinearizeResult, type EpochLog, type MergeReadyEvent } from './train/linearize.js';
export { mnist, arrays, imageFolder, type Dataset, type Batch } from './train/data.js';
export { openDataset, verificationFeeds, namedArrays } from './train/feeds.js';
export { parseAugmentation, type Augmentation } from './train/augment.js';
export { nativeBackendInfo, type NativeBackendName } from './train/native/backend.js';
export { listBackends, useBackend, setWasmThreads, wasmThreads, threadCount, BACKENDS, type BackendName } from './import/tfjs/backends.js';
export { ortAccuracy, ortAgreement } from './train/evaluate.js';
export { heal, type HealOptions, type HealResult } from './train/heal.js';
export { trainableBatch, perSampleExecutable, perSampleSession } from './train/per-sample.js';

// export: folding
export { fold, writeFolded, renderFoldMarkdown, PASSES, type FoldOptions, type FoldReport, type FoldResult, type FoldMetrics, type FoldEvent, type Objective } from './export/index.js';
// the pass API: a FoldPass lists candidates on a graph; runPass applies them (see src/export/pass.ts)
export { type FoldPass, type PassContext, type Candidate, passContext, runPass } from './export/index.js';
export { padFront, type PadFrontRewrite } from './export/pad-front.js';

// workflows
export { sweep, collect, mergeSweep, sweepPlan, jobPoints, resolveIndex, inputFingerprints, renderSweepTable, writeSweepReport, INDEX_VARIABLES, type SweepPoint, type SweepOptions, type SweepResult, type Collected, type PointFile } from './sweep.js';
export { demo, renderDemoSummary, type DemoSummary } from './demo.js';
