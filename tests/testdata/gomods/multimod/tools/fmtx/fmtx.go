// Package fmtx lives in a nested module (tools/go.mod), as gopls does in golang.org/x/tools.
package fmtx

import "strings"

// Shout upper-cases s and adds an exclamation mark.
func Shout(s string) string { return strings.ToUpper(s) + "!" }
