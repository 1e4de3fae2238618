/**
 * Ask: a question answered from the documents, streamed from
 * /v1/query/stream token by token. The browser measures time to first token
 * and total latency itself (send → first token, send → done) and shows them
 * beside the server's own stage timings from the `done` event.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, postStream } from '../api.ts';
import { ErrorNote, asApiError } from '../components/error-note.tsx';
import { ModelSelect, NumberField } from '../components/fields.tsx';
import { LatencyChart, type LatencyPoint } from '../components/latency-chart.tsx';
import { ms, rate, short } from '../format.ts';
import { throttled, useStored } from '../hooks.ts';
import type { QueryDone, QueryMeta } from '../types.ts';

/** One asked question and what came back. */
interface Answer {
  id: number;
  question: string;
  state: 'streaming' | 'done' | 'stopped' | 'error';
  text: string;
  meta?: QueryMeta;
  done?: QueryDone;
  error?: ApiError;
  /** Browser-measured: send → first token with text; send → `done` (or the stop). */
  ttftMs?: number;
  totalMs?: number;
  requestId?: string;
  replicaId?: string;
}

interface AskSettings {
  model: string;
  max_tokens: number;
  temperature: number;
  top_k_retrieve: number;
  top_k_rerank: number;
  cache: boolean;
  ignore_eos: boolean;
}

const DEFAULTS: AskSettings = { model: '', max_tokens: 256, temperature: 0.1, top_k_retrieve: 20, top_k_rerank: 4, cache: true, ignore_eos: false };
/** Answers kept on the page, and bars in the chart. */
const KEEP = 50;
const CHART = 20;
/** Re-render at most this often while tokens stream in. */
const RENDER_MS = 30;

let nextId = 1;

export function AskView() {
  const [settings, setSettings] = useStored('candela.ask', DEFAULTS);
  const [question, setQuestion] = useState('');
  const [answers, setAnswers] = useState<Answer[]>([]);
  const running = useRef<AbortController | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => () => running.current?.abort(), []);

  const ask = async (q: string) => {
    const ac = new AbortController();
    running.current = ac;
    setBusy(true);
    const a: Answer = { id: nextId++, question: q, state: 'streaming', text: '' };
    const view = throttled(() => {
      const copy = { ...a };
      setAnswers((list) => list.map((x) => (x.id === a.id ? copy : x)));
    }, RENDER_MS);
    setAnswers((list) => [{ ...a }, ...list].slice(0, KEEP));
    const body = {
      query: q,
      include_sources: true,
      max_tokens: settings.max_tokens,
      temperature: settings.temperature,
      top_k_retrieve: settings.top_k_retrieve,
      top_k_rerank: settings.top_k_rerank,
      cache: settings.cache,
      ...(settings.ignore_eos ? { ignore_eos: true } : {}),
      ...(settings.model ? { model: settings.model } : {}),
    };
    const sent = performance.now();
    try {
      const { response, events } = await postStream('/v1/query/stream', body, ac.signal);
      a.requestId = response.headers.get('x-request-id') ?? undefined;
      a.replicaId = response.headers.get('x-replica-id') ?? undefined;
      for await (const ev of events) {
        if (ev.event === 'meta') {
          a.meta = JSON.parse(ev.data) as QueryMeta;
        } else if (ev.event === 'token') {
          const { text } = JSON.parse(ev.data) as { text: string };
          if (a.ttftMs === undefined && text) a.ttftMs = performance.now() - sent;
          a.text += text;
        } else if (ev.event === 'done') {
          a.totalMs = performance.now() - sent;
          a.done = JSON.parse(ev.data) as QueryDone;
          a.state = 'done';
        } else if (ev.event === 'error') {
          const e = JSON.parse(ev.data) as { code: string; message: string; request_id?: string };
          a.error = new ApiError(0, e.code, e.message, e.request_id);
          a.state = 'error';
        }
        view.soon();
      }
      if (a.state === 'streaming') {
        a.state = 'error';
        a.error = new ApiError(0, 'stream_ended', 'the stream ended before the answer was complete', a.requestId);
      }
    } catch (err) {
      if (ac.signal.aborted) {
        a.state = 'stopped';
        a.totalMs = performance.now() - sent;
      } else {
        a.state = 'error';
        a.error = asApiError(err);
      }
    } finally {
      view.now();
      running.current = undefined;
      setBusy(false);
    }
  };

  const submit = (e?: Event) => {
    e?.preventDefault();
    if (busy) return;
    void ask(question.trim());
  };

  const points: LatencyPoint[] = answers
    .filter((a) => a.state === 'done' && a.ttftMs !== undefined && a.totalMs !== undefined)
    .slice(0, CHART)
    .reverse()
    .map((a) => ({ ttftMs: a.ttftMs!, totalMs: a.totalMs!, cached: a.done?.cache_hit ?? false }));

  return (
    <section aria-labelledby="ask-title">
      <h2 id="ask-title">Ask the documents</h2>
      <form class="ask" onSubmit={submit}>
        <label for="question">Question</label>
        <textarea
          id="question"
          rows={3}
          value={question}
          placeholder="How does Candela cancel a generation?"
          onInput={(e) => setQuestion(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(e);
          }}
        />
        <div class="row">
          <button type="submit" disabled={busy}>
            Ask
          </button>
          <button type="button" class="secondary" disabled={!busy} onClick={() => running.current?.abort()}>
            Stop
          </button>
          <span class="muted small">Enter asks, Shift+Enter starts a new line</span>
        </div>
        <details class="settings">
          <summary>Settings</summary>
          <div class="grid">
            <ModelSelect value={settings.model} onChange={(model) => setSettings({ model })} />
            <NumberField label="Max tokens" value={settings.max_tokens} min={1} max={4096} step={1} onChange={(v) => setSettings({ max_tokens: v })} />
            <NumberField label="Temperature" value={settings.temperature} min={0} max={2} step={0.05} onChange={(v) => setSettings({ temperature: v })} />
            <NumberField label="Chunks retrieved" value={settings.top_k_retrieve} min={1} max={50} step={1} onChange={(v) => setSettings({ top_k_retrieve: v })} />
            <NumberField label="Chunks after rerank" value={settings.top_k_rerank} min={1} max={20} step={1} onChange={(v) => setSettings({ top_k_rerank: v })} />
            <label class="check">
              <input type="checkbox" checked={settings.cache} onChange={(e) => setSettings({ cache: e.currentTarget.checked })} />
              Use the semantic cache
            </label>
            <label class="check">
              <input type="checkbox" checked={settings.ignore_eos} onChange={(e) => setSettings({ ignore_eos: e.currentTarget.checked })} />
              Ignore end of sequence (always generate max tokens; for load tests)
            </label>
          </div>
        </details>
      </form>
      <LatencyChart points={points} />
      <div class="answers">
        {answers.map((a) => (
          <AnswerCard key={a.id} a={a} />
        ))}
      </div>
    </section>
  );
}

const STATE_LABEL: Record<Answer['state'], string> = { streaming: 'streaming…', done: 'done', stopped: 'stopped', error: 'failed' };

function AnswerCard({ a }: { a: Answer }) {
  const d = a.done;
  const cache = d?.cache;
  const t = d?.timings;
  return (
    <article class={`answer ${a.state}`} aria-busy={a.state === 'streaming'} data-testid="answer">
      <header>
        <h3>{a.question}</h3>
        <span class={`badge state-${a.state}`} data-testid="answer-state">
          {STATE_LABEL[a.state]}
        </span>
        {cache && (
          <span class="badge cache" data-testid="cache-badge" title={`matched “${cache.matched_query}” (similarity ${cache.score.toFixed(3)})`}>
            cache hit: {cache.kind}
            {cache.kind === 'semantic' ? ` ${cache.score.toFixed(2)}` : ''}
          </span>
        )}
      </header>
      {cache && <p class="small muted">Answered from the cache: matched “{cache.matched_query}”, stored {new Date(cache.created_at).toLocaleTimeString()}.</p>}
      <div class="answer-text" data-testid="answer-text">
        {a.text}
        {a.state === 'streaming' && <span class="caret" aria-hidden="true" />}
      </div>
      {a.state === 'streaming' && !a.text && <p class="muted small">Retrieving and generating…</p>}
      {a.error && <ErrorNote error={a.error} />}
      <div class="metrics">
        <dl aria-label="Measured in this browser">
          <dt>Browser</dt>
          <dd>
            TTFT <b data-testid="ttft">{ms(a.ttftMs)}</b>
          </dd>
          <dd>
            total <b data-testid="total">{ms(a.totalMs)}</b>
          </dd>
          <dd>
            <b data-testid="tps">{d?.cache_hit ? 'cached' : rate(d?.tokens_per_sec)}</b> · {d ? d.token_count : '—'} tokens
          </dd>
        </dl>
        <dl aria-label="Reported by the server">
          <dt>Server</dt>
          <dd>retrieval {ms(t?.retrieval_ms)}</dd>
          <dd>rerank {ms(t?.rerank_ms)}</dd>
          <dd>TTFT {ms(t?.ttft_ms)}</dd>
          <dd>generation {ms(t?.generation_ms)}</dd>
          <dd>total {ms(t?.total_ms)}</dd>
        </dl>
      </div>
      <p class="ids small muted">
        request <code data-testid="request-id">{a.requestId ?? '—'}</code> · replica <code data-testid="replica-id">{a.replicaId ?? '—'}</code>
        {a.meta && <> · model {a.meta.model}</>}
        {d && <> · finish {d.finish_reason}</>}
      </p>
      {a.meta && a.meta.sources.length > 0 && (
        <section class="sources" aria-label="Sources">
          <h4>Sources ({a.meta.sources.length})</h4>
          <ol>
            {a.meta.sources.map((s, i) => (
              <li key={`${s.id}-${i}`} data-testid="source">
                <details>
                  <summary>
                    <span class="source-title">{s.title || short(s.id)}</span> <span class="score">score {s.score.toFixed(3)}</span>
                  </summary>
                  <blockquote>{s.text ?? '(no text)'}</blockquote>
                </details>
              </li>
            ))}
          </ol>
        </section>
      )}
      {a.meta && a.meta.sources.length === 0 && <p class="small muted">No sources: the corpus is empty. Add documents under Documents.</p>}
    </article>
  );
}
