package noisy

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestFlood prints NOISY_MB megabytes (default 4) to stdout, then fails.
func TestFlood(t *testing.T) {
	mb, err := strconv.Atoi(os.Getenv("NOISY_MB"))
	if err != nil {
		mb = 4
	}
	for i := 0; i < mb*1024*1024/(len(Line)+1); i++ {
		fmt.Println(Line)
	}
	t.Error("flooded")
}

// TestLogFlood logs NOISY_LOG_LINES lines (default 20000) through t.Log.
func TestLogFlood(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("NOISY_LOG_LINES"))
	if err != nil {
		n = 20000
	}
	for i := 0; i < n; i++ {
		t.Log(Line)
	}
}
