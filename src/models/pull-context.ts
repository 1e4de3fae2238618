/** What every step of a pull shares: directories, registries, fetch, progress, retries. */
import type { PullProgressEvent } from "./pull.ts";

export interface PullContext {
  readonly modelsDir: string;
  readonly cacheDir: string;
  readonly indexUrl: string;
  readonly npmRegistry: string;
  readonly mavenRepo: string;
  readonly fetch: typeof fetch;
  readonly emit: (event: PullProgressEvent) => void;
  readonly retries: number;
}
