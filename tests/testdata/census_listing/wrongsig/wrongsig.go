// Package wrongsig has a test go refuses: go test lists nothing for it.
package wrongsig
