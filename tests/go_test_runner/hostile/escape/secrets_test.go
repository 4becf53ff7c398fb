package escape

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadSecrets: home directory, SSH keys, /etc/shadow, other processes' environments.
func TestReadSecrets(t *testing.T) {
	tg := Load(t)
	if entries, err := os.ReadDir(tg.Home); err == nil && len(entries) > 0 {
		t.Errorf("ESCAPED: listed the home directory %s (%d entries)", tg.Home, len(entries))
	}
	for _, p := range []string{tg.Secret, filepath.Join(tg.Home, ".ssh", "id_rsa"), filepath.Join(tg.Home, ".netrc"), "/etc/shadow", "/etc/gshadow"} {
		if b, err := os.ReadFile(p); err == nil {
			t.Errorf("ESCAPED: read %s (%d bytes)", p, len(b))
		}
	}
	environs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range environs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), tg.EnvCanary) {
			t.Errorf("ESCAPED: the server's environment in %s", p)
		}
	}
	for _, p := range []string{"/proc/1/cmdline", "/proc/1/comm"} {
		if b, err := os.ReadFile(p); err == nil && (strings.Contains(string(b), "python") || strings.Contains(string(b), "systemd")) {
			t.Errorf("ESCAPED: pid 1 is a host process: %q", b)
		}
	}
}
