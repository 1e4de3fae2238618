/** Command-line argument helpers: strict parsing and clear usage errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in how the command was called (exit code 2, no stack trace). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const HELP = `candela — self-hosted LLM and RAG inference

Usage:
  candela serve [--port P] [--host H]          HTTP API with the configured models (CANDELA_MODELS)
  candela ingest [--url U] PATH...             add .txt/.md files (or directories) to a running server
  candela keys create --name N [--scopes read,write,admin] [--tenant T] [--json]
                                               new API key, printed once (default scope read; tenant: the name)
  candela keys list [--json]                   API keys and whether they are revoked (never the keys)
  candela keys revoke ID                       revoke an API key at once
  candela models pull [NAME...] [--json]      download, verify and unpack models (default set without names)
  candela models list [--json]                models in the manifest and whether they are present
  candela generate --model M [options] PROMPT stream a completion to stdout
      --temperature T  --top-p P  --top-k K  --repetition-penalty R  --max-tokens N
      --seed S  --stop TEXT (repeatable)  --system TEXT  --raw (no chat template)  --json
  candela embed --model M [--no-truncate] TEXT...        JSON embeddings
  candela rerank --model M --query Q [--no-truncate] DOC...  JSON relevance scores
  candela loadtest --scenario NAME[,NAME...]|all [--url U] [--json PATH] [--html PATH]
                                               load test a server (default http://127.0.0.1:PORT)
      --list (the scenarios)  --openai (any OpenAI-compatible server)  --model M  --api-key K
      --peer URL (repeatable: an OpenAI-compatible server given the same load, side by side)
      --scale F (sizes and durations × F, for small machines)  --max-tokens N  --ignore-eos
      --questions FILE (one a line)  --slo ttft_ms=500,tpot_ms=50,e2e_ms=5000 (goodput)
      --price-per-hour P (scorecard)  --timeout-s S (120)  --max-duration-s S (3600)  --seed N  --quiet

Common options:
  --models-dir DIR   models directory (env CANDELA_MODELS_DIR; default ./models)
  --device D         auto | cpu | cuda | cuda:N (env CANDELA_DEVICE)
  -h, --help         this text
`;

/** `parseArgs` in strict mode, with errors rephrased as {@link UsageError}s. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message.replace(/^TypeError \[[A-Z_]+\]: /, '') : String(err));
  }
}

/** Parses an optional numeric flag, checking its range. */
export function num(
  name: string,
  value: string | undefined,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const ok =
    value.trim() !== '' &&
    Number.isFinite(n) &&
    (!range.integer || Number.isInteger(n)) &&
    (range.min === undefined || n >= range.min) &&
    (range.max === undefined || n <= range.max);
  if (!ok) {
    const bounds = [range.min !== undefined ? `>= ${range.min}` : '', range.max !== undefined ? `<= ${range.max}` : '']
      .filter(Boolean)
      .join(' and ');
    throw new UsageError(`--${name} must be ${range.integer ? 'an integer' : 'a number'}${bounds ? ` ${bounds}` : ''}, got '${value}'`);
  }
  return n;
}

/** Common flags every command accepts. */
export const COMMON_OPTIONS = {
  'models-dir': { type: 'string' },
  device: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
