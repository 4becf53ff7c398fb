// Package fmtx lives in a nested module (tools/go.mod) that go.work joins to the root module.
package fmtx

import "strings"

// Shout upper-cases s and adds an exclamation mark.
func Shout(s string) string { return strings.ToUpper(s) + "!" }
