package escape

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteThroughProcRoot: the reproduction poisoned the shared build cache through
// /proc/<go test pid>/root. Every /proc/*/root and /proc/*/cwd is tried against every host target.
func TestWriteThroughProcRoot(t *testing.T) {
	tg := Load(t)
	var dirs []string
	dirs = append(dirs, filepath.Dir(tg.Canary), filepath.Dir(tg.HostTmp))
	dirs = append(dirs, tg.Caches...)
	dirs = append(dirs, tg.Worktrees...)
	// The build cache as go sees it: through the go process's root it would be the shared cache.
	dirs = append(dirs, os.Getenv("GOCACHE"))
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, link := range []string{"root", "cwd"} {
			base := filepath.Join(p, link)
			for _, d := range dirs {
				target := filepath.Join(base, d, "goresolve-escape")
				if err := os.WriteFile(target, []byte("x"), 0o644); err == nil {
					t.Logf("wrote %s", target) // the host check decides: it may be a private layer
				}
			}
			if b, err := os.ReadFile(filepath.Join(base, tg.Canary)); err == nil {
				t.Errorf("ESCAPED: read the host canary through %s: %q", base, b)
			}
		}
	}
}
