/**
 * Converts a BERT encoder exported to ONNX (as transformers/optimum export
 * it) into the directory layout Candela's engine loads: `model.safetensors`
 * with Hugging Face BERT parameter names, `config.json`,
 * `1_Pooling/config.json` and `sentence_bert_config.json` (the tokenizer is
 * copied as shipped).
 *
 * Exporters keep the names of embeddings, biases and LayerNorm parameters
 * but often give the projection weights generic names (`onnx::MatMul_1525`),
 * stored transposed (`[in, out]`, as MatMul's right operand). Those are
 * named by following the graph: the MatMul that reads the weight feeds an
 * Add whose other operand is a named bias (`…query.bias` → `…query.weight`);
 * failing that, the MatMul node's own path (`/encoder/layer.0/attention/self/query/MatMul`).
 * Every mapped tensor is checked against the shapes BERT needs.
 */
import { ONNX_FLOAT, readOnnxModel, tensorFloats, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx/onnx-proto.ts';
import { encodeSafetensors, type F32Tensor } from './safetensors.ts';

/** What the ONNX graph does not say and the output directory needs. */
export interface BertConversionSettings {
  /** Attention heads (the ONNX keeps them only in Reshape constants). */
  readonly heads: number;
  readonly layerNormEps: number;
  readonly hiddenAct: 'gelu';
  /** Sentence pooling the embedder applies. */
  readonly pooling: 'cls' | 'mean';
  /** Longest input in tokens (sentence-transformers' max_seq_length). */
  readonly maxSeqLength: number;
  readonly doLowerCase: boolean;
}

/** How one ONNX initializer became one BERT parameter. */
export interface MappedTensor {
  readonly from: string;
  readonly to: string;
  /** Stored `[in, out]` in the ONNX and transposed to `[out, in]`. */
  readonly transposed: boolean;
  /** How the name was found: as stored, from the bias its MatMul feeds, or from the MatMul node's path. */
  readonly how: 'name' | 'bias' | 'node';
}

/** Raised when the ONNX graph is not a BERT encoder this converter understands. */
export class BertConversionError extends Error {
  override name = 'BertConversionError';
}

/** The BERT dimensions read off the tensors' shapes. */
export interface BertDims {
  vocab: number;
  hidden: number;
  maxPositions: number;
  typeVocab: number;
  layers: number;
  intermediate: number;
}

const LINEARS = ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense', 'intermediate.dense', 'output.dense'];
const NORMS = ['attention.output.LayerNorm', 'output.LayerNorm'];
const BERT_NAME = /^(?:bert\.)?((?:embeddings|encoder\.layer\.\d+|pooler)\..+)$/;

/** The consumers of every value name in the graph. */
function consumers(nodes: readonly OnnxNode[]): Map<string, { node: OnnxNode; slot: number }[]> {
  const out = new Map<string, { node: OnnxNode; slot: number }[]>();
  for (const node of nodes) {
    node.inputs.forEach((name, slot) => {
      let list = out.get(name);
      if (!list) out.set(name, (list = []));
      list.push({ node, slot });
    });
  }
  return out;
}

/** Whether a weight read by these consumers is stored `[in, out]` (MatMul's right operand, or Gemm without transB). */
function storedTransposed(uses: readonly { node: OnnxNode; slot: number }[]): boolean {
  return uses.some((u) => (u.node.opType === 'MatMul' && u.slot === 1) || (u.node.opType === 'Gemm' && u.slot === 1 && u.node.ints['transB'] !== 1));
}

/** The BERT name of an unnamed MatMul weight: from the bias its output gets, else from the node's path. */
function nameFromGraph(matmul: OnnxNode, uses: Map<string, { node: OnnxNode; slot: number }[]>, named: ReadonlySet<string>): { name: string; how: 'bias' | 'node' } | undefined {
  for (const { node } of uses.get(matmul.outputs[0] ?? '') ?? []) {
    if (node.opType !== 'Add') continue;
    const bias = node.inputs.find((i) => named.has(i) && i.endsWith('.bias'));
    const m = bias && BERT_NAME.exec(bias);
    if (m) return { name: m[1]!.replace(/\.bias$/, '.weight'), how: 'bias' };
  }
  // "/encoder/layer.0/attention/self/query/MatMul" → "encoder.layer.0.attention.self.query.weight"
  const path = /^\/?(.+)\/MatMul(?:_\d+)?$/.exec(matmul.name)?.[1];
  const m = path && BERT_NAME.exec(path.replaceAll('/', '.'));
  return m ? { name: `${m[1]}.weight`, how: 'node' } : undefined;
}

/** Transposes a row-major `[rows, cols]` matrix. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/**
 * Maps the initializers of a BERT ONNX graph to Hugging Face BERT parameter
 * names (`embeddings.*`, `encoder.layer.N.*`, `pooler.*`), in PyTorch layout.
 * Throws {@link BertConversionError} when a parameter BERT needs is missing,
 * mapped twice, or of the wrong shape.
 */
export function bertTensorsFromOnnx(model: OnnxModel): { tensors: Map<string, F32Tensor>; mapping: MappedTensor[]; dims: BertDims; skipped: string[] } {
  const uses = consumers(model.nodes);
  const named = new Set(model.initializers.filter((t) => BERT_NAME.test(t.name)).map((t) => t.name));
  const tensors = new Map<string, F32Tensor>();
  const mapping: MappedTensor[] = [];
  const skipped: string[] = [];
  const put = (t: OnnxTensor, to: string, how: MappedTensor['how'], transposed: boolean): void => {
    if (tensors.has(to)) throw new BertConversionError(`two initializers map to '${to}' (the second is '${t.name}')`);
    let data = tensorFloats(t);
    let shape = t.dims;
    if (transposed) {
      if (t.dims.length !== 2) throw new BertConversionError(`'${t.name}' is read as a matrix but has shape ${JSON.stringify(t.dims)}`);
      data = transpose(data, t.dims[0]!, t.dims[1]!);
      shape = [t.dims[1]!, t.dims[0]!];
    }
    tensors.set(to, { shape, data });
    mapping.push({ from: t.name, to, transposed, how });
  };
  for (const t of model.initializers) {
    // Integer buffers (position_ids) and the like are not parameters; whatever BERT needs is checked below.
    if (t.dataType !== ONNX_FLOAT) {
      skipped.push(t.name);
      continue;
    }
    const tUses = uses.get(t.name) ?? [];
    const m = BERT_NAME.exec(t.name);
    if (m) {
      const isMatrix = t.dims.length === 2 && m[1]!.endsWith('.weight') && !m[1]!.startsWith('embeddings.');
      put(t, m[1]!, 'name', isMatrix && storedTransposed(tUses));
      continue;
    }
    const matmul = tUses.find((u) => u.node.opType === 'MatMul' && u.slot === 1)?.node;
    const found = matmul && t.dims.length === 2 ? nameFromGraph(matmul, uses, named) : undefined;
    if (found) put(t, found.name, found.how, true);
    else skipped.push(t.name);
  }
  const dims = checkBert(tensors);
  return { tensors, mapping, dims, skipped };
}

/** Checks that every parameter the engine loads is there with a consistent shape; returns the dimensions. */
function checkBert(tensors: ReadonlyMap<string, F32Tensor>): BertDims {
  const shape = (name: string): readonly number[] => {
    const t = tensors.get(name);
    if (!t) throw new BertConversionError(`the ONNX graph gives no '${name}'`);
    return t.shape;
  };
  const [vocab = 0, hidden = 0] = shape('embeddings.word_embeddings.weight');
  const [maxPositions = 0] = shape('embeddings.position_embeddings.weight');
  const [typeVocab = 0] = shape('embeddings.token_type_embeddings.weight');
  const layerIds = new Set([...tensors.keys()].map((k) => /^encoder\.layer\.(\d+)\./.exec(k)?.[1]).filter((x) => x !== undefined).map(Number));
  const layers = layerIds.size;
  if (layers === 0 || Math.max(...layerIds) !== layers - 1) throw new BertConversionError(`encoder layers are not numbered 0..N-1: ${[...layerIds].sort((a, b) => a - b).join(',')}`);
  const [intermediate = 0] = shape('encoder.layer.0.intermediate.dense.weight');
  const expect = (name: string, want: number[]): void => {
    const got = shape(name);
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) throw new BertConversionError(`'${name}' is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };
  expect('embeddings.position_embeddings.weight', [maxPositions, hidden]);
  expect('embeddings.token_type_embeddings.weight', [typeVocab, hidden]);
  for (const p of ['weight', 'bias']) expect(`embeddings.LayerNorm.${p}`, [hidden]);
  for (let l = 0; l < layers; l++) {
    const io: Record<string, [number, number]> = { 'intermediate.dense': [intermediate, hidden], 'output.dense': [hidden, intermediate] };
    for (const lin of LINEARS) {
      const [out, inp] = io[lin] ?? [hidden, hidden];
      expect(`encoder.layer.${l}.${lin}.weight`, [out, inp]);
      expect(`encoder.layer.${l}.${lin}.bias`, [out]);
    }
    for (const n of NORMS) for (const p of ['weight', 'bias']) expect(`encoder.layer.${l}.${n}.${p}`, [hidden]);
  }
  if (tensors.has('pooler.dense.weight')) {
    expect('pooler.dense.weight', [hidden, hidden]);
    expect('pooler.dense.bias', [hidden]);
  }
  return { vocab, hidden, maxPositions, typeVocab, layers, intermediate };
}

/** Pretty JSON with a trailing newline: the bytes of every generated config file. */
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v, null, 2) + '\n', 'utf8');

/**
 * Converts ONNX model bytes into the files of a sentence-transformers BERT
 * directory (paths relative to it): model.safetensors, config.json,
 * 1_Pooling/config.json, sentence_bert_config.json. Deterministic: the same
 * input always gives the same bytes.
 */
export function convertOnnxBert(onnx: Uint8Array, settings: BertConversionSettings): { files: Map<string, Buffer>; mapping: MappedTensor[]; dims: BertDims; skipped: string[] } {
  const { tensors, mapping, dims, skipped } = bertTensorsFromOnnx(readOnnxModel(onnx));
  if (dims.hidden % settings.heads !== 0) throw new BertConversionError(`hidden size ${dims.hidden} is not a multiple of ${settings.heads} heads`);
  if (settings.maxSeqLength > dims.maxPositions) throw new BertConversionError(`max_seq_length ${settings.maxSeqLength} exceeds the ${dims.maxPositions} position embeddings`);
  const config = {
    architectures: ['BertModel'],
    attention_probs_dropout_prob: 0.1,
    hidden_act: settings.hiddenAct,
    hidden_dropout_prob: 0.1,
    hidden_size: dims.hidden,
    initializer_range: 0.02,
    intermediate_size: dims.intermediate,
    layer_norm_eps: settings.layerNormEps,
    max_position_embeddings: dims.maxPositions,
    model_type: 'bert',
    num_attention_heads: settings.heads,
    num_hidden_layers: dims.layers,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    type_vocab_size: dims.typeVocab,
    use_cache: true,
    vocab_size: dims.vocab,
  };
  const pooling = {
    word_embedding_dimension: dims.hidden,
    pooling_mode_cls_token: settings.pooling === 'cls',
    pooling_mode_mean_tokens: settings.pooling === 'mean',
    pooling_mode_max_tokens: false,
    pooling_mode_mean_sqrt_len_tokens: false,
  };
  const files = new Map<string, Buffer>([
    ['model.safetensors', encodeSafetensors(tensors, { format: 'pt', converted_by: 'candela onnx-to-bert' })],
    ['config.json', json(config)],
    ['1_Pooling/config.json', json(pooling)],
    ['sentence_bert_config.json', json({ max_seq_length: settings.maxSeqLength, do_lower_case: settings.doLowerCase })],
  ]);
  return { files, mapping, dims, skipped };
}
