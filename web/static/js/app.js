// The Aghali web app: sign-in, the farm picker and map, the details sheet, alerts, language, and
// the refresh loop. This module wires the others together and owns the page's state.
//
// Routes (history API; the server answers every one with index.html): /farms/{id} shows a farm's
// map; / goes to the last farm used on this device, else the first.
//
// Test hooks: window.aghaliMapReady becomes true, and #map gets data-features (the number of
// distinct features drawn), once a farm's map data has been drawn.

import { byId, h } from './dom.js';
import * as i18n from './i18n.js';
import { t } from './i18n.js';
import { Api, ApiError, errorMessage } from './api.js';
import { Refresher } from './refresher.js';
import { Sheet } from './sheet.js';
import { FarmMap, loadMapLibre, webglAvailable, featureKey, featureId } from './farmmap.js';
import { renderFeature, featureTitle } from './details.js';
import { renderAlerts, pendingCount } from './alerts.js';
import * as fmt from './format.js';

const REFRESH_MS = 15000;
const FARM_KEY = 'aghali.farm';
const NOTE_TTL_MS = 60000;
const TOAST_MS = 4500;
const LIST_ORDER = ['zone', 'valve', 'node', 'water_source', 'field'];

const el = {
  boot: byId('boot'),
  loginView: byId('login-view'),
  loginForm: byId('login-form'),
  loginEmail: byId('login-email'),
  loginPassword: byId('login-password'),
  loginError: byId('login-error'),
  loginLang: byId('login-lang'),
  main: byId('main-view'),
  farmSelect: byId('farm-select'),
  alertsButton: byId('alerts-button'),
  alertsBadge: byId('alerts-badge'),
  menu: byId('menu'),
  menuUser: byId('menu-user'),
  menuLang: byId('menu-lang'),
  logout: byId('logout-button'),
  stopAll: byId('stop-all-button'),
  status: byId('status'),
  statusText: byId('status-text'),
  statusRetry: byId('status-retry'),
  map: byId('map'),
  mapMessage: byId('map-message'),
  listButton: byId('list-button'),
  fitButton: byId('fit-button'),
  legend: byId('legend'),
  toast: byId('toast'),
};

const state = {
  session: null,
  farms: [],
  farmsLoaded: false,
  farm: null,
  fc: null,
  alerts: [],
  fitNext: false,
  refresh: { phase: 'ok' },
  notes: new Map(), // valve id -> {text, error, at}: the outcome of the last command, shown for a while
  drafts: new Map(), // valve id -> the minutes field's text
};

const api = new Api({ onUnauthorized: () => sessionEnded() });
const sheet = new Sheet({ onClose: () => farmMap && farmMap.select(null) });
const refresher = new Refresher(refresh, { interval: REFRESH_MS, onState: showRefreshState });
let farmMap = null;
let mapInit = null;
let statusTicker = 0;
let toastTimer = 0;

window.aghaliMapReady = false;

// ---- start -------------------------------------------------------------------------------

async function boot() {
  i18n.setLang(i18n.initial(''));
  fillLangSelects();
  bindEvents();
  el.legend.open = window.matchMedia('(min-width: 900px)').matches;
  let session = null;
  try {
    session = await api.session();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) {
      showLogin(errorMessage(err, t));
      return;
    }
  }
  if (session) enter(session);
  else showLogin();
}

function bindEvents() {
  el.loginForm.addEventListener('submit', onLogin);
  for (const sel of [el.loginLang, el.menuLang]) {
    sel.addEventListener('change', () => i18n.setLang(sel.value, { remember: true }));
  }
  i18n.onLangChange(onLangChange);
  el.farmSelect.addEventListener('change', () => {
    if (selectFarm(el.farmSelect.value)) refresher.now();
  });
  el.alertsButton.addEventListener('click', () => (sheet.key === 'alerts' ? sheet.close() : showAlerts()));
  el.listButton.addEventListener('click', () => (sheet.key === 'list' ? sheet.close() : showList()));
  el.fitButton.addEventListener('click', () => farmMap && farmMap.fit(farmCenter(state.farm)));
  el.logout.addEventListener('click', onLogout);
  el.stopAll.addEventListener('click', onStopAll);
  el.statusRetry.addEventListener('click', () => {
    el.statusText.textContent = t('status.retrying');
    refresher.now();
  });
  document.addEventListener('click', (e) => {
    if (el.menu.open && !el.menu.contains(e.target)) el.menu.open = false;
  });
  el.menu.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && el.menu.open) {
      el.menu.open = false;
      el.menu.querySelector('summary').focus();
    }
  });
  window.addEventListener('popstate', () => {
    const id = farmIdFromPath();
    if (state.farms.length > 0 && id !== null && selectFarm(id, { history: 'none' })) refresher.now();
  });
}

function fillLangSelects() {
  for (const sel of [el.loginLang, el.menuLang]) {
    sel.replaceChildren(...i18n.LANGS.map((l) => h('option', { value: l, lang: l, text: i18n.LANG_NAMES[l] })));
    sel.value = i18n.lang();
  }
}

function onLangChange(l) {
  el.loginLang.value = l;
  el.menuLang.value = l;
  applyAlerts(state.alerts);
  showRefreshState(state.refresh);
  if (state.farm) document.title = `${state.farm.name} · Aghali`;
  rerenderSheet();
}

// ---- session -----------------------------------------------------------------------------

function showLogin(message = '') {
  el.boot.hidden = true;
  el.main.hidden = true;
  el.loginView.hidden = false;
  el.loginError.hidden = !message;
  el.loginError.textContent = message;
  el.loginPassword.value = '';
  (el.loginEmail.value ? el.loginPassword : el.loginEmail).focus();
}

async function onLogin(e) {
  e.preventDefault();
  const email = el.loginEmail.value.trim();
  const password = el.loginPassword.value;
  if (!email || !password) {
    loginError(t('login.missing'));
    return;
  }
  const button = el.loginForm.querySelector('button[type="submit"]');
  button.disabled = true;
  button.textContent = t('login.busy');
  try {
    await api.login(email, password);
    enter(await api.session());
  } catch (err) {
    const tooMany = err instanceof ApiError && err.status === 429 && !err.detail;
    loginError(tooMany ? t('login.tooMany', { s: err.retryAfter || 60 }) : errorMessage(err, t));
    el.loginPassword.select();
  } finally {
    button.disabled = false;
    button.textContent = t('login.submit');
  }
}

function loginError(text) {
  el.loginError.textContent = text;
  el.loginError.hidden = false;
}

function enter(session) {
  state.session = session;
  api.csrfToken = session.csrf_token || '';
  const user = session.user || {};
  i18n.setLang(i18n.initial(user.locale));
  el.menuUser.textContent = [user.name, user.email].filter(Boolean).join(' · ');
  el.boot.hidden = true;
  el.loginView.hidden = true;
  el.loginError.hidden = true;
  el.main.hidden = false;
  refresher.start();
}

// reset forgets everything about the signed-in user.
function reset() {
  refresher.stop();
  sheet.close();
  state.session = null;
  state.farms = [];
  state.farmsLoaded = false;
  state.farm = null;
  state.fc = null;
  state.notes.clear();
  state.drafts.clear();
  api.csrfToken = '';
  applyAlerts([]);
  showRefreshState({ phase: 'ok' });
  window.aghaliMapReady = false;
  // The next person to sign in on this device must not see this farm, even for a moment.
  if (farmMap) farmMap.setData(null).catch(() => {});
}

function sessionEnded() {
  if (!state.session) return;
  reset();
  showLogin(t('status.sessionEnded'));
}

// onStopAll is the farm's emergency stop: every valve and pump closed at once, nothing waters
// until someone releases it (the server records who).
async function onStopAll() {
  el.menu.open = false;
  const farm = state.farm;
  if (!farm || !window.confirm(t('stopAll.confirm', { farm: farm.name }))) return;
  try {
    await api.post(`/farms/${farm.id}/emergency-stop`, { reason: t('stopAll.reason') });
    toast(t('stopAll.done', { farm: farm.name }));
    refresher.now();
  } catch (err) {
    toast(errorMessage(err, t), true);
  }
}

async function onLogout() {
  el.menu.open = false;
  try {
    await api.logout();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) {
      toast(errorMessage(err, t), true);
      return;
    }
  }
  reset();
  history.replaceState(null, '', '/');
  showLogin();
}

// ---- data --------------------------------------------------------------------------------

// refresh is the Refresher's task: farms once, then the current farm's map and the open alerts.
// What arrived is shown even when the other request failed; any failure is thrown so the status
// bar shows "offline, retrying" while the last good data stays on screen.
async function refresh() {
  if (!state.session) return;
  if (!state.farmsLoaded) await loadFarms();
  const farm = state.farm;
  const [map, alerts] = await Promise.allSettled([
    farm ? api.get(`/farms/${farm.id}/map`) : Promise.resolve(null),
    api.get('/alerts?open=true'),
  ]);
  if (!state.session) return;
  if (map.status === 'fulfilled' && farm && farm === state.farm) applyMap(map.value);
  if (alerts.status === 'fulfilled') applyAlerts(Array.isArray(alerts.value) ? alerts.value : []);
  const failed = [map, alerts].find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function loadFarms() {
  const farms = await api.get('/farms');
  state.farms = Array.isArray(farms) ? farms : [];
  state.farmsLoaded = true;
  el.farmSelect.replaceChildren(...state.farms.map((f) => h('option', { value: f.id, text: f.name })));
  el.farmSelect.disabled = state.farms.length < 2;
  if (state.farms.length === 0) {
    showMapMessage(t('farm.none'));
    return;
  }
  let wanted = farmIdFromPath();
  if (wanted === null) {
    try { wanted = localStorage.getItem(FARM_KEY); } catch { wanted = null; }
  }
  selectFarm(wanted, { history: 'replace', quietMissing: farmIdFromPath() === null });
}

// selectFarm switches to farm id (or the first farm when there is no such farm) and reports
// whether the farm changed.
function selectFarm(id, { history: mode = 'push', quietMissing = false } = {}) {
  let farm = state.farms.find((f) => String(f.id) === String(id));
  if (!farm) {
    if (id !== null && id !== undefined && !quietMissing) toast(t('farm.notFound'), true);
    farm = state.farms[0];
    mode = 'replace';
  }
  const changed = farm !== state.farm;
  state.farm = farm;
  el.stopAll.hidden = !canOperate(farm);
  el.farmSelect.value = String(farm.id);
  try { localStorage.setItem(FARM_KEY, String(farm.id)); } catch { /* not remembered */ }
  const url = `/farms/${farm.id}`;
  if (location.pathname !== url) {
    if (mode === 'push') history.pushState({ farm: farm.id }, '', url);
    else if (mode === 'replace') history.replaceState({ farm: farm.id }, '', url);
  }
  document.title = `${farm.name} · Aghali`;
  if (changed) {
    state.fc = null;
    state.fitNext = true;
    window.aghaliMapReady = false;
    delete el.map.dataset.features;
    if (sheet.key !== 'alerts') sheet.close();
    ensureMap();
  }
  return changed;
}

function farmIdFromPath() {
  const m = /^\/farms\/(\d+)\/?$/.exec(location.pathname);
  return m ? m[1] : null;
}

function farmCenter(farm) {
  const c = farm && farm.location && farm.location.coordinates;
  return Array.isArray(c) && c.length >= 2 ? c : null;
}

// ensureMap creates the map once MapLibre has loaded; the list view works without it.
function ensureMap() {
  if (mapInit) return mapInit;
  showMapMessage(t('map.loading'));
  mapInit = (async () => {
    if (!webglAvailable()) throw Object.assign(new Error('WebGL unavailable'), { webgl: true });
    const maplibregl = await loadMapLibre();
    farmMap = new FarmMap(maplibregl, el.map, {
      onSelect: (f) => (f ? openFeature(f) : closeFeature()),
      center: farmCenter(state.farm) || undefined,
      labels: {
        'Map.Title': t('map.label'),
        'NavigationControl.ZoomIn': t('map.zoomIn'),
        'NavigationControl.ZoomOut': t('map.zoomOut'),
        'AttributionControl.ToggleAttribution': t('map.credits'),
      },
      overlays: () => [el.map.parentElement.querySelector('.map-tools'), el.map.querySelector('.maplibregl-ctrl-top-right'), el.legend, byId('sheet')],
    });
    await farmMap.loaded;
    hideMapMessage();
    return farmMap;
  })();
  mapInit.catch((err) => {
    console.warn('map:', err);
    showMapMessage(t(err.webgl ? 'map.noWebgl' : 'map.failed'));
    if (!err.webgl) mapInit = null; // try again on the next refresh
  });
  return mapInit;
}

function applyMap(fc) {
  state.fc = fc && Array.isArray(fc.features) ? fc : { type: 'FeatureCollection', features: [] };
  const farm = state.farm;
  const fit = state.fitNext;
  state.fitNext = false;
  ensureMap()
    .then((m) => m.setData(state.fc, { fit, fallbackCenter: farmCenter(farm) }))
    .then(() => {
      if (farm === state.farm) window.aghaliMapReady = true;
    })
    .catch(() => { /* shown by ensureMap */ });
  rerenderSheet();
}

function applyAlerts(alerts) {
  state.alerts = alerts;
  const n = pendingCount(alerts);
  el.alertsBadge.hidden = n === 0;
  el.alertsBadge.textContent = n > 99 ? '99+' : String(n);
  el.alertsButton.setAttribute('aria-label', n > 0 ? t('alerts.pending', { n }) : t('alerts.title'));
  if (sheet.key === 'alerts' && !sheet.busy()) showAlerts();
}

// ---- the sheet ----------------------------------------------------------------------------

function findFeature(key) {
  if (!state.fc) return null;
  return state.fc.features.find((f) => featureKey(f) === key) || null;
}

// signature digests what a sheet shows, with the minute so that relative times ("3 min ago")
// stay current.
function signature(...data) {
  return JSON.stringify([i18n.lang(), Math.floor(Date.now() / 60000), ...data]);
}

function openFeature(f, { reveal = false } = {}) {
  const fresh = sheet.key !== featureKey(f);
  const ctx = detailContext();
  const id = String(featureId(f));
  sheet.render(featureKey(f), signature(f.properties, ctx.canOperate, state.notes.get(id) || null),
    featureTitle(f), () => renderFeature(f, ctx));
  if (farmMap && fresh) {
    farmMap.select(f);
    if (reveal) farmMap.reveal(f);
    farmMap.keepClear(f, byId('sheet'));
  }
}

function closeFeature() {
  if (sheet.key && sheet.key !== 'alerts' && sheet.key !== 'list') sheet.close();
}

function detailContext() {
  return {
    farm: state.farm,
    canOperate: canOperate(state.farm),
    api,
    sheet,
    changed: () => refresher.now(),
    note: (id) => {
      const n = state.notes.get(String(id));
      return n && Date.now() - n.at < NOTE_TTL_MS ? n : null;
    },
    setNote: (id, text, error = false) => {
      if (text) state.notes.set(String(id), { text, error, at: Date.now() });
      else state.notes.delete(String(id));
    },
    // The minutes typed for a valve survive a re-render of its sheet.
    draft: (id) => state.drafts.get(String(id)),
    setDraft: (id, minutes) => state.drafts.set(String(id), minutes),
  };
}

// canOperate: viewers may look but not open valves; the server decides in the end.
function canOperate(farm) {
  const memberships = (state.session && state.session.memberships) || [];
  const m = farm && memberships.find((x) => x.org_id === farm.org_id);
  return !m || m.role !== 'viewer';
}

// rerenderSheet shows fresh data in the open sheet, unless the user is in the middle of something.
function rerenderSheet() {
  if (!sheet.isOpen || sheet.busy()) return;
  if (sheet.key === 'alerts') showAlerts();
  else if (sheet.key === 'list') showList();
  else {
    const f = findFeature(sheet.key);
    if (f) openFeature(f);
    else sheet.close();
  }
}

function showAlerts() {
  const farms = new Map(state.farms.map((f) => [f.id, f]));
  sheet.render('alerts', signature(state.alerts, state.farms.length), t('alerts.title'),
    () => [renderAlerts(state.alerts, { farms, ack })]);
}

async function ack(alert, button) {
  button.disabled = true;
  try {
    const updated = await api.post(`/alerts/${alert.id}/ack`);
    const acked = updated && updated.id === alert.id ? updated : { ...alert, acknowledged_at: new Date().toISOString() };
    applyAlerts(state.alerts.map((a) => (a.id === alert.id ? acked : a)));
    const next = document.querySelector('#sheet-body [data-testid="alert-ack"]');
    (next || byId('sheet-title')).focus();
  } catch (err) {
    button.disabled = false;
    toast(errorMessage(err, t), true);
  }
}

// showList is the map as a list: every feature, reachable by keyboard and screen reader, and the
// way in when the map cannot be drawn.
function showList() {
  const features = state.fc ? state.fc.features : [];
  sheet.render('list', signature(features.map((f) => f.properties)), t('list.title'), () => listContent(features));
}

function listContent(features) {
  if (features.length === 0) return [h('p', { class: 'muted', text: t('list.empty') })];
  const content = [];
  for (const layer of LIST_ORDER) {
    const group = features.filter((f) => f.properties.layer === layer)
      .sort((a, b) => featureTitle(a).localeCompare(featureTitle(b), i18n.intlLocale(), { numeric: true }));
    if (group.length === 0) continue;
    content.push(h('h3', { class: 'group-title', text: t(`layer.${layer}`) }));
    content.push(h('ul', { class: 'list', 'data-testid': `list-${layer}` }, group.map((f) => h('li', {},
      h('button', {
        type: 'button', class: 'feature-button', 'data-testid': 'list-item', dataset: { key: featureKey(f) },
        onclick: () => openFeature(f, { reveal: true }),
      }, h('span', { text: featureTitle(f) }), h('span', { class: 'muted', text: summary(f) }))))));
  }
  return content;
}

function summary(f) {
  const p = f.properties;
  switch (p.layer) {
    case 'zone': return t(`moisture.${['dry', 'ok', 'wet'].includes(p.moisture) ? p.moisture : 'unknown'}`);
    case 'valve': return t(`state.${['open', 'closed'].includes(p.state) ? p.state : 'unknown'}`);
    case 'node': return p.stale ? t('node.stale') : (p.last_seen_at ? fmt.relative(p.last_seen_at) : t('node.never'));
    case 'water_source': return p.kind ? t(`kind.${p.kind}`) : '';
    default: return p.crop || '';
  }
}

// ---- status, messages -----------------------------------------------------------------------

function showRefreshState(s) {
  state.refresh = s;
  clearInterval(statusTicker);
  const err = s.error;
  if (s.phase !== 'failed' || (err instanceof ApiError && err.status === 401)) {
    el.status.hidden = true;
    el.status.dataset.state = 'ok';
    return;
  }
  el.status.dataset.state = 'offline';
  el.status.hidden = false;
  const tick = () => {
    const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
    const serverError = err instanceof ApiError && !err.offline;
    let text = serverError ? t('status.serverError', { status: err.status, s: secs }) : t('status.offline', { s: secs });
    if (s.lastSuccess) text += ` · ${t('status.lastUpdate', { time: fmt.clock(new Date(s.lastSuccess).toISOString(), state.farm && state.farm.timezone) })}`;
    el.statusText.textContent = text;
  };
  tick();
  statusTicker = setInterval(tick, 1000);
}

function showMapMessage(text) {
  el.mapMessage.textContent = text;
  el.mapMessage.hidden = false;
}

function hideMapMessage() {
  el.mapMessage.hidden = true;
}

function toast(text, error = false) {
  clearTimeout(toastTimer);
  el.toast.textContent = text;
  el.toast.dataset.kind = error ? 'error' : 'info';
  el.toast.hidden = false;
  toastTimer = setTimeout(() => { el.toast.hidden = true; }, TOAST_MS);
}

boot();
