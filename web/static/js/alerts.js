// The open alerts (GET /alerts?open=true) as a list with an Acknowledge button each, and the count
// the badge shows: open alerts nobody has acknowledged yet.

import { h } from './dom.js';
import { t } from './i18n.js';
import * as fmt from './format.js';

const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };

export function pendingCount(alerts) {
  return alerts.filter((a) => !a.acknowledged_at && !a.resolved_at).length;
}

// sorted puts unacknowledged alerts first, then by severity, newest first.
function sorted(alerts) {
  return [...alerts].sort((a, b) =>
    Number(Boolean(a.acknowledged_at)) - Number(Boolean(b.acknowledged_at))
    || (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3)
    || String(b.opened_at).localeCompare(String(a.opened_at)));
}

// renderAlerts returns the list. ctx: {farms: Map id -> farm, ack(alert, button) -> Promise}.
export function renderAlerts(alerts, ctx) {
  if (alerts.length === 0) return h('p', { class: 'muted', 'data-testid': 'alert-list-empty', text: t('alerts.empty') });
  const showFarm = new Set(alerts.map((a) => a.farm_id)).size > 1 || ctx.farms.size > 1;
  const list = h('ul', { class: 'list', 'data-testid': 'alert-list' });
  for (const a of sorted(alerts)) {
    const farm = ctx.farms.get(a.farm_id);
    const tz = farm && farm.timezone;
    const meta = [
      t(`severity.${a.severity}`) === `severity.${a.severity}` ? a.severity : t(`severity.${a.severity}`),
      showFarm && farm ? farm.name : null,
      t('alerts.opened', { time: fmt.when(a.opened_at, tz) }),
    ].filter(Boolean).join(' · ');
    const item = h('li', {
      class: 'alert-item', 'data-testid': 'alert', dataset: { alertId: a.id, severity: a.severity || 'info', acknowledged: String(Boolean(a.acknowledged_at)) },
    },
    h('p', { class: 'alert-subject', text: a.subject || a.kind || '' }),
    a.message ? h('p', { class: 'alert-message', text: a.message }) : null,
    h('p', { class: 'alert-meta', text: meta }));
    if (a.acknowledged_at) {
      item.append(h('p', { class: 'muted', 'data-testid': 'alert-acked', text: t('alerts.acked', { time: fmt.when(a.acknowledged_at, tz) }) }));
    } else {
      const button = h('button', { type: 'button', class: 'btn', 'data-testid': 'alert-ack', text: t('alerts.ack') });
      button.addEventListener('click', () => ctx.ack(a, button));
      item.append(button);
    }
    list.append(item);
  }
  return list;
}
