// Package agronomy holds the agronomic arithmetic of irrigation: FAO-56 reference
// evapotranspiration (daily and hourly Penman–Monteith, Hargreaves), crop coefficients and
// root-zone parameters for the crops grown around Aghali, soil water properties by texture, the
// daily root-zone water balance that decides when a zone needs water and how much, and sunrise
// and sunset for rules that act on daylight.
//
// Everything here is pure: no I/O, no clock, no package-level mutable state. Catalogue data are
// returned by value, so a caller can never change another caller's crop.
//
// Invariants:
//   - Every exported calculation validates its input and returns an *InputError naming the
//     offending field instead of producing NaN or ±Inf; a nil error means every number in the
//     result is finite.
//   - Units are those of FAO-56: temperatures °C, pressures kPa, radiation MJ m⁻² per day or per
//     hour, wind m/s, water depths mm, root depths m, soil water contents m³/m³.
//   - Equation numbers in comments and docs refer to Allen, Pereira, Raes & Smith (1998), Crop
//     evapotranspiration, FAO Irrigation and Drainage Paper 56; docs/agronomy.md lists them.
package agronomy
