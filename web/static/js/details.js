// The details of one map feature, as shown in the sheet: a node's latest values and last contact,
// a zone's soil moisture, a valve's state with the open/stop control (always behind a
// confirmation step), a field's crop and area, a water source's kind and capacity.

import { h } from './dom.js';
import { t } from './i18n.js';
import * as fmt from './format.js';
import { featureId } from './farmmap.js';
import { errorMessage } from './api.js';

const MAX_MINUTES = 720; // the server caps a run at the zone's max runtime anyway
const PRESET_MINUTES = [10, 20, 30, 60];
const DEFAULT_MINUTES = 20;

export function featureTitle(f) {
  const p = f.properties;
  return p.name || `${t(`layer.${p.layer}`)} ${featureId(f)}`;
}

// renderFeature returns the sheet content for f. ctx: {farm, canOperate, api, sheet, changed(),
// note(valveId) -> {text, error}|null, setNote(valveId, text, error)}.
export function renderFeature(f, ctx) {
  const p = f.properties;
  const kind = h('p', { class: 'sheet-kind', text: t(`layer.${p.layer}`) });
  switch (p.layer) {
    case 'node': return [kind, ...nodeDetails(p, ctx)];
    case 'zone': return [kind, zoneDetails(p)];
    case 'valve': return [kind, ...valveDetails(f, ctx)];
    case 'field': return [kind, kv([[t('crop'), p.crop], [t('field.area'), p.area_ha == null ? null : fmt.withUnit(p.area_ha, 2, 'unit.ha')]])];
    case 'water_source': return [kind, kv([
      [t('ws.kind'), p.kind ? t(`kind.${p.kind}`) : null],
      [t('ws.capacity'), p.capacity_m3h == null ? null : fmt.withUnit(p.capacity_m3h, 1, 'unit.m3_h')],
    ])];
    default: return [kind];
  }
}

// kv renders a definition list, leaving out rows without a value.
function kv(rows, attrs = {}) {
  const dl = h('dl', { class: 'kv', ...attrs });
  for (const [k, v] of rows) {
    if (v === null || v === undefined || v === '') continue;
    dl.append(h('dt', { text: k }), h('dd', {}, v));
  }
  return dl;
}

function pill(text, data) {
  return h('span', { class: 'pill', dataset: data, text });
}

function nodeDetails(p, ctx) {
  const tz = ctx.farm && ctx.farm.timezone;
  const out = [kv([
    [t('node.status'), p.stale ? pill(t('node.stale'), { state: 'stale' }) : pill(t('node.ok'), {})],
    [t('node.lastSeen'), p.last_seen_at ? fmt.when(p.last_seen_at, tz) : t('node.never')],
    [t('node.battery'), typeof p.battery_v === 'number' ? fmt.withUnit(p.battery_v, 2, 'unit.v') : null],
    [t('node.uid'), p.uid],
  ])];
  out.push(h('h3', { class: 'section-title', text: t('node.latest') }));
  const latest = p.latest && typeof p.latest === 'object' ? p.latest : {};
  const names = Object.keys(latest).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (names.length === 0) {
    out.push(h('p', { class: 'muted', text: t('node.noReadings') }));
    return out;
  }
  const dl = h('dl', { class: 'kv', 'data-testid': 'node-latest' });
  for (const name of names) {
    const r = latest[name] || {};
    const m = fmt.metric(name, r.value);
    dl.append(
      h('dt', { text: m.label }),
      h('dd', {}, m.text, r.ts ? h('span', { class: 'muted', text: ` · ${fmt.relative(r.ts)}` }) : null),
    );
  }
  out.push(dl);
  return out;
}

function rank(metric) {
  const i = fmt.METRIC_ORDER.indexOf(metric);
  return i < 0 ? fmt.METRIC_ORDER.length : i;
}

function zoneDetails(p) {
  const moisture = ['dry', 'ok', 'wet'].includes(p.moisture) ? p.moisture : 'unknown';
  const value = typeof p.soil_vwc === 'number' ? ` ${fmt.percent(p.soil_vwc, 1)}` : '';
  return kv([
    [t('zone.moisture'), h('span', {}, pill(t(`moisture.${moisture}`), { moisture }), value)],
    [t('crop'), p.crop],
    [t('zone.irrigating'), p.irrigating ? pill(t('yes'), { state: 'open' }) : t('no')],
  ], { 'data-testid': 'zone-details' });
}

function valveDetails(f, ctx) {
  const p = f.properties;
  const state = ['open', 'closed'].includes(p.state) ? p.state : 'unknown';
  const tz = ctx.farm && ctx.farm.timezone;
  const info = kv([
    [t('valve.state'), pill(t(`state.${state}`), { state, testid: 'valve-state' })],
    [t('valve.closes'), p.ends_at && state !== 'closed' ? `${fmt.clock(p.ends_at, tz)} (${fmt.relative(p.ends_at)})` : null],
    [t('valve.channel'), p.channel],
  ]);
  return [info, valveControl(f, ctx, state)];
}

// valveControl is the open/stop control. Nothing is sent until the person confirms; while the
// confirmation is on screen the sheet is held, so a background refresh cannot replace it.
function valveControl(f, ctx, state) {
  const p = f.properties;
  const id = featureId(f);
  const name = featureTitle(f);
  const root = h('div', { class: 'control', 'data-testid': 'valve-control' });
  if (!ctx.canOperate) {
    root.append(h('p', { class: 'muted', text: t('valve.readonly') }));
    return root;
  }
  const running = p.run_id !== null && p.run_id !== undefined;
  const canOpen = state !== 'open' && !running;
  const canStop = state !== 'closed' || running;
  let minutes = ctx.draft(id) ?? String(DEFAULT_MINUTES);

  const idle = (message = ctx.note(id)) => {
    ctx.sheet.hold = false;
    root.replaceChildren();
    let input = null;
    if (canOpen) {
      input = h('input', {
        id: 'valve-minutes', type: 'number', min: 1, max: MAX_MINUTES, step: 1, inputmode: 'numeric',
        value: minutes, 'data-testid': 'valve-minutes', required: true,
      });
      const chips = h('div', { class: 'chips', role: 'group', 'aria-label': t('valve.minutes') });
      const syncChips = () => {
        minutes = input.value;
        ctx.setDraft(id, minutes);
        for (const b of chips.children) b.setAttribute('aria-pressed', String(Number(b.dataset.minutes) === Number(input.value)));
      };
      for (const m of PRESET_MINUTES) {
        chips.append(h('button', {
          type: 'button', class: 'btn', dataset: { minutes: m }, 'aria-pressed': 'false', text: t('valve.min', { n: m }),
          onclick: () => { input.value = m; syncChips(); },
        }));
      }
      input.addEventListener('input', syncChips);
      syncChips();
      root.append(h('label', { for: 'valve-minutes', text: t('valve.minutes') }), chips);
    }
    // The minutes field sits beside the Open button: one row less on a phone.
    const actions = h('div', { class: 'actions' }, input);
    if (canOpen) {
      actions.append(h('button', {
        type: 'button', class: 'btn btn-primary', 'data-testid': 'valve-open', text: t('valve.open'),
        onclick: () => {
          const n = Number(input.value);
          if (!Number.isInteger(n) || n < 1 || n > MAX_MINUTES) {
            ctx.setNote(id, t('valve.minutesInvalid', { max: MAX_MINUTES }), true);
            idle();
            root.querySelector('input').focus();
            return;
          }
          confirm('open', n);
        },
      }));
    }
    if (canStop) {
      actions.append(h('button', {
        type: 'button', class: 'btn btn-danger', 'data-testid': 'valve-stop', text: t('valve.stop'),
        onclick: () => confirm('stop'),
      }));
    }
    root.append(actions);
    if (message) {
      root.append(h('p', {
        class: message.error ? 'form-error' : 'note note-ok', role: message.error ? 'alert' : 'status',
        'data-testid': 'valve-message', text: message.text,
      }));
    }
  };

  const confirm = (action, n = 0) => {
    ctx.sheet.hold = true;
    const question = h('p', {
      tabindex: '-1', 'data-testid': 'valve-question',
      text: action === 'open' ? t('valve.confirmOpen', { name, n }) : t('valve.confirmStop', { name }),
    });
    const yes = h('button', {
      type: 'button', class: action === 'open' ? 'btn btn-primary' : 'btn btn-danger', 'data-testid': 'valve-confirm',
      text: action === 'open' ? t('valve.yesOpen') : t('valve.yesStop'),
    });
    const no = h('button', { type: 'button', class: 'btn', 'data-testid': 'valve-cancel', text: t('cancel') });
    no.addEventListener('click', () => {
      ctx.setNote(id, null);
      idle(null);
      const back = root.querySelector(action === 'open' ? '[data-testid="valve-open"]' : '[data-testid="valve-stop"]');
      if (back) back.focus();
    });
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      no.disabled = true;
      yes.textContent = t('valve.sending');
      try {
        if (action === 'open') await ctx.api.post(`/valves/${id}/open`, { minutes: n });
        else await ctx.api.post(`/valves/${id}/stop`);
        ctx.setNote(id, t('valve.sent'), false);
        idle();
        ctx.changed();
      } catch (err) {
        ctx.setNote(id, errorMessage(err, t), true);
        idle();
      }
    });
    root.replaceChildren(h('div', { class: 'confirm', 'data-testid': 'valve-confirm-step' }, question, h('div', { class: 'actions' }, yes, no)));
    question.focus();
  };

  idle();
  return root;
}
