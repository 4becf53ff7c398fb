package spy

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// canary is the value the Python test puts in the server's environment; it must never reach here.
const canary = "goresolve-canary-7f3a"

// TestDumpEnv reports (as failures, so the runner returns them) what hostile test code could see.
func TestDumpEnv(t *testing.T) {
	var names []string
	inEnv := false
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		names = append(names, name)
		inEnv = inEnv || strings.Contains(value, canary)
	}
	sort.Strings(names)
	t.Errorf("ENV_NAMES: %s", strings.Join(names, ","))
	t.Errorf("CANARY_IN_ENV: %v", inEnv)

	leaks := 0
	paths, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(canary)) {
			leaks++
		}
	}
	t.Errorf("PROC_ENVIRON_LEAKS: %d", leaks)

	home, _ := os.UserHomeDir()
	targets := []string{
		filepath.Join(home, ".git-credentials"),
		filepath.Join(home, ".netrc"),
		filepath.Join(home, ".ssh", "id_rsa"),
		"/proc/1/environ",
	}
	// targets.txt (optional) names more files to try, e.g. a secret the test suite planted.
	if b, err := os.ReadFile("targets.txt"); err == nil {
		targets = append(targets, strings.Fields(string(b))...)
	}
	for _, p := range targets {
		if _, err := os.ReadFile(p); err == nil {
			t.Errorf("READ: %s", p)
		}
	}
}
