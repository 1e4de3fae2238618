/**
 * Chat: plain conversation with a chosen model through the OpenAI-compatible
 * /v1/chat/completions, streamed (`data:` chunks, `[DONE]`), with the sampling
 * settings people expect. No documents are involved here.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, postStream } from '../api.ts';
import { ErrorNote, asApiError } from '../components/error-note.tsx';
import { ModelSelect, NumberField } from '../components/fields.tsx';
import { ms, rate } from '../format.ts';
import { throttled, useStored } from '../hooks.ts';

interface Turn {
  id: number;
  role: 'user' | 'assistant';
  content: string;
  streaming?: boolean;
  stopped?: boolean;
  error?: ApiError;
  /** Browser-measured, for assistant turns. */
  ttftMs?: number;
  totalMs?: number;
  tokens?: number;
  model?: string;
}

interface ChatSettings {
  model: string;
  system: string;
  temperature: number;
  top_p: number;
  max_tokens: number;
}

const DEFAULTS: ChatSettings = { model: '', system: 'You are a helpful assistant.', temperature: 0.7, top_p: 0.95, max_tokens: 512 };
const RENDER_MS = 30;
let nextId = 1;

interface ChatChunk {
  model?: string;
  choices?: { delta?: { content?: string } }[];
  usage?: { completion_tokens: number } | null;
  error?: { message: string; code: string };
}

export function ChatView() {
  const [settings, setSettings] = useStored('candela.chat', DEFAULTS);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [input, setInput] = useState('');
  const [busy, setBusy] = useState(false);
  const running = useRef<AbortController | undefined>(undefined);
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => () => running.current?.abort(), []);
  useEffect(() => end.current?.scrollIntoView({ block: 'nearest' }), [turns.length]);

  const send = async (text: string) => {
    const history = [...turns.filter((t) => !t.error && t.content), { id: nextId++, role: 'user' as const, content: text }];
    const reply: Turn = { id: nextId++, role: 'assistant', content: '', streaming: true };
    setTurns([...history, { ...reply }]);
    setInput('');
    const ac = new AbortController();
    running.current = ac;
    setBusy(true);
    const view = throttled(() => {
      const copy = { ...reply };
      setTurns((list) => list.map((t) => (t.id === reply.id ? copy : t)));
    }, RENDER_MS);
    const messages = [...(settings.system.trim() ? [{ role: 'system', content: settings.system }] : []), ...history.map((t) => ({ role: t.role, content: t.content }))];
    const sent = performance.now();
    try {
      const { events } = await postStream(
        '/v1/chat/completions',
        {
          messages,
          stream: true,
          stream_options: { include_usage: true },
          temperature: settings.temperature,
          top_p: settings.top_p,
          max_tokens: settings.max_tokens,
          ...(settings.model ? { model: settings.model } : {}),
        },
        ac.signal,
      );
      for await (const ev of events) {
        if (ev.data === '[DONE]') break;
        const chunk = JSON.parse(ev.data) as ChatChunk;
        if (chunk.error) {
          reply.error = new ApiError(0, chunk.error.code, chunk.error.message);
          continue;
        }
        reply.model ??= chunk.model;
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          reply.ttftMs ??= performance.now() - sent;
          reply.content += delta;
        }
        if (chunk.usage) reply.tokens = chunk.usage.completion_tokens;
        view.soon();
      }
      reply.totalMs = performance.now() - sent;
    } catch (err) {
      if (ac.signal.aborted) {
        reply.stopped = true;
        reply.totalMs = performance.now() - sent;
      } else {
        reply.error = asApiError(err);
      }
    } finally {
      reply.streaming = false;
      view.now();
      running.current = undefined;
      setBusy(false);
    }
  };

  const submit = (e?: Event) => {
    e?.preventDefault();
    const text = input.trim();
    if (!busy && text) void send(text);
  };

  return (
    <section aria-labelledby="chat-title">
      <h2 id="chat-title">Chat with a model</h2>
      <details class="settings" open={false}>
        <summary>Settings</summary>
        <div class="grid">
          <ModelSelect value={settings.model} onChange={(model) => setSettings({ model })} />
          <NumberField label="Temperature" value={settings.temperature} min={0} max={2} step={0.05} onChange={(v) => setSettings({ temperature: v })} />
          <NumberField label="Top p" value={settings.top_p} min={0.01} max={1} step={0.01} onChange={(v) => setSettings({ top_p: v })} />
          <NumberField label="Max tokens" value={settings.max_tokens} min={1} max={32768} step={1} onChange={(v) => setSettings({ max_tokens: v })} />
          <label class="wide">
            System prompt
            <textarea rows={2} value={settings.system} onChange={(e) => setSettings({ system: e.currentTarget.value })} />
          </label>
        </div>
      </details>
      <div class="chat-log" aria-live="polite" aria-busy={busy}>
        {turns.length === 0 && <p class="muted">No messages yet. The conversation stays in this page only.</p>}
        {turns.map((t) => (
          <div key={t.id} class={`turn ${t.role}`} data-testid={`turn-${t.role}`}>
            <div class="who">{t.role === 'user' ? 'You' : (t.model ?? 'Model')}</div>
            <div class="bubble">
              {t.content}
              {t.streaming && <span class="caret" aria-hidden="true" />}
            </div>
            {t.error && <ErrorNote error={t.error} />}
            {t.role === 'assistant' && !t.streaming && (
              <div class="small muted">
                {t.stopped ? 'stopped · ' : ''}TTFT {ms(t.ttftMs)} · total {ms(t.totalMs)}
                {t.tokens !== undefined && t.tokens > 1 && t.ttftMs !== undefined && t.totalMs !== undefined && t.totalMs > t.ttftMs && (
                  <>
                    {' '}
                    · {t.tokens} tokens · {rate(((t.tokens - 1) * 1000) / (t.totalMs - t.ttftMs))} (browser)
                  </>
                )}
              </div>
            )}
          </div>
        ))}
        <div ref={end} />
      </div>
      <form class="ask" onSubmit={submit}>
        <label for="chat-input">Message</label>
        <textarea
          id="chat-input"
          rows={2}
          value={input}
          onInput={(e) => setInput(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(e);
          }}
        />
        <div class="row">
          <button type="submit" disabled={busy}>
            Send
          </button>
          <button type="button" class="secondary" disabled={!busy} onClick={() => running.current?.abort()}>
            Stop
          </button>
          <button type="button" class="secondary" disabled={busy || turns.length === 0} onClick={() => setTurns([])}>
            Clear
          </button>
        </div>
      </form>
    </section>
  );
}
