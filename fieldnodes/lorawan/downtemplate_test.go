package lorawan_test

import (
	"slices"
	"testing"

	"github.com/aghali/aghali/fieldnodes/lorawan"
)

// A downlink topic is filled from the variables an uplink topic of the same device matched.
func TestDownTemplates(t *testing.T) {
	up, err := lorawan.ParseTemplate("v3/{application_id}@{tenant_id}/devices/{device_id}/{event}")
	if err != nil {
		t.Fatal(err)
	}
	vars, ok := up.Match("v3/aghali-fields@ttn/devices/valves-east/up")
	if !ok {
		t.Fatal("no match")
	}
	if got := up.Names(); !slices.Equal(got, []string{"application_id", "tenant_id", "device_id"}) {
		t.Errorf("uplink names %v", got)
	}
	down, err := lorawan.ParseDownTemplate("v3/{application_id}@{tenant_id}/devices/{device_id}/down/push")
	if err != nil {
		t.Fatal(err)
	}
	topic, err := down.Topic(vars)
	if err != nil || topic != "v3/aghali-fields@ttn/devices/valves-east/down/push" {
		t.Errorf("topic %q %v", topic, err)
	}
	if got := down.Names(); !slices.Equal(got, []string{"application_id", "tenant_id", "device_id"}) {
		t.Errorf("names %v", got)
	}
	if f := down.Filter(); f != "v3/+/devices/+/down/#" {
		t.Errorf("filter %s", f)
	}

	cs, err := lorawan.ParseDownTemplate("application/{application_id}/device/{dev_eui}/command/down")
	if err != nil {
		t.Fatal(err)
	}
	if f := cs.Filter(); f != "application/+/device/+/command/#" {
		t.Errorf("filter %s", f)
	}
	for _, vars := range []map[string]string{
		{"application_id": "a"},                      // no dev_eui
		{"application_id": "", "dev_eui": "0101"},    // empty
		{"application_id": "a/b", "dev_eui": "0101"}, // another level
		{"application_id": "+", "dev_eui": "0101"},   // a wildcard
		{"application_id": "a", "dev_eui": "01#"},    // a wildcard
	} {
		if topic, err := cs.Topic(vars); err == nil {
			t.Errorf("Topic(%v) = %q", vars, topic)
		}
	}

	for _, bad := range []string{"", "a/+/down", "a/#", "$SYS/x", "a//down", "a/{x", "a/x}/down", "a/{x}{y}/down",
		"a/{Bad}/down", "a/{event}/down", "a/{}/down"} {
		if _, err := lorawan.ParseDownTemplate(bad); err == nil {
			t.Errorf("ParseDownTemplate(%q) accepted", bad)
		}
	}
	if tm, err := lorawan.ParseDownTemplate("lora/{app}-{dev}/tx"); err != nil {
		t.Error(err)
	} else if topic, err := tm.Topic(map[string]string{"app": "x", "dev": "y"}); err != nil || topic != "lora/x-y/tx" {
		t.Errorf("%q %v", topic, err)
	}
}
