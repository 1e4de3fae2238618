/**
 * The demo corpus: Candela's own documentation, ingested on the first start
 * with an empty data directory so a fresh server answers questions out of
 * the box. A marker in the document store records that it happened, so
 * deleting every document does not bring it back (with Redis, for every
 * replica; replicas starting together may race, and the loser's add is a
 * conflict it ignores).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { DocumentStore } from './document-store.ts';
import { DocumentError, type DocumentService } from './documents.ts';

const MARKER = 'demo-corpus-ingested';

/** Files of the demo corpus, relative to the project root, with their document ids. */
export const DEMO_CORPUS = [{ id: 'candela-readme', title: 'Candela README', file: 'README.md' }] as const;

/** Ingests the demo corpus once; returns how many documents were added. */
export async function ingestDemoCorpus(docs: DocumentService, projectRoot: string, store: DocumentStore): Promise<number> {
  if (docs.count > 0 || (await store.hasMarker(MARKER))) return 0;
  let added = 0;
  for (const d of DEMO_CORPUS) {
    const text = await readFile(path.join(projectRoot, d.file), 'utf8');
    try {
      await docs.add({ id: d.id, title: d.title, text });
      added++;
    } catch (e) {
      if (!(e instanceof DocumentError)) throw e;
    }
  }
  await store.setMarker(MARKER);
  return added;
}
