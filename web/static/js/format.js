// Locale-aware formatting of numbers, times and sensor readings, in the current UI language.

import { t, intlLocale } from './i18n.js';

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

export function number(v, digits = 1) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return new Intl.NumberFormat(intlLocale(), { maximumFractionDigits: digits }).format(v);
}

export function percent(fraction, digits = 0) {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return '–';
  return new Intl.NumberFormat(intlLocale(), { style: 'percent', maximumFractionDigits: digits }).format(fraction);
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

// clock formats a time as HH:MM in the farm's time zone, with the date when it is not today there.
export function clock(iso, timeZone) {
  const d = parse(iso);
  if (!d) return '–';
  const tz = safeZone(timeZone);
  const day = (x) => new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(x);
  const opts = { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (day(d) !== day(new Date())) Object.assign(opts, { day: 'numeric', month: 'short' });
  return new Intl.DateTimeFormat(intlLocale(), opts).format(d);
}

// relative formats a time as "3 minutes ago" / "in 12 minutes".
export function relative(iso, now = Date.now()) {
  const d = parse(iso);
  if (!d) return '–';
  const secs = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(secs);
  const rtf = new Intl.RelativeTimeFormat(intlLocale(), { numeric: 'auto' });
  if (abs < 45) return rtf.format(0, 'second');
  if (abs < 3600) return rtf.format(Math.round(secs / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(secs / 3600), 'hour');
  return rtf.format(Math.round(secs / 86400), 'day');
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
