// One registry shape for everything keyed by ONNX op and opset: the static op specs (src/import/ops/), the
// tfjs kernels (src/import/tfjs/) and the native backend's gradient rules (src/train/native/grad/). An entry
// covers opsets [since, until]; two entries of one op whose ranges overlap are a programming error, refused
// at registration instead of one silently shadowing the other.

export interface OpsetRanged {
  op: string;
  /** '' = ai.onnx */
  domain?: string;
  /** Opset range covered, inclusive (since defaults to 1, until to every later opset). */
  since?: number;
  until?: number;
}

const domainKey = (domain: string | undefined): string => (domain === 'ai.onnx' || !domain ? '' : domain);
const rangeText = (e: OpsetRanged): string => `${e.since ?? 1}–${e.until ?? '∞'}`;

export class OpRegistry<T extends OpsetRanged> {
  private readonly entries = new Map<string, T[]>();

  /** `what` names the registry in the overlap error ("op spec", "tfjs kernel", "gradient rule"). */
  constructor(private readonly what: string) {}

  register(...list: T[]): void {
    for (const e of list) {
      const key = `${domainKey(e.domain)}::${e.op}`;
      const same = this.entries.get(key) ?? [];
      const clash = same.find((o) => (o.since ?? 1) <= (e.until ?? Infinity) && (e.since ?? 1) <= (o.until ?? Infinity));
      if (clash) throw new Error(`${this.what} ${key.replace(/^::/, '')}: opsets ${rangeText(e)} overlap the registered ${rangeText(clash)}`);
      same.push(e);
      this.entries.set(key, same);
    }
  }

  /** The entry covering `op` at `opset`, or undefined. */
  lookup(op: string, domain: string, opset: number): T | undefined {
    return this.entries.get(`${domainKey(domain)}::${op}`)?.find((e) => opset >= (e.since ?? 1) && (e.until === undefined || opset <= e.until));
  }

  /** The entry of `op` with the latest `since`, whatever the opset. */
  newest(op: string, domain: string): T | undefined {
    const same = this.entries.get(`${domainKey(domain)}::${op}`);
    return same?.reduce((a, b) => ((b.since ?? 1) > (a.since ?? 1) ? b : a));
  }

  /** Every entry, in registration order per op. */
  all(): T[] {
    return [...this.entries.values()].flat();
  }

  /** Registered op names (default domain without prefix, others as `domain::op`). */
  names(): string[] {
    return [...this.entries.keys()].map((k) => k.replace(/^::/, ''));
  }
}
