/** The memory limit behind candela_memory_limit_bytes: cgroup v2, v1, or the host. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { memoryLimitBytes } from '../src/services/memory-limit.ts';
import { tempDir } from './helpers/paths.ts';

describe('memoryLimitBytes', () => {
  const dir = tempDir();
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads a cgroup v2 limit', () => {
    assert.equal(memoryLimitBytes([file('v2', '1073741824\n')]), 1073741824);
  });

  it('takes "max" and v1\'s huge "unlimited" number as the host total', () => {
    assert.equal(memoryLimitBytes([file('max', 'max\n')]), os.totalmem());
    assert.equal(memoryLimitBytes([path.join(dir, 'missing'), file('v1', '9223372036854771712\n')]), os.totalmem());
  });

  it('falls back to the host total without a cgroup file, and skips missing files', () => {
    assert.equal(memoryLimitBytes([path.join(dir, 'none')]), os.totalmem());
    assert.equal(memoryLimitBytes([path.join(dir, 'none'), file('v1b', '536870912')]), 536870912);
  });
});
