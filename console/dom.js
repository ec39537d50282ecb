// dom.js - small helpers to build the page. Text always goes in through textContent, so
// nothing the API returns is ever parsed as HTML.

// h('tag.class', {attr: value, onclick: fn}, child, …): children are nodes or text.
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// A timestamp as the API gives it, shown as it is (UTC, microseconds), or a dash.
export function ts(value) {
  if (!value) return h('span.muted', { text: '—' });
  return h('time', { datetime: value, title: value, text: value.replace('T', ' ').replace(/\.(\d{3})\d*Z$/, '.$1Z') });
}

// A metadata object as "k=v" chips, or a dash when empty.
export function metadata(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('span.muted', { text: '—' });
  return h('ul.chips', {}, entries.map(([k, v]) => h('li', { text: `${k}=${v}` })));
}

// A labelled form field: returns [label, input] wrapped in a div.
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  const parts = [h('label', { for: id, text: label }), input];
  if (hint) {
    const hid = `${id}-hint`;
    input.setAttribute('aria-describedby', hid);
    parts.push(h('p.hint', { id: hid, text: hint }));
  }
  return h('div.field', {}, parts);
}

// Parses "key=value" lines into a metadata object; throws naming the bad line.
export function parseMetadata(text) {
  const out = {};
  text.split('\n').forEach((raw, i) => {
    const lineText = raw.trim();
    if (!lineText) return;
    const eq = lineText.indexOf('=');
    if (eq <= 0) throw new Error(`metadata line ${i + 1}: expected key=value, got "${lineText}"`);
    out[lineText.slice(0, eq).trim()] = lineText.slice(eq + 1).trim();
  });
  return out;
}
