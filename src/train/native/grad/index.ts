// Every gradient rule family; importing this module registers them.
import './activation.js';
import './conv.js';
import './elementwise.js';
import './gather.js';
import './matmul.js';
import './normalization.js';
import './pool.js';
import './reduce.js';
import './shape.js';
export { gradRule, type GradRule } from './registry.js';
