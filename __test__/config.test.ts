/**
 * The typed configuration: every setting parsed once into its final type
 * (prices, trust proxy, served models), bad values refused at load with a
 * message naming the setting, and the effective configuration logged at
 * start with credentials redacted.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ConfigError, loadConfig, redactConfig } from '../src/config.ts';
import { startServer } from '../src/bootstrap.ts';
import { DEFAULT_MODEL_NAMES, MODELS } from '../src/models/manifest.ts';
import { tempDir } from './helpers/paths.ts';

describe('config', () => {
  it('parses prices into per-model prices, once', () => {
    const c = loadConfig({ CANDELA_PRICES: '{"a": {"input_per_1k": 0.1, "output_per_1k": 0.2}, "b": {"per_second": 0.5}}' });
    assert.deepEqual(c.prices, { a: { inputPer1k: 0.1, outputPer1k: 0.2 }, b: { perSecond: 0.5 } });
    assert.deepEqual(loadConfig({}).prices, {});
    assert.throws(() => loadConfig({ CANDELA_PRICES: '{"a": 3' }), (e: unknown) => e instanceof ConfigError && /prices: prices must be JSON/.test(e.message));
    assert.throws(() => loadConfig({ CANDELA_PRICES: '{"a": {"per_second": -1}}' }), (e: unknown) => e instanceof ConfigError && /prices/.test(e.message));
  });

  it('parses trust proxy into what express takes, validating addresses at load', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ CANDELA_TRUST_PROXY: 'true' }).trustProxy, true);
    assert.equal(loadConfig({ CANDELA_TRUST_PROXY: '2' }).trustProxy, 2);
    assert.deepEqual(loadConfig({ CANDELA_TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8, 192.168.1.1' }).trustProxy, ['loopback', '10.0.0.0/8', 'fd00::/8', '192.168.1.1']);
    for (const bad of ['yes', '10.0.0.0/33', 'proxy.example.com', '1.2.3.4/8/9']) {
      assert.throws(() => loadConfig({ CANDELA_TRUST_PROXY: bad }), (e: unknown) => e instanceof ConfigError && /trustProxy: must be true, false/.test(e.message), bad);
    }
  });

  it('parses the served models into known manifest names', () => {
    const known = MODELS.map((m) => m.name);
    assert.deepEqual(loadConfig({}).serveModels, [], 'empty: the default set');
    assert.ok(DEFAULT_MODEL_NAMES.length > 0);
    assert.deepEqual(loadConfig({ CANDELA_MODELS: ` ${known[0]} ,${known[1]},` }).serveModels, [known[0], known[1]]);
    assert.throws(() => loadConfig({ CANDELA_MODELS: `${known[0]},no-such-model` }), (e: unknown) => e instanceof ConfigError && /serveModels: unknown model no-such-model/.test(e.message));
  });

  it('redacts credentials in URLs', () => {
    assert.equal(redactConfig(loadConfig({ REDIS_URL: 'redis://user:s3cret@redis:6379/0' }))['redisUrl'], 'redis://user:***@redis:6379/0');
    assert.equal(redactConfig(loadConfig({ REDIS_URL: 'rediss://:s3cret@redis:6380' }))['redisUrl'], 'rediss://:***@redis:6380');
    assert.equal(redactConfig(loadConfig({ REDIS_URL: 'redis://s3cret@redis' }))['redisUrl'], 'redis://***@redis');
    assert.equal(redactConfig(loadConfig({ REDIS_URL: 'redis://redis:6379' }))['redisUrl'], 'redis://redis:6379');
  });

  it('the server logs its effective configuration at start, without secrets', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    // A Redis URL nobody listens on: the log line is written before any connection matters.
    const config = Object.freeze({ ...loadConfig({ REDIS_URL: 'redis://:hunter2@127.0.0.1:1', CANDELA_TRUST_PROXY: 'loopback' }), port: 0, dataDir: tempDir(), demoCorpus: false });
    const server = await startServer({ config, models: [], logger: pino({ level: 'info' }, sink) });
    await server.close();
    const record = lines.map((l) => JSON.parse(l) as { msg: string; config?: Record<string, unknown> }).find((r) => r.msg === 'effective configuration');
    assert.ok(record?.config, 'logged once at start');
    assert.equal(record.config['redisUrl'], 'redis://:***@127.0.0.1:1');
    assert.deepEqual(record.config['trustProxy'], ['loopback']);
    assert.equal(record.config['bodyTimeoutMs'], 30_000, 'every setting, in its final type');
    assert.doesNotMatch(lines.join('\n'), /hunter2/);
  });
});
