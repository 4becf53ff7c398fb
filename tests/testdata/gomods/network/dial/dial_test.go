package dial

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// TestDial reports whether an outbound TCP connection and a DNS lookup succeed.
func TestDial(t *testing.T) {
	target := os.Getenv("DIAL_TARGET")
	if target == "" {
		target = "1.1.1.1:443"
	}
	conn, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		fmt.Println("NETWORK blocked:", err)
	} else {
		fmt.Println("NETWORK reachable")
		conn.Close()
	}
	if _, err := net.LookupHost("proxy.golang.org"); err != nil {
		fmt.Println("DNS blocked:", err)
	} else {
		fmt.Println("DNS reachable")
	}
}
