// Package geo owns Aghali's geometry: the codec between go-geom and PostGIS (EWKB over pgx's
// binary protocol), GeoJSON in and out (RFC 7946: WGS84 lon/lat, exterior rings
// counter-clockwise), spatial validation, and the farms and fields that everything else hangs on.
//
// Invariants: every geometry stored has SRID 4326 and passed PostGIS's ST_IsValid; a geometry
// that does not is refused with a *ValidationError naming the problem and where it is.
package geo
