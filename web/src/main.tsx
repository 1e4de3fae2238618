/**
 * Candela's web page: the shell (header, API key, navigation by URL hash) and
 * the four views. Ask and Chat stay mounted while hidden so a conversation
 * survives a look at another tab; Documents and Status poll only while shown.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { apiKey, onAuthError, onKeyChange, setApiKey, type ApiError } from './api.ts';
import { AskView } from './views/ask.tsx';
import { ChatView } from './views/chat.tsx';
import { DocumentsView } from './views/documents.tsx';
import { StatusView } from './views/status.tsx';

const VIEWS = [
  { id: 'ask', label: 'Ask' },
  { id: 'chat', label: 'Chat' },
  { id: 'documents', label: 'Documents' },
  { id: 'status', label: 'Models & status' },
] as const;
type ViewId = (typeof VIEWS)[number]['id'];

function viewFromHash(): ViewId {
  const h = location.hash.slice(1);
  return VIEWS.find((v) => v.id === h)?.id ?? 'ask';
}

function KeyPanel({ reason, onClose }: { reason: ApiError | undefined; onClose: () => void }) {
  const [value, setValue] = useState('');
  const has = apiKey() !== '';
  return (
    <div class="key-panel" role="region" aria-label="API key settings">
      <div class="inner">
      {reason?.status === 401 && (
        <div class="error" role="alert" data-testid="key-needed">
          <strong>{has ? 'The server did not accept this API key.' : 'This server needs an API key.'}</strong> Paste a key below; an admin creates one with{' '}
          <code>bin/candela keys create --name me --scopes read,write</code>.
          <p class="small muted">Server: {reason.message}</p>
        </div>
      )}
      {reason?.status === 403 && (
        <div class="error" role="alert">
          <strong>Your key lacks a scope this needs.</strong> Ask an admin for a key with it.
          <p class="small muted">Server: {reason.message}</p>
        </div>
      )}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setApiKey(value);
          setValue('');
          onClose();
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" spellcheck={false} placeholder={has ? 'a key is set for this tab' : 'cdl_…'} value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        <button type="submit" disabled={!value.trim()}>
          Use key
        </button>
        {has && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setApiKey('');
              onClose();
            }}
          >
            Forget key
          </button>
        )}
      </form>
      <p class="small muted">Kept in this tab's session storage only, and sent as a bearer token to this server.</p>
      </div>
    </div>
  );
}

function App() {
  const [view, setView] = useState<ViewId>(viewFromHash);
  const [keyOpen, setKeyOpen] = useState(false);
  const [authError, setAuthError] = useState<ApiError | undefined>();
  const [hasKey, setHasKey] = useState(apiKey() !== '');
  // Once closed by hand, the panel stays closed until the key changes (background polls would reopen it).
  const dismissed = useRef(false);
  useEffect(() => {
    const onHash = () => setView(viewFromHash());
    addEventListener('hashchange', onHash);
    const offAuth = onAuthError((e) => {
      setAuthError(e);
      if (!dismissed.current) setKeyOpen(true);
    });
    const offKey = onKeyChange(() => {
      dismissed.current = false;
      setHasKey(apiKey() !== '');
      setAuthError(undefined);
    });
    return () => {
      removeEventListener('hashchange', onHash);
      offAuth();
      offKey();
    };
  }, []);
  useEffect(() => {
    document.title = `Candela · ${VIEWS.find((v) => v.id === view)?.label ?? ''}`;
  }, [view]);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <h1>
          <img src="/ui/icon.svg" alt="" width={22} height={22} /> Candela
        </h1>
        <nav aria-label="Views">
          {VIEWS.map((v) => (
            <a key={v.id} href={`#${v.id}`} aria-current={view === v.id ? 'page' : undefined}>
              {v.label}
            </a>
          ))}
        </nav>
        <button
          type="button"
          class={`secondary key-button${hasKey ? ' set' : ''}`}
          aria-expanded={keyOpen}
          onClick={() => {
            dismissed.current = keyOpen;
            setKeyOpen(!keyOpen);
          }}
        >
          API key{hasKey ? ' ✓' : ''}
        </button>
      </header>
      {keyOpen && <KeyPanel reason={authError} onClose={() => setKeyOpen(false)} />}
      <main id="main" tabIndex={-1}>
        <div hidden={view !== 'ask'}>
          <AskView />
        </div>
        <div hidden={view !== 'chat'}>
          <ChatView />
        </div>
        {view === 'documents' && <DocumentsView />}
        {view === 'status' && <StatusView />}
      </main>
      <footer class="small muted">
        Candela · <a href="/docs">API reference</a> · <a href="/openapi.json">OpenAPI</a> · <a href="/metrics">metrics</a>
      </footer>
    </>
  );
}

render(<App />, document.getElementById('app')!);
