package escape

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteHostPaths: host /tmp, other runs' worktrees, the shared caches, the canary itself.
func TestWriteHostPaths(t *testing.T) {
	tg := Load(t)
	if err := os.WriteFile(tg.Canary, []byte("escaped"), 0o644); err == nil {
		t.Errorf("ESCAPED: overwrote the canary %s", tg.Canary)
	}
	if err := os.WriteFile(tg.HostTmp, []byte("escaped"), 0o644); err == nil {
		t.Logf("wrote %s (the host check decides: /tmp is private here)", tg.HostTmp)
	}
	for _, d := range append(append([]string{}, tg.Worktrees...), tg.Caches...) {
		target := filepath.Join(d, "goresolve-escape")
		if err := os.WriteFile(target, []byte("escaped"), 0o644); err == nil {
			t.Errorf("ESCAPED: wrote %s", target)
		}
	}
	if gocache := os.Getenv("GOCACHE"); gocache != "" {
		// Writable, but only in this binary's own layer: the host check sees nothing of it.
		_ = os.WriteFile(filepath.Join(gocache, "goresolve-escape"), []byte("escaped"), 0o644)
	}
}
