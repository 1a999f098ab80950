// Every gradient rule family; importing this module registers them.
import './conv.js';
import './elementwise.js';
import './pool.js';
import './shape.js';
import './matmul.js';
export { gradRule, gradOps, type GradRule } from './registry.js';
