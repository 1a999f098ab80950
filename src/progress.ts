// A one-line progress bar on stderr (redrawn in place on a terminal, a line every ~10 % otherwise).
export interface ProgressOptions { total: number; label?: string; quiet?: boolean; stream?: NodeJS.WriteStream }

export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private lastPrinted = -1;
  private readonly stream: NodeJS.WriteStream;

  constructor(private opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
  }

  /** Advance by `n` and show `fields` (e.g. loss=0.12 napl=3.1). */
  tick(n = 1, fields: Record<string, string | number> = {}): void {
    this.done += n;
    if (this.opts.quiet) return;
    const { total } = this.opts;
    const frac = total > 0 ? Math.min(1, this.done / total) : 0;
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = frac > 0 ? elapsed * (1 / frac - 1) : 0;
    const info = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`).join(' ');
    const label = this.opts.label ? `${this.opts.label} ` : '';
    if (this.stream.isTTY) {
      const width = 24;
      const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
      this.stream.write(`\r\x1b[2K${label}${bar} ${this.done}/${total} ${info} eta ${clock(eta)}`);
    } else {
      const decile = Math.floor(frac * 10);
      if (decile === this.lastPrinted && this.done < total) return;
      this.lastPrinted = decile;
      this.stream.write(`${label}${this.done}/${total} ${info} elapsed ${clock(elapsed)} eta ${clock(eta)}\n`);
    }
  }

  finish(message?: string): void {
    if (this.opts.quiet) return;
    if (this.stream.isTTY) this.stream.write('\r\x1b[2K');
    if (message) this.stream.write(`${message}\n`);
  }
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3);
}

function clock(s: number): string {
  if (!isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}
