-- A field's area on the ellipsoid, computed once when its outline is written rather than on
-- every read (the farm map of a 1,000-field farm read it 1,000 times per request).
ALTER TABLE fields ADD COLUMN area_ha double precision
    GENERATED ALWAYS AS (ST_Area(geom::geography) / 10000) STORED;
