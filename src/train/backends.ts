// TensorFlow.js backend selection. One module-level tf instance (tfjs-core); the wasm and cpu backends are
// dependencies and register themselves on import; tfjs-node / tfjs-node-gpu are optional peer dependencies
// (their install downloads libtensorflow), loaded with a dynamic import() only when asked for.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LinfoldError } from '../errors.js';

export { tf };

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** The tfjs registry name of each linfold backend name. */
const TF_NAME: Record<BackendName, string> = { 'tensorflow-gpu': 'tensorflow', tensorflow: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };
const PEER: Partial<Record<BackendName, string>> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

const require = createRequire(import.meta.url);

// tfjs-core's node bundle registers no gradients; build/tfjs-gradients.cjs (made by
// scripts/bundle-gradients.mjs at install) registers tfjs's own gradient functions in the global registry.
try {
  require('../../build/tfjs-gradients.cjs');
} catch {
  throw new LinfoldError('build/tfjs-gradients.cjs is missing: run `npm run build` (npm ci does it)');
}

// The wasm binaries sit next to the package's node entry point; point the loader there so it reads them
// from disk instead of fetching them.
let wasmPathsSet = false;
function prepareWasm(): void {
  if (wasmPathsSet) return;
  const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  setWasmPaths(join(dist, '/'));
  wasmPathsSet = true;
}

function peerInstalled(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

let chosen: BackendName | undefined;
const loadedPeer = new Set<BackendName>();

export interface BackendInfo {
  name: BackendName;
  available: boolean;
  /** Why it is not available. */
  reason?: string;
  /** The backend useBackend() last selected. */
  chosen: boolean;
}

/** Which backends can run here (without initializing any of them). */
export function listBackends(): BackendInfo[] {
  return BACKENDS.map((name) => {
    const pkg = PEER[name];
    let available = true;
    let reason: string | undefined;
    if (pkg && !loadedPeer.has(name) && !peerInstalled(pkg)) {
      available = false;
      reason = `${pkg} is not installed (optional: npm install ${pkg})`;
    }
    if (name === 'tensorflow-gpu' && available && loadedPeer.has('tensorflow') && !loadedPeer.has('tensorflow-gpu')) {
      available = false;
      reason = '@tensorflow/tfjs-node was loaded first in this process; tfjs-node-gpu cannot be loaded next to it';
    }
    return { name, available, reason, chosen: chosen === name };
  });
}

async function loadPeer(name: BackendName): Promise<void> {
  const pkg = PEER[name]!;
  if (loadedPeer.has(name)) return;
  const other: BackendName = name === 'tensorflow' ? 'tensorflow-gpu' : 'tensorflow';
  if (loadedPeer.has(other)) {
    // both packages register the same 'tensorflow' backend: only one can be loaded per process
    throw new LinfoldError(`backend '${name}': ${PEER[other]} is already loaded in this process; use backend '${other}'`);
  }
  if (!peerInstalled(pkg))
    throw new LinfoldError(`backend '${name}' needs ${pkg}, which is not installed (npm install ${pkg}; it downloads libtensorflow), or use --backend wasm`);
  try {
    await import(pkg);
  } catch (e) {
    throw new LinfoldError(`backend '${name}': ${pkg} failed to load (${String((e as Error).message).split('\n')[0]})`, 2, { cause: e });
  }
  loadedPeer.add(name);
}

/**
 * Selects and initializes a backend; 'auto' (the default when nothing is named) takes the first that
 * works of tensorflow-gpu > tensorflow > wasm > cpu. Returns the linfold name of the backend in use.
 */
export async function useBackend(name: BackendName | 'auto' = 'auto'): Promise<BackendName> {
  if (name === 'auto') {
    for (const b of BACKENDS) {
      const info = listBackends().find((i) => i.name === b)!;
      if (!info.available) continue;
      try {
        return await useBackend(b);
      } catch {
        // next one
      }
    }
    throw new LinfoldError('no TensorFlow.js backend could be initialized');
  }
  if (!BACKENDS.includes(name)) throw new LinfoldError(`unknown backend '${name}' (choose from ${BACKENDS.join(', ')}, auto)`);
  if (PEER[name]) await loadPeer(name);
  if (name === 'wasm') prepareWasm();
  let ok: boolean;
  const listenersBefore = processListeners();
  try {
    ok = await tf.setBackend(TF_NAME[name]);
  } catch (e) {
    throw new LinfoldError(`backend '${name}' failed to initialize (${String((e as Error).message).split('\n')[0]})`, 2, { cause: e });
  }
  if (!ok) throw new LinfoldError(`backend '${name}' failed to initialize`);
  await tf.ready();
  // tfjs-backend-cpu prints a "use tfjs-node" banner on first use in Node: say it once, our way (listBackends)
  if (name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  chosen = name;
  return name;
}

/** The linfold name of the backend in use (initializing the default, wasm, if none was chosen). */
export async function currentBackend(): Promise<BackendName> {
  if (chosen && TF_NAME[chosen] === tf.getBackend()) return chosen;
  return useBackend('wasm');
}

/** Synchronous variant: the backend in use, or undefined when useBackend() has not run. */
export function backendInUse(): BackendName | undefined {
  return chosen && TF_NAME[chosen] === tf.getBackend() ? chosen : undefined;
}

type Listener = (...args: unknown[]) => void;
const EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

const emitter = process as unknown as import('node:events').EventEmitter;

function processListeners(): Map<string, Listener[]> {
  return new Map(EVENTS.map((e) => [e, emitter.listeners(e) as Listener[]]));
}

/**
 * The emscripten glue of the wasm backend installs process-wide uncaughtException/unhandledRejection
 * handlers that rethrow and print its whole minified source; linfold reports errors itself.
 */
function dropNewListeners(before: Map<string, Listener[]>): void {
  for (const e of EVENTS) for (const l of emitter.listeners(e) as Listener[]) if (!before.get(e)!.includes(l)) emitter.removeListener(e, l);
}
