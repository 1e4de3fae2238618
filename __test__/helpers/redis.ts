/**
 * A throwaway `redis-server` for tests: on a free port of 127.0.0.1, no
 * persistence, no config file. `stop` ends it gracefully, `kill` abruptly
 * (SIGKILL, as in a crash), `restart` brings it back on the same port (empty:
 * nothing is persisted, unless started with `aofDir`). A server left running is killed when the test
 * process exits, and it never keeps that process alive.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TestRedis {
  url: string;
  port: number;
  /** Shuts it down (SIGTERM, then SIGKILL after 5 s); resolves once it has exited. */
  stop(): Promise<void>;
  /** SIGKILLs it at once (a crash); returns without waiting. */
  kill(): void;
  /** Starts it again on the same port (stopping it first if it runs); resolves once it answers PING. */
  restart(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whether `redis-server` can be run here. */
export function hasRedisServer(): boolean {
  const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/**
 * A `skip` option for Redis suites: false when redis-server runs here; a reason
 * to skip when it does not, except under `npm test` (CANDELA_REQUIRE_REDIS=1),
 * where a missing Redis fails the suite instead of letting it go green.
 */
export function skipUnlessRedis(): false | string {
  if (hasRedisServer()) return false;
  if (process.env['CANDELA_REQUIRE_REDIS'] === '1') throw new Error('redis-server is not on PATH but CANDELA_REQUIRE_REDIS=1: scripts/test.sh installs it; did that step fail?');
  return 'redis-server is not installed';
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Persist in this directory with an append-only file fsynced on every write (`appendfsync always`): a restart keeps the data. */
  aofDir?: string;
}

/** Starts a fresh redis-server; throws a clear error when it is not installed. */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const persistence = options.aofDir ? ['--dir', options.aofDir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  if (!hasRedisServer()) {
    throw new Error('redis-server is not on PATH; run `bash scripts/test.sh` (it installs it) or install redis-server');
  }
  installExitHook();
  // A free port can be taken by someone else before redis binds it: retry on a new one.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    let child: ChildProcess;
    try {
      child = await launch(port, persistence);
    } catch (e) {
      lastError = e;
      continue;
    }
    return handle(port, child, persistence);
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

function handle(port: number, first: ChildProcess, persistence: string[]): TestRedis {
  let child: ChildProcess | undefined = first;
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c) await terminate(c);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    kill() {
      const c = child;
      child = undefined;
      if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    },
    async restart() {
      await stop();
      // The killed process may hold the port for a moment: retry for a while.
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        try {
          child = await launch(port, persistence);
          return;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await sleep(100);
        }
      }
    },
  };
}

/** Spawns redis-server on `port` and waits until it answers PING. */
async function launch(port: number, persistence: string[]): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--daemonize', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  let output = '';
  const collect = (b: Buffer): void => {
    output = (output + b.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited = false;
  let spawnError: Error | undefined;
  child.on('error', (e) => {
    spawnError = e;
    exited = true;
  });
  child.on('exit', () => {
    exited = true;
    running.delete(child);
  });
  // Never keep the test process alive because of this server.
  child.unref();
  (child.stdout as net.Socket | null)?.unref();
  (child.stderr as net.Socket | null)?.unref();

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      throw new Error(`redis-server on port ${port} did not start: ${spawnError?.message ?? output.trim()}`);
    }
    if (await ping(port)) return child;
    if (Date.now() > deadline) {
      await terminate(child);
      throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms: ${output.trim()}`);
    }
    await sleep(30);
  }
}

/** True when something on `port` answers PING with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (b) => {
      reply += b.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    sock.on('close', () => done(false));
  });
}

/** Ends `child`: SIGTERM, SIGKILL after 5 s; resolves when it has exited. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP port of 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of running) c.kill('SIGKILL');
  });
}
