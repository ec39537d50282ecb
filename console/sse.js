// sse.js - reads a text/event-stream from a fetch() Response. EventSource cannot send the
// x-api-key and anthropic-beta headers, so the console reads the stream itself.

const LINE_MAX = 1 << 20; // a line this long is not an event this console can show

// Calls onFrame({id, event, data}) for every complete frame that has a data field, in
// order; comments (":" lines, the server's keepalives) are skipped. Resolves when the
// stream ends; rejects on a read error, an abort, or a line over LINE_MAX.
export async function readEventStream(response, onFrame) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let frame = { id: null, event: null, data: [] };
  const line = (text) => {
    if (text === '') {
      if (frame.data.length) onFrame({ id: frame.id, event: frame.event, data: frame.data.join('\n') });
      frame = { id: null, event: null, data: [] };
      return;
    }
    if (text[0] === ':') return;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') frame.data.push(value);
    else if (field === 'event') frame.event = value;
    else if (field === 'id') frame.id = value;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    for (;;) {
      const m = /\r\n|\n|\r/.exec(buf);
      if (!m) break;
      // A CR at the very end may be the first half of a CRLF still in flight.
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      line(buf.slice(0, m.index));
      buf = buf.slice(m.index + m[0].length);
    }
    if (buf.length > LINE_MAX) {
      await reader.cancel();
      throw new Error('event stream: a line longer than 1 MiB');
    }
  }
}
