/** The model puller's errors (re-exported by `pull.ts`). */

/** Thrown when a requested model name is not in the manifest; lists the names that are. */
export class UnknownModelError extends Error {
  readonly unknown: readonly string[];
  readonly known: readonly string[];
  constructor(unknown: readonly string[], known: readonly string[]) {
    super(`unknown model${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; known models: ${known.join(", ")}`);
    this.name = "UnknownModelError";
    this.unknown = unknown;
    this.known = known;
  }
}

/** Thrown when a downloaded archive or a built file does not have its pinned digest or size. */
export class ChecksumError extends Error {
  readonly file: string;
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, file: string, expected: string, actual: string) {
    super(`${what} mismatch for ${file}: expected ${expected}, got ${actual}`);
    this.name = "ChecksumError";
    this.file = file;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Thrown for registry/HTTP failures and malformed archives. */
export class PullError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PullError";
  }
}
