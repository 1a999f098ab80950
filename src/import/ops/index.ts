// Importing this module fills the op registry with every family linfold knows.
import './elementwise.js';
import './activation.js';
import './conv.js';
import './normalization.js';
import './matmul.js';
import './shape.js';
import './reduce.js';

export { lookupOp, knownOps, registerOps, type OpSpec, type OpContext, type OutputType } from './registry.js';
