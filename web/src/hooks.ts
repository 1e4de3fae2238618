/** Small hooks and helpers the views share: settings kept in local storage, polling, the model list, throttled renders. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { getJson, onKeyChange } from './api.ts';
import type { ModelEntry } from './types.ts';

/** A settings object kept in local storage under `key` (settings are not secrets; the API key is not kept here). */
export function useStored<T extends object>(key: string, initial: T): [T, (patch: Partial<T>) => void] {
  const [value, setValue] = useState<T>(() => {
    try {
      const raw = localStorage.getItem(key);
      return raw ? { ...initial, ...(JSON.parse(raw) as Partial<T>) } : initial;
    } catch {
      return initial;
    }
  });
  const update = useCallback(
    (patch: Partial<T>) => {
      setValue((old) => {
        const next = { ...old, ...patch };
        try {
          localStorage.setItem(key, JSON.stringify(next));
        } catch {
          // Storage full or off: the setting still holds for this page.
        }
        return next;
      });
    },
    [key],
  );
  return [value, update];
}

/** Runs `load` now, every `everyMs` while mounted, and when the API key changes; `reload` runs it at once. */
export function usePoll(load: (signal: AbortSignal) => Promise<void>, everyMs: number): { reload: () => void } {
  const latest = useRef(load);
  latest.current = load;
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    void latest.current(ac.signal);
    const timer = everyMs > 0 ? setInterval(() => void latest.current(ac.signal), everyMs) : undefined;
    const off = onKeyChange(() => void latest.current(ac.signal));
    return () => {
      ac.abort();
      clearInterval(timer);
      off();
    };
  }, [everyMs, tick]);
  return { reload: useCallback(() => setTick((t) => t + 1), []) };
}

/** The server's LLMs that are ready, for the model pickers (empty until known). */
export function useLlms(): ModelEntry[] {
  const [models, setModels] = useState<ModelEntry[]>([]);
  usePoll(async (signal) => {
    try {
      const list = await getJson<{ data: ModelEntry[] }>('/v1/models', { signal });
      setModels(list.data.filter((m) => m.role === 'llm' && m.status === 'ready'));
    } catch {
      // The status view and the answers show errors; a picker just stays empty.
    }
  }, 60_000);
  return models;
}

/**
 * Renders a stream's progress at most once per `ms`: tokens can arrive
 * thousands a second, a screen needs far fewer updates. `soon()` schedules a
 * render, `now()` renders at once (at the end of a stream).
 */
export function throttled(render: () => void, ms: number): { soon: () => void; now: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return {
    soon() {
      timer ??= setTimeout(() => {
        timer = undefined;
        render();
      }, ms);
    },
    now() {
      clearTimeout(timer);
      timer = undefined;
      render();
    },
  };
}
