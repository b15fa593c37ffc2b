package fieldnodes_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// mosquittoACL is the topic rules of docs/mqtt.md in Mosquitto's ACL language.
const mosquittoACL = `user aghali-server
topic readwrite #

pattern readwrite aghali/nodes/%u/#
pattern read aghali/controllers/%u/cmd
pattern write aghali/controllers/%u/ack
pattern write aghali/controllers/%u/state
`

// The whole path through Mosquitto instead of the embedded broker: a node's reading is stored,
// a foreign topic is refused by Mosquitto's ACL, a command reaches a controller and its state
// reaches the handler.
func TestIngestThroughMosquitto(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acl := filepath.Join(t.TempDir(), "acl")
	must(t, os.WriteFile(acl, []byte(mosquittoACL), 0o600))
	m := mqtttest.Start(t, mqtttest.Config{
		Users: map[string]string{"aghali-server": "server-pw", "soil-01": "s1", "valves-1": "v1"},
		Extra: []string{"acl_file " + acl},
	})
	f := newFarm(t)
	id := f.node(t, "soil-01", 0)
	ctrl := &recControllers{}

	link := mqttLink(t, m.URL, "aghali-serve-1", "aghali-server", "server-pw", "aghali")
	ingest, err := fieldnodes.NewIngest(fieldnodes.IngestConfig{Store: f.store, Link: link, Controllers: ctrl, Logger: testLogger(t)})
	must(t, err)
	must(t, ingest.Start(ctx))
	defer ingest.Stop()
	startLink(t, link)
	cmdr, err := fieldnodes.NewCommander(fieldnodes.CommanderConfig{Link: link})
	must(t, err)

	dev := mqttLink(t, m.URL, "soil-01", "soil-01", "s1", "")
	startLink(t, dev)
	valves := mqttLink(t, m.URL, "valves-1", "valves-1", "v1", "")
	cmds := make(chan mqttlink.Message, 1)
	must(t, valves.Subscribe("aghali/controllers/valves-1/cmd", func(m mqttlink.Message) { cmds <- m; m.Ack() }))
	startLink(t, valves)

	ts := time.Now().UTC().Truncate(time.Second)
	send(t, dev, "aghali/nodes/soil-01/up", `{"ts":"`+ts.Format(time.RFC3339)+`","readings":{"soil_vwc":0.31}}`)
	send(t, dev, "aghali/nodes/soil-02/up", `{"ts":"`+ts.Format(time.RFC3339)+`","readings":{"soil_vwc":0.99}}`) // ACL: dropped
	eventually(t, 10*time.Second, "the reading through Mosquitto", func() bool {
		s, err := f.store.Readings(ctx, id, "soil_vwc", ts.Add(-time.Minute), ts.Add(time.Minute), 10)
		must(t, err)
		return len(s.Points) == 1 && s.Points[0].Mean == 0.31
	})

	must(t, cmdr.SendCommand(ctx, "valves-1", fieldnodes.Command{ID: "c-1", Action: fieldnodes.ActionClose, Valve: 2, ExpiresAt: time.Now().Add(time.Minute)}))
	select {
	case m := <-cmds:
		if m.Topic != "aghali/controllers/valves-1/cmd" {
			t.Errorf("command on %s", m.Topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the command did not reach the controller")
	}
	send(t, valves, "aghali/controllers/valves-1/state", `{"valves":{"2":"closed"}}`)
	eventually(t, 10*time.Second, "the state through Mosquitto", func() bool {
		_, states, _ := ctrl.snapshot()
		return len(states) == 1 && states[0].Valves[2] == "closed"
	})
	time.Sleep(100 * time.Millisecond)
	var n int
	must(t, f.db.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&n))
	if pend, err := f.store.PendingDevices(ctx); err != nil || n != 1 || len(pend) != 0 {
		t.Errorf("%d readings and pending %+v (%v): the foreign publish got through", n, pend, err)
	}
}

func mqttLink(t *testing.T, url, clientID, user, pass, shared string) *mqttlink.Link {
	t.Helper()
	l, err := mqttlink.New(mqttlink.Config{URL: url, ClientID: clientID, Username: user, Password: pass, Shared: shared,
		Logger: testLogger(t), RetryInterval: 50 * time.Millisecond})
	must(t, err)
	return l
}

func startLink(t *testing.T, l *mqttlink.Link) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, l.Start(ctx))
	t.Cleanup(l.Stop)
	must(t, l.WaitReady(ctx))
}
