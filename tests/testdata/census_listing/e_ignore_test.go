//go:build ignore

package main

import "testing"

func TestIgnored(t *testing.T) {}
