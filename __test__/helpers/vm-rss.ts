/** Resident memory as the kernel counts it, for the soak and leak tests. */
import { readFileSync } from 'node:fs';

/** VmRSS of a process (`'self'`: this one) from /proc, in MiB. */
export function vmRssMiB(pid: number | 'self'): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) / 1024;
}
