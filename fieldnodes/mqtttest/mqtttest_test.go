package mqtttest_test

import (
	"net"
	"strings"
	"testing"

	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

func TestStartAndStop(t *testing.T) {
	m := mqtttest.Start(t, mqtttest.Config{Users: map[string]string{"svc": "pw"}})
	if !strings.HasPrefix(m.URL, "tcp://127.0.0.1:") {
		t.Errorf("URL = %s", m.URL)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(m.URL, "tcp://"))
	if err != nil {
		t.Fatalf("not listening: %v", err)
	}
	c.Close()
	m.Stop()
	if c, err := net.Dial("tcp", strings.TrimPrefix(m.URL, "tcp://")); err == nil {
		c.Close()
		t.Error("still listening after Stop")
	}
}
