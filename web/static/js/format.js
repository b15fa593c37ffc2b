// Locale-aware formatting of numbers, times and sensor readings, in the current UI language.

import { t, lang, intlLocale } from './i18n.js';

// How each known metric (docs: "Metric names") is shown: decimals and unit. percentOf scales a
// value to Intl's percent style (soil_vwc is a 0–1 fraction, the *_pct metrics are 0–100).
const METRICS = {
  soil_vwc: { percentOf: 1, digits: 1 },
  soil_temp_c: { digits: 1, unit: '°C' },
  soil_ec_ds_m: { digits: 2, unitKey: 'unit.ds_m' },
  air_temp_c: { digits: 1, unit: '°C' },
  air_rh_pct: { percentOf: 100, digits: 0 },
  dew_point_c: { digits: 1, unit: '°C' },
  wind_speed_ms: { digits: 1, unitKey: 'unit.m_s' },
  wind_dir_deg: { digits: 0, unit: '°', tight: true },
  solar_rad_wm2: { digits: 0, unitKey: 'unit.w_m2' },
  rain_mm: { digits: 1, unitKey: 'unit.mm' },
  pressure_hpa: { digits: 0, unitKey: 'unit.hpa' },
  leaf_wetness: { digits: 2 },
  flow_lpm: { digits: 1, unitKey: 'unit.l_min' },
  volume_l: { digits: 0, unitKey: 'unit.l' },
  water_level_m: { digits: 2, unitKey: 'unit.m' },
  battery_v: { digits: 2, unitKey: 'unit.v' },
  battery_pct: { percentOf: 100, digits: 0 },
  rssi_dbm: { digits: 0, unitKey: 'unit.dbm' },
  snr_db: { digits: 1, unitKey: 'unit.db' },
};

// Metric names in the order a farmer looks for them; unknown metrics follow, alphabetically.
export const METRIC_ORDER = Object.keys(METRICS);

// Some Chromium builds carry ICU without Azerbaijani data and format 'az' like English, although
// Intl claims to support it. Azerbaijani writes 1.234,5 and 12,3%: when the data is missing,
// numbers are formatted in English and their separators swapped.
let azFallback = null;
function swapSeparators() {
  if (azFallback === null) {
    try { azFallback = new Intl.NumberFormat('az').format(1.5) !== '1,5'; } catch { azFallback = true; }
  }
  return lang() === 'az' && azFallback;
}

function formatNumber(v, options) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  if (!swapSeparators()) return new Intl.NumberFormat(intlLocale(), options).format(v);
  return new Intl.NumberFormat('en', options).format(v).replace(/[.,]/g, (c) => (c === '.' ? ',' : '.'));
}

export function number(v, digits = 1) {
  return formatNumber(v, { maximumFractionDigits: digits });
}

export function percent(fraction, digits = 0) {
  return formatNumber(fraction, { style: 'percent', maximumFractionDigits: digits });
}

// withUnit joins a formatted number and a unit key or literal unit ("12.5 L/min").
export function withUnit(v, digits, unitKey) {
  return `${number(v, digits)} ${t(unitKey)}`;
}

// metric returns {label, text} for one reading; unknown metrics keep their raw name.
export function metric(name, value) {
  const m = METRICS[name];
  if (!m) return { label: name, text: number(value, 3), known: false };
  let text;
  if (m.percentOf) text = percent(typeof value === 'number' ? value / m.percentOf : value, m.digits);
  else if (m.unitKey) text = withUnit(value, m.digits, m.unitKey);
  else if (m.unit) text = number(value, m.digits) + (m.tight ? '' : ' ') + m.unit;
  else text = number(value, m.digits);
  return { label: t(`metric.${name}`), text, known: true };
}

function parse(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
}

// clock formats a time as HH:MM in the farm's time zone, as DD.MM HH:MM when it is not today
// there, with the year when it is not this year. Only digits, so it reads the same in every language and needs no locale data.
export function clock(iso, timeZone) {
  const d = parse(iso);
  if (!d) return '–';
  const tz = safeZone(timeZone);
  const parts = (x) => Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(x).map((p) => [p.type, p.value]));
  const p = parts(d);
  const today = parts(new Date());
  const time = `${p.hour}:${p.minute}`;
  if (p.year !== today.year) return `${p.day}.${p.month}.${p.year} ${time}`;
  return p.month === today.month && p.day === today.day ? time : `${p.day}.${p.month} ${time}`;
}

// relative formats a time as "3 min ago" / "in 12 min", short for small screens, and with
// abbreviations so no plural rules are needed.
export function relative(iso, now = Date.now()) {
  const d = parse(iso);
  if (!d) return '–';
  const secs = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(secs);
  if (abs < 45) return t('rel.now');
  let span;
  if (abs < 3600) span = t('rel.min', { n: Math.max(1, Math.round(abs / 60)) });
  else if (abs < 86400) span = t('rel.h', { n: Math.round(abs / 3600) });
  else span = t('rel.d', { n: Math.round(abs / 86400) });
  return t(secs < 0 ? 'rel.ago' : 'rel.in', { t: span });
}

// when is "3 minutes ago (14:05)".
export function when(iso, timeZone) {
  return parse(iso) ? `${relative(iso)} (${clock(iso, timeZone)})` : '–';
}

// safeZone returns timeZone when this browser knows it, else undefined (the device's zone).
function safeZone(timeZone) {
  if (!timeZone) return undefined;
  try {
    new Intl.DateTimeFormat('en', { timeZone });
    return timeZone;
  } catch {
    return undefined;
  }
}
