// DOM and formatting helpers. h builds elements with DOM APIs only: text
// is always a text node, attributes are set one by one, and nothing is
// ever parsed as HTML.

/** h creates an element with attributes and children (strings become text nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') { for (const [dk, dv] of Object.entries(v)) if (dv !== undefined && dv !== null) el.dataset[dk] = String(dv); }
    else if (k === 'value' && (tag === 'input' || tag === 'select' || tag === 'textarea')) el.value = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false || c === '') continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

/** clear removes every child of el. */
export function clear(el) { el.replaceChildren(); }

const moneyFormats = new Map();

/** money formats an amount in minor units with its currency (Intl.NumberFormat). */
export function money(minor, currency) {
  let f = moneyFormats.get(currency);
  if (!f) {
    try { f = new Intl.NumberFormat(undefined, { style: 'currency', currency }); } catch { f = null; }
    moneyFormats.set(currency, f);
  }
  const span = document.createElement('span');
  span.className = 'money';
  span.dataset.minor = String(minor);
  span.dataset.currency = currency;
  if (!f) { span.textContent = `${minor} ${currency} (minor units)`; return span; }
  const digits = f.resolvedOptions().maximumFractionDigits;
  span.textContent = f.format(Number(minor) / 10 ** digits);
  return span;
}

/** num formats a number for the viewer's locale. */
export function num(n, digits = 0) {
  if (n === undefined || n === null || Number.isNaN(Number(n))) return '—';
  return new Intl.NumberFormat(undefined, { maximumFractionDigits: digits }).format(Number(n));
}

/** pct formats a ratio (0–1) as a percentage. */
export function pct(r) {
  if (r === undefined || r === null) return '—';
  return new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 }).format(Number(r));
}

/** duration formats seconds as the largest sensible unit. */
export function duration(s) {
  s = Number(s) || 0;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86400) return `${num(s / 3600, 1)} h`;
  return `${num(s / 86400, 1)} days`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** when shows a timestamp in the viewer's time zone, with UTC on hover. */
export function when(ts) {
  const el = document.createElement('time');
  if (!ts) { el.textContent = '—'; return el; }
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) { el.textContent = String(ts); return el; }
  el.dateTime = d.toISOString();
  el.title = 'UTC: ' + d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  el.textContent = timeFormat.format(d);
  return el;
}

/** dateInput is a date's YYYY-MM-DD in UTC, for <input type=date>. */
export function dateInput(d) { return d.toISOString().slice(0, 10); }
