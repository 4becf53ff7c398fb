package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPersist tries to write where the next run (or the server's own git) would pick it up, and
// reports (as failures, so the runner returns them) every write that succeeded.
func TestPersist(t *testing.T) {
	t.Errorf("GOCACHE: %s", os.Getenv("GOCACHE"))
	var targets []string
	// The worktree's .git file names the mirror's git dir: its config would reach the server's git.
	if b, err := os.ReadFile("../.git"); err == nil {
		gitdir := strings.TrimSpace(strings.TrimPrefix(string(b), "gitdir:"))
		targets = append(targets, filepath.Join(gitdir, "..", "..", "hooks"), filepath.Join(gitdir, "..", ".."))
	}
	// targets.txt (optional) names more directories, e.g. the shared caches.
	if b, err := os.ReadFile("targets.txt"); err == nil {
		targets = append(targets, strings.Fields(string(b))...)
	}
	for _, dir := range targets {
		p := filepath.Join(dir, "goresolve-poison")
		if err := os.WriteFile(p, []byte("x"), 0o644); err == nil {
			t.Errorf("WROTE: %s", p)
		}
	}
}
