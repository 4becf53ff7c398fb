// Package other depends on nothing here.
package other

// Name is a constant.
const Name = "other"
