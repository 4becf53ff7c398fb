// Package escape holds go-test-runner's hostile test suite: each _test.go file tries one way out of
// the sandbox. A test fails with "ESCAPED: ..." when the escape worked; the Python side checks the
// host as well (canary file, cache checksum, listening sockets).
package escape

import (
	"encoding/json"
	"os"
	"testing"
)

// Targets are host paths and addresses written by the test fixture into targets.json.
type Targets struct {
	Canary     string   `json:"canary"`      // a host file whose content must not change
	Secret     string   `json:"secret"`      // a host file with a secret in it (an SSH key stand-in)
	SecretText string   `json:"secret_text"` // the secret, to recognise it if it is read
	Home       string   `json:"home"`        // the server's home directory
	HostTmp    string   `json:"host_tmp"`    // a file in the host's /tmp that must not appear
	Worktrees  []string `json:"worktrees"`   // other runs' checkouts
	Caches     []string `json:"caches"`      // the shared caches (host paths)
	UnixSocket string   `json:"unix_socket"` // a host unix socket that must receive nothing
	Abstract   string   `json:"abstract"`    // an abstract unix socket of the host's network namespace
	TCP        string   `json:"tcp"`         // a host loopback TCP listener
	EnvCanary  string   `json:"env_canary"`  // a value in the server's environment
	Setuid     string   `json:"setuid"`      // a setuid-root program printing its effective uid
}

// Load reads targets.json from the package directory.
func Load(t *testing.T) Targets {
	t.Helper()
	var tg Targets
	b, err := os.ReadFile("targets.json")
	if err != nil {
		t.Fatalf("targets.json: %v", err)
	}
	if err := json.Unmarshal(b, &tg); err != nil {
		t.Fatalf("targets.json: %v", err)
	}
	return tg
}
