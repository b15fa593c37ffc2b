package broker

import "strings"

// isUplink reports whether topic is {prefix}/nodes/{uid}/up.
func (b *Broker) isUplink(topic string) bool {
	rest, ok := strings.CutPrefix(topic, b.cfg.Prefix+"/nodes/")
	if !ok {
		return false
	}
	uid, tail, ok := strings.Cut(rest, "/")
	return ok && uid != "" && tail == "up"
}

// validFilter reports whether f is an MQTT topic filter: + alone in its level, # alone and last.
func validFilter(f string) bool {
	if f == "" {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) > 1 || l == "#" && i != len(levels)-1 {
			return false
		}
	}
	return true
}

// matches reports whether topic (no wildcards) matches filter.
func matches(filter, topic string) bool {
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) || f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

func matchAny(filters []string, topic string) bool {
	for _, f := range filters {
		if matches(f, topic) {
			return true
		}
	}
	return false
}

// filterWithin reports whether every topic filter sub can match is matched by one of filters
// (a subscription asks for no more than it may read).
func filterWithin(filters []string, sub string) bool {
	for _, f := range filters {
		if covers(f, sub) {
			return true
		}
	}
	return false
}

// covers reports whether every topic sub matches, f matches too.
func covers(f, sub string) bool {
	fl, sl := strings.Split(f, "/"), strings.Split(sub, "/")
	for i, x := range fl {
		if x == "#" {
			return true
		}
		if i >= len(sl) {
			return false
		}
		switch {
		case sl[i] == "#":
			return false
		case x == "+":
			continue
		case sl[i] == "+" || x != sl[i]:
			return false
		}
	}
	return len(fl) == len(sl)
}
