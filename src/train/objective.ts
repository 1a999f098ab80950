// The training objective: task loss (labels and/or distillation from the original model) plus the
// sparsity prior on activation slopes, λ · Σ_c |1 − a_c|^p (DESIGN.md §1).
import { tf } from '../import/tfjs/backends.js';

export type PriorKind = 'l1' | 'l0.5';

/** λ · Σ |1 − a|^p over all slope tensors; p = 0.5 uses √(|1−a| + δ) so the gradient stays finite at a = 1. */
/** `weights[k]` counts each value of slope k that many times (a layer-wide slope stands for all its channels). */
export function priorTerm(slopes: tf.Tensor[], kind: PriorKind, lambda: number, weights?: number[]): tf.Scalar {
  return tf.tidy(() => {
    if (!slopes.length || lambda === 0) return tf.scalar(0);
    const terms = slopes.map((a, k) => {
      const d = tf.abs(tf.sub(1, a));
      const sum = tf.sum(kind === 'l1' ? d : tf.sqrt(tf.add(d, 1e-8)));
      return weights && weights[k] !== 1 ? tf.mul(weights[k], sum) : sum;
    });
    return tf.mul(lambda, tf.addN(terms)) as tf.Scalar;
  });
}

/** λ at a step: linear warm-up from 0 over `warmupSteps`. */
export function lambdaAt(step: number, lambda: number, warmupSteps = 0): number {
  return warmupSteps > 0 ? lambda * Math.min(1, step / warmupSteps) : lambda;
}

/** Mean cross-entropy of logits [n, classes] against integer labels. */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits as tf.Tensor2D);
    const onehot = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, logits.shape[logits.shape.length - 1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), -1))) as tf.Scalar;
  });
}

/** Distillation: KL(teacher ‖ student) on logits softened by T, scaled by T² (Hinton et al.). */
export function distillKL(student: tf.Tensor, teacher: tf.Tensor, temperature = 1): tf.Scalar {
  return tf.tidy(() => {
    const t = tf.softmax(tf.div(teacher, temperature));
    const logT = tf.logSoftmax(tf.div(teacher, temperature));
    const logS = tf.logSoftmax(tf.div(student, temperature));
    const kl = tf.sum(tf.mul(t, tf.sub(logT, logS)), -1);
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
  });
}

export function distillMSE(student: tf.Tensor, teacher: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(student, teacher)) as tf.Scalar);
}
