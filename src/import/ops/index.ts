// Importing this module fills the op registry with every family linfold knows.
import './elementwise.js';
import './activation.js';
import './conv.js';
import './normalization.js';
import './matmul.js';
import './shape.js';
import './reduce.js';
import './recurrent.js';

export {
  lookupOp, opFacts, allOpSpecs, knownOps, registerOps, PATHS, type OpSpec, type OpContext, type OutputType, type PathRule, type OtherNonlinearKind, type DimsOf,
} from './registry.js';
