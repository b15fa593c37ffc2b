// FarmMap draws one farm's map (GET /farms/{id}/map: a FeatureCollection whose features carry
// properties.layer = field | zone | node | valve | water_source) with MapLibre GL JS.
//
// The style needs no internet: a plain background and the farm's own layers, no tiles, and no
// symbol layers, hence no glyph or sprite URLs. Points are circle layers. Taps are matched with a
// finger-sized box, preferring valves, then nodes, water sources, zones and fields.

const SOURCE = 'farm';
const EMPTY = { type: 'FeatureCollection', features: [] };

const COLORS = {
  background: '#e9eee4',
  fieldFill: '#d4e2c4',
  fieldLine: '#3b4a2c',
  dry: '#d0862a',
  ok: '#43a047',
  wet: '#1e6fd9',
  unknown: '#9aa19c',
  zoneLine: '#2f4a2a',
  irrigating: '#0b3f86',
  node: '#6a3d9a',
  nodeStale: '#9aa19c',
  valveOpen: '#1e6fd9',
  valveOpenRing: '#0b3f86',
  valveClosed: '#ffffff',
  valveClosedRing: '#37474f',
  valveUnknown: '#d5d8d6',
  valveUnknownRing: '#737a76',
  water: '#0b4f8a',
  selected: '#f2b705',
};

// The layers a tap can hit, by feature layer, in order of preference.
const POINT_LAYERS = [['valve', 'valve'], ['node', 'node'], ['water_source', 'water-source']];
const AREA_LAYERS = [['zone', 'zone-fill'], ['field', 'field-fill']];
const RENDERED_LAYERS = [...POINT_LAYERS, ...AREA_LAYERS].map(([, id]) => id);
const NOTHING = ['==', ['get', 'layer'], '__none__'];

const layerIs = (name) => ['==', ['get', 'layer'], name];

function style() {
  return {
    version: 8,
    name: 'aghali-offline',
    sources: { [SOURCE]: { type: 'geojson', data: EMPTY } },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': COLORS.background } },
      { id: 'field-fill', type: 'fill', source: SOURCE, filter: layerIs('field'),
        paint: { 'fill-color': COLORS.fieldFill, 'fill-opacity': 0.6 } },
      { id: 'zone-fill', type: 'fill', source: SOURCE, filter: layerIs('zone'),
        paint: {
          'fill-color': ['match', ['get', 'moisture'], 'dry', COLORS.dry, 'ok', COLORS.ok, 'wet', COLORS.wet, COLORS.unknown],
          'fill-opacity': 0.5,
        } },
      { id: 'zone-line', type: 'line', source: SOURCE, filter: layerIs('zone'),
        paint: { 'line-color': COLORS.zoneLine, 'line-width': 1, 'line-opacity': 0.7 } },
      { id: 'zone-irrigating', type: 'line', source: SOURCE,
        filter: ['all', layerIs('zone'), ['==', ['get', 'irrigating'], true]],
        paint: { 'line-color': COLORS.irrigating, 'line-width': 3, 'line-dasharray': [2, 1] } },
      { id: 'field-line', type: 'line', source: SOURCE, filter: layerIs('field'),
        paint: { 'line-color': COLORS.fieldLine, 'line-width': 2.5 } },
      { id: 'selected-area', type: 'line', source: SOURCE, filter: NOTHING,
        paint: { 'line-color': COLORS.selected, 'line-width': 4 } },
      { id: 'selected-point', type: 'circle', source: SOURCE, filter: NOTHING,
        paint: { 'circle-radius': 18, 'circle-color': 'rgba(242, 183, 5, 0.3)', 'circle-stroke-color': COLORS.selected, 'circle-stroke-width': 3 } },
      { id: 'water-source', type: 'circle', source: SOURCE, filter: layerIs('water_source'),
        paint: { 'circle-radius': 9, 'circle-color': COLORS.water, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2 } },
      { id: 'node', type: 'circle', source: SOURCE, filter: layerIs('node'),
        paint: {
          'circle-radius': 7,
          'circle-color': ['case', ['==', ['get', 'stale'], true], COLORS.nodeStale, COLORS.node],
          'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2,
        } },
      { id: 'valve', type: 'circle', source: SOURCE, filter: layerIs('valve'),
        paint: {
          'circle-radius': 9,
          'circle-color': ['match', ['get', 'state'], 'open', COLORS.valveOpen, 'closed', COLORS.valveClosed, COLORS.valveUnknown],
          'circle-stroke-color': ['match', ['get', 'state'], 'open', COLORS.valveOpenRing, 'closed', COLORS.valveClosedRing, COLORS.valveUnknownRing],
          'circle-stroke-width': 3.5,
        } },
    ],
  };
}

// loadMapLibre runs the vendored MapLibre script once, on first use. Its URL (with the content
// version) comes from the preload link in index.html, so the download has usually finished by now.
// Its stylesheet goes before the app's own, so the app's rules win over the vendor's at equal
// specificity, and is loaded before the map is created, so the map is sized by the final CSS.
let loading = null;
export function loadMapLibre() {
  if (!loading) {
    const load = (el) => new Promise((resolve, reject) => {
      el.onload = resolve;
      el.onerror = () => {
        el.remove();
        reject(new Error(`could not load ${el.href || el.src}`));
      };
    });
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = document.getElementById('maplibre-css').href;
    const cssLoaded = load(css);
    const appCss = document.querySelector('link[rel="stylesheet"]');
    document.head.insertBefore(css, appCss);
    const script = document.createElement('script');
    script.src = document.getElementById('maplibre-js').href;
    const scriptLoaded = load(script);
    document.head.append(script);
    loading = Promise.all([cssLoaded, scriptLoaded]).then(() => {
      if (!window.maplibregl) throw new Error('maplibre-gl did not define maplibregl');
      return window.maplibregl;
    });
    loading.catch(() => { loading = null; });
  }
  return loading;
}

export function webglAvailable() {
  try {
    const c = document.createElement('canvas');
    return Boolean(c.getContext('webgl2') || c.getContext('webgl'));
  } catch {
    return false;
  }
}

// featureKey names a feature independently of its geometry ("valve:3").
export function featureKey(f) {
  return `${f.properties.layer}:${featureId(f)}`;
}

export function featureId(f) {
  return f.properties.id ?? f.id;
}

export class FarmMap {
  // onSelect(feature | null) is called when the user taps a feature or empty map.
  // overlays() lists elements drawn over the map (buttons, legend, a bottom sheet); fitting the
  // farm keeps it clear of those visible at the time.
  // labels are the texts MapLibre shows itself (its "locale" option), in the UI language.
  constructor(maplibregl, container, { onSelect = () => {}, center = [46.63, 39.09], overlays = () => [], labels = {} } = {}) {
    this.container = container;
    this.overlays = overlays;
    this.data = EMPTY;
    this.onSelect = onSelect;
    this.map = new maplibregl.Map({
      container,
      style: style(),
      center,
      zoom: 13,
      attributionControl: { compact: true },
      dragRotate: false,
      pitchWithRotate: false,
      touchPitch: false,
      maxPitch: 0,
      fadeDuration: 0,
      locale: labels,
    });
    this.map.touchZoomRotate.disableRotation();
    this.map.keyboard.disableRotation();
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    this.map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
    this.loaded = new Promise((resolve) => this.map.once('load', resolve));
    this.map.on('error', (e) => console.warn('map:', e && e.error ? e.error.message : e));
    this.map.on('click', (e) => this.onSelect(this.pick(e.point)));
    this.map.on('mousemove', (e) => {
      this.map.getCanvas().style.cursor = this.pick(e.point, 6) ? 'pointer' : '';
    });
    // For debugging in the console and for browser tests (they project coordinates to pixels).
    window.aghaliMap = this.map;
  }

  // setData shows a new FeatureCollection. With fit, the view moves to the farm's bounds (or to
  // fallbackCenter when the farm has no geometry yet). It resolves once the map has drawn the data,
  // with the number of distinct features drawn. It does not wait while the page is hidden (no
  // frames are drawn), so callers should not block on it.
  async setData(fc, { fit = false, fallbackCenter = null } = {}) {
    await this.loaded;
    this.data = fc && Array.isArray(fc.features) ? fc : EMPTY;
    this.map.getSource(SOURCE).setData(this.data);
    if (fit) this.fit(fallbackCenter);
    await new Promise((resolve) => this.map.once('idle', resolve));
    const n = this.renderedCount();
    this.container.dataset.features = String(n);
    return n;
  }

  fit(fallbackCenter = null) {
    const b = bounds(this.data);
    if (!b) {
      if (fallbackCenter) this.map.jumpTo({ center: fallbackCenter, zoom: 15 });
      return;
    }
    if (b[0][0] === b[1][0] && b[0][1] === b[1][1]) {
      this.map.jumpTo({ center: b[0], zoom: 16 });
      return;
    }
    this.map.fitBounds(b, { padding: this.padding(), maxZoom: 18, duration: 0 });
  }

  // padding is the space to leave around the farm: a margin, plus whatever overlays cover the top
  // or bottom of the map, capped so that a third of the map is always left.
  padding() {
    const c = this.container.getBoundingClientRect();
    const pad = { top: 24, bottom: 24, left: 24, right: 24 };
    for (const el of this.overlays()) {
      if (!el || el.hidden || el.offsetParent === null) continue;
      const r = el.getBoundingClientRect();
      const overlapsX = r.right > c.left && r.left < c.right;
      const overlapsY = r.bottom > c.top && r.top < c.bottom;
      if (!overlapsX || !overlapsY) continue;
      if ((r.top + r.bottom) / 2 < (c.top + c.bottom) / 2) pad.top = Math.max(pad.top, r.bottom - c.top + 12);
      else pad.bottom = Math.max(pad.bottom, c.bottom - r.top + 12);
    }
    const capV = Math.floor(c.height / 3);
    const capH = Math.floor(c.width / 3);
    return {
      top: Math.min(pad.top, capV), bottom: Math.min(pad.bottom, capV),
      left: Math.min(pad.left, capH), right: Math.min(pad.right, capH),
    };
  }

  // renderedCount counts the distinct farm features drawn in the current view (none when the map
  // has no area on screen).
  renderedCount() {
    if (this.container.clientWidth === 0 || this.container.clientHeight === 0) return 0;
    const seen = new Set();
    for (const f of this.map.queryRenderedFeatures({ layers: RENDERED_LAYERS })) seen.add(featureKey(f));
    return seen.size;
  }

  find(layer, id) {
    return this.data.features.find((f) => f.properties.layer === layer && String(featureId(f)) === String(id)) || null;
  }

  // pick returns the original feature (rendered features carry stringified nested properties)
  // under a point: the nearest point feature within radius px by preference, else the zone or
  // field under the point.
  pick(point, radius = 14) {
    const box = [[point.x - radius, point.y - radius], [point.x + radius, point.y + radius]];
    for (const [layer, id] of POINT_LAYERS) {
      const hits = this.map.queryRenderedFeatures(box, { layers: [id] });
      if (hits.length === 0) continue;
      let best = null;
      let bestD = Infinity;
      for (const hit of hits) {
        const p = this.map.project(hit.geometry.coordinates);
        const d = (p.x - point.x) ** 2 + (p.y - point.y) ** 2;
        if (d < bestD) [best, bestD] = [hit, d];
      }
      return this.find(layer, featureId(best));
    }
    for (const [layer, id] of AREA_LAYERS) {
      const hits = this.map.queryRenderedFeatures(point, { layers: [id] });
      if (hits.length > 0) return this.find(layer, featureId(hits[0]));
    }
    return null;
  }

  // select highlights one feature (or none).
  select(f) {
    const point = f && f.geometry && f.geometry.type === 'Point';
    const match = f ? ['all', layerIs(f.properties.layer), ['==', ['get', 'id'], featureId(f)]] : NOTHING;
    this.map.setFilter('selected-point', point ? match : NOTHING);
    this.map.setFilter('selected-area', f && !point ? match : NOTHING);
  }

  // reveal pans to a feature when it is outside the view (chosen from the list, say).
  reveal(f) {
    const b = bounds({ features: [f] });
    if (!b) return;
    const center = [(b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2];
    if (!this.map.getBounds().contains(center)) this.map.easeTo({ center, duration: 300 });
  }

  // keepClear pans the map when f would be hidden under cover, an element over the bottom of the
  // map (the bottom sheet on a phone), so the feature being looked at stays in sight.
  keepClear(f, cover) {
    const b = bounds({ features: [f] });
    if (!b || !cover || cover.hidden) return;
    const c = this.container.getBoundingClientRect();
    const r = cover.getBoundingClientRect();
    if (r.top >= c.bottom || r.left >= c.right || r.right <= c.left || r.top <= c.top) return;
    const visible = r.top - c.top;
    const p = this.map.project([(b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2]);
    const top = Math.min(72, visible / 3); // below the buttons over the map
    if (p.y > top && p.y < visible - 24) return;
    this.map.panBy([0, p.y - (top + visible) / 2], { duration: 250 });
  }

  resize() { this.map.resize(); }
}

// bounds returns [[west, south], [east, north]] of all coordinates, or null.
function bounds(fc) {
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  const visit = (c) => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]);
      s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else {
      for (const x of c) visit(x);
    }
  };
  for (const f of fc.features || []) {
    const g = f.geometry;
    if (!g) continue;
    if (g.type === 'GeometryCollection') for (const gg of g.geometries || []) visit(gg.coordinates || []);
    else visit(g.coordinates || []);
  }
  return Number.isFinite(w) ? [[w, s], [e, n]] : null;
}
