// ONNX bytes ⇄ IR: decoding (with external data), encoding, atomic writes.
import { product } from './shape-math.js';
import { readFileSync, writeFileSync, statSync, openSync, writeSync, closeSync, renameSync, rmSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, basename, resolve } from 'node:path';
import protobuf from 'protobufjs';
import { LinfoldError } from '../errors.js';
import { ModelProto, TensorProtoType, MAX_IR_VERSION, type Proto } from './onnx-schema.js';
import { type Attr, Graph, type Model, type Node, type ValueInfo, type Dim } from './ir.js';
import { DTYPE_CODE, Tensor, byteLength, dtypeFromCode, type TypedArray } from './tensor.js';

const Long = protobuf.util.Long as unknown as { fromNumber(n: number): unknown };
const num = (v: unknown): number => (typeof v === 'number' ? v : v == null ? 0 : Number((v as { toString(): string }).toString()));
const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

/** Protobuf limit: a single message cannot exceed 2 GiB; beyond this, weights must go to external data. */
const INLINE_LIMIT = 1.9 * 2 ** 30;

export interface LoadOptions {
  /** Directory external data paths are relative to (default: the model file's directory). */
  baseDir?: string;
}

export function loadModel(path: string, opts: LoadOptions = {}): Model {
  let bytes: Buffer;
  try {
    if (statSync(path).isDirectory()) throw new LinfoldError(`${path}: is a directory, not an ONNX file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof LinfoldError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'ERR_FS_FILE_TOO_LARGE' ? 'larger than 2 GiB: an ONNX file this big must keep its weights in external data' : String(code ?? e);
    throw new LinfoldError(`${path}: ${why}`);
  }
  return decodeModel(bytes, { path, baseDir: opts.baseDir ?? dirname(resolve(path)) });
}

export function decodeModel(bytes: Uint8Array, where: { path?: string; baseDir?: string } = {}): Model {
  const label = where.path ?? '<bytes>';
  let proto: Proto;
  try {
    proto = ModelProto.decode(bytes);
  } catch (e) {
    throw new LinfoldError(`${label}: not a valid ONNX file (protobuf decoding failed: ${(e as Error).message})`);
  }
  if (!proto.graph || num(proto.ir_version) <= 0)
    throw new LinfoldError(`${label}: not an ONNX model (${!proto.graph ? 'no graph' : 'no IR version'})`);
  const irVersion = num(proto.ir_version);
  if (irVersion > MAX_IR_VERSION)
    throw new LinfoldError(`${label}: IR version ${irVersion} is newer than linfold understands (≤ ${MAX_IR_VERSION}); fields it does not know would be lost`);
  const ctx: DecodeContext = { label, baseDir: where.baseDir ?? process.cwd(), fileSizes: new Map() };
  return {
    irVersion,
    opsets: (proto.opset_import ?? []).map((o: Proto) => ({ domain: o.domain ?? '', version: num(o.version) })),
    producerName: proto.producer_name ?? '',
    producerVersion: proto.producer_version ?? '',
    domain: proto.domain ?? '',
    modelVersion: num(proto.model_version),
    docString: proto.doc_string ?? '',
    graph: graphFromProto(proto.graph, ctx),
    passthrough: { metadata_props: proto.metadata_props, training_info: proto.training_info, functions: proto.functions },
    path: where.path,
  };
}

interface DecodeContext { label: string; baseDir: string; fileSizes: Map<string, number> }

function graphFromProto(g: Proto, ctx: DecodeContext): Graph {
  const graph = new Graph();
  graph.name = g.name ?? '';
  for (const t of g.initializer ?? []) graph.initializers.set(t.name, tensorFromProto(t, ctx));
  graph.inputs = (g.input ?? []).map(valueInfoFromProto);
  graph.outputs = (g.output ?? []).map(valueInfoFromProto);
  for (const v of g.value_info ?? []) graph.valueInfo.set(v.name, valueInfoFromProto(v));
  graph.nodes = (g.node ?? []).map((n: Proto, k: number) => nodeFromProto(n, k, ctx));
  graph.passthrough = {
    doc_string: g.doc_string, sparse_initializer: g.sparse_initializer,
    quantization_annotation: g.quantization_annotation, metadata_props: g.metadata_props,
  };
  return graph;
}

function valueInfoFromProto(v: Proto): ValueInfo {
  const info: ValueInfo = { name: v.name ?? '' };
  const tt = v.type?.tensor_type;
  if (tt) {
    if (tt.elem_type) info.dtype = dtypeFromCode(tt.elem_type);
    if (tt.shape) info.shape = (tt.shape.dim ?? []).map((d: Proto): Dim => (d.dim_param ? d.dim_param : Object.hasOwn(d, 'dim_value') ? num(d.dim_value) : '?'));
  }
  const keepType = v.type && !tt ? v.type : undefined;
  if (keepType || v.doc_string || v.metadata_props?.length)
    info.passthrough = { type: keepType, doc_string: v.doc_string, metadata_props: v.metadata_props };
  return info;
}

function nodeFromProto(n: Proto, index: number, ctx: DecodeContext): Node {
  const attrs: Record<string, Attr> = {};
  for (const a of n.attribute ?? []) attrs[a.name] = attrFromProto(a, ctx);
  const node: Node = {
    name: n.name ?? '', opType: n.op_type ?? '', domain: n.domain ?? '',
    inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs,
  };
  if (!node.opType) throw new LinfoldError(`${ctx.label}: node #${index} '${node.name}' has no op_type`);
  if (n.doc_string || n.overload || n.metadata_props?.length)
    node.passthrough = { doc_string: n.doc_string, overload: n.overload, metadata_props: n.metadata_props };
  return node;
}

const ATTR_TYPES = ['undefined', 'float', 'int', 'string', 'tensor', 'graph', 'floats', 'ints', 'strings', 'tensors', 'graphs', 'sparse_tensor', 'sparse_tensors', 'type_proto', 'type_protos'];

function attrFromProto(a: Proto, ctx: DecodeContext): Attr {
  if (a.ref_attr_name) return { type: 'opaque', proto: a };
  let type = ATTR_TYPES[a.type ?? 0];
  if (type === 'undefined') type = guessAttrType(a);
  switch (type) {
    case 'float': return { type, value: a.f };
    case 'int': return { type, value: num(a.i) };
    case 'string': return { type, value: utf8.decode(a.s) };
    case 'floats': return { type, value: [...a.floats] };
    case 'ints': return { type, value: a.ints.map(num) };
    case 'strings': return { type, value: a.strings.map((s: Uint8Array) => utf8.decode(s)) };
    case 'tensor': return { type, value: tensorFromProto(a.t, ctx) };
    case 'tensors': return { type, value: a.tensors.map((t: Proto) => tensorFromProto(t, ctx)) };
    default: return { type: 'opaque', proto: a };
  }
}

/** IR < 3 models may omit AttributeProto.type: infer it from the field that is set. */
function guessAttrType(a: Proto): string {
  if (a.floats?.length) return 'floats';
  if (a.ints?.length) return 'ints';
  if (a.strings?.length) return 'strings';
  if (a.tensors?.length) return 'tensors';
  if (a.t) return 'tensor';
  if (a.g || a.graphs?.length) return 'graph';
  if (a.s?.length) return 'string';
  if (a.i != null && num(a.i) !== 0) return 'int';
  return 'float';
}

function tensorFromProto(t: Proto, ctx: DecodeContext): Tensor {
  const name: string = t.name ?? '';
  const dtype = dtypeFromCode(t.data_type ?? 0);
  const dims: number[] = (t.dims ?? []).map(num);
  if (dims.some((d) => !(d >= 0))) throw new LinfoldError(`${ctx.label}: tensor '${name}' has a negative dimension [${dims}]`);
  const size = product(dims);
  if (t.data_location === 1) return externalTensor(name, dtype, dims, t, ctx);
  if (t.raw_data?.length || (size === 0 && dtype !== 'string')) {
    return Tensor.fromBytes(name, dtype, dims, t.raw_data?.length ? t.raw_data : new Uint8Array(0)).withName(name);
  }
  const values = typedFieldValues(t, dtype);
  if (dtype === 'string') {
    if (values.length !== size) throw new LinfoldError(`${ctx.label}: tensor '${name}' has ${values.length} strings for shape [${dims}]`);
    return Tensor.fromStrings(name, dims, values as Uint8Array[]);
  }
  const array = toTypedArray(dtype, values);
  const expect = dtype === 'complex64' || dtype === 'complex128' ? 2 * size : size;
  if (array.length !== expect && !(dtype === 'int4' || dtype === 'uint4' || dtype === 'float4e2m1'))
    throw new LinfoldError(`${ctx.label}: tensor '${name}' has ${array.length} values for shape [${dims}]`);
  return Tensor.fromBytes(name, dtype, dims, new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
}

function typedFieldValues(t: Proto, dtype: string): unknown[] {
  switch (dtype) {
    case 'float32': case 'complex64': return t.float_data ?? [];
    case 'float64': case 'complex128': return t.double_data ?? [];
    case 'int64': return t.int64_data ?? [];
    case 'uint32': case 'uint64': return t.uint64_data ?? [];
    case 'string': return t.string_data ?? [];
    default: return t.int32_data ?? [];
  }
}

function toTypedArray(dtype: string, values: unknown[]): TypedArray {
  switch (dtype) {
    case 'float32': case 'complex64': return Float32Array.from(values as number[]);
    case 'float64': case 'complex128': return Float64Array.from(values as number[]);
    case 'int64': return BigInt64Array.from(values, (v) => BigInt((v as object).toString()));
    case 'uint64': return BigUint64Array.from(values, (v) => BigInt((v as object).toString()));
    case 'uint32': return Uint32Array.from(values, num);
    case 'int32': return Int32Array.from(values as number[]);
    case 'int16': return Int16Array.from(values as number[]);
    case 'uint16': case 'float16': case 'bfloat16': return Uint16Array.from(values as number[]);
    case 'int8': return Int8Array.from(values as number[]);
    default: return Uint8Array.from(values as number[]);
  }
}

function externalTensor(name: string, dtype: Tensor['dtype'], dims: number[], t: Proto, ctx: DecodeContext): Tensor {
  const kv = new Map<string, string>((t.external_data ?? []).map((e: Proto) => [e.key, e.value]));
  const location = kv.get('location');
  if (!location) throw new LinfoldError(`${ctx.label}: tensor '${name}' is external but names no location`);
  const file = join(ctx.baseDir, location);
  let fileSize = ctx.fileSizes.get(file);
  if (fileSize === undefined) {
    try {
      fileSize = statSync(file).size;
    } catch {
      throw new LinfoldError(`${ctx.label}: external data file '${location}' of tensor '${name}' is missing (looked in ${ctx.baseDir})`);
    }
    ctx.fileSizes.set(file, fileSize);
  }
  const offset = Number(kv.get('offset') ?? 0);
  const size = product(dims);
  const length = kv.has('length') ? Number(kv.get('length')) : byteLength(dtype, size);
  if (!(offset >= 0 && length >= 0 && offset + length <= fileSize))
    throw new LinfoldError(`${ctx.label}: external data of tensor '${name}' (offset ${offset}, length ${length}) lies outside '${location}' (${fileSize} bytes)`);
  if (dtype !== 'string' && length !== byteLength(dtype, size))
    throw new LinfoldError(`${ctx.label}: tensor '${name}' has ${length} bytes of external data, shape [${dims}] of ${dtype} needs ${byteLength(dtype, size)}`);
  return Tensor.fromExternal(name, dtype, dims, { file, offset, length });
}

/** Decodes a serialized TensorProto (ONNX test data `input_0.pb` files). */
export function decodeTensor(bytes: Uint8Array, label = '<tensor>'): Tensor {
  let proto: Proto;
  try {
    proto = TensorProtoType.decode(bytes);
  } catch (e) {
    throw new LinfoldError(`${label}: not a TensorProto (${(e as Error).message})`);
  }
  return tensorFromProto(proto, { label, baseDir: process.cwd(), fileSizes: new Map() });
}

// ---------------------------------------------------------------- writing

export interface SaveOptions {
  /**
   * Store initializers of at least `threshold` bytes (default 1024) in a data file next to the model
   * (named `location`, default `<model>.data`). Chosen automatically when the weights exceed protobuf's 2 GiB.
   */
  externalData?: boolean | { location?: string; threshold?: number };
}

interface ExternalSink { location: string; threshold: number; fd: number; offset: number }

/** Writes the model atomically: temp files first, renamed into place only when everything is written. */
export function saveModel(model: Model, path: string, opts: SaveOptions = {}): void {
  const totalBytes = [...model.graph.initializers.values()].reduce((s, t) => s + t.byteLength, 0);
  let ext = opts.externalData;
  if (!ext && totalBytes > INLINE_LIMIT) ext = true;
  const tmp = `${path}.${process.pid}.tmp`;
  let sink: ExternalSink | undefined;
  let dataPath: string | undefined;
  try {
    if (ext) {
      const location = (typeof ext === 'object' && ext.location) || `${basename(path)}.data`;
      dataPath = join(dirname(resolve(path)), location);
      sink = { location, threshold: (typeof ext === 'object' && ext.threshold) || 1024, fd: openSync(`${dataPath}.${process.pid}.tmp`, 'w'), offset: 0 };
    }
    const bytes = encodeModel(model, sink);
    if (sink) closeSync(sink.fd);
    writeFileSync(tmp, bytes);
    if (sink && dataPath) renameSync(`${dataPath}.${process.pid}.tmp`, dataPath);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (dataPath) rmSync(`${dataPath}.${process.pid}.tmp`, { force: true });
    if (e instanceof LinfoldError) throw e;
    throw new LinfoldError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Encodes a model; with a sink, large initializers go to the external data file instead. */
export function encodeModel(model: Model, sink?: ExternalSink): Uint8Array {
  const g = model.graph;
  const inlineBytes = [...g.initializers.values()].reduce((s, t) => s + (sink && t.byteLength >= sink.threshold ? 0 : t.byteLength), 0);
  if (inlineBytes > INLINE_LIMIT)
    throw new LinfoldError(`model weights (${(inlineBytes / 2 ** 30).toFixed(2)} GiB) exceed protobuf's 2 GiB limit: save with external data`);
  const proto = {
    ir_version: Long.fromNumber(model.irVersion),
    opset_import: model.opsets.map((o) => ({ domain: o.domain, version: Long.fromNumber(o.version) })),
    producer_name: model.producerName, producer_version: model.producerVersion, domain: model.domain,
    model_version: Long.fromNumber(model.modelVersion), doc_string: model.docString,
    graph: graphToProto(g, sink),
    ...dropEmpty(model.passthrough ?? {}),
  };
  const err = ModelProto.verify(proto);
  if (err) throw new LinfoldError(`cannot encode model: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(proto)).finish();
}

function dropEmpty(o: Proto): Proto {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v != null && !(Array.isArray(v) && v.length === 0) && v !== ''));
}

function graphToProto(g: Graph, sink?: ExternalSink): Proto {
  return {
    name: g.name,
    node: g.nodes.map(nodeToProto),
    initializer: [...g.initializers.values()].map((t) => tensorToProto(t, sink)),
    input: g.inputs.map(valueInfoToProto),
    output: g.outputs.map(valueInfoToProto),
    value_info: [...g.valueInfo.values()].map(valueInfoToProto),
    ...dropEmpty(g.passthrough ?? {}),
  };
}

function valueInfoToProto(v: ValueInfo): Proto {
  const p: Proto = { name: v.name, ...dropEmpty(v.passthrough ?? {}) };
  if (!p.type && v.dtype) {
    const tensor_type: Proto = { elem_type: DTYPE_CODE[v.dtype] };
    if (v.shape) tensor_type.shape = { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: Long.fromNumber(d) } : d === '?' ? {} : { dim_param: d })) };
    p.type = { tensor_type };
  }
  return p;
}

function nodeToProto(n: Node): Proto {
  return {
    input: n.inputs, output: n.outputs, name: n.name, op_type: n.opType, domain: n.domain,
    attribute: Object.entries(n.attrs).map(([name, a]) => attrToProto(name, a)),
    ...dropEmpty(n.passthrough ?? {}),
  };
}

function attrToProto(name: string, a: Attr): Proto {
  switch (a.type) {
    case 'float': return { name, type: 1, f: a.value };
    case 'int': return { name, type: 2, i: Long.fromNumber(a.value) };
    case 'string': return { name, type: 3, s: utf8enc.encode(a.value) };
    case 'tensor': return { name, type: 4, t: tensorToProto(a.value) };
    case 'floats': return { name, type: 6, floats: a.value };
    case 'ints': return { name, type: 7, ints: a.value.map((v) => Long.fromNumber(v)) };
    case 'strings': return { name, type: 8, strings: a.value.map((s) => utf8enc.encode(s)) };
    case 'tensors': return { name, type: 9, tensors: a.value.map((t) => tensorToProto(t)) };
    case 'opaque': return a.proto;
  }
}

function tensorToProto(t: Tensor, sink?: ExternalSink): Proto {
  const p: Proto = { name: t.name, data_type: DTYPE_CODE[t.dtype], dims: t.dims.map((d) => Long.fromNumber(d)) };
  if (t.dtype === 'string') {
    p.string_data = t.strings;
    return p;
  }
  if (sink && t.byteLength >= sink.threshold) {
    const pad = (64 - (sink.offset % 64)) % 64;
    if (pad) writeSync(sink.fd, new Uint8Array(pad));
    sink.offset += pad;
    const length = t.writeBytesTo(sink.fd);
    p.data_location = 1;
    p.external_data = [
      { key: 'location', value: sink.location },
      { key: 'offset', value: String(sink.offset) },
      { key: 'length', value: String(length) },
    ];
    sink.offset += length;
    return p;
  }
  p.raw_data = t.bytes;
  return p;
}

/** True when a file exists at `path` and is the same file as `other` (to refuse overwriting an input). */
export function sameFile(path: string, other: string): boolean {
  if (!existsSync(path) || !existsSync(other)) return false;
  const a = statSync(path), b = statSync(other);
  return a.ino === b.ino && a.dev === b.dev;
}

/** The model's metadata_props as a record (what linfold and exporters note about a model). */
export function modelMetadata(model: Model): Record<string, string> {
  const props = (model.passthrough?.metadata_props ?? []) as { key?: string; value?: string }[];
  return Object.fromEntries(props.filter((p) => p.key).map((p) => [p.key!, p.value ?? '']));
}

/** Sets (or replaces) one metadata_props entry. */
export function setModelMetadata(model: Model, key: string, value: string): void {
  const props = ((model.passthrough.metadata_props ?? []) as { key?: string; value?: string }[]).filter((p) => p.key !== key);
  model.passthrough = { ...model.passthrough, metadata_props: [...props, { key, value }] };
}

const ORIGINAL_KEY = 'linfold.original';
const ORIGINAL_HASH_KEY = 'linfold.original_sha256';

const fileSha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Notes in `model`'s metadata the file it was made from (linearize does this), with the file's hash. */
export function recordOriginal(model: Model, originalPath: string): void {
  setModelMetadata(model, ORIGINAL_KEY, resolve(originalPath));
  setModelMetadata(model, ORIGINAL_HASH_KEY, fileSha256(originalPath));
}

/** The original recorded in a model's metadata: its path when that file exists unchanged, else why not. */
export function recordedOriginal(model: Model): { path?: string; problem?: string } {
  const meta = modelMetadata(model);
  const path = meta[ORIGINAL_KEY];
  if (!path) return {};
  if (!existsSync(path)) return { problem: `the original recorded in ${model.path ?? 'the model'} (${path}) no longer exists` };
  if (meta[ORIGINAL_HASH_KEY] && meta[ORIGINAL_HASH_KEY] !== fileSha256(path)) return { problem: `the original recorded in ${model.path ?? 'the model'} (${path}) has changed since` };
  return { path };
}

/**
 * Loads a model and resolves the input shapes given for it: an unnamed shape (key '*') names the model's
 * single input.
 */
export function loadModelWithShapes(path: string, shapes?: Record<string, number[]>): { model: Model; shapes?: Record<string, number[]> } {
  const model = loadModel(path);
  if (!shapes) return { model, shapes: undefined };
  const resolved: Record<string, number[]> = {};
  const feeds = model.graph.feeds;
  for (const [k, v] of Object.entries(shapes)) {
    if (k !== '*') resolved[k] = v;
    else if (feeds.length === 1) resolved[feeds[0].name] = v;
    else throw new LinfoldError(`input shape ${v.join('x')}: ${path} has ${feeds.length} inputs (${feeds.map((f) => f.name).join(', ')}); name one, e.g. ${feeds[0]?.name}:${v.join('x')}`);
  }
  return { model, shapes: resolved };
}
