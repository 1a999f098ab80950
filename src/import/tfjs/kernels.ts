// Loads every op family into the kernel registry (each file registers its entries on import).
import './elementwise.js';
import './activation.js';
import './conv.js';
import './normalization.js';
import './matmul.js';
import './shape.js';
import './reduce.js';

export { lookupKernel, registeredKernels, registerKernels, type Kernel, type KernelContext } from './registry.js';
