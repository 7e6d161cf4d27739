// cxledger web console: a client-side app over the /v1 API. Every request
// carries the viewer's token in the Authorization header (the token lives
// in sessionStorage, never in a URL or cookie); every value is put on the
// page with DOM APIs (textContent), never parsed as HTML.
import { h, clear, money, num, pct, duration, when, dateInput } from './ui.js';
import { verifyInclusion, verifyConsistency } from './merkle.js';

const TOKEN_KEY = 'cxledger.token';
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const banner = document.getElementById('banner');
const who = document.getElementById('who');
const signout = document.getElementById('signout');

/** The signed-in session: {role, name, authDisabled}, or null. */
let session = null;
/** Cleanup of the page shown (live feeds, timers), run on navigation. */
let cleanups = [];

// ---- API ------------------------------------------------------------------

/** ApiError is a non-2xx answer, with its problem document. */
class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function authHeaders() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  return t ? { Authorization: 'Bearer ' + t } : {};
}

/** api fetches a /v1 path and returns its JSON, or throws ApiError. */
async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  if (!res.ok) {
    let problem = null;
    try { problem = await res.json(); } catch { /* not JSON */ }
    if (res.status === 401 && session) { signOut('Your token was refused: sign in again.'); }
    throw new ApiError(res.status, problem);
  }
  if (res.status === 204) return null;
  return res.json();
}

/** apiText fetches a /v1 path that answers text (the signed checkpoint). */
async function apiText(path) {
  const res = await fetch(path, { headers: { Accept: 'text/plain', ...authHeaders() }, cache: 'no-store', credentials: 'omit' });
  if (!res.ok) {
    let problem = null;
    try { problem = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, problem);
  }
  return res.text();
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

// ---- roles ----------------------------------------------------------------

const can = {
  customers: (r) => ['service', 'auditor', 'admin'].includes(r),
  write: (r) => ['service', 'admin'].includes(r),
  timeline: (r) => ['auditor', 'admin'].includes(r),
  analytics: (r) => ['analyst', 'admin'].includes(r),
  audit: (r) => ['auditor', 'admin'].includes(r),
  feed: (r) => ['analyst', 'auditor', 'admin'].includes(r),
  rebuild: (r) => ['analyst', 'admin'].includes(r),
};

const PAGES = [
  { id: 'search', title: 'Search', allowed: can.customers },
  { id: 'pipeline', title: 'Pipeline', allowed: can.analytics },
  { id: 'analytics', title: 'Analytics', allowed: can.analytics },
  { id: 'audit', title: 'Audit', allowed: can.audit },
  { id: 'projections', title: 'Projections', allowed: can.feed },
  { id: 'live', title: 'Live', allowed: can.feed },
];

// ---- session --------------------------------------------------------------

async function loadSession() {
  try {
    session = await api('/v1/whoami');
  } catch (e) {
    session = null;
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
  }
  renderChrome();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session = null;
  renderChrome();
  go('#/signin');
  if (message) showBanner(message, true);
}

function showBanner(text, isError) {
  banner.textContent = text;
  banner.classList.toggle('error', !!isError);
  banner.hidden = !text;
}

function renderChrome() {
  clear(nav);
  who.textContent = '';
  signout.hidden = true;
  showBanner('');
  if (!session) return;
  if (session.authDisabled) {
    showBanner('Authentication is disabled: this server has no API tokens and lets every request in as admin (loopback only). Configure --tokens before sharing it.');
    document.body.dataset.authDisabled = 'true';
  }
  for (const p of PAGES) {
    if (p.allowed(session.role)) nav.append(h('a', { href: '#/' + p.id, dataset: { page: p.id } }, p.title));
  }
  who.textContent = `${session.name} (${session.role})`;
  who.dataset.role = session.role;
  signout.hidden = session.authDisabled;
}

signout.addEventListener('click', () => signOut());

// ---- routing --------------------------------------------------------------

function route() {
  for (const c of cleanups) c();
  cleanups = [];
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  if (!session) return pageSignIn();
  const page = parts[0] || defaultPage();
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.page === page || (page === 'customer' && a.dataset.page === 'search')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const fn = PAGE_FNS[page];
  if (!fn) return render('notfound', h('h1', {}, 'No such page'), h('p', {}, 'Pick a page from the menu above.'));
  fn(parts.slice(1), params);
}

// The pages by the first part of the address.
const PAGE_FNS = { signin: pageSignIn, search: pageSearch, customer: pageCustomer, pipeline: pagePipeline, analytics: pageAnalytics, audit: pageAudit, projections: pageProjections, live: pageLive };

/** go shows the page at hash, even when the address already says so. */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function defaultPage() {
  const first = PAGES.find((p) => p.allowed(session.role));
  return first ? first.id : 'search';
}

/** stale reports whether the address has moved to another page since
 *  page began loading: a page's render comes after its requests, and a
 *  slow page must not replace the one the user went to meanwhile (a
 *  customer page still loading overwrote the audit page opened from it). */
function stale(page) {
  if (!session) return false;
  const now = location.hash.replace(/^#\/?/, '').split('?')[0].split('/')[0] || defaultPage();
  return now !== page && now in PAGE_FNS;
}

/** render replaces the page's content and marks it ready. */
function render(page, ...nodes) {
  if (stale(page)) return;
  clear(main);
  main.append(...nodes);
  document.body.dataset.page = page;
  main.dataset.state = 'ready';
  // Keyboard and screen-reader users start on the new page's content.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

function loading(page, what) {
  clear(main);
  document.body.dataset.page = page;
  main.dataset.state = 'loading';
  main.append(h('p', { class: 'loading', role: 'status' }, `Loading ${what}…`));
}

function errorBox(e, what) {
  const p = e instanceof ApiError ? e.problem : {};
  const text = e instanceof ApiError && e.status === 403
    ? `Your role (${session && session.role}) may not see ${what}.`
    : `Could not load ${what}: ${e.message}`;
  return h('div', { class: 'error', role: 'alert', dataset: { status: String(e.status || '') } }, text, p.requestId ? h('div', { class: 'small muted' }, `request ${p.requestId}`) : '');
}

function failed(page, e, what) {
  if (stale(page)) return;
  clear(main);
  document.body.dataset.page = page;
  main.dataset.state = 'error';
  main.append(errorBox(e, what));
}

function guard(page, allowed, what) {
  if (allowed(session.role)) return true;
  render(page, h('h1', {}, what), h('p', { class: 'error', role: 'alert' }, `Your role (${session.role}) may not see ${what}.`));
  main.dataset.state = 'forbidden';
  return false;
}

// ---- sign-in --------------------------------------------------------------

function pageSignIn() {
  if (session) { go('#/' + defaultPage()); return; }
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
  const err = h('p', { class: 'error', role: 'alert' });
  // method=post: were the script's submit handler ever bypassed, the
  // browser would still not put the token in a URL.
  const form = h('form', { class: 'card signin', id: 'signin', method: 'post' },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'API token', input),
    h('p', { id: 'token-help', class: 'small muted' }, 'The token stays in this tab (session storage) and is sent only in the Authorization header.'),
    err,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await loadSession();
      if (!session) { sessionStorage.removeItem(TOKEN_KEY); err.textContent = 'This token is not valid.'; return; }
      go('#/' + defaultPage());
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      err.textContent = 'Sign-in failed: ' + e.message;
    }
  });
  render('signin', form);
  input.focus();
}

// ---- search ---------------------------------------------------------------

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** candidates turns what was typed into the lookups that may match it. */
function candidates(q) {
  q = q.trim();
  if (!q) return [];
  if (UUID_RE.test(q)) return [{ kind: 'id', value: q.toLowerCase() }];
  if (q.includes('@')) return [{ kind: 'email', value: q }];
  const digits = q.replace(/[\s().-]/g, '');
  if (/^\+?\d{6,}$/.test(digits)) return [{ kind: 'phone', value: digits.startsWith('+') ? digits : '+' + digits }];
  if (/^[a-z0-9_.-]+:.+/i.test(q)) return [{ kind: 'external', value: q }];
  return [{ kind: 'name', value: q }];
}

function pageSearch() {
  if (!guard('search', can.customers, 'customers')) return;
  const input = h('input', { type: 'search', id: 'q', role: 'combobox', 'aria-expanded': 'false', 'aria-controls': 'results', 'aria-autocomplete': 'list', autocomplete: 'off', placeholder: 'name, e-mail, phone (+33…), external id (shopify:123) or customer id', 'aria-label': 'Find a customer' });
  const list = h('ul', { id: 'results', class: 'results', role: 'listbox', hidden: true });
  const status = h('p', { class: 'small muted', role: 'status', id: 'search-status' }, 'Type the start of a name (2 letters or more), an e-mail address, a phone number, an external id or a customer id; Enter opens the highlighted customer, Escape clears.');
  let selected = -1;
  let results = [];
  let ctl = null;
  let timer = 0;

  const select = (i) => {
    selected = i;
    [...list.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
    if (i >= 0 && list.children[i]) input.setAttribute('aria-activedescendant', list.children[i].id);
  };
  const open = (r) => go('#/customer/' + encodeURIComponent(r.customerId));
  const show = (rs) => {
    results = rs;
    clear(list);
    rs.forEach((r, i) => {
      const li = h('li', { id: 'result-' + i, role: 'option', dataset: { customerId: r.customerId } },
        h('strong', {}, r.profile && r.profile.name ? r.profile.name : '(no name)'),
        ' ', h('span', { class: 'muted small' }, r.match),
        r.erasure ? h('span', { class: 'badge bad' }, ' erased') : '');
      li.addEventListener('click', () => open(r));
      list.append(li);
    });
    list.hidden = rs.length === 0;
    input.setAttribute('aria-expanded', String(rs.length > 0));
    select(rs.length ? 0 : -1);
  };
  const search = async () => {
    const q = input.value;
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const cs = candidates(q);
    if (!cs.length) { show([]); status.textContent = 'Type to search.'; return; }
    main.dataset.state = 'loading';
    status.textContent = 'Searching…';
    const found = [];
    for (const c of cs) {
      try {
        if (c.kind === 'name') {
          // Names are sealed: the server matches blinded prefixes of
          // whole name words (at least 2 letters), never substrings.
          if (!/[\p{L}\p{N}]{2}/u.test(c.value)) continue;
          const page = await api('/v1/customers/search' + qs({ q: c.value, limit: 10 }), { signal: ctl.signal });
          for (const r of page.results) found.push({ customerId: r.customerId, profile: { name: r.name }, match: [r.company, 'id ' + r.customerId.slice(0, 8)].filter(Boolean).join(' · ') });
          continue;
        }
        const v = c.kind === 'id'
          ? await api('/v1/customers/' + c.value, { signal: ctl.signal })
          : await api('/v1/customers' + qs({ identifier: c.kind + ':' + c.value }), { signal: ctl.signal });
        found.push({ ...v, match: `${c.kind} ${c.value}` });
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 400)) { status.textContent = 'Search failed: ' + e.message; main.dataset.state = 'error'; return; }
      }
    }
    show(found);
    main.dataset.state = 'ready';
    if (cs[0].kind === 'name') {
      status.textContent = !/[\p{L}\p{N}]{2}/u.test(cs[0].value)
        ? 'Type at least 2 letters of a name.'
        : found.length ? `${found.length} customer${found.length > 1 ? 's' : ''} named like “${cs[0].value}” — Enter opens the highlighted one.` : `No customer has a name word starting with “${cs[0].value}”. Names match by the start of each word, not by a fragment inside one.`;
    } else status.textContent = found.length ? `${found.length} customer found — Enter opens it.` : `No customer with ${cs[0].kind} ${cs[0].value}. Check the spelling, or try another identifier.`;
  };
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' && results.length) { ev.preventDefault(); select(Math.min(selected + 1, results.length - 1)); }
    else if (ev.key === 'ArrowUp' && results.length) { ev.preventDefault(); select(Math.max(selected - 1, 0)); }
    else if (ev.key === 'Enter') {
      ev.preventDefault();
      clearTimeout(timer);
      if (selected >= 0 && results[selected]) open(results[selected]);
      else search().then(() => { if (results[0]) open(results[0]); });
    } else if (ev.key === 'Escape') { input.value = ''; show([]); status.textContent = 'Cleared.'; }
  });
  cleanups.push(() => { clearTimeout(timer); if (ctl) ctl.abort(); });
  render('search', h('h1', {}, 'Find a customer'), h('div', { class: 'search' }, input, list), status);
  input.focus();
}

// ---- customer 360 -----------------------------------------------------------

function figure(label, valueNode, data) {
  return h('div', { class: 'figure', dataset: data }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, valueNode));
}

function moneyFigures(label, key, m) {
  const entries = Object.entries(m || {});
  if (!entries.length) return [figure(label, h('span', { class: 'muted' }, 'none'), { figure: key, currency: '', minor: '0' })];
  return entries.map(([cur, minor]) => figure(`${label} (${cur})`, money(minor, cur), { figure: key, currency: cur, minor: String(minor) }));
}

async function pageCustomer(parts, params) {
  if (!guard('customer', can.customers, 'customers')) return;
  const id = parts[0];
  if (!UUID_RE.test(id || '')) return render('customer', h('p', { class: 'error' }, 'Not a customer id.'));
  const asOf = params.get('asof') || '';
  loading('customer', 'the customer');
  let v, recs;
  try {
    v = asOf
      ? await api(`/v1/customers/${id}/as-of` + qs({ at: asOf + 'T23:59:59.999Z', basis: 'occurred', score: 'true' }))
      : await api(`/v1/customers/${id}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      return render('customer', h('h1', {}, 'Customer not found'), h('p', { class: 'empty' }, asOf ? `This customer had no events as of ${asOf}. Pick a later date.` : 'No customer has this id. Search by e-mail, phone or external id instead.'), h('a', { href: '#/search' }, 'Back to search'));
    }
    return failed('customer', e, 'the customer');
  }
  try { recs = asOf ? null : await api(`/v1/customers/${id}/recommendations`); } catch { recs = null; }

  const name = v.profile && v.profile.name ? v.profile.name : '(no name)';
  const nodes = [];
  const header = h('div', { class: 'toolbar' },
    h('h1', { id: 'customer-name', dataset: { customerId: v.customerId } }, v.erasure ? 'Erased customer' : name),
    h('span', { class: 'muted small' }, v.customerId));
  nodes.push(header);
  if (v.erasure) {
    nodes.push(h('div', { class: 'erased', id: 'erased', role: 'status' }, 'This customer was forgotten (erased) ', when(v.erasure.at), v.erasure.request ? ` — request ${v.erasure.request}` : '', '. Personal data is destroyed; counts and amounts remain.'));
  }
  // As-of picker.
  const dateField = h('input', { type: 'date', id: 'asof', value: asOf, max: dateInput(new Date()) });
  const asofForm = h('form', { class: 'inline', id: 'asof-form' },
    h('label', {}, 'Show as of (end of day, when it happened)', dateField),
    h('button', { type: 'submit', class: 'secondary' }, 'Show'),
    asOf ? h('a', { href: `#/customer/${id}` }, 'Back to now') : '');
  asofForm.addEventListener('submit', (ev) => { ev.preventDefault(); go(`#/customer/${id}` + (dateField.value ? '?asof=' + dateField.value : '')); });
  nodes.push(asofForm);
  if (asOf) nodes.push(h('div', { class: 'asof', id: 'asof-banner', role: 'status' }, `As of ${asOf}: the customer as they were at the end of that day (UTC). Nothing on this view can be changed.`));

  // Key figures.
  const score = v.score || {};
  const figs = h('div', { class: 'figures', id: 'figures' },
    ...moneyFigures('Lifetime value', 'ltv', v.lifetimeValue),
    ...moneyFigures('Spend', 'spend', v.spend),
    figure('Churn risk', v.churnRisk != null ? pct(v.churnRisk) : h('span', { class: 'muted' }, 'n/a'), { figure: 'churn', value: v.churnRisk != null ? String(v.churnRisk) : '' }),
    figure('RFM segment', (v.segment || score.segment) ? (v.segment || score.segment).replaceAll('_', ' ') : h('span', { class: 'muted', title: score.unscored || '' }, 'not scored'), { figure: 'segment', value: v.segment || score.segment || '' }),
    figure('NPS', v.latestNps ? num(v.latestNps.score) : h('span', { class: 'muted' }, 'no answer'), { figure: 'nps', value: v.latestNps ? String(v.latestNps.score) : '' }),
    figure('Loyalty tier', v.loyalty && v.loyalty.tier && v.loyalty.tier.tier ? v.loyalty.tier.tier : h('span', { class: 'muted' }, 'none'), { figure: 'tier', value: (v.loyalty && v.loyalty.tier && v.loyalty.tier.tier) || '' }),
    figure('Loyalty points', num((v.loyalty && v.loyalty.balance) || 0), { figure: 'points', value: String((v.loyalty && v.loyalty.balance) || 0) }),
    figure('Events', num(v.events), { figure: 'events', value: String(v.events) }));
  nodes.push(figs);

  // Profile, identifiers, consents.
  const p = v.profile || {};
  const profile = h('div', { class: 'card' }, h('h2', {}, 'Profile'),
    h('table', {}, h('tbody', {},
      row('Name', p.name || '—'), row('Locale', p.locale || '—'), row('Country', p.country || '—'),
      row('Registered', v.registeredAt ? when(v.registeredAt) : '—'),
      row('Last touch', v.lastTouch ? [when(v.lastTouch.at), ` ${v.lastTouch.type} (${v.lastTouch.channel})`] : '—'))));
  const idents = h('div', { class: 'card', id: 'identifiers' }, h('h2', {}, 'Identifiers'),
    (v.identifiers || []).length
      ? h('ul', { class: 'plain' }, ...(v.identifiers || []).map((i) => h('li', { dataset: { kind: i.kind } }, h('span', { class: 'badge' }, i.kind), ' ', i.value, ' ', h('span', { class: 'muted small' }, 'linked ', when(i.linkedAt)))))
      : h('p', { class: 'empty' }, 'No identifiers linked.'));
  const consents = h('div', { class: 'card', id: 'consents' }, h('h2', {}, 'Consents'),
    (v.consents || []).length
      ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Channel'), h('th', {}, 'Purpose'), h('th', {}, 'Status'), h('th', {}, 'Since'))),
        h('tbody', {}, ...(v.consents || []).map((c) => h('tr', {}, h('td', {}, c.channel), h('td', {}, c.purpose),
          h('td', {}, h('span', { class: 'badge ' + (c.status === 'granted' ? 'ok' : 'bad') }, c.status)),
          h('td', {}, when(c.status === 'granted' ? c.grantedAt : (c.withdrawnAt || c.grantedAt)))))))
      : h('p', { class: 'empty' }, 'No consent recorded: marketing messages are refused until one is granted.'));
  nodes.push(h('div', { class: 'grid' }, profile, idents, consents));

  // Tickets, opportunities, recommendations.
  const tickets = h('div', { class: 'card', id: 'tickets' }, h('h2', {}, `Open tickets (${(v.openTickets || []).length} of ${v.ticketCount})`),
    (v.openTickets || []).length
      ? h('ul', { class: 'plain' }, ...(v.openTickets || []).map((t) => h('li', {}, h('span', { class: 'badge warn' }, t.priority || ''), ' ', t.subject || t.id, ' ', h('span', { class: 'muted small' }, 'opened ', when(t.openedAt)))))
      : h('p', { class: 'empty' }, 'No open tickets.'));
  const opps = h('div', { class: 'card', id: 'opportunities' }, h('h2', {}, `Open opportunities (${(v.openOpportunities || []).length} of ${v.opportunityCount})`),
    (v.openOpportunities || []).length
      ? h('ul', { class: 'plain' }, ...(v.openOpportunities || []).map((o) => h('li', {}, h('span', { class: 'badge' }, o.stage || ''), ' ', o.name || o.id, ' ', o.amount != null && o.currency ? money(o.amount, o.currency) : '')))
      : h('p', { class: 'empty' }, 'No open opportunities.'));
  const recList = recs ? [...(recs.products || []), ...(recs.categories || [])] : [];
  const recCard = h('div', { class: 'card', id: 'recommendations' }, h('h2', {}, 'Recommendations'),
    asOf ? h('p', { class: 'empty' }, 'Recommendations are shown for today only.')
      : recList.length
        ? h('ul', { class: 'plain' }, ...recList.map((r) => h('li', { dataset: { item: r.item } }, h('strong', {}, r.description || r.item), ' ', h('span', { class: 'badge' }, r.kind), h('div', { class: 'small muted' }, r.reason))))
        : h('p', { class: 'empty' }, 'No recommendation: this customer has no purchase that others follow up on yet.'));
  nodes.push(h('div', { class: 'grid' }, tickets, opps, recCard));

  // Log an interaction (service, admin) — never as of a past date.
  if (can.write(session.role) && !asOf && !v.erasure) nodes.push(logForm(v));

  // Timeline.
  nodes.push(timelineCard(id, asOf));
  if (can.audit(session.role)) nodes.push(h('p', {}, h('a', { href: `#/audit/${id}`, id: 'audit-link' }, 'Audited timeline with proofs →')));
  render('customer', ...nodes);
  main.dataset.version = String(v.streamVersion);
}

function row(label, value) {
  return h('tr', {}, h('th', {}, label), h('td', {}, ...(Array.isArray(value) ? value : [value])));
}

/** logForm appends a call, note or e-mail at the version shown. */
function logForm(v) {
  let expected = v.streamVersion;
  const type = h('select', { id: 'log-type', name: 'type' }, h('option', { value: 'CallLogged' }, 'Call'), h('option', { value: 'NoteAdded' }, 'Note'), h('option', { value: 'EmailReceived' }, 'E-mail received'));
  const text = h('textarea', { id: 'log-text', rows: 2, cols: 50, required: true, placeholder: 'Summary, note or subject' });
  const direction = h('select', { id: 'log-direction' }, h('option', { value: 'inbound' }, 'inbound'), h('option', { value: 'outbound' }, 'outbound'));
  const minutes = h('input', { id: 'log-minutes', type: 'number', min: 0, value: 5, step: 1 });
  const msg = h('p', { id: 'log-status', role: 'status', class: 'small' });
  const retry = h('button', { type: 'button', id: 'log-retry', class: 'secondary', hidden: true }, 'Reload version and retry');
  const submit = h('button', { type: 'submit', id: 'log-submit' }, 'Log it');
  const form = h('form', { class: 'card', id: 'log-form' }, h('h2', {}, 'Log an interaction'),
    h('div', { class: 'inline toolbar' }, h('label', {}, 'Type', type), h('label', {}, 'Direction', direction), h('label', {}, 'Minutes', minutes), h('label', {}, 'Text', text), submit, retry), msg);
  const send = async () => {
    msg.className = 'small';
    msg.textContent = 'Saving…';
    submit.disabled = true;
    const now = new Date().toISOString();
    const actor = 'user:' + (session.name || 'console');
    let ev;
    if (type.value === 'CallLogged') ev = { type: 'CallLogged', data: { direction: direction.value, durationSeconds: Math.max(0, Math.round(Number(minutes.value) * 60)), agent: actor, outcome: 'connected', summary: text.value }, metadata: { occurredAt: now, actor, channel: 'phone' } };
    else if (type.value === 'NoteAdded') ev = { type: 'NoteAdded', data: { body: text.value }, metadata: { occurredAt: now, actor, channel: 'console' } };
    else {
      const email = (v.identifiers || []).find((i) => i.kind === 'email');
      ev = { type: 'EmailReceived', data: { messageId: `<${crypto.randomUUID()}@console.cxledger>`, subject: text.value, from: email ? email.value : 'unknown@example.invalid', to: 'support@console.cxledger' }, metadata: { occurredAt: now, actor, channel: 'email' } };
    }
    ev.id = crypto.randomUUID();
    try {
      const res = await api(`/v1/customers/${v.customerId}/events`, { method: 'POST', body: { expectedVersion: expected, events: [ev] } });
      expected = res.version;
      main.dataset.version = String(res.version);
      msg.textContent = `Logged at version ${res.version} (position ${res.position}).`;
      msg.dataset.position = String(res.position);
      text.value = '';
      retry.hidden = true;
      form.dispatchEvent(new CustomEvent('logged', { bubbles: true, detail: res }));
    } catch (e) {
      msg.className = 'small error';
      if (e instanceof ApiError && e.status === 409 && e.problem.actualVersion !== undefined) {
        msg.textContent = `Someone else changed this customer meanwhile (now at version ${e.problem.actualVersion}, you saw ${expected}). Nothing was saved. Check the timeline, then retry.`;
        msg.dataset.conflict = String(e.problem.actualVersion);
        retry.hidden = false;
        retry.onclick = () => { expected = e.problem.actualVersion; retry.hidden = true; send(); };
      } else {
        msg.textContent = 'Not saved: ' + e.message + (e.problem && e.problem.field ? ` (${e.problem.field})` : '');
      }
    } finally {
      submit.disabled = false;
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); send(); });
  return form;
}

const EVENT_TYPES = ['CallLogged', 'NoteAdded', 'EmailSent', 'EmailReceived', 'SMSSent', 'ChatMessage', 'PurchaseCompleted', 'RefundIssued', 'TicketOpened', 'TicketResolved', 'CampaignTouched', 'NPSAnswered', 'OpportunityOpened', 'ConsentGranted', 'ConsentWithdrawn', 'IdentifierLinked', 'ProfileUpdated'];
const CHANNELS = ['phone', 'email', 'sms', 'chat', 'web', 'app', 'store', 'meeting', 'console'];

/**
 * timelineCard lists the customer's history with filters and infinite
 * scroll. Auditors and admins read the timeline read model (cursor paging,
 * server-side filters); service reads the stream itself, newest first,
 * and filters the pages it loaded.
 */
function timelineCard(id, asOf) {
  const typeSel = h('select', { id: 'tl-type' }, h('option', { value: '' }, 'all types'), ...EVENT_TYPES.map((t) => h('option', { value: t }, t)));
  const chanSel = h('select', { id: 'tl-channel' }, h('option', { value: '' }, 'all channels'), ...CHANNELS.map((c) => h('option', { value: c }, c)));
  const from = h('input', { type: 'date', id: 'tl-from' });
  const to = h('input', { type: 'date', id: 'tl-to', value: asOf || '' });
  const list = h('ol', { class: 'timeline', id: 'timeline', tabindex: 0, 'aria-label': 'Timeline' });
  const foot = h('p', { class: 'small muted', id: 'tl-status', role: 'status' });
  const more = h('button', { type: 'button', class: 'secondary', id: 'tl-more', hidden: true }, 'Load more');
  const sentinel = h('li', { class: 'sentinel', 'aria-hidden': 'true' });
  const serverSide = can.timeline(session.role);
  let cursor = null;
  let done = false;
  let busy = false;
  let again = false; // the end came into view while a page was loading
  let gen = 0;

  const filters = () => ({ type: typeSel.value, channel: chanSel.value, from: from.value ? from.value + 'T00:00:00Z' : '', to: to.value ? to.value + 'T23:59:59.999Z' : '' });
  const entryNode = (e) => h('li', { dataset: { eventId: e.eventId, position: String(e.position), type: e.type } },
    h('div', {}, when(e.occurredAt)),
    h('div', {}, h('span', { class: 'type' }, e.type), ' ', h('span', { class: 'badge' }, e.channel || ''), h('div', {}, e.summary || ''),
      h('div', { class: 'meta' }, `${e.actor || ''} · v${e.streamVersion} · position ${e.position}`)));
  const load = async () => {
    if (done) return;
    if (busy) { again = true; return; }
    busy = true;
    again = false;
    const my = gen;
    foot.textContent = 'Loading…';
    list.dataset.state = 'loading';
    try {
      const f = filters();
      let entries;
      let next;
      if (serverSide) {
        const res = await api(`/v1/customers/${id}/timeline` + qs({ types: f.type, channels: f.channel, from: f.from, to: f.to, limit: 100, cursor }));
        entries = res.entries;
        next = res.nextCursor || null;
      } else {
        const res = await api(`/v1/customers/${id}/events` + qs({ backwards: 'true', limit: 100, from: cursor }));
        next = res.next != null ? res.next : null;
        entries = res.events.map((r) => ({ eventId: r.id, type: r.type, channel: r.metadata.channel, actor: r.metadata.actor, occurredAt: r.metadata.occurredAt, position: r.position, streamVersion: r.version, summary: '' }))
          .filter((e) => (!f.type || e.type === f.type) && (!f.channel || e.channel === f.channel) && (!f.from || e.occurredAt >= f.from) && (!f.to || e.occurredAt <= f.to));
      }
      // A page of a listing that was reset meanwhile (a filter changed)
      // must not move the new listing's cursor.
      if (my !== gen) return;
      cursor = next;
      done = cursor === null;
      sentinel.remove();
      for (const e of entries) list.append(entryNode(e));
      list.append(sentinel);
      const n = list.querySelectorAll('li[data-event-id]').length;
      foot.textContent = done ? (n ? `${n} events — the whole history.` : 'No events match these filters: widen the time range or pick “all types”.') : `${n} events so far — scroll for more.`;
      more.hidden = done;
      list.dataset.state = done ? 'complete' : 'partial';
      // A page that did not fill the list (few matches) leaves the end in
      // view, which the observer does not report again: load on.
      const end = sentinel.getBoundingClientRect();
      const box = list.getBoundingClientRect();
      if (!done && (again || end.top <= box.bottom)) setTimeout(load, 0);
      // The observer reports changes only: if the end went out of view with
      // this page and back (a scroll) before its next frame, it saw no
      // change, and nothing would load the rest (a CI run waited six
      // minutes so). Observing the end anew makes it report where the end
      // is at the next frame, whatever it reported before.
      else if (!done) { io.unobserve(sentinel); io.observe(sentinel); }
    } catch (e) {
      if (my !== gen) return;
      foot.textContent = '';
      foot.append(errorBox(e, 'the timeline'));
      list.dataset.state = 'error';
    } finally {
      // Only this listing's load frees it: reset() already freed it for
      // the next one, which may be loading now.
      if (my === gen) busy = false;
    }
  };
  const reset = () => { gen++; cursor = null; done = false; busy = false; again = false; clear(list); load(); };
  for (const el of [typeSel, chanSel, from, to]) el.addEventListener('change', reset);
  more.addEventListener('click', load);
  const io = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) load(); }, { root: list });
  io.observe(sentinel);
  cleanups.push(() => io.disconnect());
  document.addEventListener('logged', reset);
  cleanups.push(() => document.removeEventListener('logged', reset));
  const card = h('div', { class: 'card', id: 'timeline-card' }, h('h2', {}, serverSide ? 'Timeline' : 'Timeline (newest first)'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Type', typeSel), h('label', {}, 'Channel', chanSel), h('label', {}, 'From', from), h('label', {}, 'To', to)),
    list, foot, more);
  queueMicrotask(load);
  return card;
}

// ---- pipeline -------------------------------------------------------------

function chart(canvasId, config, label) {
  const canvas = h('canvas', { id: canvasId, role: 'img', 'aria-label': label });
  const box = h('div', { class: 'chart' }, canvas);
  queueMicrotask(() => {
    if (!window.Chart) { box.replaceChildren(h('p', { class: 'error' }, 'The chart library did not load.')); return; }
    config.options = { responsive: true, maintainAspectRatio: false, animation: false, ...(config.options || {}) };
    const c = new window.Chart(canvas, config);
    cleanups.push(() => c.destroy());
  });
  return box;
}

function sumAmounts(list) {
  return (list || []).map((a) => money(a.amount, a.currency)).reduce((acc, n, i) => (i ? [...acc, ', ', n] : [n]), []);
}

const BOARD_PAGE = 8;

/** stageCards lists a stage's open opportunities, a page at a time, from
 *  GET /v1/pipeline/board (a range read of the stage, not of every
 *  opportunity). */
function stageCards(stage) {
  // data-state says when a page is in: the browser test waits on it.
  const list = h('ul', { class: 'cards', dataset: { cards: stage, state: 'loading' } });
  const more = h('button', { type: 'button', class: 'small', hidden: true }, 'More');
  let cursor = '';
  const load = async () => {
    more.disabled = true;
    list.dataset.state = 'loading';
    try {
      const page = await api('/v1/pipeline/board' + qs({ stage, limit: BOARD_PAGE, cursor: cursor || undefined }));
      for (const c of page.cards || []) {
        const who = can.customers(session.role) ? h('a', { href: '#/customer/' + c.customerId }, c.customerId.slice(0, 8)) : c.customerId.slice(0, 8);
        const age = (Date.now() - Date.parse(c.stageSince)) / 1000;
        list.append(h('li', { class: 'opp', dataset: { opportunityId: c.opportunityId, customerId: c.customerId, minor: String(c.amount), currency: c.currency || '' } },
          h('div', {}, c.currency ? money(c.amount, c.currency) : num(c.amount)),
          h('div', { class: 'small muted' }, 'customer ', who, c.expectedClose ? ` · closes ${c.expectedClose}` : '', ` · ${duration(Math.max(0, age))} in stage`)));
      }
      cursor = page.next || '';
      more.hidden = !cursor;
    } catch (e) {
      list.append(h('li', { class: 'error' }, 'Could not load the cards: ' + e.message));
    } finally { more.disabled = false; list.dataset.state = 'ready'; }
  };
  more.addEventListener('click', load);
  queueMicrotask(load);
  return h('div', {}, list, more);
}

async function pagePipeline() {
  if (!guard('pipeline', can.analytics, 'the pipeline')) return;
  loading('pipeline', 'the pipeline');
  let p;
  try { p = await api('/v1/pipeline'); } catch (e) { return failed('pipeline', e, 'the pipeline'); }
  const stages = p.stages || [];
  const board = h('div', { class: 'board', id: 'board' }, ...stages.map((s) => h('div', { class: 'stage', dataset: { stage: s.stage, open: String(s.open) } },
    h('h2', {}, s.stage), h('div', { class: 'count' }, num(s.open), h('span', { class: 'small muted' }, ' open')),
    h('div', { class: 'small' }, 'Amount: ', ...(s.amounts && s.amounts.length ? sumAmounts(s.amounts) : ['—'])),
    h('div', { class: 'small' }, 'Weighted: ', ...(s.weighted && s.weighted.length ? sumAmounts(s.weighted) : ['—'])),
    h('div', { class: 'small muted' }, `probability ${pct(s.probability)} · avg age ${duration(s.averageAgeSeconds)}`),
    stageCards(s.stage))));
  const figs = h('div', { class: 'figures', id: 'figures' },
    figure('Open', num(p.open), { figure: 'open', value: String(p.open) }),
    figure('Won', num(p.won), { figure: 'won', value: String(p.won) }),
    figure('Lost', num(p.lost), { figure: 'lost', value: String(p.lost) }),
    figure('Win rate', pct(p.winRate), { figure: 'winRate', value: String(p.winRate) }),
    figure('Average cycle', duration(p.averageCycleSeconds), { figure: 'cycle', value: String(p.averageCycleSeconds) }),
    ...(p.currencies || []).map((c) => figure(`Weighted forecast (${c.currency})`, money(c.weightedForecast, c.currency), { figure: 'forecast', currency: c.currency, minor: String(c.weightedForecast) })),
    ...(p.currencies || []).map((c) => figure(`Velocity (${c.currency}/day)`, money(Math.round(c.velocity), c.currency), { figure: 'velocity', currency: c.currency, value: String(c.velocity) })));
  const currencies = [...new Set(stages.flatMap((s) => (s.amounts || []).map((a) => a.currency)))];
  const funnel = chart('funnel', {
    type: 'bar',
    data: {
      labels: stages.map((s) => s.stage),
      datasets: [{ label: 'Stage visits', data: stages.map((s) => s.visits), backgroundColor: '#2357c6' }, { label: 'Open now', data: stages.map((s) => s.open), backgroundColor: '#7aa2f7' }],
    },
    options: { indexAxis: 'y', plugins: { title: { display: true, text: 'Funnel: opportunities that reached each stage' } } },
  }, 'Funnel of opportunities by stage');
  const amounts = chart('amounts', {
    type: 'bar',
    data: { labels: stages.map((s) => s.stage), datasets: currencies.map((cur, i) => ({ label: `Open amount ${cur}`, data: stages.map((s) => ((s.amounts || []).find((a) => a.currency === cur) || { amount: 0 }).amount / 100), backgroundColor: ['#17804a', '#b3261e', '#8a5a00', '#6b4fbb'][i % 4] })) },
    options: { plugins: { title: { display: true, text: 'Open amount per stage (major units)' } } },
  }, 'Open amount per stage');
  const body = [h('h1', {}, 'Pipeline'), figs, h('h2', {}, 'Open opportunities by stage'), board];
  if (!stages.length) body.push(h('p', { class: 'empty' }, 'No opportunity yet: services open them with OpportunityOpened.'));
  body.push(h('div', { class: 'cols' }, h('div', { class: 'card' }, funnel), h('div', { class: 'card' }, amounts)));
  render('pipeline', ...body);
}

// ---- analytics ------------------------------------------------------------

const SEGMENTS = ['champions', 'loyal', 'potential_loyalist', 'new_customers', 'promising', 'needs_attention', 'about_to_sleep', 'at_risk', 'cannot_lose', 'hibernating', 'lost'];
const PALETTE = ['#2357c6', '#17804a', '#b3261e', '#8a5a00', '#6b4fbb', '#0f7c8c', '#c2185b', '#5d4037', '#455a64', '#9e9d24'];

async function pageAnalytics() {
  if (!guard('analytics', can.analytics, 'analytics')) return;
  loading('analytics', 'analytics');
  let rfm, channels, tickets, nps, campaigns, model;
  const absent = (e) => { if (e instanceof ApiError && e.status === 404) return null; throw e; };
  try {
    [rfm, channels, tickets, nps, campaigns, model] = await Promise.all([
      api('/v1/analytics/rfm').catch(absent),
      api('/v1/analytics/channels' + qs({ from: new Date(Date.now() - 90 * 864e5).toISOString() })),
      api('/v1/analytics/tickets'), api('/v1/analytics/nps'), api('/v1/analytics/campaigns'),
      api('/v1/analytics/model').catch(absent)]);
  } catch (e) { return failed('analytics', e, 'analytics'); }
  const body = [h('h1', {}, 'Analytics')];

  // RFM segment grid.
  const segs = new Map();
  for (const c of (rfm && rfm.customers) || []) {
    const s = segs.get(c.segment) || { count: 0, revenue: {} };
    s.count++;
    s.revenue[c.currency] = (s.revenue[c.currency] || 0) + c.monetary;
    segs.set(c.segment, s);
  }
  const order = [...SEGMENTS.filter((s) => segs.has(s)), ...[...segs.keys()].filter((s) => !SEGMENTS.includes(s))];
  const grid = rfm
    ? h('div', { class: 'segments', id: 'segments' }, ...order.map((s) => {
      const d = segs.get(s);
      return h('div', { class: 'segment', dataset: { segment: s, count: String(d.count) } }, h('div', {}, s.replaceAll('_', ' ')), h('div', { class: 'n' }, num(d.count)),
        ...Object.entries(d.revenue).map(([cur, m]) => h('div', { class: 'small', dataset: { currency: cur, minor: String(m) } }, money(m, cur))));
    }))
    : h('p', { class: 'empty', id: 'segments' }, 'No analytics model fitted yet: the background fitter fits one soon, or an analyst runs POST /v1/analytics/model/fit.');
  const segChart = rfm ? chart('segchart', { type: 'bar', data: { labels: order.map((s) => s.replaceAll('_', ' ')), datasets: [{ label: 'Customers', data: order.map((s) => segs.get(s).count), backgroundColor: '#2357c6' }] }, options: { plugins: { legend: { display: false }, title: { display: true, text: 'Customers per RFM segment' } } } }, 'Customers per RFM segment') : '';
  body.push(h('div', { class: 'cols' }, h('div', { class: 'card' }, h('h2', {}, `RFM segments${rfm && rfm.model ? '' : ''}`), grid, rfm && rfm.model ? h('p', { class: 'small muted' }, 'Model as of ', when(rfm.model.asOf)) : ''), h('div', { class: 'card' }, segChart)));

  // Churn-risk and P(alive) distribution: stored with the model when it
  // is fitted, so this is one read, not a pass over the customers.
  const dist = model && model.distribution;
  const buckets = Array.from({ length: 10 }, (_, i) => `${i * 10}–${i * 10 + 10}%`);
  const riskChart = dist
    ? chart('churnchart', { type: 'bar', data: { labels: buckets, datasets: [
      { label: 'Churn risk', data: dist.churnRisk, backgroundColor: '#b3261e' },
      ...(dist.pAlive.some((n) => n > 0) ? [{ label: 'P(alive)', data: dist.pAlive, backgroundColor: '#17804a' }] : [])] },
    options: { plugins: { title: { display: true, text: 'Buyers by churn risk and by P(alive)' } }, scales: { x: { title: { display: true, text: 'bucket' } }, y: { title: { display: true, text: 'buyers' } } } } }, 'Churn-risk distribution')
    : h('p', { class: 'empty' }, model ? 'The stored model predates the distribution: the next fit adds it.' : 'No analytics model fitted yet.');
  const riskTable = dist
    ? h('table', { id: 'churn-dist' }, h('thead', {}, h('tr', {}, h('th', {}, 'Churn risk'), h('th', { class: 'num' }, 'Buyers'))),
      h('tbody', {}, ...dist.churnRisk.map((n, i) => h('tr', { dataset: { bucket: String(i), buyers: String(n) } }, h('td', {}, buckets[i]), h('td', { class: 'num' }, num(n)))),
        h('tr', { dataset: { bucket: 'unscored', buyers: String(dist.churnRiskUnscored) } }, h('td', {}, 'no rhythm known'), h('td', { class: 'num' }, num(dist.churnRiskUnscored)))))
    : '';
  body.push(h('div', { class: 'cols', id: 'churn' }, h('div', { class: 'card' }, riskChart),
    h('div', { class: 'card' }, h('h2', {}, 'Churn risk'), riskTable, model ? h('p', { class: 'small muted' }, 'Model as of ', when(model.asOf), ` · ${num(model.buyers)} buyers`) : '')));

  // Channel mix over time.
  const days = channels.days || [];
  const chanNames = [...new Set(days.flatMap((d) => d.channels.map((c) => c.channel)))].sort();
  const mix = chart('channelmix', {
    type: 'bar',
    data: { labels: days.map((d) => d.day), datasets: chanNames.map((c, i) => ({ label: c, data: days.map((d) => ((d.channels.find((x) => x.channel === c) || { touches: 0 }).touches)), backgroundColor: PALETTE[i % PALETTE.length] })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true } }, plugins: { title: { display: true, text: 'Touches per channel per day (last 90 days)' } } },
  }, 'Channel mix over time');
  const totalTouches = days.reduce((a, d) => a + d.touches, 0);

  // Ticket SLA percentiles.
  const pr = tickets.priorities || [];
  const sla = chart('sla', {
    type: 'bar',
    data: { labels: pr.map((p) => p.priority), datasets: [
      { label: 'First response median (h)', data: pr.map((p) => p.firstResponse.medianSeconds / 3600), backgroundColor: '#7aa2f7' },
      { label: 'First response p90 (h)', data: pr.map((p) => p.firstResponse.p90Seconds / 3600), backgroundColor: '#2357c6' },
      { label: 'Resolution median (h)', data: pr.map((p) => p.resolution.medianSeconds / 3600), backgroundColor: '#8fd3a8' },
      { label: 'Resolution p90 (h)', data: pr.map((p) => p.resolution.p90Seconds / 3600), backgroundColor: '#17804a' }] },
    options: { plugins: { title: { display: true, text: 'Ticket SLA percentiles per priority (hours)' } } },
  }, 'Ticket SLA percentiles per priority');
  const slaTable = h('table', { id: 'sla-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Priority'), h('th', { class: 'num' }, 'Tickets'), h('th', { class: 'num' }, 'First response p90'), h('th', { class: 'num' }, 'Resolution p90'))),
    h('tbody', {}, ...pr.map((p) => h('tr', { dataset: { priority: p.priority, tickets: String(p.tickets) } }, h('td', {}, p.priority), h('td', { class: 'num' }, num(p.tickets)), h('td', { class: 'num' }, duration(p.firstResponse.p90Seconds)), h('td', { class: 'num' }, duration(p.resolution.p90Seconds))))));

  // NPS trend.
  const surveys = nps.surveys || [];
  const npsChart = chart('nps', { type: 'line', data: { labels: surveys.map((s) => s.survey.replace(/^relationship-nps-/, '')), datasets: [{ label: 'NPS', data: surveys.map((s) => s.score), borderColor: '#2357c6', backgroundColor: '#2357c6' }] }, options: { scales: { y: { min: -100, max: 100 } }, plugins: { title: { display: true, text: 'NPS per survey' } } } }, 'NPS trend');
  body.push(h('div', { class: 'figures' },
    figure('NPS (all answers)', num(nps.overall.score, 1), { figure: 'nps', value: String(nps.overall.score) }),
    figure('NPS responses', num(nps.overall.responses), { figure: 'npsResponses', value: String(nps.overall.responses) }),
    figure('Touches (90 days)', num(totalTouches), { figure: 'touches', value: String(totalTouches) }),
    figure('Customers scored', num(((rfm && rfm.customers) || []).length), { figure: 'scored', value: String(((rfm && rfm.customers) || []).length) })));
  body.push(h('div', { class: 'cols' }, h('div', { class: 'card' }, mix), h('div', { class: 'card' }, npsChart)));
  body.push(h('div', { class: 'cols' }, h('div', { class: 'card' }, sla), h('div', { class: 'card' }, h('h2', {}, 'Ticket SLA'), slaTable)));

  // Campaign attribution and top customers.
  const camps = (campaigns.campaigns || []).filter((c) => c.lastTouch.purchases > 0).slice(-12);
  const campChart = chart('campaigns', { type: 'bar', data: { labels: camps.map((c) => c.campaign), datasets: [
    { label: 'Purchases (last touch)', data: camps.map((c) => c.lastTouch.purchases), backgroundColor: '#2357c6' },
    { label: 'Purchases (first touch)', data: camps.map((c) => c.firstTouch.purchases), backgroundColor: '#7aa2f7' }] }, options: { plugins: { title: { display: true, text: 'Campaign attribution: purchases per campaign' } } } }, 'Campaign attribution');
  const byCur = new Map();
  for (const c of (rfm && rfm.customers) || []) byCur.set(c.currency, (byCur.get(c.currency) || 0) + 1);
  const mainCur = [...byCur.entries()].sort((a, b) => b[1] - a[1])[0];
  const top = mainCur ? rfm.customers.filter((c) => c.currency === mainCur[0]).sort((a, b) => b.monetary - a.monetary).slice(0, 10) : [];
  const topChart = top.length ? chart('top', { type: 'bar', data: { labels: top.map((c) => c.customerId.slice(0, 8)), datasets: [{ label: `Lifetime value (${mainCur[0]})`, data: top.map((c) => c.monetary / 100), backgroundColor: '#17804a' }] }, options: { indexAxis: 'y', plugins: { title: { display: true, text: `Top customers by lifetime value (${mainCur[0]})` } } } }, 'Top customers by lifetime value') : h('p', { class: 'empty' }, 'No buyers scored yet.');
  const topList = h('ol', { id: 'top-customers', class: 'small' }, ...top.map((c) => h('li', { dataset: { customerId: c.customerId, minor: String(c.monetary), currency: c.currency } }, can.customers(session.role) ? h('a', { href: '#/customer/' + c.customerId }, c.customerId) : c.customerId, ' ', money(c.monetary, c.currency))));
  body.push(h('div', { class: 'cols' }, h('div', { class: 'card' }, campChart), h('div', { class: 'card' }, topChart, topList)));
  render('analytics', ...body);
}

// ---- audit ----------------------------------------------------------------

async function pageAudit(parts, params) {
  if (!guard('audit', can.audit, 'the audit')) return;
  const id = parts[0] || '';
  const idInput = h('input', { id: 'audit-customer', value: id, size: 40, placeholder: 'customer id', 'aria-label': 'Customer id' });
  const idForm = h('form', { class: 'inline' }, h('label', {}, 'Customer', idInput), h('button', { type: 'submit' }, 'Show audited timeline'));
  idForm.addEventListener('submit', (ev) => { ev.preventDefault(); go('#/audit/' + encodeURIComponent(idInput.value.trim())); });
  const sections = [h('h1', {}, 'Audit'), idForm];
  loading('audit', 'the audit');

  // The whole log: the signed checkpoint, and the current tree consistent with it.
  const logCard = h('div', { class: 'card', id: 'log-verification' }, h('h2', {}, 'Log verification'));
  sections.push(logCard);
  verifyLog(logCard);

  if (id) {
    const card = h('div', { class: 'card', id: 'audit-timeline' }, h('h2', {}, 'Audited timeline'));
    sections.push(card);
    try {
      const tl = await api(`/v1/customers/${encodeURIComponent(id)}/audit` + qs({ proofs: 'true' }));
      const results = await Promise.all((tl.entries || []).map((e) => verifyInclusion(e.leafHash, e.leaf, tl.checkpoint.size, e.inclusionProof || [], tl.checkpoint.hash).catch(() => false)));
      const okAll = results.every(Boolean);
      card.append(h('p', { class: 'status-line', dataset: { verified: String(tl.verified && okAll) } },
        h('span', { class: 'badge ' + (tl.verified && okAll ? 'ok' : 'bad') }, tl.verified && okAll ? 'verified' : 'NOT verified'),
        ` ${tl.events} events, each proved against the tree of ${num(tl.checkpoint.size)} events (root ${tl.checkpoint.hash.slice(0, 12)}…) `,
        tl.checkpoint.signed ? h('span', { class: 'badge ok', id: 'signed' }, 'signed checkpoint') : h('span', { class: 'badge warn' }, 'checkpoint not signed (no --checkpoint-key)')));
      if (!(tl.entries || []).length) card.append(h('p', { class: 'empty' }, 'No events for this customer.'));
      card.append(h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Who'), h('th', {}, 'What'), h('th', {}, 'Why (correlation / causation)'), h('th', {}, 'Proof'))),
        h('tbody', {}, ...(tl.entries || []).map((e, i) => h('tr', { dataset: { eventId: e.eventId, position: String(e.position), proof: results[i] && e.proof === 'verified' ? 'verified' : 'failed' } },
          h('td', {}, when(e.occurredAt), h('div', { class: 'small muted' }, 'recorded ', when(e.recordedAt))),
          h('td', {}, e.actor || '', h('div', { class: 'small muted' }, e.channel || '')),
          h('td', {}, h('strong', {}, e.type), h('div', {}, e.summary || '')),
          h('td', { class: 'small' }, e.correlationId || '', e.causationId ? h('div', { class: 'muted' }, 'caused by ', e.causationId) : ''),
          h('td', {}, h('span', { class: 'badge ' + (results[i] && e.proof === 'verified' ? 'ok' : 'bad'), title: `leaf ${e.leaf}, ${(e.inclusionProof || []).length} hashes, checked in this browser` }, results[i] && e.proof === 'verified' ? 'verified' : 'failed')))))));
    } catch (e) {
      card.append(errorBox(e, 'the audited timeline'));
    }
  } else {
    sections.push(h('p', { class: 'empty' }, 'Enter a customer id (or open one from search) to see its audited timeline.'));
  }

  // Access log.
  const accessCard = h('div', { class: 'card', id: 'access-log' }, h('h2', {}, 'Access log'));
  const reader = h('input', { id: 'access-reader', placeholder: 'reader name', value: params.get('reader') || '' });
  const cust = h('input', { id: 'access-customer', placeholder: 'customer id', value: params.get('customer') || id, size: 38 });
  const af = h('form', { class: 'inline' }, h('label', {}, 'Reader', reader), h('label', {}, 'Customer', cust), h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  const table = h('div', {});
  const loadAccess = async () => {
    clear(table);
    try {
      const res = await api('/v1/audit/access' + qs({ reader: reader.value.trim(), customer: cust.value.trim(), limit: 50 }));
      if (!res.entries.length) { table.append(h('p', { class: 'empty' }, 'No reads match: clear a filter.')); return; }
      table.append(h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Reader'), h('th', {}, 'Role'), h('th', {}, 'What'), h('th', {}, 'Customer'))),
        h('tbody', {}, ...res.entries.map((e) => h('tr', { dataset: { reader: e.reader } }, h('td', {}, when(e.at)), h('td', {}, e.reader), h('td', {}, e.role), h('td', {}, e.resource, e.query ? h('span', { class: 'small muted' }, ' ?' + e.query) : ''), h('td', { class: 'small' }, e.customerId))))));
    } catch (e) { table.append(errorBox(e, 'the access log')); }
  };
  af.addEventListener('submit', (ev) => { ev.preventDefault(); loadAccess(); });
  accessCard.append(af, table);
  sections.push(accessCard);
  await loadAccess();
  render('audit', ...sections);
}

/** verifyLog checks the current tree against the signed checkpoint. */
async function verifyLog(card) {
  const out = h('div', { id: 'log-result', role: 'status' }, 'Verifying…');
  card.append(out);
  try {
    let cp = null;
    try {
      const note = await apiText('/v1/audit/checkpoint');
      const lines = note.split('\n');
      cp = { note, origin: lines[0], size: Number(lines[1]), hash: lines[2], time: (lines[3] || '').replace(/^\S+\s*/, '') };
    } catch (e) { if (!(e instanceof ApiError) || e.status !== 503) throw e; }
    const tree = await api('/v1/audit/tree');
    clear(out);
    if (!cp) {
      out.dataset.verified = 'unsigned';
      out.append(h('span', { class: 'badge warn' }, 'no signed checkpoint'), ` The tree has ${num(tree.size)} events (root ${tree.hash.slice(0, 16)}…). The server has no checkpoint key: start it with --checkpoint-key to sign checkpoints.`);
      return;
    }
    const proof = cp.size === tree.size ? { proof: [] } : await api('/v1/audit/proof/consistency' + qs({ from: cp.size, to: tree.size }));
    const ok = await verifyConsistency(cp.size, tree.size, cp.hash, tree.hash, proof.proof || []);
    out.dataset.verified = String(ok);
    out.append(h('span', { class: 'badge ' + (ok ? 'ok' : 'bad') }, ok ? 'log verified' : 'log NOT consistent'),
      ` Signed checkpoint (${cp.origin}): ${num(cp.size)} events; current tree ${num(tree.size)} events, ${ok ? 'an append-only extension of it (consistency proof checked in this browser)' : 'does not extend it'}.`,
      h('pre', { class: 'small muted' }, cp.note || ''));
  } catch (e) {
    clear(out);
    out.dataset.verified = 'error';
    out.append(errorBox(e, 'the log verification'));
  }
}

// ---- projections ----------------------------------------------------------

async function pageProjections() {
  if (!guard('projections', can.feed, 'the read models')) return;
  loading('projections', 'the read models');
  const tbody = h('tbody', {});
  const note = h('p', { class: 'small muted', role: 'status', id: 'proj-status' });
  let first = true;
  let timer = 0;
  const refresh = async (withDigest) => {
    let res;
    try { res = await api('/v1/projections' + qs({ digest: withDigest ? 'true' : '' })); } catch (e) {
      if (first) return failed('projections', e, 'the read models');
      note.textContent = 'Refresh failed: ' + e.message; return;
    }
    const digests = new Map([...tbody.querySelectorAll('tr')].map((tr) => [tr.dataset.projection, tr.dataset.digest || '']));
    clear(tbody);
    for (const p of res.projections || []) {
      const rb = p.rebuild;
      const digest = p.digest || digests.get(p.name) || '';
      const btn = can.rebuild(session.role) ? h('button', { type: 'button', class: 'secondary', dataset: { rebuild: p.name }, disabled: !!rb }, rb ? 'Rebuilding' : 'Rebuild') : '';
      if (btn) btn.addEventListener('click', async () => {
        btn.disabled = true;
        try { await api(`/v1/projections/${encodeURIComponent(p.name)}/rebuild`, { method: 'POST' }); note.textContent = `Rebuild of ${p.name} started.`; } catch (e) { note.textContent = `Rebuild of ${p.name} refused: ${e.message}`; }
        refresh(false);
      });
      const progress = rb
        ? h('div', { class: 'small', dataset: { rebuilding: 'true', position: String(rb.position), head: String(rb.head), eventsPerSecond: String(rb.eventsPerSecond), etaSeconds: String(rb.etaSeconds) } }, h('progress', { class: 'progress', max: String(rb.head || 1), value: String(rb.position) }), ` ${num(rb.position)} / ${num(rb.head)} · ${num(Math.round(rb.eventsPerSecond))} events/s · ETA ${duration(rb.etaSeconds)}${rb.owner && !p.owned ? ' · by ' + rb.owner : ''}`)
        : '';
      tbody.append(h('tr', { dataset: { projection: p.name, checkpoint: p.checkpoint ?? '', lag: p.lag ?? '', state: p.state ?? '', digest } },
        h('td', {}, h('strong', {}, p.name), h('div', { class: 'small muted' }, [p.version != null ? 'v' + p.version : '', p.kind || '', p.active || p.namespace || ''].filter(Boolean).join(' · '))),
        h('td', { class: 'small' }, p.owner || '—', p.owned ? h('span', { class: 'badge ok' }, 'here') : ''),
        h('td', { class: 'num' }, num(p.checkpoint)), h('td', { class: 'num' }, num(p.lag)),
        h('td', {}, h('span', { class: 'badge ' + (p.state === 'live' ? 'ok' : p.state === 'failed' ? 'bad' : 'warn') }, p.state), p.error ? h('div', { class: 'small error' }, p.error) : ''),
        h('td', { class: 'small', title: digest }, digest ? digest.slice(0, 16) + '…' : '—'),
        h('td', {}, progress, btn)));
    }
    if (!(res.projections || []).length) tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No read models run in this process.')));
    if (first) {
      first = false;
      render('projections', h('h1', {}, 'Projections'), h('p', { class: 'small muted' }, 'Every read model with its owner, checkpoint, lag, state and digest; the list refreshes every second.'),
        h('div', { class: 'card' }, h('table', { id: 'projections' }, h('thead', {}, h('tr', {}, h('th', {}, 'Read model'), h('th', {}, 'Owner'), h('th', { class: 'num' }, 'Checkpoint'), h('th', { class: 'num' }, 'Lag'), h('th', {}, 'State'), h('th', {}, 'Digest'), h('th', {}, 'Rebuild'))), tbody)), note);
    }
    main.dataset.refreshed = String(Date.now());
  };
  await refresh(true);
  timer = setInterval(() => refresh(false), 1000);
  cleanups.push(() => clearInterval(timer));
}

// ---- live -----------------------------------------------------------------

/**
 * readSSE reads an SSE stream with fetch (so the token travels in the
 * Authorization header, never the URL) and calls onEvent for each event.
 * It resolves when the stream ends.
 */
async function readSSE(url, lastId, signal, onOpen, onEvent) {
  const headers = { Accept: 'text/event-stream', ...authHeaders() };
  if (lastId) headers['Last-Event-ID'] = String(lastId);
  const res = await fetch(url, { headers, signal, cache: 'no-store', credentials: 'omit' });
  if (!res.ok) {
    let problem = null;
    try { problem = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, problem);
  }
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let id = '';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(id, data.join('\n'));
    }
  }
}

async function pageLive() {
  if (!guard('live', can.feed, 'the live feed')) return;
  const list = h('ol', { class: 'feed', id: 'feed', reversed: true });
  const status = h('p', { class: 'small muted', id: 'live-status', role: 'status' }, 'Connecting…');
  const empty = h('p', { class: 'empty', id: 'live-empty' }, 'Waiting for new touchpoints: they appear here as services append them.');
  render('live', h('h1', {}, 'Live'), h('p', { class: 'small muted' }, 'New touchpoints of every customer as they are committed, newest first (personal data stays sealed in the global feed). After a disconnect the feed resumes from the last position it showed.'), status, empty, list);
  const ctl = new AbortController();
  cleanups.push(() => ctl.abort());
  let last = 0;
  try {
    const head = await api('/v1/events' + qs({ after: 0, limit: 1 }));
    const ps = await api('/v1/projections');
    const max = Math.max(0, ...(ps.projections || []).map((p) => p.head));
    last = Math.max(0, max - 200); // the recent past, then live
    if (!head.events.length) last = 0;
  } catch (e) { status.textContent = ''; status.append(errorBox(e, 'the live feed')); main.dataset.state = 'error'; return; }
  // The browser going offline ends the stream at once; coming back
  // online reconnects at once, from the last position shown.
  let offline = false;
  let conn = null;
  let wake = null;
  const onOffline = () => { offline = true; if (conn) conn.abort(); };
  const onOnline = () => { offline = false; if (wake) wake(); };
  window.addEventListener('offline', onOffline);
  window.addEventListener('online', onOnline);
  cleanups.push(() => { window.removeEventListener('offline', onOffline); window.removeEventListener('online', onOnline); if (wake) wake(); });
  let retries = 0;
  while (!ctl.signal.aborted) {
    if (!offline) {
      conn = new AbortController();
      try {
        const from = last;
        await readSSE('/v1/events/live', last, AbortSignal.any([ctl.signal, conn.signal]), () => {
          list.dataset.connected = 'true';
          list.dataset.resumedFrom = String(from);
          status.textContent = `Connected; showing touchpoints after position ${from}.`;
        }, (id, data) => {
          retries = 0;
          let r;
          try { r = JSON.parse(data); } catch { return; }
          last = Number(id) || r.position || last;
          main.dataset.last = String(last);
          // Touchpoints only: other streams (the access log) are not customers'.
          if (!(r.stream || '').startsWith('customer-')) return;
          empty.hidden = true;
          const cust = r.stream.slice('customer-'.length);
          const li = h('li', { class: 'new', dataset: { position: String(r.position), eventId: r.id, type: r.type, customerId: cust } },
            h('span', { class: 'muted' }, '#' + r.position), when(r.metadata && r.metadata.occurredAt),
            h('span', {}, h('strong', {}, r.type), ' ', h('span', { class: 'badge' }, (r.metadata && r.metadata.channel) || '')),
            can.customers(session.role) ? h('a', { href: '#/customer/' + cust }, cust) : (can.audit(session.role) ? h('a', { href: '#/audit/' + cust }, cust) : h('span', {}, cust)));
          list.prepend(li);
          setTimeout(() => li.classList.remove('new'), 3000);
          while (list.children.length > 200) list.lastChild.remove();
        });
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) { list.dataset.connected = 'false'; status.textContent = ''; status.append(errorBox(e, 'the live feed')); return; }
      }
    }
    if (ctl.signal.aborted) return;
    list.dataset.connected = 'false';
    retries++;
    const wait = Math.min(10000, 500 * 2 ** Math.min(retries, 5));
    status.textContent = offline
      ? `Offline; the feed resumes from position ${last} when the connection is back.`
      : `Disconnected; reconnecting in ${Math.round(wait / 1000)} s from position ${last}…`;
    await new Promise((r) => { wake = r; if (!offline) setTimeout(r, wait); });
    wake = null;
  }
}

// ---- start ----------------------------------------------------------------

window.addEventListener('hashchange', route);
loadSession().then(route, (e) => failed('signin', e, 'the session'));
