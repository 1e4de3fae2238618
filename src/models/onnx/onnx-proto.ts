/**
 * Reads the parts of an ONNX model (a protobuf `onnx.ModelProto`) that a
 * weight conversion needs: the graph's nodes (op type, name, inputs,
 * outputs) and its initializers (name, shape, float32 data). Decoding is
 * protobufjs over a hand-written subset of ONNX's `onnx.proto` (field
 * numbers as upstream; fields not listed are skipped by the decoder).
 *
 * Tensor bytes are not copied while decoding: protobufjs hands out views of
 * the input buffer; {@link tensorFloats} copies one tensor when asked.
 */
import protobuf from 'protobufjs';

/** The subset of ONNX's onnx.proto (proto2) read here; field numbers match upstream. */
export const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
}
message AttributeProto {
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
}
message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
}
`;

/** ONNX TensorProto.DataType.FLOAT. */
export const ONNX_FLOAT = 1;

/** One graph node. */
export interface OnnxNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  /** Integer attributes by name (e.g. Gemm's transB). */
  ints: Record<string, number>;
}

/** One initializer (a constant tensor of the graph, i.e. a weight). */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian element bytes (a view into the model buffer), when stored as raw_data. */
  raw?: Uint8Array;
  /** Elements, when stored as float_data. */
  floats?: number[];
  /** True when the data lives in an external file (not supported here). */
  external: boolean;
}

/** What {@link readOnnxModel} returns. */
export interface OnnxModel {
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
}

/** Raised for bytes that are not an ONNX model this reader understands. */
export class OnnxFormatError extends Error {
  override name = 'OnnxFormatError';
}

let types: { model: protobuf.Type; root: protobuf.Root } | undefined;

/** The decoder/encoder types of the subset (built once; tests encode tiny models with them). */
export function onnxTypes(): { model: protobuf.Type; root: protobuf.Root } {
  if (!types) {
    const root = protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root;
    types = { model: root.lookupType('onnx.ModelProto'), root };
  }
  return types;
}

type Int64 = number | { toString(): string };
const num = (v: Int64 | null | undefined): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : Number(v.toString()));

interface RawTensor {
  dims?: Int64[];
  data_type?: number;
  float_data?: number[];
  name?: string;
  raw_data?: Uint8Array;
  external_data?: unknown[];
  data_location?: number;
}
interface RawNode {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  attribute?: { name?: string; i?: Int64 }[];
}
interface RawModel {
  ir_version?: Int64;
  producer_name?: string;
  graph?: { node?: RawNode[]; initializer?: RawTensor[] };
  opset_import?: { domain?: string; version?: Int64 }[];
}

/** Decodes an ONNX model held in memory. */
export function readOnnxModel(bytes: Uint8Array): OnnxModel {
  let m: RawModel;
  try {
    m = onnxTypes().model.decode(bytes) as unknown as RawModel;
  } catch (err) {
    throw new OnnxFormatError(`not an ONNX model: ${(err as Error).message}`, { cause: err });
  }
  if (!m.graph) throw new OnnxFormatError('not an ONNX model: no graph');
  return {
    irVersion: num(m.ir_version),
    producer: m.producer_name ?? '',
    opsets: (m.opset_import ?? []).map((o) => ({ domain: o.domain ?? '', version: num(o.version) })),
    nodes: (m.graph.node ?? []).map((n) => ({
      name: n.name ?? '',
      opType: n.op_type ?? '',
      inputs: n.input ?? [],
      outputs: n.output ?? [],
      ints: Object.fromEntries((n.attribute ?? []).filter((a) => a.name && a.i !== undefined && a.i !== null).map((a) => [a.name!, num(a.i)])),
    })),
    initializers: (m.graph.initializer ?? []).map((t) => ({
      name: t.name ?? '',
      dims: (t.dims ?? []).map(num),
      dataType: t.data_type ?? 0,
      ...(t.raw_data && t.raw_data.length > 0 ? { raw: t.raw_data } : {}),
      ...(t.float_data && t.float_data.length > 0 ? { floats: t.float_data } : {}),
      external: t.data_location === 1 || (t.external_data?.length ?? 0) > 0,
    })),
  };
}

/** A float32 initializer's elements, copied out (row-major, as ONNX stores them). */
export function tensorFloats(t: OnnxTensor): Float32Array {
  if (t.dataType !== ONNX_FLOAT) throw new OnnxFormatError(`initializer '${t.name}' has data type ${t.dataType}, not float32`);
  if (t.external) throw new OnnxFormatError(`initializer '${t.name}' keeps its data in an external file, which is not supported`);
  const count = t.dims.reduce((a, b) => a * b, 1);
  let out: Float32Array;
  if (t.raw) {
    if (t.raw.byteLength !== count * 4) throw new OnnxFormatError(`initializer '${t.name}' has ${t.raw.byteLength} bytes for ${count} floats`);
    // Copied into a fresh (aligned) buffer: the view may start at any offset.
    out = new Float32Array(count);
    new Uint8Array(out.buffer).set(t.raw);
  } else {
    out = Float32Array.from(t.floats ?? []);
  }
  if (out.length !== count) throw new OnnxFormatError(`initializer '${t.name}' has ${out.length} elements, shape ${JSON.stringify(t.dims)} needs ${count}`);
  return out;
}

// ONNX raw_data is little-endian, as are the hosts Candela builds for (x86-64, aarch64).
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('the ONNX reader supports little-endian hosts only');
