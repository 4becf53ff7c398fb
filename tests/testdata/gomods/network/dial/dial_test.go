package dial

import (
	"net"
	"testing"
	"time"
)

// TestDial reports (as failures, so the runner returns them) whether test code reaches the network.
func TestDial(t *testing.T) {
	if conn, err := net.DialTimeout("tcp", "1.1.1.1:443", 2*time.Second); err != nil {
		t.Errorf("NETWORK blocked: %v", err)
	} else {
		t.Errorf("NETWORK reachable")
		conn.Close()
	}
	if _, err := net.LookupHost("proxy.golang.org"); err != nil {
		t.Errorf("DNS blocked")
	} else {
		t.Errorf("DNS reachable")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("LOOPBACK unusable: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if c, err := net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Errorf("LOOPBACK unusable: %v", err)
	} else {
		t.Errorf("LOOPBACK ok")
		c.Close()
	}
}
