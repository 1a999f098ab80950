// The committed fixtures (fixtures/: torch.onnx.export outputs, data files, the manifest, each with the script
// that made it). A fixture git tracks is never optional: a missing one fails the test that needs it with a
// one-line message naming the file, instead of skipping.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const FIXTURES = resolve(import.meta.dirname, '..', '..', 'fixtures');

let tracked: string[] | undefined;

/** The files under fixtures/ that git tracks (paths relative to fixtures/); outside a git checkout, those present. */
export function trackedFixtures(): string[] {
  if (!tracked) {
    try {
      tracked = execFileSync('git', ['ls-files', '-z', '--', '.'], { cwd: FIXTURES, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\0').filter(Boolean);
    } catch {
      tracked = readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' });
    }
    tracked.sort();
  }
  return tracked;
}

/** The absolute path of fixtures/<name>; throws (one line, naming the file) when it is not there. */
export function fixture(name: string): string {
  const path = join(FIXTURES, name);
  if (!existsSync(path)) {
    const how = trackedFixtures().includes(name) ? `it is tracked in git: restore it with \`git checkout -- fixtures/${name}\`` : 'it is not a tracked fixture';
    throw new Error(`fixture fixtures/${name} is missing; ${how}`);
  }
  return path;
}

/** Every tracked .onnx fixture, name (e.g. 'mnist_cnn.onnx') and path; each must be present. */
export function onnxFixtures(): { name: string; path: string }[] {
  return trackedFixtures().filter((f) => f.endsWith('.onnx')).map((name) => ({ name, path: fixture(name) }));
}

/** fixtures/manifest.json (derived from the PyTorch modules by fixtures/make_fixtures.py). */
export interface ManifestActivation { kind: string; channels: number; channel_axis: number; module: string; min?: number; max?: number; is_gate?: boolean }
export interface ManifestFixture {
  file: string;
  onnx_param_count: number;
  expected_census: {
    activations: ManifestActivation[]; num_activation_layers: number; total_activation_channels: number;
    activation_kinds: Record<string, number>; add_merges: number; softmax: number; layernorm: number; maxpool: number;
    gating_mul: number; activation_matmul: number; batchnorm_nodes_expected: number;
  };
}
export function manifest(): { fixtures: Record<string, ManifestFixture> } {
  return JSON.parse(readFileSync(fixture('manifest.json'), 'utf8'));
}
