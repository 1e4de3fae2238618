/**
 * A server-sent events reader for `fetch` bodies (EventSource cannot POST or
 * send an Authorization header). Follows the WHATWG parsing rules that
 * Candela's streams use: `event:` and `data:` fields, comment lines
 * (heartbeats) skipped, a blank line dispatches. No DOM types: the node tests
 * import this file directly.
 */

/** One dispatched event; `event` is `message` when the stream named none. */
export interface SseEvent {
  event: string;
  data: string;
}

/** Feeds text in, hands complete events out; keeps partial lines between chunks. */
export class SseParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];

  /** Parses `chunk` and returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.#buffer += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const nl = this.#buffer.search(/\r\n|\r|\n/);
      if (nl < 0) break;
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (this.#buffer[nl] === '\r' && nl === this.#buffer.length - 1) break;
      const width = this.#buffer.startsWith('\r\n', nl) ? 2 : 1;
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + width);
      const event = this.#line(line);
      if (event) out.push(event);
    }
    return out;
  }

  #line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.#data.length === 0) {
        this.#event = '';
        return undefined;
      }
      const event = { event: this.#event || 'message', data: this.#data.join('\n') };
      this.#event = '';
      this.#data = [];
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    return undefined;
  }
}

/** The events of an SSE response body, in order, as they arrive. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    // A stream that ends without a final blank line still delivers its last event.
    yield* parser.push(`${decoder.decode()}\n\n`);
  } finally {
    // Stopped early (the consumer broke off or failed): let go of the connection too.
    await reader.cancel().catch(() => undefined);
  }
}
