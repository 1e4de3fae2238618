/**
 * Child processes the engine benchmark runs: Candela's own server and
 * llama.cpp's llama-server, each on a free loopback port, with their
 * resident memory read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A started server. */
export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Resident set size of a process, in MiB (VmRSS). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function waitFor(url: string, child: ChildProcess, timeoutMs: number, log: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before it was ready:\n${log()}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`server not ready after ${timeoutMs} ms: ${url}\n${log()}`);
}

function track(child: ChildProcess): () => string {
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => out;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    });
}

/** `candela serve` with the given environment (models, data dir, threads…). */
export async function startCandela(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const child = spawn(path.join(ROOT, 'bin/candela'), ['serve', '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, CANDELA_LOG_LEVEL: 'warn', CANDELA_BUDGET: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = track(child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health/ready`, child, 300_000, log);
  return { url, pid: child.pid!, stop: stopper(child) };
}

/** llama.cpp's server with continuous batching over `parallel` slots. */
export async function startLlamaServer(bin: string, gguf: string, opts: { threads: number; parallel: number; context: number }): Promise<Server> {
  const port = await freePort();
  const args = ['-m', gguf, '-t', String(opts.threads), '-tb', String(opts.threads), '-np', String(opts.parallel), '-c', String(opts.context), '--host', '127.0.0.1', '--port', String(port), '--no-webui'];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = track(child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health`, child, 300_000, log);
  return { url, pid: child.pid!, stop: stopper(child) };
}
