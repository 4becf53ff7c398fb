package escape

import (
	"net"
	"testing"
	"time"
)

// TestConnectHostSockets: a unix socket on disk, an abstract one, a loopback TCP listener of the host.
func TestConnectHostSockets(t *testing.T) {
	tg := Load(t)
	for _, addr := range []struct{ network, address string }{
		{"unix", tg.UnixSocket},
		{"unix", "@" + tg.Abstract},
		{"tcp", tg.TCP},
	} {
		if c, err := net.DialTimeout(addr.network, addr.address, 2*time.Second); err == nil {
			c.Write([]byte("escaped\n"))
			c.Close()
			t.Errorf("ESCAPED: connected to %s %s", addr.network, addr.address)
		}
	}
}
