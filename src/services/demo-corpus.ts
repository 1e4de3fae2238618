/**
 * The demo corpus: Candela's own documentation, ingested on the first start
 * with an empty data directory so a fresh server answers questions out of
 * the box. A marker file records that it happened, so deleting every
 * document does not bring it back.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-write.ts';
import path from 'node:path';
import type { DocumentService } from './documents.ts';

/** Files of the demo corpus, relative to the project root, with their document ids. */
export const DEMO_CORPUS = [{ id: 'candela-readme', title: 'Candela README', file: 'README.md' }] as const;

/** Ingests the demo corpus once; returns how many documents were added. */
export async function ingestDemoCorpus(docs: DocumentService, projectRoot: string, dataDir: string): Promise<number> {
  const marker = path.join(dataDir, '.demo-corpus-ingested');
  if (docs.count > 0 || existsSync(marker)) return 0;
  let added = 0;
  for (const d of DEMO_CORPUS) {
    const text = await readFile(path.join(projectRoot, d.file), 'utf8');
    await docs.add({ id: d.id, title: d.title, text });
    added++;
  }
  await writeFileAtomic(marker, new Date().toISOString());
  return added;
}
