package agronomy

import (
	"math"
	"time"
)

// sunAltitude is the Sun's centre altitude at sunrise and sunset, degrees: the upper limb on
// the horizon (−16′ semidiameter) seen through standard refraction (−34′).
const sunAltitude = -0.833

// SunTimes returns sunrise and sunset at latitude lat (degrees, north positive) and longitude lon
// (degrees, east positive) on the calendar day of date — its year, month and day as stored,
// whatever its location — expressed in loc (nil: UTC). It uses the NOAA solar position equations
// (after Meeus, Astronomical Algorithms), accurate to about a minute between the polar circles.
// When the Sun does not rise or does not set that day (polar night or midnight sun) both times
// are zero.
func SunTimes(date time.Time, lat, lon float64, loc *time.Location) (sunrise, sunset time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	if !finite(lat) || !finite(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return time.Time{}, time.Time{}
	}
	y, m, d := date.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	rise, okRise := sunEvent(midnight, lat, lon, -1)
	set, okSet := sunEvent(midnight, lat, lon, +1)
	if !okRise || !okSet {
		return time.Time{}, time.Time{}
	}
	return rise.In(loc), set.In(loc)
}

// sunEvent finds sunrise (sign −1) or sunset (+1) as minutes after midnight UTC, iterating so
// that the Sun's position is taken at the event itself rather than at noon.
func sunEvent(midnight time.Time, lat, lon, sign float64) (time.Time, bool) {
	jd0 := float64(midnight.Unix())/86400 + 2440587.5
	minutes := 720 - 4*lon // solar noon, first guess
	phi := lat * math.Pi / 180
	for range 4 {
		eqTime, decl := solarPosition(jd0 + minutes/1440)
		cosH := math.Sin(sunAltitude*math.Pi/180)/(math.Cos(phi)*math.Cos(decl)) - math.Tan(phi)*math.Tan(decl)
		if !(cosH >= -1 && cosH <= 1) {
			return time.Time{}, false
		}
		ha := math.Acos(cosH) * 180 / math.Pi
		minutes = 720 - 4*(lon-sign*ha) - eqTime
	}
	return midnight.Add(time.Duration(minutes * float64(time.Minute))).Truncate(time.Second), true
}

// solarPosition returns the equation of time (minutes) and the solar declination (radians) at
// Julian day jd (NOAA solar calculator equations).
func solarPosition(jd float64) (eqTime, decl float64) {
	const rad = math.Pi / 180
	t := (jd - 2451545) / 36525 // Julian centuries since J2000.0
	l0 := math.Mod(280.46646+t*(36000.76983+0.0003032*t), 360)
	mAnom := 357.52911 + t*(35999.05029-0.0001537*t)
	e := 0.016708634 - t*(0.000042037+0.0000001267*t)
	c := math.Sin(mAnom*rad)*(1.914602-t*(0.004817+0.000014*t)) +
		math.Sin(2*mAnom*rad)*(0.019993-0.000101*t) + math.Sin(3*mAnom*rad)*0.000289
	trueLong := l0 + c
	omega := 125.04 - 1934.136*t
	appLong := trueLong - 0.00569 - 0.00478*math.Sin(omega*rad)
	obliq0 := 23 + (26+(21.448-t*(46.815+t*(0.00059-t*0.001813)))/60)/60
	obliq := obliq0 + 0.00256*math.Cos(omega*rad)
	decl = math.Asin(math.Sin(obliq*rad) * math.Sin(appLong*rad))
	yy := math.Tan(obliq*rad/2) * math.Tan(obliq*rad/2)
	eqTime = 4 / rad * (yy*math.Sin(2*l0*rad) - 2*e*math.Sin(mAnom*rad) +
		4*e*yy*math.Sin(mAnom*rad)*math.Cos(2*l0*rad) -
		0.5*yy*yy*math.Sin(4*l0*rad) - 1.25*e*e*math.Sin(2*mAnom*rad))
	return eqTime, decl
}
