/**
 * The memory this process may use: its cgroup's limit (v2 `memory.max`, v1
 * `memory.limit_in_bytes`) where one is set, as in a container or a
 * Kubernetes pod, else the host's total memory. Alerts compare the resident
 * set with it.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

const CGROUP_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

/** Bytes of memory available to this process (cgroup limit, or host total when unlimited). */
export function memoryLimitBytes(files: readonly string[] = CGROUP_FILES): number {
  const host = os.totalmem();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    // "max" (v2) or a huge page-aligned number (v1) both mean no limit.
    const n = Number(text);
    if (text !== 'max' && Number.isFinite(n) && n > 0 && n < host) return n;
    return host;
  }
  return host;
}
