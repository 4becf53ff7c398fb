// Package daemon tries to outlive its test run.
package daemon
