/** Reading a whole server-sent-event response in tests. */
import { EventSourceParserStream, type EventSourceMessage } from 'eventsource-parser/stream';

/** Every event of `res`'s body, in order, once the stream ends. */
export async function readSseEvents(res: Response): Promise<EventSourceMessage[]> {
  const events: EventSourceMessage[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    events.push(value);
  }
}
