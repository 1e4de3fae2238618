/**
 * Models and status: readiness (/health/ready), the models (/v1/models) with
 * their schedulers' running and waiting counts, and the cache and cost
 * breaker (/health/stats). Refreshes every few seconds while open.
 */
import { useState } from 'preact/hooks';
import { getJson, request, type ApiError } from '../api.ts';
import { ErrorNote, asApiError } from '../components/error-note.tsx';
import { bytes, count, duration, ms } from '../format.ts';
import { usePoll } from '../hooks.ts';
import type { ModelEntry, Readiness, ServerStats } from '../types.ts';

const REFRESH_MS = 5000;

/** The cache store's own breaker, in words: `open` means the store failed and is skipped for now. */
const STORE_STATE: Record<string, string> = { closed: 'healthy', 'half-open': 'recovering', open: 'unreachable (skipped)' };

interface Snapshot {
  ready?: Readiness;
  models?: ModelEntry[];
  stats?: ServerStats;
  replica?: string;
  at: Date;
}

export function StatusView() {
  const [snap, setSnap] = useState<Snapshot | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const { reload } = usePoll(async (signal) => {
    // Readiness is an open probe: it answers even without a key.
    const readyRes = await fetch('/health/ready', { signal }).catch(() => undefined);
    const ready = readyRes ? ((await readyRes.json().catch(() => undefined)) as Readiness | undefined) : undefined;
    try {
      const statsRes = await request('/health/stats', { signal });
      const stats = (await statsRes.json()) as ServerStats;
      const models = (await getJson<{ data: ModelEntry[] }>('/v1/models', { signal })).data;
      setSnap({ ready, models, stats, replica: statsRes.headers.get('x-replica-id') ?? undefined, at: new Date() });
      setError(undefined);
    } catch (err) {
      if (signal.aborted) return;
      setSnap({ ready, at: new Date() });
      setError(asApiError(err));
    }
  }, REFRESH_MS);

  const sched = new Map((snap?.stats?.models ?? []).map((m) => [m.name, m.scheduler]));
  const cache = snap?.stats?.cache;
  const breaker = snap?.stats?.breaker;
  return (
    <section aria-labelledby="status-title">
      <h2 id="status-title">Models and status</h2>
      <div class="row">
        <p>
          Readiness:{' '}
          <span class={`badge ${snap?.ready?.status === 'ready' ? 'ok' : 'warn'}`} data-testid="readiness">
            {snap?.ready?.status ?? 'unknown'}
          </span>
          {snap?.ready &&
            Object.entries(snap.ready.components).map(([k, v]) => (
              <span key={k} class="small muted">
                {' '}
                · {k}: {v}
              </span>
            ))}
        </p>
        <button type="button" class="secondary small" onClick={reload}>
          Refresh
        </button>
        <span class="small muted">{snap ? `updated ${snap.at.toLocaleTimeString()}` : 'loading…'}</span>
      </div>
      {error && <ErrorNote error={error} />}
      {snap?.models && (
        <div class="table-wrap">
          <table class="stack" data-testid="models-table">
            <caption class="visually-hidden">Models</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Quantization</th>
                <th scope="col" class="num">Parameters</th>
                <th scope="col" class="num">Memory</th>
                <th scope="col">Device</th>
                <th scope="col" class="num">Running / waiting</th>
                <th scope="col" class="num">Load time</th>
              </tr>
            </thead>
            <tbody>
              {snap.models.map((m) => {
                const s = sched.get(m.id);
                return (
                  <tr key={m.id} data-testid="model-row">
                    <th scope="row">
                      {m.id}
                      {m.architecture && <div class="small muted">{m.architecture}</div>}
                    </th>
                    <td data-label="Role">{m.role}</td>
                    <td data-label="Status">
                      <span class={`badge ${m.status === 'ready' ? 'ok' : m.status === 'failed' ? 'bad' : 'warn'}`} title={m.failure ?? undefined}>
                        {m.status}
                      </span>
                    </td>
                    <td data-label="Quantization">{m.quantization ?? '—'}</td>
                    <td class="num" data-label="Parameters">{count(m.parameters)}</td>
                    <td class="num" data-label="Memory">{bytes(m.memory_bytes)}</td>
                    <td data-label="Device">{m.device ?? '—'}</td>
                    <td class="num" data-label="Running / waiting" data-testid="running">
                      {s ? `${s.running} / ${s.waiting}` : '—'}
                    </td>
                    <td class="num" data-label="Load time">{ms(m.load_ms)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {snap?.stats && (
        <div class="cards">
          <div class="card">
            <h3>Semantic cache</h3>
            {cache?.enabled === false ? (
              <p>off</p>
            ) : (
              <dl class="pairs">
                <dt>Entries</dt>
                <dd data-testid="cache-entries">{count(cache?.entries)}</dd>
                <dt>Store</dt>
                <dd>
                  {cache?.backend ?? '—'}, {STORE_STATE[cache?.store_state ?? ''] ?? cache?.store_state ?? '—'}
                </dd>
                <dt>Threshold</dt>
                <dd>{cache?.threshold ?? '—'}</dd>
                <dt>TTL</dt>
                <dd>{cache?.ttl_s !== undefined ? duration(cache.ttl_s) : '—'}</dd>
              </dl>
            )}
          </div>
          <div class="card">
            <h3>Cost breaker</h3>
            {!breaker || !breaker.enabled ? (
              <p>off</p>
            ) : (
              <dl class="pairs">
                <dt>State</dt>
                <dd>
                  <span class={`badge ${breaker.state === 'closed' ? 'ok' : breaker.state === 'open' ? 'bad' : 'warn'}`} data-testid="breaker-state">
                    {breaker.state}
                  </span>
                  {breaker.state === 'open' && ` (retry in ${breaker.retry_after_s} s)`}
                </dd>
                <dt>Spent</dt>
                <dd>
                  {breaker.spent.toFixed(4)} of {breaker.budget} per {duration(breaker.window_s)}
                  <progress max={breaker.budget} value={Math.min(breaker.spent, breaker.budget)} aria-label="budget spent" />
                </dd>
                <dt>Rejections</dt>
                <dd>{breaker.rejections}</dd>
              </dl>
            )}
          </div>
          <div class="card">
            <h3>Server</h3>
            <dl class="pairs">
              <dt>Replica</dt>
              <dd>
                <code>{snap.replica ?? '—'}</code>
              </dd>
              <dt>Uptime</dt>
              <dd>{duration(snap.stats.uptime_s)}</dd>
              <dt>Memory (RSS)</dt>
              <dd>{bytes(snap.stats.memory?.process_rss_bytes)}</dd>
              <dt>Shared state</dt>
              <dd>{typeof snap.stats.settings['shared_state'] === 'string' ? snap.stats.settings['shared_state'] : '—'}</dd>
              <dt>API keys</dt>
              <dd>{snap.stats.settings['auth'] ? 'required' : 'off'}</dd>
            </dl>
          </div>
        </div>
      )}
    </section>
  );
}
