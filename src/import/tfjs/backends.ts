// TensorFlow.js backend selection. One module-level tf instance (tfjs-core); the wasm and cpu backends are
// dependencies and register themselves on import; tfjs-node / tfjs-node-gpu are optional peer dependencies
// (their install downloads libtensorflow), loaded with a dynamic import() only when asked for.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BackendWasm, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { LinfoldError, option } from '../../errors.js';

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
// scripts/prepare-tfjs.mjs at install) registers tfjs's own gradient functions in the global registry.
try {
  require('../../../build/tfjs-gradients.cjs');
} catch {
  throw new LinfoldError('build/tfjs-gradients.cjs is missing: run `npm run build` (npm ci does it)');
}

// Once, before the wasm backend starts: point its loader at the binaries next to the package's node entry
// point (read from disk instead of fetched), and fix the thread count (the threaded build when > 1).
function prepareWasm(): void {
  if (startedThreads !== undefined) return;
  const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  setWasmPaths(join(dist, '/'));
  const threads = wasmThreads();
  if (threads > 1) registerThreadedWasm(threads);
  startedThreads = threads;
}

/** The workers the threaded build spawns up front: more threads than this would wait for a new worker. */
const MAX_WASM_THREADS = 8;
let requestedThreads: number | undefined;
/** Set once the wasm backend is prepared: its thread count is fixed from then on. */
let startedThreads: number | undefined;

function wholeThreads(value: string | number, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new LinfoldError(`${what} must be a whole number ≥ 1, got '${value}'`);
  return n;
}

/**
 * Threads of the wasm backend: as started, else setWasmThreads(), else LINFOLD_THREADS, else the machine's
 * cores (at most 8). 1 runs the single-threaded SIMD build.
 */
export function wasmThreads(): number {
  if (startedThreads !== undefined) return startedThreads;
  const env = process.env.LINFOLD_THREADS;
  return Math.min(requestedThreads ?? (env ? wholeThreads(env, 'LINFOLD_THREADS') : os.availableParallelism()), MAX_WASM_THREADS);
}

/** "1 thread", "2 threads". */
export const threadCount = (n: number): string => `${n} thread${n === 1 ? '' : 's'}`;

/** Sets the wasm backend's thread count (library use; the CLI's --threads sets LINFOLD_THREADS). Fixed once wasm has started. */
export function setWasmThreads(n: number): void {
  wholeThreads(n, 'threads');
  if (startedThreads !== undefined && Math.min(n, MAX_WASM_THREADS) !== startedThreads)
    throw new LinfoldError(`the wasm backend already runs with ${startedThreads} thread(s); set threads before it starts`);
  requestedThreads = n;
}

/**
 * tfjs-backend-wasm starts its threaded build only in browsers: in Node its pthread workers would load from
 * blob: URLs, which worker_threads cannot. This re-registers the 'wasm' backend (its kernels stay registered
 * by name) with a loader that gives the workers files: the worker script written at install
 * (build/tfjs-wasm-worker.cjs) and the module's own glue script.
 */
function registerThreadedWasm(threads: number): void {
  const workerScript = join(dirname(require.resolve('../../../build/tfjs-gradients.cjs')), 'tfjs-wasm-worker.cjs');
  if (!existsSync(workerScript)) throw new LinfoldError('build/tfjs-wasm-worker.cjs is missing: run `npm run build` (npm ci does it), or set LINFOLD_THREADS=1');
  const glue = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const factory = require(glue) as (config: object) => Promise<WasmModule>;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', async () => {
    // The build caps its thread pool at half the logical cores it reads from os.cpus() while the module
    // initializes (it assumes 2 hyper-threads per core): for that moment, report twice the threads asked for.
    const cpus = os.cpus;
    os.cpus = () => Array(2 * threads).fill(cpus()[0]);
    let module: WasmModule;
    try {
      module = await factory({
        locateFile: (file: string, prefix: string) =>
          file.endsWith('.worker.js') ? workerScript : file.endsWith('.wasm') ? glue.replace(/\.js$/, '.wasm') : prefix + file,
        mainScriptUrlOrBlob: glue,
      });
    } finally {
      os.cpus = cpus;
    }
    // the bridge tfjs's own loader (init() in tfjs-backend-wasm) attaches to the module
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    setThreadsCount(threads);
    const backend = new BackendWasm(module as never); // starts the thread pool
    // the pool's threads wait for work forever: they must not keep the process alive
    for (const w of module.PThread.runningWorkers) w.unref();
    return backend;
  }, 2);
}

interface WasmModule {
  cwrap(name: string, ret: string | null, args: string[]): unknown;
  PThread: { runningWorkers: { unref(): void }[] };
  tfjs?: Record<string, unknown>;
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
  /** wasm: the threads it runs (or will run) with. */
  threads?: number;
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
    return { name, available, reason, chosen: chosen === name, ...(name === 'wasm' ? { threads: wasmThreads() } : {}) };
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
    throw new LinfoldError(`backend '${name}' needs ${pkg}, which is not installed (npm install ${pkg}; it downloads libtensorflow), or use ${option('backend')} 'wasm'`);
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
  const hint = name === 'wasm' && wasmThreads() > 1 ? '; LINFOLD_THREADS=1 runs the single-threaded build' : '';
  try {
    ok = await tf.setBackend(TF_NAME[name]);
  } catch (e) {
    throw new LinfoldError(`backend '${name}' failed to initialize (${String((e as Error).message).split('\n')[0]})${hint}`, 2, { cause: e });
  } finally {
    dropNewListeners(listenersBefore);
  }
  if (!ok) throw new LinfoldError(`backend '${name}' failed to initialize${hint}`);
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
