package lorawan_test

import (
	"testing"

	"github.com/aghali/aghali/fieldnodes/lorawan"
)

func TestTemplates(t *testing.T) {
	cs, err := lorawan.ParseTemplate("application/{application_id}/device/{dev_eui}/event/{event}")
	if err != nil {
		t.Fatal(err)
	}
	if cs.Filter() != "application/+/device/+/event/#" {
		t.Errorf("filter %s", cs.Filter())
	}
	got, ok := cs.Match("application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up")
	if !ok || got["dev_eui"] != "0101010101010101" || got["event"] != "up" || got["application_id"] != "17c82e96-be03-4f38-aef3-f83d48582d97" {
		t.Errorf("match %v %v", got, ok)
	}
	for _, bad := range []string{"application/x/device/y/up", "application/x/device/y/event/", "other/x/device/y/event/up"} {
		if _, ok := cs.Match(bad); ok {
			t.Errorf("%s matched", bad)
		}
	}

	tts, err := lorawan.ParseTemplate("v3/{application_id}@{tenant_id}/devices/{device_id}/{event}")
	if err != nil {
		t.Fatal(err)
	}
	if tts.Filter() != "v3/+/devices/+/#" {
		t.Errorf("filter %s", tts.Filter())
	}
	got, ok = tts.Match("v3/app1@ttn/devices/dev1/down/ack")
	if !ok || got["application_id"] != "app1" || got["tenant_id"] != "ttn" || got["device_id"] != "dev1" || got["event"] != "down/ack" {
		t.Errorf("match %v %v", got, ok)
	}
	if _, ok := tts.Match("v3/app1/devices/dev1/up"); ok {
		t.Error("a level without @ matched {application_id}@{tenant_id}")
	}

	for _, bad := range []string{"", "a/+/b/{event}", "a/b/#", "a/{x}/b", "a/{event}/up", "a/{x}{y}/{event}", "a/{x/{event}",
		"a/{X}/{event}", "a/{x}/{x}/{event}", "$SYS/{event}", "a//{event}"} {
		if _, err := lorawan.ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) accepted", bad)
		}
	}
}

func TestBestGateway(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	var l lorawan.Link
	l.Best([]lorawan.Gateway{{ID: "a", RSSI: f(-100), SNR: f(2)}, {ID: "b", RSSI: f(-110), SNR: f(7.5)}, {ID: "c", RSSI: f(-90), SNR: f(7.5)}, {ID: "d"}})
	if l.Gateways != 4 || l.BestGateway != "c" || *l.RSSI != -90 || *l.SNR != 7.5 {
		t.Errorf("best %+v", l)
	}
	var none lorawan.Link
	none.Best(nil)
	if none.Gateways != 0 || none.RSSI != nil {
		t.Errorf("no gateways: %+v", none)
	}
}

func TestNormalizeDevEUI(t *testing.T) {
	for in, want := range map[string]string{"0004A30B001C0530": "0004a30b001c0530", "00-04-a3-0b-00-1c-05-30": "0004a30b001c0530",
		"00:04:A3:0B:00:1C:05:30": "0004a30b001c0530", "0004A30B001C053": "", "zz04A30B001C0530": ""} {
		got, ok := lorawan.NormalizeDevEUI(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeDevEUI(%q) = %q, %v", in, got, ok)
		}
	}
}
