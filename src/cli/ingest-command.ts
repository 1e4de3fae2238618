/**
 * `candela ingest PATH...`: sends .txt and .md files (directories are
 * walked) to a running server's /v1/documents, one document per file, with
 * a progress line per file. The server chunks, embeds and stores them.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { documentIdFromFilename } from '../services/document-store.ts';
import { COMMON_OPTIONS, parse, UsageError } from './usage.ts';

const EXTENSIONS = new Set(['.txt', '.md', '.markdown']);

async function collect(p: string, out: string[]): Promise<void> {
  const s = await stat(p).catch(() => undefined);
  if (!s) throw new UsageError(`no such file or directory: ${p}`);
  if (s.isDirectory()) {
    for (const name of (await readdir(p)).sort()) if (!name.startsWith('.')) await collect(path.join(p, name), out);
  } else if (EXTENSIONS.has(path.extname(p).toLowerCase())) {
    out.push(p);
  }
}

/** A document id from a file path: its name, slugged, unique per run. */
function idFor(file: string, seen: Set<string>): string {
  const base = documentIdFromFilename(file);
  let id = base;
  for (let n = 2; seen.has(id); n++) id = `${base}-${n}`;
  seen.add(id);
  return id;
}

export async function ingestCommand(args: string[], config: Config): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON_OPTIONS, url: { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length === 0) throw new UsageError('ingest needs at least one PATH (.txt/.md files or directories)');
  const url = (values.url ?? `http://${config.host}:${config.port}`).replace(/\/$/, '');
  const files: string[] = [];
  for (const p of positionals) await collect(p, files);
  if (files.length === 0) throw new UsageError('no .txt or .md files found');
  const seen = new Set<string>();
  const results: { file: string; id: string; chunks: number }[] = [];
  for (const [i, file] of files.entries()) {
    const text = await readFile(file, 'utf8');
    if (text.trim() === '') {
      process.stderr.write(`[${i + 1}/${files.length}] ${file}: empty, skipped\n`);
      continue;
    }
    const id = idFor(file, seen);
    let res: Response;
    try {
      res = await fetch(`${url}/v1/documents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, title: path.basename(file), text }),
      });
    } catch {
      throw new Error(`cannot reach the server at ${url} (start it with 'candela serve', or pass --url)`);
    }
    const body = (await res.json()) as { data?: { chunks: number }[]; error?: { message: string } };
    if (!res.ok) throw new Error(`${file}: ${res.status} ${body.error?.message ?? 'failed'}`);
    const chunks = body.data?.[0]?.chunks ?? 0;
    results.push({ file, id, chunks });
    process.stderr.write(`[${i + 1}/${files.length}] ${file}: ${chunks} chunks as '${id}'\n`);
  }
  if (values.json) process.stdout.write(JSON.stringify(results) + '\n');
  return 0;
}
